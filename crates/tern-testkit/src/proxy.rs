//! A TCP fault proxy: forwards its own 127.0.0.1 port to a target and injects faults on command.
//!
//! Faults apply to live connections at once and to later ones; the proxy keeps accepting after
//! a cut, so a reconnecting client comes back through it.

use std::net::SocketAddr;
use std::ops::RangeInclusive;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::util::{DEFAULT_WAIT, LOCALHOST, timeout};

/// Which way bytes flow through the proxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// From the client to the target (the broker).
    ToServer,
    /// From the target back to the client.
    ToClient,
}

/// Faults that apply to every chunk while set.
#[derive(Debug, Clone, Default)]
struct Settings {
    delay: Duration,
    stalled: bool,
    split_writes: bool,
    black_hole: bool,
}

/// A one-shot "cut after N more bytes" rule.
#[derive(Debug, Clone, Copy)]
struct CutRule {
    /// `None`: bytes in both directions count.
    dir: Option<Direction>,
    remaining: u64,
}

#[derive(Debug, Clone, Copy, Default)]
struct Traffic {
    to_server: u64,
    to_client: u64,
    swallowed: u64,
}

#[derive(Debug, Clone, Copy, Default)]
struct Counts {
    accepted: usize,
    active: usize,
}

#[derive(Debug)]
struct Shared {
    target: SocketAddr,
    settings: watch::Sender<Settings>,
    cut_rule: Mutex<Option<CutRule>>,
    /// Bumped by `cut_now`; connections end when it moves past the value they started with.
    cut_epoch: watch::Sender<u64>,
    counts: watch::Sender<Counts>,
    /// Counted before each write, so a count is never behind what a peer has read.
    traffic: watch::Sender<Traffic>,
}

impl Shared {
    fn lock_rule(&self) -> std::sync::MutexGuard<'_, Option<CutRule>> {
        // A poisoned lock only means a pump panicked; the rule itself is still consistent.
        self.cut_rule.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A TCP proxy on 127.0.0.1:0 in front of `target`, with faults controlled from the test.
///
/// Dropping it stops the proxy and closes every proxied connection.
///
/// ```no_run
/// # async fn demo(broker_port: u16) {
/// use tern_testkit::FaultProxy;
/// let proxy = FaultProxy::start_to_port(broker_port).await;
/// // connect the client to proxy.port(); later:
/// proxy.cut_now();          // the client sees the connection drop
/// proxy.wait_for_connections(2).await; // and comes back through the proxy
/// # }
/// ```
#[derive(Debug)]
pub struct FaultProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    rng: Mutex<fastrand::Rng>,
    seed: u64,
    task: JoinHandle<()>,
}

impl FaultProxy {
    /// Starts a proxy to `target`. Random choices use the seed in `TERN_TEST_SEED` if set,
    /// else a random one; [`seed`](Self::seed) tells which.
    pub async fn start(target: SocketAddr) -> Self {
        let seed = std::env::var("TERN_TEST_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| fastrand::u64(..));
        Self::with_seed(target, seed).await
    }

    /// Starts a proxy to 127.0.0.1:`port`.
    pub async fn start_to_port(port: u16) -> Self {
        Self::start(SocketAddr::from((LOCALHOST, port))).await
    }

    /// Starts a proxy to `target` whose random choices follow `seed`.
    pub async fn with_seed(target: SocketAddr, seed: u64) -> Self {
        let listener = TcpListener::bind((LOCALHOST, 0))
            .await
            .unwrap_or_else(|e| panic!("fault proxy cannot bind 127.0.0.1:0: {e}"));
        let addr = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("local_addr of a bound listener failed: {e}"));
        let shared = Arc::new(Shared {
            target,
            settings: watch::channel(Settings::default()).0,
            cut_rule: Mutex::new(None),
            cut_epoch: watch::channel(0).0,
            counts: watch::channel(Counts::default()).0,
            traffic: watch::channel(Traffic::default()).0,
        });
        let task = tokio::spawn(accept_loop(listener, Arc::clone(&shared)));
        Self {
            addr,
            shared,
            rng: Mutex::new(fastrand::Rng::with_seed(seed)),
            seed,
            task,
        }
    }

    /// The proxy's address (point the client here).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The proxy's port.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Where it forwards to.
    pub fn target(&self) -> SocketAddr {
        self.shared.target
    }

    /// The seed of [`cut_after_random`](Self::cut_after_random); rerun with
    /// `TERN_TEST_SEED=<seed>` to repeat a failure.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// Cuts the connection (closing both sides) once `n` more bytes have been forwarded,
    /// counting both directions: exactly `n` bytes get through. One-shot: connections after
    /// the cut are forwarded normally. `n = 0` cuts at the next chunk.
    pub fn cut_after(&self, n: u64) {
        *self.shared.lock_rule() = Some(CutRule {
            dir: None,
            remaining: n,
        });
    }

