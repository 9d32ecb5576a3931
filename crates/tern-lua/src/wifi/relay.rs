//! The simulated access point's side of MQTT connections: under `--sim`, each broker address
//! a script connects to is reached through a loopback relay, so that losing the access point
//! can cut the connections the way a lost link does, and refuse new ones until it returns.
//!
//! - Link up: the relay listens on its own loopback port and pipes each connection to the
//!   broker.
//! - Link down: every piped connection is cut (the device's side is reset, the broker's side
//!   closed without DISCONNECT, so the broker publishes the will at once instead of after
//!   1.5 × keepalive), and the relay stops listening: a connection attempt is refused, which
//!   the `mqtt` module reports as -5 (`mqtt.CONN_FAIL_SERVER_NOT_FOUND`), as on the device.
//!   When the link returns the relay listens again on the same port.
//!
//! A broker that cannot be reached, or whose name does not resolve, shows through the relay
//! as a connection reset (-5), not resolved being -3 on the device. Failure messages name the
//! broker, not the relay ([`Net::describe`]).

use std::cell::RefCell;
use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// How often re-listening on the relay's port is tried when the port is busy.
const REBIND_ATTEMPTS: u32 = 50;
const REBIND_PAUSE: Duration = Duration::from_millis(20);

/// The relays of one runtime and the link they follow.
#[derive(Debug)]
pub(crate) struct Net {
    link: watch::Sender<bool>,
    /// (host, port) → the relay's loopback port.
    relays: RefCell<HashMap<(String, u16), u16>>,
}

impl Net {
    /// A network whose link is `up`.
    pub(crate) fn new(up: bool) -> Self {
        Self {
            link: watch::Sender::new(up),
            relays: RefCell::new(HashMap::new()),
        }
    }

    /// `text` (a connection error's message) with each relay's address replaced by the
    /// broker's it stands for.
    pub(crate) fn describe(&self, text: &str) -> String {
        let mut text = text.to_owned();
        for ((host, port), relay) in self.relays.borrow().iter() {
            text = text.replace(&format!("127.0.0.1:{relay}"), &format!("{host}:{port}"));
        }
        text
    }

    /// Brings the link up or down.
    pub(crate) fn set_link(&self, up: bool) {
        self.link.send_replace(up);
    }

    /// The loopback port relaying to `host:port`, started on first use.
    pub(crate) fn relay_port(&self, host: &str, port: u16) -> std::io::Result<u16> {
        let key = (host.to_owned(), port);
        if let Some(p) = self.relays.borrow().get(&key) {
            return Ok(*p);
        }
        let std_listener = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
        std_listener.set_nonblocking(true)?;
        let local = std_listener.local_addr()?;
        let listener = TcpListener::from_std(std_listener)?;
        tokio::spawn(serve(
            listener,
            local,
            host.to_owned(),
            port,
            self.link.subscribe(),
        ));
        self.relays.borrow_mut().insert(key, local.port());
        Ok(local.port())
    }
}

async fn serve(
    first: TcpListener,
    local: SocketAddr,
    host: String,
    port: u16,
    mut link: watch::Receiver<bool>,
) {
    let mut listener = Some(first);
    // Ends when the runtime (the link's sender) goes away.
    loop {
        let up = *link.borrow_and_update();
        if !up {
            listener = None; // refuse while down
            if link.changed().await.is_err() {
                return;
            }
            continue;
        }
        if listener.is_none() {
            listener = rebind(local).await;
        }
        let Some(l) = &listener else {
            eprintln!("tern: the simulated access point cannot listen on {local} again");
            return;
        };
        tokio::select! {
            accepted = l.accept() => {
                if let Ok((stream, _)) = accepted {
                    tokio::spawn(pipe(stream, host.clone(), port, link.clone()));
                }
            }
            changed = link.changed() => {
                if changed.is_err() {
                    return;
                }
            }
        }
    }
}

async fn rebind(local: SocketAddr) -> Option<TcpListener> {
    for _ in 0..REBIND_ATTEMPTS {
        if let Ok(l) = TcpListener::bind(local).await {
            return Some(l);
        }
        tokio::time::sleep(REBIND_PAUSE).await;
    }
    None
}

/// Resets `stream` instead of closing it gracefully.
fn reset(stream: &TcpStream) {
    let _ = socket2::SockRef::from(stream).set_linger(Some(Duration::ZERO));
}

async fn pipe(mut device: TcpStream, host: String, port: u16, mut link: watch::Receiver<bool>) {
    let _ = device.set_nodelay(true);
    let upstream = tokio::select! {
        r = TcpStream::connect((host.as_str(), port)) => r.ok(),
        _ = link.wait_for(|up| !*up) => None,
    };
    let Some(mut broker) = upstream else {
        reset(&device);
        return;
    };
    let _ = broker.set_nodelay(true);
    tokio::select! {
        _ = tokio::io::copy_bidirectional(&mut device, &mut broker) => {}
        _ = link.wait_for(|up| !*up) => reset(&device),
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    /// A loopback server echoing every connection; returns its port.
    async fn echo_server() -> u16 {
        let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
        let port = l.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = l.accept().await {
                tokio::spawn(async move {
                    let (mut r, mut w) = s.split();
                    let _ = tokio::io::copy(&mut r, &mut w).await;
                });
            }
        });
        port
    }

    async fn round_trip(port: u16) -> std::io::Result<TcpStream> {
        let mut s = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).await?;
        s.write_all(b"ping").await?;
        let mut buf = [0; 4];
        s.read_exact(&mut buf).await?;
        assert_eq!(&buf, b"ping");
        Ok(s)
    }

    /// Bounded: every wait below is a socket operation the relay answers at once.
    async fn within<T>(f: impl Future<Output = T>) -> T {
        tokio::time::timeout(Duration::from_secs(10), f)
            .await
            .expect("the relay did not answer within 10 s")
    }

    #[tokio::test]
    async fn a_drop_cuts_connections_and_refuses_new_ones_until_the_link_returns() {
        let target = echo_server().await;
        let net = Net::new(true);
        let port = net.relay_port("127.0.0.1", target).unwrap();
        assert_eq!(
            net.relay_port("127.0.0.1", target).unwrap(),
            port,
            "one relay per target"
        );
        let mut live = within(round_trip(port)).await.expect("relayed while up");

        net.set_link(false);
        let mut buf = [0; 1];
        let cut = within(live.read(&mut buf)).await;
        assert!(
            matches!(cut, Ok(0) | Err(_)),
            "the live connection is cut, got {cut:?}"
        );
        // Refused while down (the listener is closed once the relay has seen the change).
        let mut refused = false;
        for _ in 0..100 {
            match TcpStream::connect((Ipv4Addr::LOCALHOST, port)).await {
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                    refused = true;
                    break;
                }
                _ => tokio::time::sleep(Duration::from_millis(10)).await,
            }
        }
        assert!(refused, "connections are refused while the link is down");

        net.set_link(true);
        let mut back = false;
        for _ in 0..100 {
            if within(round_trip(port)).await.is_ok() {
                back = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(back, "relayed again on the same port once the link is back");
    }
}
