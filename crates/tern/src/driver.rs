//! The driver task: the one owner of a client's [`Session`] and transport.
//!
//! ```text
//!            connect                 CONNACK ok
//!   Idle ─────────────▶ Connecting ─────────────▶ Connected
//!    ▲  ◀── failure ───────┘                          │
//!    │                                                │ lost / close()
//!    └──── (reconnect policy: backoff, next broker) ◀─┘
//! ```
//!
//! Every wait is a cancel-safe future in one `select!`: socket IO (one `poll_fn` that writes
//! the outbox and hands what it reads to the session), commands, the session's timer, and
//! room in the event channel. Commands are served even while the event channel is full —
//! only reading from the socket pauses — so an event handler that publishes cannot deadlock
//! the client.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::future::poll_fn;
use std::hash::{BuildHasherDefault, Hasher};
use std::io;
use std::mem;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Buf, BytesMut};
use tern_proto::packet::ProtocolLevel;
use tern_proto::session::{DisconnectReason, Event as SessionEvent, ProtocolError, RequestId};
use tern_proto::{
    ConnectReturnCode, LastWill, MqttString, QoS, Session, SessionConfig, SubscribeReturnCode,
    TopicFilter, TopicName,
};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::sync::oneshot;
use tokio::time::{Instant, Sleep};

use crate::broker::Broker;
use crate::chan;
use crate::client::{Command, Event, Message, Outcome, Reply};
use crate::error::{ClientError, ConnectError, ConnectStage, ConnectionError};
use crate::lowat::{self, StreamWatch};
use crate::options::{ConnectOptions, Protocol};
use crate::quickack::{AckPolicy, Ticks};
use crate::store::{SessionStore, StoreError};
use crate::transport::{self, BoxStream};

/// Commands drained per wake-up before writing, so bursts leave in few syscalls.
const COMMAND_BATCH: usize = 256;
/// Largest single read (into a buffer shared by the thread's connections).
const READ_CHUNK: usize = 64 * 1024;
/// Encoded bytes waiting for the socket beyond which nothing more is encoded.
const OUTBOX_HIGH_WATER: usize = 256 * 1024;
/// Largest send buffer kept between bursts.
const MAX_KEPT_OUTBOX: usize = 4 * 1024 * 1024;
/// How long `close()` waits for DISCONNECT to be written before dropping the socket.
const CLOSE_FLUSH_TIMEOUT: Duration = Duration::from_secs(5);

fn now() -> std::time::Instant {
    Instant::now().into_std()
}

/// Who is waiting for a command's completion.
enum Waiter {
    Publish(Reply<()>),
    Subscribe(Reply<Vec<SubscribeReturnCode>>, Vec<(TopicFilter, QoS)>),
    Unsubscribe(Reply<()>, Vec<TopicFilter>),
    /// An automatic re-subscription after a reconnect: nobody waits, but the granted
    /// filters are recorded again.
    Resubscribe(Vec<(TopicFilter, QoS)>),
}

/// Request ids are distinct counters: their value is a perfect hash, and SipHash would be a
/// measurable share of a publish's cost (one insert and one remove per message).
#[derive(Default)]
struct RequestIdHasher(u64);

impl Hasher for RequestIdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Not reached for `RequestId` (a u64); folds anything else in.
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        // hashbrown takes its control bits from the top 7 bits: spread the counter there.
        self.0 = n.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

/// How a connection (or attempt) ended.
enum Ended {
    /// The attempt failed before CONNACK.
    ConnectFailed(ConnectError),
    /// An established connection ended.
    Lost(ConnectionError),
    /// All handles were dropped.
    Shutdown,
}

struct Driver {
    options: Arc<ConnectOptions>,
    session: Session,
    events: chan::Sender<Event>,
    /// Events waiting for room in the channel. Reading from the socket pauses while this
    /// holds `event_capacity` or more, which bounds it (commands add at most one each).
    pending: VecDeque<Event>,
    waiters: HashMap<RequestId, Waiter, BuildHasherDefault<RequestIdHasher>>,
    /// What is subscribed (as granted), for re-subscription after a reconnect.
    subscriptions: BTreeMap<TopicFilter, QoS>,
    tls: Option<Arc<rustls::ClientConfig>>,
    brokers: Vec<Broker>,
    /// Index of the broker to try next.
    next_broker: usize,
    /// The caller of `connect()` waiting for the outcome.
    connect_reply: Option<oneshot::Sender<Result<bool, ConnectError>>>,
    /// Waiters of `close()`.
    close_replies: Vec<oneshot::Sender<Result<(), ClientError>>>,
    /// The application wants to be connected (set by connect, cleared by close).
    want_connected: bool,
    /// A connection succeeded since the last `connect()` command (the seed: no automatic
    /// reconnection if the very first attempt fails).
    connected_once: bool,
    /// Failed automatic attempts in a row.
    attempt: u32,
    commands_closed: bool,
    /// Retry the same broker at once (protocol fallback from 3.1.1 to 3.1).
    retry_same: bool,
    /// The session store (`ConnectOptions::session_store`, clean session off), opened and
    /// restored from at the first `connect`. Every batch of the session's store ops is
    /// made durable before the session may transmit or hand out events (write-ahead).
    store: Option<Box<SessionStore>>,
    /// Something was handed to the application (an event, a completion) since the serve
    /// loop last looked: it gets one turn before the driver writes (see `serve`).
    woke_app: bool,
}