    /// Like [`cut_after`](Self::cut_after), counting only bytes flowing in `dir`.
    pub fn cut_after_in(&self, dir: Direction, n: u64) {
        *self.shared.lock_rule() = Some(CutRule {
            dir: Some(dir),
            remaining: n,
        });
    }

    /// [`cut_after`](Self::cut_after) at a point drawn from `range` with the proxy's seeded
    /// generator; returns the point (and prints it with the seed, for reproduction).
    pub fn cut_after_random(&self, range: RangeInclusive<u64>) -> u64 {
        let n = self
            .rng
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .u64(range);
        eprintln!("fault proxy (seed {}): cutting after {n} bytes", self.seed);
        self.cut_after(n);
        n
    }

    /// A number from `range` drawn from the proxy's seeded generator.
    pub fn random(&self, range: RangeInclusive<u64>) -> u64 {
        self.rng
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .u64(range)
    }

    /// Closes every current connection now (both sides see a FIN); new ones are accepted.
    pub fn cut_now(&self) {
        self.shared.cut_epoch.send_modify(|e| *e += 1);
    }

    /// Holds every chunk for `dur` before forwarding it; `Duration::ZERO` turns it off.
    pub fn delay(&self, dur: Duration) {
        self.shared.settings.send_modify(|s| s.delay = dur);
    }

    /// Stops forwarding (and reading, so TCP back-pressure builds up); sockets stay open.
    pub fn stall(&self) {
        self.shared.settings.send_modify(|s| s.stalled = true);
    }

    /// Undoes [`stall`](Self::stall): held data flows again.
    pub fn resume(&self) {
        self.shared.settings.send_modify(|s| s.stalled = false);
    }

    /// Forwards one byte per write (with `TCP_NODELAY`), so the peer sees packets in pieces.
    pub fn split_writes(&self, on: bool) {
        self.shared.settings.send_modify(|s| s.split_writes = on);
    }

    /// Swallows all traffic in both directions and never closes (not even when a side
    /// closes), like a dead network path, until [`heal`](Self::heal). Swallowed bytes are
    /// lost. New connections are accepted (loopback cannot drop a SYN) and swallowed too.
    pub fn black_hole(&self) {
        self.shared.settings.send_modify(|s| s.black_hole = true);
    }

    /// Back to a clean pipe: no black hole, stall, delay, split writes, or pending cut.
    pub fn heal(&self) {
        self.shared
            .settings
            .send_modify(|s| *s = Settings::default());
        *self.shared.lock_rule() = None;
    }

    /// Bytes forwarded in `dir` so far, over all connections.
    pub fn bytes(&self, dir: Direction) -> u64 {
        let t = *self.shared.traffic.borrow();
        match dir {
            Direction::ToServer => t.to_server,
            Direction::ToClient => t.to_client,
        }
    }

    /// Bytes swallowed by [`black_hole`](Self::black_hole), both directions.
    pub fn swallowed(&self) -> u64 {
        self.shared.traffic.borrow().swallowed
    }

    /// Waits (10 s at most) until at least `n` bytes have been forwarded in `dir`, e.g. to
    /// know the client's CONNECT went through before cutting.
    pub async fn wait_for_bytes(&self, dir: Direction, n: u64) {
        let mut rx = self.shared.traffic.subscribe();
        let what = format!("{n} bytes {dir:?} through the fault proxy on {}", self.addr);
        let _ = timeout(
            DEFAULT_WAIT,
            rx.wait_for(|t| match dir {
                Direction::ToServer => t.to_server >= n,
                Direction::ToClient => t.to_client >= n,
            }),
            &what,
        )
        .await;
    }

    /// Waits (10 s at most) until at least `n` bytes have been swallowed by the black hole.
    pub async fn wait_for_swallowed(&self, n: u64) {
        let mut rx = self.shared.traffic.subscribe();
        let what = format!("{n} bytes swallowed by the fault proxy on {}", self.addr);
        let _ = timeout(DEFAULT_WAIT, rx.wait_for(|t| t.swallowed >= n), &what).await;
    }

    /// Connections accepted so far.
    pub fn connection_count(&self) -> usize {
        self.shared.counts.borrow().accepted
    }

    /// Connections currently open.
    pub fn active_connections(&self) -> usize {
        self.shared.counts.borrow().active
    }

