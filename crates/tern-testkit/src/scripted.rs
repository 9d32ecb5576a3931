//! A scripted broker for misbehaviour a real broker never produces.
//!
//! Each accepted connection runs a [`Script`]: a list of [`Step`]s (expect a packet, send
//! bytes, sleep, close...), h2-support style. Everything the client sends is framed (not
//! decoded) and recorded in a [`Connection`], which tests query with bounded async waits.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tern_proto::PacketType;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use crate::raw::{self, RawPacket, split_packet};
use crate::util::{DEFAULT_WAIT, LOCALHOST, timeout};

type RespondFn = dyn Fn(&RawPacket) -> Vec<u8> + Send + Sync;

/// Computes bytes to send from the last packet the client sent (e.g. echo its packet id).
#[derive(Clone)]
pub struct Responder(Arc<RespondFn>);

impl Responder {
    /// Wraps a function of the last received packet.
    pub fn new(f: impl Fn(&RawPacket) -> Vec<u8> + Send + Sync + 'static) -> Self {
        Self(Arc::new(f))
    }
}

impl fmt::Debug for Responder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Responder(..)")
    }
}

/// One step of a transcript.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Step {
    /// Wait for one packet, which must be a CONNECT.
    ExpectConnect,
    /// Wait for one packet, which must have this type.
    Expect(PacketType),
    /// Write these bytes as they are.
    Send(Bytes),
    /// Write a CONNACK with any return code (unknown ones too).
    SendConnAck {
        /// Return code byte.
        code: u8,
        /// The session-present flag.
        session_present: bool,
    },
    /// Write a SUBACK echoing the packet id of the last packet received (normally the
    /// SUBSCRIBE just expected) with exactly these return codes.
    SendSubAck(Vec<u8>),
    /// Write whatever the responder computes from the last packet received.
    Respond(Responder),
    /// Do nothing for this long (the client's packets are still recorded meanwhile).
    Sleep(Duration),
    /// Write these bytes one at a time, waiting this long after each.
    DribbleBytes(Bytes, Duration),
    /// Close gracefully (FIN) and end the script; the client's packets and its close are
    /// still recorded.
    Close,
    /// Abort the connection with a TCP reset (RST) and end the script.
    Reset,
    /// Never answer: keep the socket open, record what arrives, end when the client closes.
    Silence,
    /// Record what arrives until the client closes (answering PINGREQ if
    /// [`Script::answer_pings`] is on).
    ReadUntilClosed,
}

/// A transcript for one connection: steps in order, plus how to run them.
///
/// When the steps run out without [`Step::Close`], [`Step::Reset`], [`Step::Silence`] or
/// [`Step::ReadUntilClosed`], the broker closes the connection (as `Close`). A step that fails
/// (wrong packet, timeout, client gone) marks the script failed and closes the connection;
/// [`Connection::wait_script_done`] reports it.
#[derive(Debug, Clone)]
pub struct Script {
    steps: Vec<Step>,
    answer_pings: bool,
    expect_timeout: Duration,
}

impl Default for Script {
    fn default() -> Self {
        Self::new()
    }
}

impl Script {
    /// An empty script (strict: PINGREQ is not answered and does not satisfy `Expect`s for
    /// other types).
    pub fn new() -> Self {
        Self {
            steps: Vec::new(),
            answer_pings: false,
            expect_timeout: DEFAULT_WAIT,
        }
    }

    /// Adds a step.
    pub fn step(mut self, step: Step) -> Self {
        self.steps.push(step);
        self
    }

    /// [`Step::ExpectConnect`].
    pub fn expect_connect(self) -> Self {
        self.step(Step::ExpectConnect)
    }

    /// [`Step::Expect`].
    pub fn expect(self, kind: PacketType) -> Self {
        self.step(Step::Expect(kind))
    }

    /// [`Step::Send`].
    pub fn send(self, bytes: impl Into<Bytes>) -> Self {
        self.step(Step::Send(bytes.into()))
    }

