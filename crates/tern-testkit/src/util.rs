//! Small helpers: bounded waits and loopback ports.

use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

/// The loopback address every testkit server binds to.
pub const LOCALHOST: Ipv4Addr = Ipv4Addr::LOCALHOST;

/// How long the testkit's own waits last unless a caller picks another bound: long enough for a
/// loaded CI machine, short enough that a hung test fails inside a minute.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(10);

/// Awaits `fut` for at most `dur`; panics naming `what` (the thing being waited for) on timeout.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use std::time::Duration;
/// let n = tern_testkit::timeout(Duration::from_secs(1), async { 42 }, "the answer").await;
/// assert_eq!(n, 42);
/// # }
/// ```
pub async fn timeout<F: Future>(dur: Duration, fut: F, what: &str) -> F::Output {
    match tokio::time::timeout(dur, fut).await {
        Ok(v) => v,
        Err(_) => panic!("timed out after {dur:?} waiting for {what}"),
    }
}

/// A TCP port on 127.0.0.1 that was free a moment ago: bound to port 0, noted, released.
///
/// Another process may take it before you bind it; callers that start servers on it should
/// retry on "address in use" (the [`Mosquitto`](crate::Mosquitto) launcher does).
pub fn free_port() -> u16 {
    let listener = TcpListener::bind((LOCALHOST, 0))
        .unwrap_or_else(|e| panic!("cannot bind 127.0.0.1:0 to find a free port: {e}"));
    listener
        .local_addr()
        .unwrap_or_else(|e| panic!("local_addr of a bound listener failed: {e}"))
        .port()
}

/// A port on 127.0.0.1 where nothing listens, so connecting to it is refused.
///
/// Same as [`free_port`]; the separate name says what the test means.
pub fn closed_port() -> u16 {
    free_port()
}

/// Polls `addr` until a TCP connection is accepted, for at most `within`.
///
/// Returns `false` on timeout. Polling is the one place a short sleep is fine: a port becoming
/// ready has no event to await from outside the process.
pub fn wait_until_accepting(addr: SocketAddr, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closed_port_refuses_connections() {
        let port = closed_port();
        let err = TcpStream::connect((LOCALHOST, port)).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused);
    }

    #[tokio::test]
    #[should_panic(expected = "timed out after 10ms waiting for nothing at all")]
    async fn timeout_panics_with_the_message() {
        timeout(
            Duration::from_millis(10),
            std::future::pending::<()>(),
            "nothing at all",
        )
        .await;
    }
}