/// The driver task of one client. `options` comes boxed and the driver is built by a plain
/// function: an async fn keeps its arguments, and values moved out of its locals, in its
/// state for as long as it runs, and this future lives as long as the client.
pub(crate) async fn run(
    options: Box<ConnectOptions>,
    mut commands: chan::Receiver<Command>,
    events: chan::Sender<Event>,
) {
    let mut d = Driver::new(options, events);
    d.main(&mut commands).await;
}

impl Driver {
    fn new(options: Box<ConnectOptions>, events: chan::Sender<Event>) -> Self {
        Self {
            session: Session::new(session_config(&options)),
            options: Arc::from(options),
            events,
            pending: VecDeque::new(),
            waiters: HashMap::default(),
            subscriptions: BTreeMap::new(),
            tls: None,
            brokers: Vec::new(),
            next_broker: 0,
            connect_reply: None,
            close_replies: Vec::new(),
            want_connected: false,
            connected_once: false,
            attempt: 0,
            commands_closed: false,
            retry_same: false,
            store: None,
            woke_app: false,
        }
    }
}

/// The session configuration for `options`; the client id and will are validated later, at
/// connect time, so that errors reach the caller of `connect`.
fn session_config(options: &ConnectOptions) -> SessionConfig {
    let level = match options.protocol {
        Protocol::V3_1 => ProtocolLevel::V3_1,
        Protocol::V3_1_1 | Protocol::Auto => ProtocolLevel::V3_1_1,
    };
    let client_id = if options.client_id.is_empty() && options.clean_session {
        // As mosquitto's clients do: a random id, valid in 3.1 too (at most 23 characters).
        format!("tern-{:016x}", fastrand::u64(..))
    } else {
        options.client_id.clone()
    };
    let client_id = MqttString::new(&client_id).unwrap_or_default();
    let username = options
        .username
        .as_deref()
        .and_then(|u| MqttString::new(u).ok());
    let will = options.will.as_ref().and_then(|w| {
        Some(LastWill {
            topic: TopicName::new(&w.topic).ok()?,
            payload: w.payload.clone(),
            qos: w.qos,
            retain: w.retain,
            properties: Default::default(),
        })
    });
    SessionConfig::new(client_id)
        .level(level)
        .keep_alive(options.keep_alive)
        .connack_timeout(options.connect_timeout)
        .clean_session(options.clean_session)
        .will(will)
        .credentials(username, options.password.clone())
        .max_inflight(options.max_inflight)
        .max_queued(options.max_queued)
        .max_queued_bytes(options.max_queued_bytes)
        .max_packet_size(options.max_packet_size)
        .persistence(options.session_store.is_some() && !options.clean_session)
}

/// Checks what `session_config` had to leave out silently.
fn validate(options: &ConnectOptions) -> Result<(), ConnectError> {
    let invalid = |what: String| Err(ConnectError::InvalidOptions(what));
    if let Err(e) = MqttString::new(&options.client_id) {
        return invalid(format!("client id: {e}"));
    }
    if let Some(Err(e)) = options.username.as_deref().map(MqttString::new) {
        return invalid(format!("user name: {e}"));
    }
    if let Some((topic, Err(e))) = options
        .will
        .as_ref()
        .map(|w| (&w.topic, TopicName::new(&w.topic)))
    {
        return invalid(format!("will topic {topic:?}: {e}"));
    }
    Ok(())
}

impl Driver {
    async fn main(&mut self, commands: &mut chan::Receiver<Command>) {
        let mut retry_at: Option<Instant> = None;
        loop {
            if self.commands_closed && !self.want_connected {
                break;
            }
            if self.want_connected && retry_at.is_none() {
                // Connect now (first attempt, or the backoff has elapsed).
                let broker = self.brokers[self.next_broker % self.brokers.len()].clone();
                let ended = self.connection(&broker, commands).await;
                match ended {
                    Ended::Shutdown => break,
                    Ended::ConnectFailed(_) if mem::take(&mut self.retry_same) => {}
                    Ended::ConnectFailed(error) => {
                        self.next_broker = (self.next_broker + 1) % self.brokers.len();
                        // A connect() command tries each broker of its list once.
                        let list_left = !self.connected_once && self.next_broker != 0;
                        let retry = self.want_connected
                            && (list_left || (self.connected_once && self.may_retry()));
                        if !retry {
                            self.want_connected = false;
                            if let Some(reply) = self.connect_reply.take() {
                                let _ = reply.send(Err(error.clone()));
                            }
                        }
                        self.emit(Event::ConnectFailed {
                            error,
                            will_retry: retry,
                        });
                        if retry {
                            retry_at = Some(if list_left {
                                Instant::now()
                            } else {
                                self.attempt += 1;
                                Instant::now() + self.backoff()
                            });
                        }
                    }
                    Ended::Lost(error) => {
                        let local = matches!(error, ConnectionError::Local);
                        let retry = !local && self.want_connected && self.may_retry();
                        if !retry {
                            self.want_connected = false;
                        }
                        self.emit(Event::Disconnected {
                            error,
                            will_reconnect: retry,
                        });
                        for reply in self.close_replies.drain(..) {
                            let _ = reply.send(Ok(()));
                        }
                        if retry {
                            self.attempt = 1;
                            self.next_broker = (self.next_broker + 1) % self.brokers.len();
                            retry_at = Some(Instant::now() + self.backoff());
                        }
                    }
                }
                continue;
            }
            // Idle (or waiting to retry): serve commands and flush events.
            let events = self.events.clone();
            tokio::select! {
                cmd = commands.recv(), if !self.commands_closed => match cmd {
                    Some(cmd) => {
                        if self.idle_command(cmd) {
                            retry_at = None;
                        }
                        if !self.want_connected {
                            retry_at = None;
                        }
                    }
                    None => {
                        self.commands_closed = true;
                        self.want_connected = false;
                    }
                },
                permit = events.reserve(), if !self.pending.is_empty() => {
                    self.send_pending(permit.ok());
                }
                () = sleep_until_opt(retry_at) => retry_at = None,
            }
        }
        // Deliver what is left, then stop.
        while let Some(ev) = self.pending.pop_front() {
            if self.events.send(ev).await.is_err() {
                break;
            }
        }
    }