    /// [`Step::SendConnAck`].
    pub fn send_connack(self, code: u8, session_present: bool) -> Self {
        self.step(Step::SendConnAck {
            code,
            session_present,
        })
    }

    /// [`Step::SendSubAck`].
    pub fn send_suback(self, codes: &[u8]) -> Self {
        self.step(Step::SendSubAck(codes.to_vec()))
    }

    /// [`Step::Respond`].
    pub fn respond(self, f: impl Fn(&RawPacket) -> Vec<u8> + Send + Sync + 'static) -> Self {
        self.step(Step::Respond(Responder::new(f)))
    }

    /// [`Step::Sleep`].
    pub fn sleep(self, dur: Duration) -> Self {
        self.step(Step::Sleep(dur))
    }

    /// [`Step::DribbleBytes`].
    pub fn dribble(self, bytes: impl Into<Bytes>, per_byte: Duration) -> Self {
        self.step(Step::DribbleBytes(bytes.into(), per_byte))
    }

    /// [`Step::Close`].
    pub fn close(self) -> Self {
        self.step(Step::Close)
    }

    /// [`Step::Reset`].
    pub fn reset(self) -> Self {
        self.step(Step::Reset)
    }

    /// [`Step::Silence`].
    pub fn silence(self) -> Self {
        self.step(Step::Silence)
    }

    /// [`Step::ReadUntilClosed`].
    pub fn read_until_closed(self) -> Self {
        self.step(Step::ReadUntilClosed)
    }

    /// Answer PINGREQ with PINGRESP during `Expect`s of other types and `ReadUntilClosed`
    /// (never during `Silence`). Default off, so keepalive tests see exactly what they script.
    pub fn answer_pings(mut self, on: bool) -> Self {
        self.answer_pings = on;
        self
    }

    /// How long an `Expect` waits before failing the script; default 10 s.
    pub fn expect_timeout(mut self, dur: Duration) -> Self {
        self.expect_timeout = dur;
        self
    }

    /// Accepts the TCP connection and never answers (not even CONNACK); ends when the client
    /// closes.
    pub fn never_answer() -> Self {
        Self::new().silence()
    }

    /// A well-behaved minimum: CONNACK 0 to the CONNECT, then answer pings until the client
    /// closes.
    pub fn accept() -> Self {
        Self::connack(0).answer_pings(true)
    }

    /// CONNACK with `code` (0..=5, or unknown codes such as 6), then record until closed.
    pub fn connack(code: u8) -> Self {
        Self::new()
            .expect_connect()
            .send_connack(code, false)
            .read_until_closed()
    }

    /// Answers the CONNECT with `bytes` instead of a CONNACK, then records until closed.
    pub fn reply_to_connect(bytes: impl Into<Bytes>) -> Self {
        Self::new().expect_connect().send(bytes).read_until_closed()
    }

    /// Answers the CONNECT with a PINGRESP: a valid packet, but not a CONNACK.
    pub fn non_connack_first() -> Self {
        Self::reply_to_connect(raw::pingresp())
    }

    /// CONNACK 0, then `bytes`, then records until closed.
    pub fn after_connack(bytes: impl Into<Bytes>) -> Self {
        Self::new()
            .expect_connect()
            .send_connack(0, false)
            .send(bytes)
            .read_until_closed()
    }

    /// CONNACK 0, then a PUBLISH whose remaining length has 5 bytes
    /// ([`raw::malformed_remaining_length`]).
    pub fn malformed_remaining_length() -> Self {
        Self::after_connack(raw::malformed_remaining_length())
    }

    /// CONNACK 0, then the first bytes of a PUBLISH, then close.
    pub fn truncated_then_close() -> Self {
        Self::new()
            .expect_connect()
            .send_connack(0, false)
            .send(raw::truncated_publish())
            .close()
    }

    /// CONNACK 0, then bytes of a reserved packet type ([`raw::garbage`]).
    pub fn garbage() -> Self {
        Self::after_connack(raw::garbage())
    }