    /// Waits (10 s at most) until `n` connections have been accepted in total.
    pub async fn wait_for_connections(&self, n: usize) {
        let mut rx = self.shared.counts.subscribe();
        let what = format!("{n} connections through the fault proxy on {}", self.addr);
        let _ = timeout(DEFAULT_WAIT, rx.wait_for(|c| c.accepted >= n), &what).await;
    }

    /// Waits (10 s at most) until exactly `n` connections are open.
    pub async fn wait_for_active(&self, n: usize) {
        let mut rx = self.shared.counts.subscribe();
        let what = format!(
            "{n} open connections through the fault proxy on {}",
            self.addr
        );
        let _ = timeout(DEFAULT_WAIT, rx.wait_for(|c| c.active == n), &what).await;
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    // Owned here so that aborting this task closes every proxied connection.
    let mut tasks = tokio::task::JoinSet::new();
    loop {
        let Ok((client, _)) = listener.accept().await else {
            continue;
        };
        shared.counts.send_modify(|c| {
            c.accepted += 1;
            c.active += 1;
        });
        tasks.spawn(run_connection(client, Arc::clone(&shared)));
        while tasks.try_join_next().is_some() {}
    }
}

async fn run_connection(client: TcpStream, shared: Arc<Shared>) {
    let epoch = *shared.cut_epoch.borrow();
    if let Ok(server) = TcpStream::connect(shared.target).await {
        let _ = client.set_nodelay(true);
        let _ = server.set_nodelay(true);
        let (crd, cwr) = client.into_split();
        let (srd, swr) = server.into_split();
        let conn_cut = watch::channel(false).0;
        let up = pump(crd, swr, Direction::ToServer, &shared, &conn_cut, epoch);
        let down = pump(srd, cwr, Direction::ToClient, &shared, &conn_cut, epoch);
        tokio::join!(up, down);
    }
    // Target unreachable: dropping `client` closes it, as a dead broker behind a router would.
    shared.counts.send_modify(|c| c.active -= 1);
}

/// Forwards one direction until EOF, an error, or a cut. A cut (here or by `cut_now`) ends
/// both pumps of the connection, dropping all four halves.
async fn pump(
    mut rd: OwnedReadHalf,
    mut wr: OwnedWriteHalf,
    dir: Direction,
    shared: &Shared,
    conn_cut: &watch::Sender<bool>,
    epoch: u64,
) {
    let mut epoch_rx = shared.cut_epoch.subscribe();
    let mut cut_rx = conn_cut.subscribe();
    let cancelled = async {
        tokio::select! {
            _ = epoch_rx.wait_for(|e| *e != epoch) => {}
            _ = cut_rx.wait_for(|c| *c) => {}
        }
    };
    let work = async {
        let mut settings = shared.settings.subscribe();
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let _ = settings.wait_for(|s| !s.stalled).await;
            let n = match rd.read(&mut buf).await {
                Ok(0) => {
                    // Never FIN while black-holed.
                    let _ = settings.wait_for(|s| !s.black_hole).await;
                    let _ = wr.shutdown().await;
                    return;
                }
                Ok(n) => n,
                Err(_) => {
                    conn_cut.send_replace(true);
                    return;
                }
            };
            // Data read just before a stall is held too.
            let s = settings
                .wait_for(|s| !s.stalled)
                .await
                .map_or_else(|_| Settings::default(), |s| s.clone());
            if s.black_hole {
                shared.traffic.send_modify(|t| t.swallowed += n as u64);
                continue;
            }
            let (chunk, cut_here) = {
                let mut rule = shared.lock_rule();
                match *rule {
                    Some(r) if r.dir.is_none_or(|d| d == dir) => {
                        if r.remaining <= n as u64 {
                            *rule = None;
                            // Fits: remaining <= n, a usize.
                            (&buf[..r.remaining as usize], true)
                        } else {
                            *rule = Some(CutRule {
                                remaining: r.remaining - n as u64,
                                ..r
                            });
                            (&buf[..n], false)
                        }
                    }
                    _ => (&buf[..n], false),
                }
            };
            if !s.delay.is_zero() {
                tokio::time::sleep(s.delay).await;
            }
            let len = chunk.len() as u64;
            shared.traffic.send_modify(|t| match dir {
                Direction::ToServer => t.to_server += len,
                Direction::ToClient => t.to_client += len,
            });
            let written = if s.split_writes {
                let mut ok = true;
                for b in chunk {
                    if wr.write_all(std::slice::from_ref(b)).await.is_err() {
                        ok = false;
                        break;
                    }
                    tokio::task::yield_now().await;
                }
                ok
            } else {
                wr.write_all(chunk).await.is_ok()
            };
            if cut_here || !written {
                conn_cut.send_replace(true);
                return;
            }
        }
    };
    tokio::select! {
        _ = cancelled => {}
        _ = work => {}
    }
}
