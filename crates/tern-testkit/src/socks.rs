//! A small SOCKS5 proxy (RFC 1928, CONNECT only, optional user name and password per RFC
//! 1929) for tests of clients that connect through one. It binds 127.0.0.1, connects only to
//! loopback targets (names are resolved here, as a `socks5h` proxy does, and must resolve to
//! loopback), and records each request so tests can tell whether the client sent a name or
//! an address.

use std::io::{self, Read, Write};
use std::net::{
    IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs,
};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use crate::util::LOCALHOST;

/// What one client asked the proxy for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SocksRequest {
    /// A host name (`socks5h`: the proxy resolves it) and port.
    Name(String, u16),
    /// An address the client resolved itself (`socks5`).
    Addr(SocketAddr),
}

/// A running SOCKS5 proxy on 127.0.0.1; stops accepting when dropped.
#[derive(Debug)]
pub struct SocksProxy {
    port: u16,
    requests: Arc<Mutex<Vec<SocksRequest>>>,
    auth_failures: Arc<Mutex<u32>>,
    stop: Arc<AtomicBool>,
}

impl SocksProxy {
    /// Starts a proxy that needs no authentication.
    pub fn start() -> Self {
        Self::spawn(None)
    }

    /// Starts a proxy that requires this user name and password (RFC 1929).
    pub fn with_credentials(user: &str, password: &str) -> Self {
        Self::spawn(Some((user.to_owned(), password.to_owned())))
    }

    fn spawn(auth: Option<(String, String)>) -> Self {
        let listener = TcpListener::bind((LOCALHOST, 0))
            .unwrap_or_else(|e| panic!("SOCKS proxy: cannot bind 127.0.0.1:0: {e}"));
        let port = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("SOCKS proxy: local_addr: {e}"))
            .port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let auth_failures = Arc::new(Mutex::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (reqs, fails, stopping) = (requests.clone(), auth_failures.clone(), stop.clone());
        thread::spawn(move || {
            for conn in listener.incoming() {
                if stopping.load(Ordering::Relaxed) {
                    return;
                }
                let Ok(conn) = conn else { continue };
                let (reqs, fails, auth) = (reqs.clone(), fails.clone(), auth.clone());
                thread::spawn(move || {
                    // A failed exchange just closes this client's connection.
                    let _ = serve(conn, auth.as_ref(), &reqs, &fails);
                });
            }
        });
        Self {
            port,
            requests,
            auth_failures,
            stop,
        }
    }

    /// The proxy's port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `socks5h://127.0.0.1:<port>` (with `user:password@` when given).
    pub fn url(&self, scheme: &str, credentials: Option<(&str, &str)>) -> String {
        match credentials {
            Some((u, p)) => format!("{scheme}://{u}:{p}@127.0.0.1:{}", self.port),
            None => format!("{scheme}://127.0.0.1:{}", self.port),
        }
    }

    /// Every CONNECT request so far, in order.
    pub fn requests(&self) -> Vec<SocksRequest> {
        self.requests.lock().map(|r| r.clone()).unwrap_or_default()
    }

    /// How many clients gave a wrong user name or password.
    pub fn auth_failures(&self) -> u32 {
        self.auth_failures.lock().map(|n| *n).unwrap_or(0)
    }
}

impl Drop for SocksProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect((LOCALHOST, self.port));
    }
}

