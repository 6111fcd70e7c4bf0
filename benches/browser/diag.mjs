// What the browser diagnostics (count.mjs, profile.mjs) share: the repository root, content
// types, child processes killed and the temporary Chromium profile removed on exit, a time
// limit, waiting for a line of a child's output, a local `unisock serve` echo server and the
// flags of a quiet headless Chromium. Not a benchmark and not used by run.mjs.
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
export const TYPES = { ".html": "text/html", ".js": "text/javascript", ".wasm": "application/wasm" };

/** Chromium without background work of its own: what the measurements see is the page's. */
export const CHROMIUM_FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
  "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
  "--disable-quic", "--disable-default-apps", "--disable-extensions"];

/**
 * Children pushed onto `children` are killed (process group) and `userDataDir` removed when
 * this process exits; it exits with 1 after `limitSeconds` without results.
 */
export function lifecycle(name, limitSeconds = 120) {
  const children = [];
  const userDataDir = mkdtempSync(join(tmpdir(), `unisock-${name}-chromium-`));
  process.on("exit", () => {
    for (const child of children) {
      try {
        process.kill(-child.pid, "SIGKILL");
      } catch {
        // gone
      }
    }
    rmSync(userDataDir, { recursive: true, force: true });
  });
  setTimeout(() => {
    console.error(`${name}: no results within ${limitSeconds} s`);
    process.exit(1);
  }, limitSeconds * 1000).unref();
  return { children, userDataDir };
}

/** The first match of `pattern` in what `child` prints (stdout and stderr). */
export function lineOf(child, pattern) {
  return new Promise((resolvePromise, reject) => {
    let text = "";
    const onData = (chunk) => {
      text += chunk;
      const match = text.match(pattern);
      if (match) resolvePromise(match);
    };
    child.stdout?.on("data", onData);
    child.stderr?.on("data", onData);
    child.on("exit", () => reject(new Error(`${child.spawnfile} exited: ${text.slice(-2000)}`)));
  });
}

/** `unisock serve` on 127.0.0.1 (UNISOCK_BIN, default the release build); returns its port. */
export async function startEcho(children) {
  const server = spawn(process.env.UNISOCK_BIN || join(ROOT, "target/release/unisock"),
    ["serve", "--port", "0", "--bind", "127.0.0.1", "--root", "benches/browser", "--pkg", "pkg"],
    { cwd: ROOT, detached: true, stdio: ["ignore", "pipe", "ignore"], env: { ...process.env, RUST_LOG: "warn" } });
  children.push(server);
  const [, port] = await lineOf(server, /127\.0\.0\.1:(\d+)/);
  return port;
}
