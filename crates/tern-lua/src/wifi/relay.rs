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
//! A broker that cannot be reached shows, through the relay, as a connection closed before
//! CONNACK (-4) rather than refused (-5) or not resolved (-3).

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