    /// CONNACK 0, then a PUBLISH header claiming 256 MiB ([`raw::huge_publish_header`]).
    pub fn huge_publish() -> Self {
        Self::after_connack(raw::huge_publish_header())
    }

    /// CONNACK 0, then an acknowledgement (`PubAck`, `PubRec`, `PubRel`, `PubComp`,
    /// `UnsubAck`) for `packet_id`, which the client never used. A correct client answers an
    /// unknown PUBREL with PUBCOMP [MQTT-4.3.3-2].
    pub fn unsolicited(kind: PacketType, packet_id: u16) -> Self {
        Self::after_connack(raw::ack(kind, packet_id))
    }

    /// CONNACK 0, then answer the first SUBSCRIBE with a SUBACK of 0x80 (failure) for every
    /// filter, then record until closed (answering pings).
    pub fn suback_failure() -> Self {
        Self::new()
            .expect_connect()
            .send_connack(0, false)
            .expect(PacketType::Subscribe)
            .respond(|sub| {
                let codes = vec![0x80; sub.filter_count().max(1)];
                raw::suback(sub.packet_id().unwrap_or(0), &codes)
            })
            .read_until_closed()
            .answer_pings(true)
    }
}

/// How a connection's script is doing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScriptStatus {
    /// Steps remain (or the last step is waiting for the client to close).
    Running,
    /// Every step ran.
    Done,
    /// A step failed; the message says which and why.
    Failed(String),
}

/// What has been observed on one connection.
#[derive(Debug, Clone)]
struct ConnLog {
    received: Vec<RawPacket>,
    /// The client closed (EOF) or reset the connection, or reading failed.
    closed: bool,
    /// Why reading ended, if not a clean EOF (reset, framing error).
    close_detail: Option<String>,
    script: ScriptStatus,
}

/// A recorded connection to the [`ScriptedBroker`]: what the client sent and whether it closed.
///
/// Cheap to clone. The `wait_*` methods are bounded (10 s unless changed with
/// [`within`](Self::within)) and panic with what was seen so far.
#[derive(Debug, Clone)]
pub struct Connection {
    index: usize,
    log: watch::Receiver<ConnLog>,
    bound: Duration,
}

impl Connection {
    /// The same connection with a different bound for its waits.
    pub fn within(mut self, bound: Duration) -> Self {
        self.bound = bound;
        self
    }

    /// Which accepted connection this is, from 0.
    pub fn index(&self) -> usize {
        self.index
    }

    /// Every packet received so far, in order.
    pub fn packets(&self) -> Vec<RawPacket> {
        self.log.borrow().received.clone()
    }

    /// The types of the packets received so far (`None` for reserved types).
    pub fn packet_types(&self) -> Vec<Option<PacketType>> {
        self.log
            .borrow()
            .received
            .iter()
            .map(RawPacket::packet_type)
            .collect()
    }

    /// The first CONNECT received, if any.
    pub fn connect_packet(&self) -> Option<RawPacket> {
        self.log
            .borrow()
            .received
            .iter()
            .find(|p| p.packet_type() == Some(PacketType::Connect))
            .cloned()
    }

    /// Whether the client has closed (or reset) the connection.
    pub fn is_closed(&self) -> bool {
        self.log.borrow().closed
    }

    /// Why reading ended when it was not a clean EOF (a reset, a framing error).
    pub fn close_detail(&self) -> Option<String> {
        self.log.borrow().close_detail.clone()
    }

    /// The script's progress.
    pub fn script_status(&self) -> ScriptStatus {
        self.log.borrow().script.clone()
    }

    /// Waits for the first packet of type `kind` (already received or still to come).
    pub async fn wait_for(&self, kind: PacketType) -> RawPacket {
        self.wait_for_count(kind, 1)
            .await
            .pop()
            .unwrap_or_else(|| unreachable!("wait_for_count(_, 1) returns one packet"))
    }

