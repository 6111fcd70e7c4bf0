//! The listening socket (with a real backlog) and the process's open-file limit.

use std::io;
use std::net::SocketAddr;

use tokio::net::{TcpListener, TcpSocket};

/// Binds `addr` and listens with a queue of `backlog` pending connections.
///
/// `TcpListener::bind` would use a backlog of 128, which bursts of connects overflow (the
/// extra clients then wait a second for a SYN retransmit). The kernel may cap `backlog`
/// (`net.core.somaxconn` on Linux).
pub(crate) fn bind(addr: SocketAddr, backlog: u32) -> io::Result<TcpListener> {
    let socket = match addr {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    // Lets a restarted server bind while old connections sit in TIME_WAIT. (On Windows this
    // option would let two servers share a port, so it stays off there.)
    #[cfg(not(windows))]
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(backlog)
}

/// Raises this process's soft limit on open files to its hard limit, so that thousands of
/// connections do not fail with "too many open files" (the soft limit is often 1024).
/// Returns the soft limit now in force, or `None` where the platform has no such limit
/// (non-Unix).
///
/// This changes the whole process, so [`Server`](super::Server) does not call it itself: the
/// `unisock` binary does, and so may any program that embeds the server.
///
/// # Errors
///
/// The OS error of `getrlimit` / `setrlimit`.
pub fn raise_fd_limit() -> io::Result<Option<u64>> {
    #[cfg(unix)]
    {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: `limit` is a valid, writable `rlimit` for the duration of the call.
        if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
            return Err(io::Error::last_os_error());
        }
        let target = limit.rlim_max;
        // macOS refuses soft limits above OPEN_MAX even when the hard limit is "unlimited".
        #[cfg(target_os = "macos")]
        let target = target.min(libc::OPEN_MAX as libc::rlim_t);
        if limit.rlim_cur < target {
            limit.rlim_cur = target;
            // SAFETY: `limit` is a valid `rlimit`, read only by the call.
            if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) } != 0 {
                return Err(io::Error::last_os_error());
            }
        }
        #[allow(clippy::useless_conversion)] // rlim_t is u64 on most targets, not all.
        Ok(Some(u64::from(limit.rlim_cur)))
    }
    #[cfg(not(unix))]
    {
        Ok(None)
    }
}