    fn may_retry(&self) -> bool {
        match &self.options.reconnect {
            Some(policy) => policy.max_attempts.is_none_or(|max| self.attempt < max),
            None => false,
        }
    }

    fn backoff(&self) -> Duration {
        self.options
            .reconnect
            .as_ref()
            .map_or(Duration::ZERO, |p| p.delay(self.attempt.max(1)))
    }

    /// Serves a command while no connection is open. Returns true when it starts a
    /// connection attempt now.
    fn idle_command(&mut self, cmd: Command) -> bool {
        match cmd {
            Command::Connect { brokers, reply } => {
                if self.want_connected {
                    // Waiting to reconnect: a new connect() takes over, immediately.
                    if let Some(old) = self.connect_reply.take() {
                        let _ = old.send(Err(ConnectError::Closed));
                    }
                }
                if brokers.is_empty() {
                    reply_connect(
                        reply,
                        Err(ConnectError::InvalidOptions(
                            "no broker address given".into(),
                        )),
                    );
                    return false;
                }
                if let Err(e) = validate(&self.options) {
                    self.emit(Event::ConnectFailed {
                        error: e.clone(),
                        will_retry: false,
                    });
                    reply_connect(reply, Err(e));
                    return false;
                }
                if let Err(e) = self.open_store() {
                    let e = ConnectError::Store(Arc::new(e));
                    self.emit(Event::ConnectFailed {
                        error: e.clone(),
                        will_retry: false,
                    });
                    reply_connect(reply, Err(e));
                    return false;
                }
                self.brokers = brokers;
                self.next_broker = 0;
                self.connect_reply = reply;
                self.want_connected = true;
                self.connected_once = false;
                self.attempt = 0;
                true
            }
            Command::Close { reply } => {
                if self.want_connected {
                    // Cancels a pending automatic reconnection.
                    self.want_connected = false;
                    if let Some(r) = self.connect_reply.take() {
                        let _ = r.send(Err(ConnectError::Closed));
                    }
                    if let Some(reply) = reply {
                        let _ = reply.send(Ok(()));
                    }
                } else if let Some(reply) = reply {
                    let _ = reply.send(Err(ClientError::NotConnected));
                }
                false
            }
            other => {
                self.command(other);
                false
            }
        }
    }

    /// Queues a publish, subscribe or unsubscribe in the session (connected or not).
    fn command(&mut self, cmd: Command) {
        let now = now();
        match cmd {
            Command::Publish { msg, reply } => match self.session.publish(now, msg) {
                Ok(id) => {
                    self.waiters.insert(id, Waiter::Publish(reply));
                }
                Err(e) => self.complete(reply, Err(e.into()), published),
            },
            Command::Subscribe { filters, reply } => {
                match self.session.subscribe(now, filters.clone()) {
                    Ok(id) => {
                        self.waiters.insert(id, Waiter::Subscribe(reply, filters));
                    }
                    Err(e) => self.complete(reply, Err(e.into()), Outcome::Subscribed),
                }
            }
            Command::Unsubscribe { filters, reply } => {
                match self.session.unsubscribe(now, filters.clone()) {
                    Ok(id) => {
                        self.waiters.insert(id, Waiter::Unsubscribe(reply, filters));
                    }
                    Err(e) => self.complete(reply, Err(e.into()), unsubscribed),
                }
            }
            Command::Connect { reply, .. } => {
                reply_connect(reply, Err(ConnectError::AlreadyConnected))
            }
            Command::Close { .. } => unreachable_close(),
        }
    }

    fn complete<T>(
        &mut self,
        reply: Reply<T>,
        result: Result<T, ClientError>,
        wrap: fn(T) -> Outcome,
    ) {
        match reply {
            Reply::Await(tx) => {
                self.woke_app = true;
                let _ = tx.send(result);
            }
            Reply::Event(ticket) => self.emit(Event::Completed {
                ticket,
                result: result.map(wrap),
            }),
        }
    }

    fn emit(&mut self, ev: Event) {
        self.woke_app = true;
        if self.pending.is_empty() {
            match self.events.try_send(ev) {
                Ok(()) | Err(chan::TrySendError::Closed(_)) => {}
                Err(chan::TrySendError::Full(ev)) => self.pending.push_back(ev),
            }
        } else {
            self.pending.push_back(ev);
        }
    }

    fn send_pending(&mut self, permit: Option<chan::Permit<'_, Event>>) {
        let Some(permit) = permit else {
            // The application dropped its Events: nobody will read them.
            self.pending.clear();
            return;
        };
        if let Some(ev) = self.pending.pop_front() {
            permit.send(ev);
        }
        while let Some(ev) = self.pending.pop_front() {
            match self.events.try_send(ev) {
                Ok(()) => {}
                Err(chan::TrySendError::Full(ev)) => {
                    self.pending.push_front(ev);
                    break;
                }
                Err(chan::TrySendError::Closed(_)) => {
                    self.pending.clear();
                    break;
                }
            }
        }
    }

