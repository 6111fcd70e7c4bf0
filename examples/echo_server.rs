//! The test echo server as a program, for the browser tests (which cannot start one
//! themselves): `cargo run --example echo_server [port]` prints `LISTENING <port>` when ready.
//! The contract it follows is in tests/peers/README.md; `/proxy` controls a fault-injection
//! proxy (see tests/support/echo_server.rs). Native only.

#[cfg(not(target_arch = "wasm32"))]
#[path = "../tests/support/echo_server.rs"]
mod echo_server;
#[cfg(not(target_arch = "wasm32"))]
#[path = "../tests/support/fault_proxy.rs"]
mod fault_proxy;

#[cfg(not(target_arch = "wasm32"))]
#[tokio::main]
async fn main() -> std::io::Result<()> {
    let port = match std::env::args().nth(1) {
        Some(port) => port
            .parse()
            .map_err(|_| std::io::Error::other(format!("not a port number: {port}")))?,
        None => 0,
    };
    let addr = echo_server::spawn(port).await?;
    println!("LISTENING {}", addr.port());
    tokio::signal::ctrl_c().await
}

#[cfg(target_arch = "wasm32")]
fn main() {}
