//! Autobahn TestSuite client conformance of the browser backend: drives unisock's public API,
//! in headless Chromium through wasm-bindgen-test, through the non-compression cases served by
//! `kosoku -m fuzzingserver`, echoing every message as the suite expects.
//!
//! scripts/autobahn.sh starts the fuzzing server, passes its URL at build time in
//! `UNISOCK_AUTOBAHN_URL` (a page has no environment), runs this test with
//! `cargo test --target wasm32-unknown-unknown --test browser_autobahn`, and compares the
//! fuzzing server's report with tests/autobahn/expected-browser.json. The verdicts are in that
//! report, not here: this test only checks that every case was driven and the report written.
//!
//! Built without `UNISOCK_AUTOBAHN_URL` (as by scripts/test.sh, which runs every wasm test),
//! the test passes at once and prints a note saying it was skipped.
//!
//! The browser's own `WebSocket` decides much of what happens here: it answers pings, checks
//! UTF-8, reassembles fragments and fails the connection on protocol errors by itself (with
//! its own close codes), before unisock sees anything.

#![cfg(target_arch = "wasm32")]

use futures::{SinkExt, StreamExt};
use unisock::{Event, Message, Options};
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

#[path = "support/browser.rs"]
mod support;

/// The fuzzing server's URL, e.g. `ws://127.0.0.1:9001`, set at build time.
const FUZZING_SERVER: Option<&str> = option_env!("UNISOCK_AUTOBAHN_URL");

/// Agent name in the report (tests/autobahn/expected-browser.json is for this agent).
const AGENT: &str = "unisock-browser";

/// Upper bound for one case (the largest move 16 MiB each way); a case that takes longer is
/// abandoned, which its report then shows, and the run goes on.
const CASE_LIMIT_MS: u32 = 60_000;

/// Prints a line in the test runner's output even when the test passes: wasm-bindgen-test
/// shows console output only for failing tests, but copies the page's `<pre id="output">`
/// (where it writes its own `test … ok` lines) to the terminal.
fn print_line(line: &str) {
    use js_sys::{Function, Reflect};
    use wasm_bindgen::{JsCast, JsValue};

    wasm_bindgen_test::console_log!("{line}");
    let printed = (|| -> Result<(), JsValue> {
        let document = Reflect::get(&js_sys::global(), &"document".into())?;
        let find: Function = Reflect::get(&document, &"getElementById".into())?.dyn_into()?;
        let output = find.call1(&document, &"output".into())?;
        if output.is_null() || output.is_undefined() {
            return Ok(());
        }
        let text = Reflect::get(&output, &"textContent".into())?
            .as_string()
            .unwrap_or_default();
        Reflect::set(
            &output,
            &"textContent".into(),
            &format!("{text}{line}\n").into(),
        )?;
        Ok(())
    })();
    let _ = printed;
}

fn options() -> Options {
    // The suite closes connections on purpose: no reconnects; room for its largest messages.
    Options {
        max_message_size: 64 << 20,
        max_frame_size: 64 << 20,
        ..Options::default().without_reconnect().heartbeat(None)
    }
}

/// Opens `url` and returns the text messages it sends before the server closes.
async fn fetch_text(url: &str) -> Vec<String> {
    let (_tx, mut rx) = support::within("a control connection", unisock::connect(url, options()))
        .await
        .unwrap_or_else(|error| panic!("connect to {url}: {error}"));
    let mut texts = Vec::new();
    while let Some(event) = support::within("the control connection", rx.next()).await {
        match event {
            Event::Message(Message::Text(text)) => texts.push(String::from(text)),
            Event::Close(_) => break,
            _ => {}
        }
    }
    texts
}

/// Runs one case: echoes every message until the connection ends. Returns a word for the
/// log: how the case ended on our side.
async fn run_case(url: &str) -> String {
    let (mut tx, mut rx) = match unisock::connect(url, options()).await {
        Ok(halves) => halves,
        Err(error) => return format!("connect failed: {error}"),
    };
    let mut echoed = 0usize;
    while let Some(event) = rx.next().await {
        match event {
            Event::Message(message) => {
                // The peer may close while we echo: that is part of some cases.
                if tx.send(message).await.is_err() {
                    break;
                }
                echoed += 1;
            }
            Event::Close(close) => return format!("{echoed} echoed, closed {}", close.code),
            _ => {}
        }
    }
    format!("{echoed} echoed, stream ended")
}

#[wasm_bindgen_test]
async fn autobahn_client_cases_in_the_browser() {
    let Some(base) = FUZZING_SERVER else {
        print_line(
            "note: browser_autobahn skipped: UNISOCK_AUTOBAHN_URL was not set at build time \
             (scripts/autobahn.sh browser runs it against kosoku's fuzzing server)",
        );
        return;
    };

    let count: u32 = fetch_text(&format!("{base}/getCaseCount"))
        .await
        .first()
        .and_then(|text| text.trim().parse().ok())
        .expect("getCaseCount answers a number");
    assert!(count > 0, "the fuzzing server has no cases");
    print_line(&format!("autobahn: {count} cases against {base}"));

    let mut abandoned = Vec::new();
    for case in 1..=count {
        let url = format!("{base}/runCase?case={case}&agent={AGENT}");
        let limit = gloo_timers::future::TimeoutFuture::new(CASE_LIMIT_MS);
        match futures::future::select(Box::pin(run_case(&url)), limit).await {
            futures::future::Either::Left((outcome, _)) => {
                wasm_bindgen_test::console_log!("case {case}: {outcome}");
            }
            futures::future::Either::Right(_) => abandoned.push(case),
        };
    }
    if !abandoned.is_empty() {
        print_line(&format!(
            "autobahn: cases abandoned after {CASE_LIMIT_MS} ms: {abandoned:?}"
        ));
    }

    fetch_text(&format!("{base}/updateReports?agent={AGENT}")).await;
    print_line(&format!("autobahn: {count} cases run, reports updated"));
}
