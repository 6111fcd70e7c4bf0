//! A TCP proxy for fault-injection tests: it forwards 127.0.0.1 connections to an upstream
//! address and, on command, (a) cuts every connection with RST, (b) closes them with FIN,
//! (c) blackholes them (both directions silently dropped: no FIN, no data), or (d) refuses
//! new connections for a while (the port is really closed: connects get ECONNREFUSED).

#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// How to end the current connections.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cut {
    /// TCP reset: the client sees "connection reset".
    Rst,
    /// An orderly TCP close, without a WebSocket close frame.
    Fin,
}

/// What each live connection is told to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Order {
    Forward,
    Blackhole,
    Cut(Cut),
}

pub struct FaultProxy {
    addr: SocketAddr,
    inner: Arc<Inner>,
}

struct Inner {
    /// Where new connections go (changeable, e.g. to a restarted server on another port).
    upstream: Mutex<SocketAddr>,
    /// One channel per generation of connections: cutting or blackholing affects the
    /// connections alive at that moment, never the ones opened afterwards.
    current: Mutex<watch::Sender<Order>>,
    refusing: AtomicBool,
    accepted: AtomicUsize,
}

impl FaultProxy {
    /// Starts a proxy on 127.0.0.1 (any port) in front of `upstream`.
    pub async fn start(upstream: SocketAddr) -> std::io::Result<FaultProxy> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let inner = Arc::new(Inner {
            upstream: Mutex::new(upstream),
            current: Mutex::new(watch::channel(Order::Forward).0),
            refusing: AtomicBool::new(false),
            accepted: AtomicUsize::new(0),
        });
        tokio::spawn(accept_loop(listener, inner.clone()));
        Ok(FaultProxy { addr, inner })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> usize {
        self.inner.accepted.load(Ordering::SeqCst)
    }

    /// Sends new connections to `upstream` from now on.
    pub fn set_upstream(&self, upstream: SocketAddr) {
        *self.inner.upstream.lock().unwrap() = upstream;
    }

    /// Ends every current connection.
    pub fn cut(&self, how: Cut) {
        self.inner.order_current(Order::Cut(how));
    }

    /// Silently drops everything on every current connection, both ways, from now on.
    pub fn blackhole(&self) {
        self.inner.order_current(Order::Blackhole);
    }

    /// Closes the port for `duration` (current connections are cut with RST), then listens
    /// again on the same port.
    pub fn refuse_for(&self, duration: Duration) {
        self.inner.refusing.store(true, Ordering::SeqCst);
        self.cut(Cut::Rst);
        let inner = self.inner.clone();
        tokio::spawn(async move {
            tokio::time::sleep(duration).await;
            inner.refusing.store(false, Ordering::SeqCst);
        });
    }
}

impl Inner {
    fn order_current(&self, order: Order) {
        let mut current = self.current.lock().unwrap();
        let _ = current.send(order);
        // New connections get a fresh channel, unaffected by this order.
        *current = watch::channel(Order::Forward).0;
    }
}

async fn accept_loop(listener: TcpListener, inner: Arc<Inner>) {
    let addr = listener.local_addr().unwrap();
    let mut listener = Some(listener);
    loop {
        if inner.refusing.load(Ordering::SeqCst) {
            // Really closed: the kernel answers SYNs with RST (ECONNREFUSED).
            listener = None;
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        }
        let active = match &listener {
            Some(active) => active,
            None => match TcpListener::bind(addr).await {
                Ok(rebound) => listener.insert(rebound),
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
        };
        // Wake up now and then to notice a refuse order.
        let accepted = tokio::time::timeout(Duration::from_millis(10), active.accept()).await;
        let Ok(Ok((client, _))) = accepted else {
            continue;
        };
        if inner.refusing.load(Ordering::SeqCst) {
            let _ = client.set_zero_linger();
            continue;
        }
        inner.accepted.fetch_add(1, Ordering::SeqCst);
        let orders = inner.current.lock().unwrap().subscribe();
        let upstream = *inner.upstream.lock().unwrap();
        tokio::spawn(relay(client, upstream, orders));
    }
}

/// Forwards one connection both ways until it ends or an order ends it.
async fn relay(client: TcpStream, upstream: SocketAddr, orders: watch::Receiver<Order>) {
    let Ok(server) = TcpStream::connect(upstream).await else {
        let _ = client.set_zero_linger();
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let mut blackholed = false;
    // `None` once this connection's generation is over: no more orders can come.
    let mut orders = Some(orders);
    let (mut up, mut down) = (vec![0u8; 64 << 10], vec![0u8; 64 << 10]);
    loop {
        tokio::select! {
            changed = async { orders.as_mut().expect("guarded").changed().await }, if orders.is_some() => {
                if changed.is_err() {
                    orders = None;
                    continue;
                }
                let order = *orders.as_mut().expect("guarded").borrow_and_update();
                match order {
                    Order::Forward => {}
                    Order::Blackhole => blackholed = true,
                    Order::Cut(Cut::Rst) => {
                        let client = client_read.reunite(client_write).expect("same stream");
                        let _ = client.set_zero_linger();
                        return; // dropped with linger 0: RST
                    }
                    Order::Cut(Cut::Fin) => {
                        let _ = client_write.shutdown().await;
                        return;
                    }
                }
            }
            read = client_read.read(&mut up) => match read {
                Ok(0) | Err(_) => return,
                Ok(n) if !blackholed => if server_write.write_all(&up[..n]).await.is_err() { return },
                Ok(_) => {}
            },
            read = server_read.read(&mut down) => match read {
                Ok(0) | Err(_) => return,
                Ok(n) if !blackholed => if client_write.write_all(&down[..n]).await.is_err() { return },
                Ok(_) => {}
            },
        }
    }
}