fn serve(
    mut c: TcpStream,
    auth: Option<&(String, String)>,
    requests: &Mutex<Vec<SocksRequest>>,
    auth_failures: &Mutex<u32>,
) -> io::Result<()> {
    c.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut head = [0u8; 2];
    c.read_exact(&mut head)?;
    let mut methods = vec![0u8; usize::from(head[1])];
    c.read_exact(&mut methods)?;
    let wanted = if auth.is_some() { 2 } else { 0 };
    if head[0] != 5 || !methods.contains(&wanted) {
        c.write_all(&[5, 0xff])?;
        return Ok(());
    }
    c.write_all(&[5, wanted])?;
    if let Some((user, pass)) = auth {
        let mut ver_len = [0u8; 2];
        c.read_exact(&mut ver_len)?;
        let mut u = vec![0u8; usize::from(ver_len[1])];
        c.read_exact(&mut u)?;
        let mut plen = [0u8; 1];
        c.read_exact(&mut plen)?;
        let mut p = vec![0u8; usize::from(plen[0])];
        c.read_exact(&mut p)?;
        if u != user.as_bytes() || p != pass.as_bytes() {
            if let Ok(mut n) = auth_failures.lock() {
                *n += 1;
            }
            c.write_all(&[1, 1])?;
            return Ok(());
        }
        c.write_all(&[1, 0])?;
    }
    let mut req = [0u8; 4];
    c.read_exact(&mut req)?;
    let request = match req[3] {
        1 => {
            let mut a = [0u8; 6];
            c.read_exact(&mut a)?;
            let ip = Ipv4Addr::new(a[0], a[1], a[2], a[3]);
            SocksRequest::Addr(SocketAddr::new(
                IpAddr::V4(ip),
                u16::from_be_bytes([a[4], a[5]]),
            ))
        }
        4 => {
            let mut a = [0u8; 18];
            c.read_exact(&mut a)?;
            let mut octets = [0u8; 16];
            octets.copy_from_slice(&a[..16]);
            let ip = Ipv6Addr::from(octets);
            SocksRequest::Addr(SocketAddr::new(
                IpAddr::V6(ip),
                u16::from_be_bytes([a[16], a[17]]),
            ))
        }
        3 => {
            let mut len = [0u8; 1];
            c.read_exact(&mut len)?;
            let mut name = vec![0u8; usize::from(len[0]) + 2];
            c.read_exact(&mut name)?;
            let port = u16::from_be_bytes([name[name.len() - 2], name[name.len() - 1]]);
            name.truncate(name.len() - 2);
            SocksRequest::Name(String::from_utf8_lossy(&name).into_owned(), port)
        }
        _ => {
            c.write_all(&[5, 8, 0, 1, 0, 0, 0, 0, 0, 0])?;
            return Ok(());
        }
    };
    if let Ok(mut r) = requests.lock() {
        r.push(request.clone());
    }
    let target = match &request {
        SocksRequest::Addr(a) => Some(*a),
        SocksRequest::Name(host, port) => (host.as_str(), *port)
            .to_socket_addrs()
            .ok()
            .and_then(|mut addrs| addrs.find(|a| a.ip().is_loopback())),
    };
    // Loopback only: a test proxy must never reach beyond this machine.
    let Some(target) = target.filter(|a| a.ip().is_loopback()) else {
        c.write_all(&[5, 4, 0, 1, 0, 0, 0, 0, 0, 0])?;
        return Ok(());
    };
    let Ok(upstream) = TcpStream::connect_timeout(&target, Duration::from_secs(5)) else {
        c.write_all(&[5, 5, 0, 1, 0, 0, 0, 0, 0, 0])?;
        return Ok(());
    };
    c.write_all(&[5, 0, 0, 1, 127, 0, 0, 1, 0, 0])?;
    c.set_read_timeout(None)?;
    pump(c, upstream)
}

/// Copies both ways until either side closes.
fn pump(client: TcpStream, upstream: TcpStream) -> io::Result<()> {
    let (mut c_read, mut u_write) = (client.try_clone()?, upstream.try_clone()?);
    let forward = thread::spawn(move || {
        let _ = io::copy(&mut c_read, &mut u_write);
        let _ = u_write.shutdown(Shutdown::Write);
    });
    let (mut u_read, mut c_write) = (upstream, client);
    let _ = io::copy(&mut u_read, &mut c_write);
    let _ = c_write.shutdown(Shutdown::Write);
    let _ = forward.join();
    Ok(())
}