    /// Converts session events into client events and completions.
    fn drain_session_events(&mut self, conn: &mut ConnState<'_>) -> bool {
        // Write-ahead: a QoS 2 message is delivered only once its id is durably held.
        if let Err(e) = self.persist() {
            conn.io_error.get_or_insert(Arc::new(e));
            return false;
        }
        let mut any = false;
        while let Some(ev) = self.session.poll_event() {
            any = true;
            match ev {
                SessionEvent::Connected { session_present } => {
                    conn.connected = true;
                    let reconnected = self.connected_once;
                    self.connected_once = true;
                    self.attempt = 0;
                    if let Some(reply) = self.connect_reply.take() {
                        let _ = reply.send(Ok(session_present));
                    }
                    if reconnected && !session_present {
                        self.resubscribe();
                    }
                    self.emit(Event::Connected {
                        session_present,
                        reconnected,
                        broker: conn.broker.clone(),
                    });
                }
                SessionEvent::Published(id) => {
                    if let Some(Waiter::Publish(reply)) = self.waiters.remove(&id) {
                        self.complete(reply, Ok(()), published);
                    }
                }
                SessionEvent::Subscribed { id, granted } => match self.waiters.remove(&id) {
                    Some(Waiter::Subscribe(reply, filters)) => {
                        self.record_subscriptions(&filters, &granted);
                        self.complete(reply, Ok(granted), Outcome::Subscribed);
                    }
                    Some(Waiter::Resubscribe(filters)) => {
                        self.record_subscriptions(&filters, &granted);
                    }
                    _ => {}
                },
                SessionEvent::Unsubscribed(id) => {
                    if let Some(Waiter::Unsubscribe(reply, filters)) = self.waiters.remove(&id) {
                        for f in &filters {
                            self.subscriptions.remove(f);
                        }
                        self.complete(reply, Ok(()), unsubscribed);
                    }
                }
                SessionEvent::Failed { id, error } => match self.waiters.remove(&id) {
                    Some(Waiter::Publish(reply)) => {
                        self.complete(reply, Err(error.into()), published);
                    }
                    Some(Waiter::Subscribe(reply, _)) => {
                        self.complete(reply, Err(error.into()), Outcome::Subscribed);
                    }
                    Some(Waiter::Unsubscribe(reply, _)) => {
                        self.complete(reply, Err(error.into()), unsubscribed);
                    }
                    Some(Waiter::Resubscribe(_)) | None => {}
                },
                SessionEvent::Message(p) => {
                    let (qos, packet_id) = (p.qos(), p.packet_id());
                    self.emit(Event::Message(Message {
                        topic: p.topic,
                        payload: p.payload,
                        qos,
                        retain: p.retain,
                        dup: p.dup,
                        packet_id,
                    }));
                }
                SessionEvent::Disconnected(reason) => {
                    conn.ended.get_or_insert(reason);
                }
                _ => {}
            }
        }
        any
    }

    fn record_subscriptions(
        &mut self,
        filters: &[(TopicFilter, QoS)],
        granted: &[SubscribeReturnCode],
    ) {
        for ((filter, _), code) in filters.iter().zip(granted) {
            if let SubscribeReturnCode::Success(qos) = code {
                self.subscriptions.insert(filter.clone(), *qos);
            }
        }
    }

    fn resubscribe(&mut self) {
        let enabled = self
            .options
            .reconnect
            .as_ref()
            .is_some_and(|p| p.resubscribe);
        if !enabled || self.subscriptions.is_empty() {
            return;
        }
        let filters: Vec<(TopicFilter, QoS)> = self
            .subscriptions
            .iter()
            .map(|(f, q)| (f.clone(), *q))
            .collect();
        // Chunked so one SUBSCRIBE stays well under any broker's packet limit.
        for chunk in filters.chunks(64) {
            if let Ok(id) = self.session.subscribe(now(), chunk.to_vec()) {
                self.waiters.insert(id, Waiter::Resubscribe(chunk.to_vec()));
            }
        }
    }

    /// Opens the session store at the first `connect` and restores the session from it
    /// (clean session: empties it instead, and keeps nothing).
    fn open_store(&mut self) -> Result<(), StoreError> {
        let Some(dir) = &self.options.session_store else {
            return Ok(());
        };
        if self.store.is_some() {
            return Ok(());
        }
        let client_id = self.session.config().client_id.as_str().to_owned();
        let mut store = SessionStore::open(dir, &client_id)?;
        if self.options.clean_session {
            store.clear().map_err(|source| StoreError::Io {
                path: dir.clone(),
                source,
            })?;
            return Ok(());
        }
        // The session is fresh (never connected, nothing in flight) before the first
        // connect, so restoring cannot fail; if it did, connecting without the stored
        // state would break its guarantees, so say so instead.
        if let Err(e) = self.session.restore(store.snapshot()) {
            return Err(StoreError::Corrupt {
                path: dir.clone(),
                offset: 0,
                reason: e.to_string(),
            });
        }
        self.store = Some(Box::new(store));
        Ok(())
    }

