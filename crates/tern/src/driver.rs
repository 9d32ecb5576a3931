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
use tern_proto::session::{
    AckToken, DisconnectReason, Event as SessionEvent, ProtocolError, RequestId,
};
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
use crate::options::{ConnectOptions, Protocol};
use crate::quickack::{AckPolicy, Ticks};
use crate::store::{SessionStore, StoreError};
use crate::transport::{self, BoxStream};

/// Commands drained per wake-up before writing, so bursts leave in few syscalls.
const COMMAND_BATCH: usize = 256;
/// Events (messages, completions) a driver hands the application in one turn before it
/// yields, so that clients sharing a thread take turns: tokio's cooperative budget per task
/// poll is 128 as well, which is also how many events an application's `recv` loop takes
/// per turn. One read may overshoot it (a 64 KiB read of small messages).
const TURN_EVENTS: u16 = 128;
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
    /// holds `event_capacity` messages or more, which bounds them; other events beyond
    /// `event_capacity` are dropped oldest first (`queue_event`), which bounds the rest.
    pending: Backlog,
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
    /// A `connect()` command asks for the session store to be opened before its first
    /// attempt.
    open_store_first: bool,
    /// A write of the session store never came back (its blocking task was cancelled or
    /// panicked): nothing protected by the store may be sent or delivered any more.
    store_lost: bool,
    /// Something was handed to the application (an event, a completion) since the serve
    /// loop last looked: it gets one turn before the driver writes (see `serve`).
    woke_app: bool,
    /// QoS 1/2 messages emitted and not yet taken by the application, oldest first, by
    /// their position in the event stream (counted from 1): acknowledged once the
    /// channel's taken count reaches it (see `ack_taken`). `None` when empty (boxed: 8
    /// bytes in every driver's future instead of 32, for a queue that is empty unless
    /// messages are arriving); always `None` with `manual_ack`.
    #[allow(clippy::box_collection)]
    unacked: Option<Box<VecDeque<(u64, AckToken)>>>,
    /// Events handed out since the driver last yielded on its own (see [`TURN_EVENTS`]).
    /// Waiting for the socket is not counted as a yield: that would take state in every
    /// connection's future, and an extra turn every 128 events costs next to nothing.
    turn_events: u16,
}

/// The position of the oldest message in `unacked` (0: none). A function of the field, not
/// of the driver: the `select!` branch that waits for it borrows only this field.
#[allow(clippy::box_collection)]
fn awaiting_take(unacked: &Option<Box<VecDeque<(u64, AckToken)>>>) -> u64 {
    unacked
        .as_deref()
        .and_then(VecDeque::front)
        .map_or(0, |&(position, _)| position)
}

/// Events waiting for room in the event channel, oldest first: allocated only while the
/// application lags (8 bytes in every driver's future instead of 40).
#[derive(Default)]
struct Backlog(Option<Box<BacklogQueue>>);

#[derive(Default)]
struct BacklogQueue {
    events: VecDeque<Event>,
    /// How many of `events` are [`Event::Message`]s.
    messages: usize,
}

impl Backlog {
    fn is_empty(&self) -> bool {
        self.0.is_none()
    }

    fn len(&self) -> usize {
        self.0.as_deref().map_or(0, |q| q.events.len())
    }

    /// How many waiting events are messages.
    fn messages(&self) -> usize {
        self.0.as_deref().map_or(0, |q| q.messages)
    }

    fn push_back(&mut self, ev: Event) {
        let queue = self.0.get_or_insert_default();
        queue.messages += usize::from(matches!(ev, Event::Message(_)));
        queue.events.push_back(ev);
    }

    fn push_front(&mut self, ev: Event) {
        let queue = self.0.get_or_insert_default();
        queue.messages += usize::from(matches!(ev, Event::Message(_)));
        queue.events.push_front(ev);
    }

    fn pop_front(&mut self) -> Option<Event> {
        let queue = self.0.as_deref_mut()?;
        let ev = queue.events.pop_front();
        if matches!(ev, Some(Event::Message(_))) {
            queue.messages -= 1;
        }
        if queue.events.is_empty() {
            self.0 = None;
        }
        ev
    }

    /// Removes the oldest event that is not a message; its index in the backlog.
    fn remove_oldest_status(&mut self) -> Option<usize> {
        let queue = self.0.as_deref_mut()?;
        let index = queue
            .events
            .iter()
            .position(|ev| !matches!(ev, Event::Message(_)))?;
        queue.events.remove(index);
        if queue.events.is_empty() {
            self.0 = None;
        }
        Some(index)
    }