    /// Waits until `n` packets of type `kind` have arrived; returns the first `n`.
    pub async fn wait_for_count(&self, kind: PacketType, n: usize) -> Vec<RawPacket> {
        let count = |l: &ConnLog| {
            l.received
                .iter()
                .filter(|p| p.packet_type() == Some(kind))
                .count()
        };
        let what = format!(
            "{n} {kind} packet(s) from the client on connection {}",
            self.index
        );
        self.wait_until(&what, |l| count(l) >= n).await;
        self.log
            .borrow()
            .received
            .iter()
            .filter(|p| p.packet_type() == Some(kind))
            .take(n)
            .cloned()
            .collect()
    }

    /// Waits for the client to close (or reset) the connection; returns everything it sent.
    pub async fn wait_closed(&self) -> Vec<RawPacket> {
        let what = format!("the client to close connection {}", self.index);
        self.wait_until(&what, |l| l.closed).await;
        self.packets()
    }

    /// Waits for the script to finish; panics if a step failed.
    pub async fn wait_script_done(&self) {
        let what = format!("the script of connection {} to finish", self.index);
        self.wait_until(&what, |l| l.script != ScriptStatus::Running)
            .await;
        if let ScriptStatus::Failed(why) = self.script_status() {
            panic!(
                "script of connection {} failed: {why}; received {:?}",
                self.index,
                self.packet_types()
            );
        }
    }

    async fn wait_until(&self, what: &str, pred: impl Fn(&ConnLog) -> bool) {
        let mut rx = self.log.clone();
        let waited = tokio::time::timeout(self.bound, rx.wait_for(|l| pred(l))).await;
        if waited.is_err() {
            let l = self.log.borrow().clone();
            let types: Vec<_> = l.received.iter().map(RawPacket::packet_type).collect();
            panic!(
                "timed out after {:?} waiting for {what}; received {types:?}, closed: {}, \
                 script: {:?}",
                self.bound, l.closed, l.script
            );
        }
        // A closed watch channel only means the connection task ended; the last value stands.
    }
}

/// A TCP server on 127.0.0.1 that runs a [`Script`] per accepted connection.
///
/// Stops (aborting every connection) when dropped.
///
/// ```no_run
/// # async fn demo() {
/// use tern_testkit::{Script, ScriptedBroker};
/// let broker = ScriptedBroker::start(Script::connack(5)).await;
/// // ... point the client at broker.port(), expect "not authorized" ...
/// let conn = broker.connection(0).await;
/// conn.wait_closed().await;
/// # }
/// ```
#[derive(Debug)]
pub struct ScriptedBroker {
    addr: SocketAddr,
    connections: watch::Receiver<Vec<Connection>>,
    task: JoinHandle<()>,
}

impl ScriptedBroker {
    /// Runs `script` on every accepted connection.
    pub async fn start(script: Script) -> Self {
        Self::start_sequence(vec![script]).await
    }

    /// Runs `scripts[n]` on the `n`th accepted connection, and the last script on any beyond
    /// (e.g. refuse the first connection, accept the reconnect). Panics if `scripts` is empty.
    pub async fn start_sequence(scripts: Vec<Script>) -> Self {
        assert!(
            !scripts.is_empty(),
            "ScriptedBroker needs at least one script"
        );
        let listener = TcpListener::bind((LOCALHOST, 0))
            .await
            .unwrap_or_else(|e| panic!("scripted broker cannot bind 127.0.0.1:0: {e}"));
        let addr = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("local_addr of a bound listener failed: {e}"));
        let (conns_tx, connections) = watch::channel(Vec::new());
        let task = tokio::spawn(accept_loop(listener, scripts, conns_tx));
        Self {
            addr,
            connections,
            task,
        }
    }

    /// The listening address (127.0.0.1).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The listening port.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// How many connections were accepted so far.
    pub fn connection_count(&self) -> usize {
        self.connections.borrow().len()
    }

    /// Waits (10 s at most) for the `n`th accepted connection (from 0) and returns its record.
    pub async fn connection(&self, n: usize) -> Connection {
        let mut rx = self.connections.clone();
        let what = format!("connection {n} to the scripted broker on {}", self.addr);
        let conns = timeout(DEFAULT_WAIT, rx.wait_for(|c| c.len() > n), &what)
            .await
            .unwrap_or_else(|_| panic!("scripted broker stopped before {what}"));
        conns[n].clone()
    }
}