    /// Makes the session's pending store ops durable (one write and one fsync per batch).
    /// Until this succeeds the session transmits nothing and hands out no event.
    fn persist(&mut self) -> io::Result<()> {
        match &mut self.store {
            Some(store) => store.persist(&mut self.session).map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("session store {}: {e}", store.dir().display()),
                )
            }),
            None => Ok(()),
        }
    }

    /// One connection: open the transport, CONNECT, and serve it until it ends.
    async fn connection(
        &mut self,
        broker: &Broker,
        commands: &mut chan::Receiver<Command>,
    ) -> Ended {
        let deadline = Instant::now() + self.options.connect_timeout;
        if broker.scheme.is_tls() && self.tls.is_none() {
            match self.options.tls.build() {
                Ok(config) => self.tls = Some(config),
                Err(e) => return Ended::ConnectFailed(e.into()),
            }
        }
        // Open the transport while still serving commands.
        let options = self.options.clone();
        let events = self.events.clone();
        // Boxed: the TLS and WebSocket handshakes are large futures, needed only while
        // connecting; inline they would bloat every idle connection's task (~20 KiB).
        let mut open = Box::pin(transport::open(
            broker,
            &options,
            self.tls.clone(),
            deadline,
        ));
        let stream = loop {
            tokio::select! {
                res = &mut open => match res {
                    Ok(stream) => break stream,
                    Err(e) => return Ended::ConnectFailed(e),
                },
                cmd = commands.recv(), if !self.commands_closed => match cmd {
                    Some(Command::Close { reply }) => {
                        self.want_connected = false;
                        if let Some(reply) = reply {
                            self.close_replies.push(reply);
                        }
                        let result = Ended::ConnectFailed(ConnectError::Closed);
                        self.finish_close_replies();
                        return result;
                    }
                    Some(cmd) => self.command(cmd),
                    None => {
                        self.commands_closed = true;
                        return Ended::Shutdown;
                    }
                },
                permit = events.reserve(), if !self.pending.is_empty() => {
                    self.send_pending(permit.ok());
                }
            }
        };
        // Free the handshake's allocation (the size of its largest state) before serving:
        // kept until the end of this function, it would stay with every connection.
        drop(open);
        self.serve(broker, stream, deadline, commands).await
    }

    /// Lets the tasks that what was just read woke run, then takes the commands they sent.
    ///
    /// `tokio::task::yield_now` runs this task again only after the scheduler has polled
    /// the I/O driver: one more `epoll_wait` per read, which on a stream of acknowledged
    /// messages is as many as the reads themselves. On a current-thread runtime a task that
    /// wakes itself goes to the back of the run queue, behind the tasks it woke, and nothing
    /// else happens in between ([`requeue`]); that is enough when the application is a
    /// spawned task. When the application is the runtime's `block_on` future, it is polled
    /// only after the queue empties, so if it has not taken its events yet, the deferred
    /// yield still follows.
    async fn app_turn(
        &mut self,
        requeue_is_a_turn: bool,
        commands: &mut chan::Receiver<Command>,
        conn: &mut ConnState<'_>,
    ) {
        if requeue_is_a_turn {
            requeue().await;
            if self.take_commands(commands, conn) > 0 || self.events.is_empty() {
                return;
            }
        }
        tokio::task::yield_now().await;
        self.take_commands(commands, conn);
    }

    /// Takes up to [`COMMAND_BATCH`] queued commands; returns how many.
    fn take_commands(
        &mut self,
        commands: &mut chan::Receiver<Command>,
        conn: &mut ConnState<'_>,
    ) -> usize {
        for n in 0..COMMAND_BATCH {
            match commands.try_recv() {
                Ok(cmd) => self.connected_command(cmd, conn),
                Err(_) => return n,
            }
        }
        COMMAND_BATCH
    }

    fn finish_close_replies(&mut self) {
        for reply in self.close_replies.drain(..) {
            let _ = reply.send(Ok(()));
        }
    }

    async fn serve(
        &mut self,
        broker: &Broker,
        mut stream: BoxStream,
        deadline: Instant,
        commands: &mut chan::Receiver<Command>,
    ) -> Ended {
        let mut conn = ConnState {
            broker,
            connected: false,
            ended: None,
            io_error: None,
            eof: false,
            closing: false,
            acks: AckPolicy::new(),
            lowat: u8::from(stream.unframed()),
            stream: StreamWatch::new(),
        };
        if let Err(e) = self.session.connect(now()) {
            return Ended::ConnectFailed(ConnectError::InvalidOptions(e.to_string()));
        }
        let mut outbox = BytesMut::new();
        let mut needs_flush = false;
        let mut timer: Pin<Box<Sleep>> = Box::pin(tokio::time::sleep_until(deadline));
        let mut timer_at: Option<Instant> = None;
        let mut close_deadline: Option<Instant> = None;
        // CONNECT must leave within the deadline too (seed code -1).
        let mut connect_sent = false;
        let events = self.events.clone();
        // The last turn read something (see the yield below).
        let mut just_read = false;
        // Something was read since the timer was last armed (a batched stream's deadline
        // moves with every read; see `lowat`).
        let mut read_since_arming = false;
        let requeue = requeue_is_a_turn();

        loop {
            // Handling events may queue packets (re-subscription after a reconnect) and
            // transmitting may complete QoS 0 publishes: repeat until both are quiet.
            for _ in 0..8 {
                // Write-ahead: the records protecting what is about to be sent go first.
                if let Err(e) = self.persist() {
                    conn.io_error.get_or_insert(Arc::new(e));
                    break;
                }
                // Encode only what the socket can take soon: a backlog of large publishes
                // would otherwise be copied into one buffer of many megabytes.
                let room = OUTBOX_HIGH_WATER.saturating_sub(outbox.len());
                let sent = self.session.poll_transmit_max(&mut outbox, room);
                if !self.drain_session_events(&mut conn) && sent == 0 {
                    break;
                }
            }

            if let Some(reason) = conn.ended.clone() {
                if matches!(reason, DisconnectReason::Local) && !conn.closing {
                    conn.closing = true;
                    close_deadline = Some(Instant::now() + CLOSE_FLUSH_TIMEOUT);
                }
                if !conn.closing || (outbox.is_empty() && !needs_flush) {
                    if conn.closing {
                        // Boxed: the largest state of this loop, needed once per connection.
                        let _ =
                            Box::pin(tokio::time::timeout(CLOSE_FLUSH_TIMEOUT, stream.shutdown()))
                                .await;
                        self.finish_close_replies();
                    }
                    return self.end(&conn, reason);
                }
            }
            if conn.eof || conn.io_error.is_some() {
                self.session.handle_closed(now());
                self.drain_session_events(&mut conn);
                let reason = conn
                    .ended
                    .clone()
                    .unwrap_or(DisconnectReason::TransportClosed);
                return self.end(&conn, reason);
            }

            // What was just read handed the application something (a message, a completion)
            // and there is something to write (acknowledgements): let the application run
            // once first. What it does in response (the next request of a request/response
            // exchange) then leaves in the same write as the acknowledgements, not in a write
            // of its own. Once per read, and not while closing.
            let woke_app = mem::take(&mut self.woke_app);
            if just_read && woke_app && !conn.closing && !self.commands_closed && !outbox.is_empty()
            {
                just_read = false;
                self.app_turn(requeue, commands, &mut conn).await;
                continue;
            }

            // A one-way stream is only ever acknowledged: anything else written ends its
            // batching (see `lowat`).
            if self.session.take_sent_other() {
                if conn.stream.stop() {
                    tracing::debug!("writing: no longer reading in batches");
                }
            } else if !outbox.is_empty() {
                conn.stream.on_ack();
            }
            // Reads that nothing answers: a broker with Nagle's algorithm on may hold its
            // next packet until they are ACKed (see `quickack`).
            if !outbox.is_empty() {
                // What is about to leave carries the ACK.
                conn.acks.on_write();
            } else if conn.acks.take_quickack() {
                transport::quickack(&*stream);
            }

            {
                // The next deadline: the session's timer, the connect deadline before CONNACK,
                // the flush deadline while closing.
                let mut next = self.session.poll_timeout().map(Instant::from_std);
                if !conn.connected {
                    next = Some(next.map_or(deadline, |t| t.min(deadline)));
                }
                if let Some(c) = close_deadline {
                    next = Some(next.map_or(c, |t| t.min(c)));
                }
                // A stream read in batches: its last bytes must not wait for more that may never
                // come. The deadline moves with every read.
                let patience = conn
                    .stream
                    .batching()
                    .then(|| Instant::now() + lowat::STREAM_PATIENCE);
                if let Some(p) = patience {
                    next = Some(next.map_or(p, |t| t.min(p)));
                }
                // Re-arm only for an earlier deadline: the keepalive deadline moves with every
                // packet, and resetting a tokio timer takes the timer driver's lock. A timer that
                // fires before the (moved) deadline is harmless: nothing is expired yet, and the
                // next turn arms it again.
                if let Some(at) = next
                    && (timer_at.is_none_or(|armed| at < armed)
                        || (patience.is_some() && read_since_arming && timer_at != next))
                {
                    timer.as_mut().reset(at);
                    timer_at = next;
                }
            }
            just_read = false;
            read_since_arming = false;

            // Acknowledgements owed, or a one-way stream: wake for several packets at a time
            // (see `lowat`).
            if conn.lowat != 0 {
                let mut mark = lowat::recv_low_water(self.session.owed_bytes());
                if mark == 1 && conn.stream.batching() {
                    mark = conn.stream.mark();
                }
                if mark != conn.lowat {
                    conn.lowat = mark;
                    transport::set_recv_low_water(&*stream, lowat::mark_bytes(mark));
                }
            }
            let can_read = !conn.closing && self.pending.len() < self.options.event_capacity;
            tokio::select! {
                io = poll_fn(|cx| poll_io(cx, &mut stream, &mut self.session, &mut outbox, &mut needs_flush, can_read)) => {
                    match io {
                        IoEvent::Read => {
                            just_read = true;
                            read_since_arming = true;
                            let t = Ticks::now();
                            if conn.acks.on_read(t) {
                                tracing::debug!("the broker waited for our delayed ACK (Nagle's algorithm): quick ACKs from now on");
                            }
                            if conn.lowat != 0 && self.options.coalesce_reads && conn.stream.on_read(t) {
                                tracing::debug!("a fast one-way stream: reading in batches");
                            }
                        }
                        IoEvent::Violation(e) => {
                            tracing::debug!(error = %e, "protocol violation by the broker");
                            conn.ended.get_or_insert(DisconnectReason::Protocol(e));
                        }
                        IoEvent::Progress => {}
                        IoEvent::Eof => conn.eof = true,
                        IoEvent::Error(e) => conn.io_error = Some(Arc::new(e)),
                    }
                }
                cmd = commands.recv(), if !self.commands_closed && !conn.closing => {
                    match cmd {
                        Some(cmd) => {
                            self.connected_command(cmd, &mut conn);
                            // Drain a burst so it leaves in one write.
                            self.take_commands(commands, &mut conn);
                        }
                        None => {
                            // Every handle is gone: leave politely.
                            self.commands_closed = true;
                            self.want_connected = false;
                            if self.session.disconnect(now()).is_err() {
                                return Ended::Shutdown;
                            }
                        }
                    }
                }
                permit = events.reserve(), if !self.pending.is_empty() => {
                    self.send_pending(permit.ok());
                }
                () = &mut timer, if timer_at.is_some() => {
                    timer_at = None;
                    // A batch's deadline: the stream paused or stalled, unless a whole batch
                    // is already readable (its wake-up raced the timer). Either way, back to
                    // every byte: lowering the mark makes the kernel signal what is there.
                    if conn.stream.batching() {
                        let readable = transport::readable_bytes(&*stream);
                        if readable >= usize::from(lowat::mark_bytes(conn.stream.mark())) {
                            conn.stream.stop();
                            tracing::debug!("a batch raced its timer: reading every byte again");
                        } else {
                            match conn.stream.timed_out(readable > 0) {
                                Some(mark) => tracing::debug!(bytes = lowat::mark_bytes(mark), "a batch stalled again with bytes waiting (the broker's window is smaller): batches halved"),
                                None if conn.stream.stalled() => tracing::debug!("a batch stalled with bytes waiting: reading every byte again"),
                                None => tracing::debug!("the stream paused: reading every byte again"),
                            }
                        }
                    }
                    let t = Instant::now();
                    if close_deadline.is_some_and(|c| t >= c) {
                        self.finish_close_replies();
                        return self.end(&conn, DisconnectReason::Local);
                    }
                    if !conn.connected && t >= deadline {
                        let stage = if connect_sent { ConnectStage::ConnAck } else { ConnectStage::Sending };
                        return Ended::ConnectFailed(ConnectError::Timeout { stage, after: self.options.connect_timeout });
                    }
                    self.session.handle_timeout(t.into_std());
                }
            }
            if !connect_sent && outbox.is_empty() && !needs_flush {
                connect_sent = true;
                // The CONNECT's buffer: an idle connection keeps none.
                outbox = BytesMut::new();
            }
            if self.commands_closed && conn.ended.is_some() && !conn.closing {
                return Ended::Shutdown;
            }
        }
    }

    fn connected_command(&mut self, cmd: Command, conn: &mut ConnState<'_>) {
        match cmd {
            Command::Close { reply } => {
                self.want_connected = false;
                if let Some(reply) = reply {
                    self.close_replies.push(reply);
                }
                if conn.connected {
                    if self.session.disconnect(now()).is_err() {
                        conn.ended.get_or_insert(DisconnectReason::Local);
                    }
                } else {
                    // Still waiting for CONNACK: abandon the attempt.
                    conn.ended.get_or_insert(DisconnectReason::Local);
                }
            }
            other => self.command(other),
        }
    }

    /// Maps how a connection ended onto the client's error types.
    fn end(&mut self, conn: &ConnState<'_>, reason: DisconnectReason) -> Ended {
        // Make sure the session knows the transport is gone (idempotent after DISCONNECT).
        self.session.handle_closed(now());
        let mut scratch = ConnState {
            broker: conn.broker,
            connected: conn.connected,
            ended: Some(reason.clone()),
            io_error: None,
            eof: false,
            closing: false,
            acks: AckPolicy::new(),
            lowat: 0,
            stream: StreamWatch::new(),
        };
        self.drain_session_events(&mut scratch);
        if self.commands_closed && !self.want_connected && conn.closing {
            return Ended::Shutdown;
        }
        if conn.connected {
            let error = match (&conn.io_error, reason) {
                (Some(e), DisconnectReason::TransportClosed) => ConnectionError::Io(e.clone()),
                (_, DisconnectReason::Local) => ConnectionError::Local,
                (_, DisconnectReason::PingTimeout(d)) => ConnectionError::PingTimeout(d),
                (_, DisconnectReason::Protocol(e)) => ConnectionError::Protocol(e),
                _ => ConnectionError::Closed,
            };
            return Ended::Lost(error);
        }
        let error = match reason {
            DisconnectReason::Refused(code) => {
                if code == ConnectReturnCode::UnacceptableProtocolVersion
                    && self.options.protocol == Protocol::Auto
                    && self.session.config().level == ProtocolLevel::V3_1_1
                {
                    // Paho's fallback: try 3.1 next, on the same broker.
                    self.session.set_level(ProtocolLevel::V3_1);
                    self.retry_same = true;
                }
                ConnectError::Refused(code)
            }
            DisconnectReason::NotConnAck(t) => ConnectError::NotConnAck(t),
            DisconnectReason::ConnAckTimeout(_) => ConnectError::Timeout {
                stage: ConnectStage::ConnAck,
                after: self.options.connect_timeout,
            },
            // A packet a client may receive, but not first: the seed's -4 case.
            DisconnectReason::Protocol(ProtocolError::UnexpectedPacket(t)) => {
                ConnectError::NotConnAck(t)
            }
            DisconnectReason::Protocol(e) => ConnectError::Protocol(e),
            DisconnectReason::Local => ConnectError::Closed,
            _ => match &conn.io_error {
                Some(e) if is_reset(e) => ConnectError::ServerNotFound {
                    addr: conn.broker.host_port(),
                    reason: e.to_string(),
                },
                Some(e) => ConnectError::Io {
                    addr: conn.broker.host_port(),
                    reason: e.to_string(),
                },
                None => ConnectError::ClosedBeforeConnAck,
            },
        };
        Ended::ConnectFailed(error)
    }
}