    fn clear(&mut self) {
        self.0 = None;
    }
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
            pending: Backlog::default(),
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
            open_store_first: false,
            store_lost: false,
            woke_app: false,
            unacked: None,
            turn_events: 0,
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

/// Checks what `session_config` had to leave out silently (for options never checked with
/// [`ConnectOptions::validate`] or [`Client::try_new`](crate::Client::try_new)).
fn validate(options: &ConnectOptions) -> Result<(), ConnectError> {
    options.validate().map_err(ConnectError::Options)
}

impl Driver {
    async fn main(&mut self, commands: &mut chan::Receiver<Command>) {
        let mut retry_at: Option<Instant> = None;
        loop {
            if self.commands_closed && !self.want_connected {
                break;
            }
            if self.want_connected && retry_at.is_none() {
                if mem::take(&mut self.open_store_first)
                    && let Err(e) = self.open_store().await
                {
                    let e = ConnectError::Store(Arc::new(e));
                    self.want_connected = false;
                    self.emit(Event::ConnectFailed {
                        error: e.clone(),
                        will_retry: false,
                    });
                    reply_connect(self.connect_reply.take(), Err(e));
                    continue;
                }
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
                // Opened (off the runtime's thread) before the first attempt; see `main`.
                self.open_store_first = self.options.session_store.is_some();
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
            Command::Ack(token) => self.session.ack(token),
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
            Reply::Event(ticket) => {
                self.emit(Event::Completed {
                    ticket,
                    result: result.map(wrap),
                });
            }
        }
    }

    /// Hands `ev` to the application (or queues it in `pending`); false when nobody will
    /// read it (the `Events` is gone).
    fn emit(&mut self, ev: Event) -> bool {
        self.woke_app = true;
        self.turn_events = self.turn_events.saturating_add(1);
        if self.pending.is_empty() {
            match self.events.try_send(ev) {
                Ok(()) => true,
                Err(chan::TrySendError::Closed(_)) => false,
                Err(chan::TrySendError::Full(ev)) => {
                    self.queue_event(ev);
                    true
                }
            }
        } else {
            self.queue_event(ev);
            true
        }
    }

    /// Queues `ev` behind a full event channel, under the policy documented on
    /// [`ConnectOptions::event_capacity`]: messages always wait (and reading from the socket
    /// pauses while `event_capacity` of them do); other events wait up to
    /// `event_capacity` of them, beyond which the oldest non-message event is dropped and
    /// counted ([`Events::dropped`](crate::Events::dropped)), so a client whose
    /// application never reads `Events` neither stalls nor grows.
    fn queue_event(&mut self, ev: Event) {
        let is_message = matches!(ev, Event::Message(_));
        if !is_message
            && self.pending.len() - self.pending.messages() >= self.options.event_capacity
            && let Some(index) = self.pending.remove_oldest_status()
        {
            // Messages queued behind the dropped event moved up one place: their positions
            // (for acknowledging once taken) too.
            let position = self.events.sent() + index as u64 + 1;
            if let Some(unacked) = self.unacked.as_deref_mut() {
                for (p, _) in unacked.iter_mut().filter(|(p, _)| *p > position) {
                    *p -= 1;
                }
            }
            self.events.note_dropped();
            tracing::debug!("event channel full: dropped the oldest non-message event");
        }
        self.pending.push_back(ev);
    }

    /// Acknowledges, in order, every QoS 1/2 message the application has taken from the
    /// event channel since the last call: a message is acknowledged only once the
    /// application has it.
    fn ack_taken(&mut self) {
        let Some(unacked) = self.unacked.as_deref_mut() else {
            return;
        };
        let taken = self.events.taken();
        // Bounded: each iteration removes one entry.
        while let Some(&(position, token)) = unacked.front()
            && position <= taken
        {
            unacked.pop_front();
            self.session.ack(token);
        }
        if unacked.is_empty() {
            self.unacked = None;
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
        // Write-ahead: a QoS 2 message is delivered only once its id is durably held. Ops
        // still in the session hold its events back by themselves; ops pulled into the store
        // but not yet durable (a failed write) must hold them back here.
        if !self.durable() {
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
                SessionEvent::Message {
                    publish: p, ack, ..
                } => {
                    let (qos, packet_id) = (p.qos(), p.packet_id());
                    let manual = self.options.manual_ack;
                    let kept = self.emit(Event::Message(Message {
                        topic: p.topic,
                        payload: p.payload,
                        qos,
                        retain: p.retain,
                        dup: p.dup,
                        packet_id,
                        ack: ack.filter(|_| manual),
                    }));
                    // Acknowledged once taken (never, if nobody reads the events). Its
                    // position: behind everything in the channel and in `pending`.
                    if let Some(token) = ack
                        && kept
                        && !manual
                    {
                        let position = self.events.sent() + self.pending.len() as u64;
                        self.unacked
                            .get_or_insert_default()
                            .push_back((position, token));
                    }
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
    /// (clean session: empties it instead, and keeps nothing). The file work runs on
    /// tokio's blocking pool.
    async fn open_store(&mut self) -> Result<(), StoreError> {
        let Some(dir) = self.options.session_store.clone() else {
            return Ok(());
        };
        if self.store.is_some() {
            return Ok(());
        }
        let client_id = self.session.config().client_id.as_str().to_owned();
        let clean = self.options.clean_session;
        let hook = self.options.store_sync_hook.clone();
        let path = dir.clone();
        let opened = blocking(move || {
            let mut store = SessionStore::open(&dir, &client_id)?;
            if clean {
                store
                    .clear()
                    .map_err(|source| StoreError::Io { path: dir, source })?;
                return Ok(None);
            }
            store.set_sync_hook(hook);
            Ok(Some(store))
        })
        .await
        .map_err(|source| StoreError::Io { path, source })??;
        let Some(store) = opened else {
            return Ok(());
        };
        // The session is fresh (never connected, nothing in flight) before the first
        // connect, so restoring cannot fail; if it did, connecting without the stored
        // state would break its guarantees, so say so instead.
        if let Err(e) = self.session.restore(store.snapshot()) {
            return Err(StoreError::Corrupt {
                path: store.dir().to_path_buf(),
                offset: 0,
                reason: e.to_string(),
            });
        }
        self.store = Some(Box::new(store));
        Ok(())
    }

    /// Makes the session's pending store ops durable (one write and one fsync per batch,
    /// on tokio's blocking pool: a slow disk must not stall the runtime's thread, and so
    /// every other client and timer on it). Until this succeeds the caller polls the
    /// session for neither packets nor events.
    async fn persist(&mut self) -> io::Result<()> {
        let Some(store) = self.store.as_mut() else {
            return if self.store_lost {
                Err(io::Error::other(
                    "session store lost: a write never completed",
                ))
            } else {
                Ok(())
            };
        };
        if !store.pull(&mut self.session) {
            return Ok(());
        }
        let mut store = self.store.take();
        let written = blocking(move || {
            let result = store.as_mut().map_or(Ok(()), |s| s.flush());
            (store, result)
        })
        .await;
        let (store, result) = match written {
            Ok(done) => done,
            Err(e) => {
                self.store_lost = true;
                return Err(e);
            }
        };
        self.store = store;
        result.map_err(|e| {
            let dir = self.store.as_ref().map(|s| s.dir().display().to_string());
            io::Error::new(
                e.kind(),
                format!("session store {}: {e}", dir.unwrap_or_default()),
            )
        })
    }

    /// Whether everything pulled from the session into the store is durable.
    fn durable(&self) -> bool {
        !self.store_lost && self.store.as_ref().is_none_or(|s| !s.has_pending())
    }

    /// One connection: open the transport, CONNECT, and serve it until it ends.
    async fn connection(
        &mut self,
        broker: &Broker,
        commands: &mut chan::Receiver<Command>,
    ) -> Ended {
        let deadline = Instant::now() + self.options.connect_timeout;
        match broker.uri_credentials(&self.options) {
            Ok(Some((user, password))) => self.session.set_credentials(user, password),
            Ok(None) => {}
            Err(e) => return Ended::ConnectFailed(e),
        }
        if broker.scheme.is_tls() && self.tls.is_none() {
            // Loading the system's roots reads files: off the runtime's thread.
            let tls = self.options.tls.clone();
            match blocking(move || tls.build()).await {
                Ok(Ok(config)) => self.tls = Some(config),
                Ok(Err(e)) => return Ended::ConnectFailed(e.into()),
                Err(e) => {
                    return Ended::ConnectFailed(ConnectError::Io {
                        addr: broker.host_port(),
                        source: Arc::new(e),
                    });
                }
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
        let read_tuning = self.options.read_tuning;
        let requeue = requeue_is_a_turn();

        loop {
            // Messages the application took since the last turn: acknowledge them.
            self.ack_taken();
            // Handling events may queue packets (re-subscription after a reconnect) and
            // transmitting may complete QoS 0 publishes: repeat until both are quiet.
            for _ in 0..8 {
                // Write-ahead: the records protecting what is about to be sent go first.
                if let Err(e) = self.persist().await {
                    conn.io_error.get_or_insert(Arc::new(e));
                    break;
                }
                // Encode only what the socket can take soon: a backlog of large publishes
                // would otherwise be copied into one buffer of many megabytes.
                let room = OUTBOX_HIGH_WATER.saturating_sub(outbox.len());
                let sent = self.session.poll_transmit_max(&mut outbox, room);
                // Transmitting may free slots for queued publishes: their records, then the
                // events.
                if let Err(e) = self.persist().await {
                    conn.io_error.get_or_insert(Arc::new(e));
                    break;
                }
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
                if let Err(e) = self.persist().await {
                    tracing::debug!(error = %e, "session store");
                }
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
            if just_read
                && woke_app
                && !conn.closing
                && !self.commands_closed
                && (!outbox.is_empty() || self.unacked.is_some())
            {
                just_read = false;
                self.turn_events = 0;
                self.app_turn(requeue, commands, &mut conn).await;
                continue;
            }
            // A turn's worth handed out: yield before reading more, so that the application,
            // and other clients on the same thread, get their turn (a subscriber that never
            // has anything to write would otherwise read until the event channel is full).
            if self.turn_events >= TURN_EVENTS && !conn.closing && !self.commands_closed {
                just_read = false;
                self.turn_events = 0;
                self.app_turn(requeue, commands, &mut conn).await;
                continue;
            }

            // Reads that nothing answers: a broker with Nagle's algorithm on may hold its
            // next packet until they are ACKed (see `quickack`). This sends ACKs sooner; it
            // never waits for anything.
            if read_tuning {
                if !outbox.is_empty() {
                    // What is about to leave carries the ACK.
                    conn.acks.on_write();
                } else if conn.acks.take_quickack() {
                    transport::quickack(&*stream);
                }
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
                // Re-arm only for an earlier deadline: the keepalive deadline moves with every
                // packet, and resetting a tokio timer takes the timer driver's lock. A timer that
                // fires before the (moved) deadline is harmless: nothing is expired yet, and the
                // next turn arms it again.
                if let Some(at) = next
                    && timer_at.is_none_or(|armed| at < armed)
                {
                    timer.as_mut().reset(at);
                    timer_at = next;
                }
            }
            just_read = false;

            // Only messages hold reading back: other events waiting are bounded by dropping
            // (see `queue_event`), and must not stall a client nobody reads events from.
            let can_read = !conn.closing && self.pending.messages() < self.options.event_capacity;
            tokio::select! {
                io = poll_fn(|cx| poll_io(cx, &mut stream, &mut self.session, &mut outbox, &mut needs_flush, can_read)) => {
                    match io {
                        IoEvent::Read => {
                            just_read = true;
                            if read_tuning && conn.acks.on_read(Ticks::at(Instant::now())) {
                                tracing::debug!("the broker waited for our delayed ACK (Nagle's algorithm): quick ACKs from now on");
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
                // The oldest message awaiting the application was taken: acknowledged at the
                // top of the loop.
                _ = poll_fn(|cx| events.poll_taken(cx, awaiting_take(&self.unacked))), if self.unacked.is_some() && !conn.closing => {}
                () = &mut timer, if timer_at.is_some() => {
                    timer_at = None;
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
        // A message the application took before issuing this command is acknowledged before
        // the command's packet leaves (a reply follows the PUBACK of what it answers).
        self.ack_taken();
        match cmd {
            Command::Close { reply } => {
                self.want_connected = false;
                if let Some(reply) = reply {
                    self.close_replies.push(reply);
                }
                // What the application took before closing was acknowledged above, before
                // DISCONNECT; what it did not take never is.
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
                Some(e) if is_reset(e) => ConnectError::reset_during_connect(conn.broker, e),
                Some(e) => ConnectError::Io {
                    addr: conn.broker.host_port(),
                    source: e.clone(),
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
    /// When to ACK reads that nothing answers (see `quickack`); unused with
    /// `ConnectOptions::read_tuning` off.
    acks: AckPolicy,
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

/// Runs blocking work (file IO, fsync) on tokio's blocking pool, off the runtime's threads;
/// an error when the task never completed (cancelled at shutdown, or it panicked).
async fn blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> io::Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| io::Error::other(format!("blocking task did not complete: {e}")))
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