impl Drop for ScriptedBroker {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn accept_loop(
    listener: TcpListener,
    scripts: Vec<Script>,
    conns: watch::Sender<Vec<Connection>>,
) {
    // Owned here so that aborting this task aborts every connection.
    let mut tasks = tokio::task::JoinSet::new();
    loop {
        let Ok((stream, _peer)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let index = conns.borrow().len();
        let script = scripts[index.min(scripts.len() - 1)].clone();
        let (log_tx, log_rx) = watch::channel(ConnLog {
            received: Vec::new(),
            closed: false,
            close_detail: None,
            script: ScriptStatus::Running,
        });
        conns.send_modify(|c| {
            c.push(Connection {
                index,
                log: log_rx,
                bound: DEFAULT_WAIT,
            });
        });
        tasks.spawn(run_connection(stream, script, log_tx));
        // Reap finished connections so the set does not grow without bound.
        while tasks.try_join_next().is_some() {}
    }
}

async fn run_connection(stream: TcpStream, script: Script, log: watch::Sender<ConnLog>) {
    let log = Arc::new(log);
    let (rd, wr) = stream.into_split();
    let (pkt_tx, pkt_rx) = mpsc::unbounded_channel();
    let (stop_tx, stop_rx) = oneshot::channel();
    let reader = read_loop(rd, Arc::clone(&log), pkt_tx, stop_rx);
    let runner = run_script(wr, script, Arc::clone(&log), pkt_rx, stop_tx);
    let (rd, wr) = tokio::join!(reader, runner);
    if let (Some(rd), Some(wr)) = (rd, wr)
        && let Ok(stream) = rd.reunite(wr)
    {
        // Step::Reset: linger 0 makes close() send RST instead of FIN.
        let _ = stream.set_zero_linger();
        drop(stream);
    }
}

/// Reads and records until EOF or a stop request; returns the read half when stopped (for
/// a reset), `None` when the client closed.
async fn read_loop(
    mut rd: OwnedReadHalf,
    log: Arc<watch::Sender<ConnLog>>,
    packets: mpsc::UnboundedSender<RawPacket>,
    mut stop: oneshot::Receiver<()>,
) -> Option<OwnedReadHalf> {
    let mut buf = BytesMut::with_capacity(4096);
    let mut framing_ok = true;
    loop {
        tokio::select! {
            _ = &mut stop => return Some(rd),
            r = rd.read_buf(&mut buf) => {
                let detail = match r {
                    Ok(0) => None,
                    Ok(_) => {
                        while framing_ok {
                            match split_packet(&mut buf) {
                                Ok(Some(p)) => {
                                    log.send_modify(|l| l.received.push(p.clone()));
                                    let _ = packets.send(p);
                                }
                                Ok(None) => break,
                                Err(e) => {
                                    framing_ok = false;
                                    log.send_modify(|l| {
                                        l.close_detail = Some(format!("client sent garbage: {e}"));
                                    });
                                }
                            }
                        }
                        if !framing_ok {
                            buf.clear();
                        }
                        continue;
                    }
                    Err(e) => Some(format!("read error: {e}")),
                };
                log.send_modify(|l| {
                    l.closed = true;
                    if l.close_detail.is_none() {
                        l.close_detail = detail;
                    }
                });
                return None;
            }
        }
    }
}

/// Runs the steps; returns the write half when the script ends in [`Step::Reset`].
async fn run_script(
    mut wr: OwnedWriteHalf,
    script: Script,
    log: Arc<watch::Sender<ConnLog>>,
    mut packets: mpsc::UnboundedReceiver<RawPacket>,
    stop: oneshot::Sender<()>,
) -> Option<OwnedWriteHalf> {
    let mut last: Option<RawPacket> = None;
    let fail = |why: String| {
        eprintln!("scripted broker: {why}");
        log.send_modify(|l| l.script = ScriptStatus::Failed(why));
    };
    for (i, step) in script.steps.iter().enumerate() {
        let result: Result<(), String> = async {
            match step {
                Step::ExpectConnect => {
                    last = Some(expect(&mut packets, &mut wr, PacketType::Connect, &script).await?);
                }
                Step::Expect(kind) => {
                    last = Some(expect(&mut packets, &mut wr, *kind, &script).await?);
                }
                Step::Send(bytes) => write(&mut wr, bytes).await?,
                Step::SendConnAck {
                    code,
                    session_present,
                } => write(&mut wr, &raw::connack(*code, *session_present)).await?,
                Step::SendSubAck(codes) => {
                    let id = last
                        .as_ref()
                        .and_then(RawPacket::packet_id)
                        .ok_or_else(|| {
                            "SendSubAck: no packet id in the last received packet".to_owned()
                        })?;
                    write(&mut wr, &raw::suback(id, codes)).await?;
                }
                Step::Respond(r) => {
                    let p = last
                        .as_ref()
                        .ok_or_else(|| "Respond: nothing received yet".to_owned())?;
                    write(&mut wr, &(r.0)(p)).await?;
                }
                Step::Sleep(d) => tokio::time::sleep(*d).await,
                Step::DribbleBytes(bytes, d) => {
                    for b in bytes.iter() {
                        write(&mut wr, &[*b]).await?;
                        tokio::time::sleep(*d).await;
                    }
                }
                Step::Close | Step::Reset => {}
                Step::Silence => while packets.recv().await.is_some() {},
                Step::ReadUntilClosed => {
                    while let Some(p) = packets.recv().await {
                        if script.answer_pings && p.packet_type() == Some(PacketType::PingReq) {
                            write(&mut wr, &raw::pingresp()).await?;
                        }
                    }
                }
            }
            Ok(())
        }
        .await;
        if let Err(why) = result {
            fail(format!("step {i} ({step:?}) failed: {why}"));
            let _ = wr.shutdown().await;
            return None;
        }
        match step {
            Step::Reset => {
                log.send_modify(|l| l.script = ScriptStatus::Done);
                let _ = stop.send(());
                return Some(wr);
            }
            Step::Close => break,
            _ => {}
        }
    }
    log.send_modify(|l| l.script = ScriptStatus::Done);
    let _ = wr.shutdown().await;
    None
}

async fn write(wr: &mut OwnedWriteHalf, bytes: &[u8]) -> Result<(), String> {
    wr.write_all(bytes)
        .await
        .map_err(|e| format!("write failed: {e}"))
}

async fn expect(
    packets: &mut mpsc::UnboundedReceiver<RawPacket>,
    wr: &mut OwnedWriteHalf,
    kind: PacketType,
    script: &Script,
) -> Result<RawPacket, String> {
    let deadline = tokio::time::Instant::now() + script.expect_timeout;
    loop {
        let p = match tokio::time::timeout_at(deadline, packets.recv()).await {
            Ok(Some(p)) => p,
            Ok(None) => return Err(format!("expected {kind}, the client closed the connection")),
            Err(_) => {
                return Err(format!(
                    "expected {kind}, got nothing within {:?}",
                    script.expect_timeout
                ));
            }
        };
        match p.packet_type() {
            Some(t) if t == kind => return Ok(p),
            Some(PacketType::PingReq) if script.answer_pings => {
                write(wr, &raw::pingresp()).await?;
            }
            other => {
                return Err(format!(
                    "expected {kind}, got {other:?}: {:02x?}",
                    p.bytes()
                ));
            }
        }
    }
}