fn is_reset(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionRefused
    )
}

fn reply_connect(
    reply: Option<oneshot::Sender<Result<bool, ConnectError>>>,
    result: Result<bool, ConnectError>,
) {
    if let Some(reply) = reply {
        let _ = reply.send(result);
    }
}

#[cold]
fn unreachable_close() {
    // Close is handled by the callers of `command` before it gets here.
    tracing::error!("internal: close command routed to the queue");
}

/// What the driver knows about the current connection.
struct ConnState<'b> {
    /// Borrowed: every connection's task holds this state, and a `Broker` is 104 bytes.
    broker: &'b Broker,
    connected: bool,
    ended: Option<DisconnectReason>,
    io_error: Option<Arc<io::Error>>,
    eof: bool,
    closing: bool,
    /// When to ACK reads that nothing answers (see `quickack`).
    acks: AckPolicy,
    /// The socket's receive low-water mark in `lowat`'s units (see `lowat::mark_bytes`): 1
    /// (every byte) at first; 0 when the stream is not
    /// [`unframed`](transport::Stream::unframed) and it stays unset.
    lowat: u8,
    /// Whether a fast one-way stream is being read in batches (see `lowat`).
    stream: StreamWatch,
}

enum IoEvent {
    /// Bytes were read and handed to the session.
    Read,
    /// What was read broke the protocol (the session has ended the connection).
    Violation(ProtocolError),
    /// Some of the outbox was written or flushed.
    Progress,
    Eof,
    Error(io::Error),
}

