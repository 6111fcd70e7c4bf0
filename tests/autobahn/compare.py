#!/usr/bin/env python3
"""Compare an Autobahn TestSuite report (kosoku's index.json) with committed expectations.

    compare.py EXPECTED.json REPORT_DIR/index.json [--title TITLE] [--update]

Prints a summary table per category (1.*, 2.*, ...: OK / NON-STRICT / INFO / FAILED, plus
BROWSER for the cases a browser decides itself) and every difference from the expectations.
Exits 1 on any FAILED case that the expectations do not accept, on any regression (a case
that got worse than expected, or a case missing from the report), or on a report that is
missing or unreadable; exits 0 otherwise. A case that got better is reported (update the
expectations with --update) but is no failure.

--update rewrites EXPECTED.json from the report, keeping its notes and "accepted" reasons
(for cases still present), and does not fail.

Expectations file:

    {
      "title": "client (native)",
      "excluded": ["12.*", "13.*"],
      "cases": {
        "1.1.1": {"behavior": "OK", "behaviorClose": "OK"},
        "6.4.3": {"behavior": "NON-STRICT", "behaviorClose": "OK", "note": "why"},
        "5.1": {"behavior": "FAILED", "behaviorClose": "OK",
                "accepted": "browser", "note": "why this is not ours to fix"}
      }
    }

A case whose result is in the FAILED class fails the run unless its expectation has
"accepted" (the only value used so far is "browser": the browser's own WebSocket decided the
outcome, and unisock cannot change it); such cases are counted in the BROWSER column.

Standard library only.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import OrderedDict

# Verdicts for the message exchange ("behavior") and the closing handshake
# ("behaviorClose"), ranked: a higher rank is worse. NON-STRICT and INFORMATIONAL are both
# acceptable outcomes (kosoku counts them as passed) and rank the same.
BEHAVIOR_RANK = {"OK": 0, "NON-STRICT": 1, "INFORMATIONAL": 1, "UNIMPLEMENTED": 2, "FAILED": 3, "ERROR": 3}
CLOSE_RANK = {"OK": 0, "INFORMATIONAL": 1, "WRONG CODE": 3, "UNCLEAN": 3, "FAILED BY CLIENT": 3, "FAILED": 3}
MISSING_RANK = 4

COLUMNS = ("OK", "NON-STRICT", "INFO", "FAILED", "BROWSER")


def rank(table: dict[str, int], verdict: str | None) -> int:
    if verdict is None:
        return MISSING_RANK
    return table.get(verdict, 3)  # an unknown verdict counts as failed


def case_class(behavior: str, close: str) -> str:
    """The summary column of a case: the worse of its two verdicts."""
    if rank(BEHAVIOR_RANK, behavior) >= 2 or rank(CLOSE_RANK, close) >= 2:
        return "FAILED"
    if behavior == "INFORMATIONAL" or close == "INFORMATIONAL":
        return "INFO"
    if behavior == "NON-STRICT":
        return "NON-STRICT"
    return "OK"


def case_key(case_id: str) -> tuple:
    return tuple(int(part) if part.isdigit() else part for part in case_id.split("."))


def load_report(path: str) -> dict[str, dict]:
    with open(path, encoding="utf-8") as file:
        index = json.load(file)
    if not isinstance(index, dict) or not index:
        raise ValueError(f"{path}: no agent in the report")
    if len(index) > 1:
        raise ValueError(f"{path}: several agents in one report: {', '.join(index)}")
    (agent, cases), = index.items()
    return {case_id: {"behavior": r.get("behavior"), "behaviorClose": r.get("behaviorClose"),
                      "remoteCloseCode": r.get("remoteCloseCode")}
            for case_id, r in cases.items()}


def summary(results: dict[str, dict], expected: dict[str, dict]) -> list[list]:
    """Rows of [category, OK, NON-STRICT, INFO, FAILED, BROWSER], then a total row."""
    table: dict[str, dict[str, int]] = {}
    for case_id in sorted(results, key=case_key):
        result = results[case_id]
        column = case_class(result["behavior"], result["behaviorClose"])
        if column == "FAILED" and expected.get(case_id, {}).get("accepted") == "browser":
            column = "BROWSER"
        category = case_id.split(".")[0] + ".*"
        table.setdefault(category, dict.fromkeys(COLUMNS, 0))[column] += 1
    rows = [[category] + [counts[c] for c in COLUMNS] for category, counts in table.items()]
    total = ["all"] + [sum(row[i + 1] for row in rows) for i in range(len(COLUMNS))]
    return rows + [total]


def print_table(title: str, rows: list[list]) -> None:
    show_browser = any(row[-1] for row in rows)
    header = ["category", *COLUMNS] if show_browser else ["category", *COLUMNS[:-1]]
    print(f"\n{title}\n")
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|")
    for row in rows:
        cells = row if show_browser else row[:-1]
        if row[0] == "all":
            cells = [f"**{cell}**" for cell in cells]
        print("| " + " | ".join(str(cell) for cell in cells) + " |")


def compare(results: dict[str, dict], expected: dict[str, dict]) -> tuple[list[str], list[str]]:
    """Returns (problems that fail the run, improvements)."""
    problems, better = [], []
    for case_id in sorted(set(results) | set(expected), key=case_key):
        want = expected.get(case_id)
        got = results.get(case_id)
        if got is None:
            problems.append(f"{case_id}: missing from the report (expected {want['behavior']} / {want['behaviorClose']})")
            continue
        verdict = f"{got['behavior']} / {got['behaviorClose']}"
        if got["remoteCloseCode"] is not None:
            verdict += f" (peer closed with {got['remoteCloseCode']})"
        failed = case_class(got["behavior"], got["behaviorClose"]) == "FAILED"
        if want is None:
            if failed:
                problems.append(f"{case_id}: {verdict}: not in the expectations")
            else:
                better.append(f"{case_id}: {verdict}: new case, not in the expectations")
            continue
        if failed and not want.get("accepted"):
            problems.append(f"{case_id}: {verdict}")
            continue
        delta = max(rank(BEHAVIOR_RANK, got["behavior"]) - rank(BEHAVIOR_RANK, want["behavior"]),
                    rank(CLOSE_RANK, got["behaviorClose"]) - rank(CLOSE_RANK, want["behaviorClose"]))
        was = f"{want['behavior']} / {want['behaviorClose']}"
        if delta > 0:
            problems.append(f"{case_id}: {verdict}, worse than the expected {was}")
        elif (got["behavior"], got["behaviorClose"]) != (want["behavior"], want["behaviorClose"]):
            better.append(f"{case_id}: {verdict}, expected {was}")
    return problems, better


def write_expected(path: str, title: str, results: dict[str, dict], old: dict) -> None:
    old_cases = old.get("cases", {})
    cases = OrderedDict()
    for case_id in sorted(results, key=case_key):
        entry = OrderedDict(behavior=results[case_id]["behavior"],
                            behaviorClose=results[case_id]["behaviorClose"])
        for keep in ("accepted", "note"):
            if keep in old_cases.get(case_id, {}):
                entry[keep] = old_cases[case_id][keep]
        cases[case_id] = entry
    head = OrderedDict((k, v) for k, v in old.items() if k != "cases")
    head.setdefault("title", title)
    head.setdefault("excluded", ["12.*", "13.*"])
    # One case per line: reviewable diffs.
    lines = ["{"]
    for key, value in head.items():
        lines.append(f"  {json.dumps(key)}: {json.dumps(value, ensure_ascii=False)},")
    lines.append('  "cases": {')
    items = [f"    {json.dumps(k)}: {json.dumps(v, ensure_ascii=False)}" for k, v in cases.items()]
    lines.append(",\n".join(items))
    lines.append("  }")
    lines.append("}")
    with open(path, "w", encoding="utf-8") as file:
        file.write("\n".join(lines) + "\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("expected", help="expectations JSON (tests/autobahn/expected-*.json)")
    parser.add_argument("report", help="kosoku's index.json")
    parser.add_argument("--title", default=None, help="title of the summary table")
    parser.add_argument("--update", action="store_true", help="rewrite the expectations from the report")
    args = parser.parse_args()

    try:
        results = load_report(args.report)
    except (OSError, ValueError) as error:
        print(f"autobahn: cannot read the report: {error}", file=sys.stderr)
        return 1
    try:
        with open(args.expected, encoding="utf-8") as file:
            old = json.load(file)
    except FileNotFoundError:
        old = {}
    title = args.title or old.get("title") or args.expected
    expected = old.get("cases", {})

    print_table(f"Autobahn TestSuite, {title}: {len(results)} cases", summary(results, expected))

    if args.update:
        write_expected(args.expected, title, results, old)
        print(f"\nwrote {args.expected} ({len(results)} cases)")
        return 0

    problems, better = compare(results, expected)
    # Cases whose (unchanged) result the expectations explain, grouped by explanation.
    noted: dict[str, list[str]] = {}
    for case_id, want in sorted(expected.items(), key=lambda kv: case_key(kv[0])):
        got = results.get(case_id)
        if "note" in want and got is not None and \
                (got["behavior"], got["behaviorClose"]) == (want["behavior"], want["behaviorClose"]):
            key = f"{want['behavior']} / {want['behaviorClose']}: {want['note']}"
            noted.setdefault(key, []).append(case_id)
    if noted:
        print("\nknown and explained:")
        for note, case_ids in noted.items():
            print(f"  {', '.join(case_ids)}: {note}")
    if better:
        print("\nbetter than expected (update with --update):")
        for line in better:
            print(f"  {line}")
    if problems:
        print(f"\nFAILED: {len(problems)} case(s) failed or regressed against {args.expected}:")
        for line in problems:
            print(f"  {line}")
        return 1
    print(f"\n{title}: as expected ({len(results)} cases)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