/// Writes what it can of `outbox`, flushes, and reads into `inbox`; ready as soon as any of
/// them made progress.
fn poll_io(
    cx: &mut Context<'_>,
    stream: &mut BoxStream,
    session: &mut Session,
    outbox: &mut BytesMut,
    needs_flush: &mut bool,
    can_read: bool,
) -> Poll<IoEvent> {
    let mut progress = false;
    while !outbox.is_empty() {
        match Pin::new(&mut *stream).poll_write(cx, outbox) {
            Poll::Ready(Ok(0)) => {
                return Poll::Ready(IoEvent::Error(io::ErrorKind::WriteZero.into()));
            }
            Poll::Ready(Ok(n)) => {
                tracing::trace!(bytes = n, "wrote");
                outbox.advance(n);
                *needs_flush = true;
                progress = true;
            }
            Poll::Ready(Err(e)) => return Poll::Ready(IoEvent::Error(e)),
            Poll::Pending => break,
        }
    }
    if outbox.is_empty() && *needs_flush {
        match Pin::new(&mut *stream).poll_flush(cx) {
            Poll::Ready(Ok(())) => {
                *needs_flush = false;
                progress = true;
            }
            Poll::Ready(Err(e)) => return Poll::Ready(IoEvent::Error(e)),
            Poll::Pending => {}
        }
    }
    if outbox.capacity() > MAX_KEPT_OUTBOX && outbox.is_empty() {
        // Give back memory after an unusually large burst; smaller buffers are kept, so a
        // steady stream does not allocate and free its send buffer on every wake-up.
        *outbox = BytesMut::new();
    }
    if can_read && let Poll::Ready(ev) = poll_read_into(cx, stream, session) {
        return Poll::Ready(ev);
    }
    if progress {
        Poll::Ready(IoEvent::Progress)
    } else {
        Poll::Pending
    }
}

thread_local! {
    /// Where every connection on this thread reads into: the session copies what it is
    /// given into its own buffer, so an idle connection holds no receive buffer at all.
    static READ_BUF: RefCell<Box<[u8]>> = RefCell::new(vec![0; READ_CHUNK].into_boxed_slice());
}

/// Reads once (up to [`READ_CHUNK`] bytes) and hands the bytes to the session.
fn poll_read_into(
    cx: &mut Context<'_>,
    stream: &mut BoxStream,
    session: &mut Session,
) -> Poll<IoEvent> {
    let mut read = |buf: &mut [u8]| {
        let mut rb = ReadBuf::new(buf);
        match Pin::new(&mut *stream).poll_read(cx, &mut rb) {
            Poll::Ready(Ok(())) if rb.filled().is_empty() => Poll::Ready(IoEvent::Eof),
            Poll::Ready(Ok(())) => {
                tracing::trace!(bytes = rb.filled().len(), "read");
                Poll::Ready(match session.handle_input(now(), rb.filled()) {
                    Ok(()) => IoEvent::Read,
                    Err(e) => IoEvent::Violation(e),
                })
            }
            Poll::Ready(Err(e)) => Poll::Ready(IoEvent::Error(e)),
            Poll::Pending => Poll::Pending,
        }
    };
    READ_BUF.with(|cell| match cell.try_borrow_mut() {
        Ok(mut buf) => read(&mut buf),
        // Not reentered in practice (a stream does not poll another client's driver); if
        // it ever is, a buffer of its own does the job.
        Err(_) => read(&mut vec![0; READ_CHUNK]),
    })
}

/// Whether [`requeue`] lets the tasks this one woke run first: on a current-thread runtime
/// (see [`Driver::app_turn`]). On a multi-thread runtime a task that wakes itself takes the
/// worker's next-task slot, ahead of what it woke.
fn requeue_is_a_turn() -> bool {
    tokio::runtime::Handle::try_current()
        .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::CurrentThread)
}

/// Returns `Pending` once after waking this task: the scheduler queues it again at once.
async fn requeue() {
    let mut woken = false;
    poll_fn(|cx| {
        if woken {
            Poll::Ready(())
        } else {
            woken = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    })
    .await;
}

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

fn published((): ()) -> Outcome {
    Outcome::Published
}

fn unsubscribed((): ()) -> Outcome {
    Outcome::Unsubscribed
}
#[cfg(test)]
mod tests {
    /// Every connection's task holds this future; an idle connection costs little only if
    /// it stays small (the connect-time handshakes are boxed for that reason).
    #[test]
    fn driver_future_stays_small() {
        let (_tx, commands) = crate::chan::channel(1);
        let (events, _rx) = crate::chan::channel(1);
        let fut = super::run(Box::new(crate::ConnectOptions::new("x")), commands, events);
        let size = size_of_val(&fut);
        assert!(size <= 1448, "driver future is {size} bytes");
    }
}
