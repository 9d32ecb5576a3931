//! The handles' commands, in the order they were made: `connect()` and `close()` move the
//! driver between phases, requests (publish, subscribe, unsubscribe, ack) go to the session
//! in every phase, and completions go back to whoever waits for them.

use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasherDefault, Hasher};

use tern_proto::session::{DisconnectReason, RequestId};
use tern_proto::{
    ApiMisuse, DisconnectV5, QoS, SubAckReasonCode, SubscribeProperties, SubscribeReturnCode,
    SubscriptionId, SubscriptionOptions, TopicFilter,
};
use tokio::sync::oneshot;

use super::read_tuning::Ticks;
use super::{CloseReply, Driver, Link, Phase, Stage, now};
use crate::broker::Broker;
use crate::chan;
use crate::client::{Command, Event, Outcome, Reply, Request};
use crate::error::{ClientError, ConnectError};
use crate::options::ConnectOptions;
use crate::v5::{SubAck, UnsubAck};

/// Commands drained per wake-up before writing, so bursts leave in few syscalls.
const COMMAND_BATCH: usize = 256;

/// Who is waiting for a request's completion.
pub(super) enum Waiter {
    Publish(Reply<()>),
    Subscribe(Reply<Vec<SubscribeReturnCode>>, Vec<(TopicFilter, QoS)>),
    Unsubscribe(Reply<()>, Vec<TopicFilter>),
    /// MQTT 5 SUBSCRIBE with options.
    SubscribeV5(
        Reply<SubAck>,
        Vec<(TopicFilter, SubscriptionOptions)>,
        Option<SubscriptionId>,
    ),
    /// UNSUBSCRIBE whose reason codes are wanted.
    UnsubscribeV5(Reply<UnsubAck>, Vec<TopicFilter>),
    /// An automatic re-subscription after a reconnect (or the request/response topic's
    /// subscription): nobody waits, but the granted filters are recorded again.
    Resubscribe(
        Vec<(TopicFilter, SubscriptionOptions)>,
        Option<SubscriptionId>,
    ),
    /// The publish of a request/response exchange, by its Correlation Data.
    Request(bytes::Bytes),
}

/// SUBACK reason codes as 3.1.1 return codes (for [`Client::subscribe`](crate::Client::subscribe) at level 5).
pub(super) fn return_codes(reasons: &[SubAckReasonCode]) -> Vec<SubscribeReturnCode> {
    reasons
        .iter()
        .map(|r| {
            r.granted_qos()
                .map_or(SubscribeReturnCode::Failure, SubscribeReturnCode::Success)
        })
        .collect()
}

/// 3.1.1 return codes as MQTT 5 reason codes.
pub(crate) fn reason_codes(granted: &[SubscribeReturnCode]) -> Vec<SubAckReasonCode> {
    granted
        .iter()
        .map(|g| match g {
            SubscribeReturnCode::Success(QoS::AtMostOnce) => SubAckReasonCode::GrantedQoS0,
            SubscribeReturnCode::Success(QoS::AtLeastOnce) => SubAckReasonCode::GrantedQoS1,
            SubscribeReturnCode::Success(QoS::ExactlyOnce) => SubAckReasonCode::GrantedQoS2,
            SubscribeReturnCode::Failure => SubAckReasonCode::UnspecifiedError,
        })
        .collect()
}

/// Plain options at each filter's QoS.
pub(super) fn plain(filters: &[(TopicFilter, QoS)]) -> Vec<(TopicFilter, SubscriptionOptions)> {
    filters
        .iter()
        .map(|(f, q)| (f.clone(), SubscriptionOptions::qos(*q)))
        .collect()
}

/// The waiters of requests in flight, by request id.
pub(super) type Waiters = HashMap<RequestId, Waiter, BuildHasherDefault<RequestIdHasher>>;

/// Request ids are distinct counters: their value is a perfect hash, and SipHash would be a
/// measurable share of a publish's cost (one insert and one remove per message).
#[derive(Default)]
pub(super) struct RequestIdHasher(u64);

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

/// Checks what the session's configuration had to leave out silently (for options never
/// checked with [`ConnectOptions::validate`] or [`Client::try_new`](crate::Client::try_new)).
fn validate(options: &ConnectOptions) -> Result<(), ConnectError> {
    options.validate().map_err(ConnectError::Options)
}

pub(super) fn reply_connect(
    reply: Option<oneshot::Sender<Result<bool, ConnectError>>>,
    result: Result<bool, ConnectError>,
) {
    if let Some(reply) = reply {
        let _ = reply.send(result);
    }
}

pub(super) fn published((): ()) -> Outcome {
    Outcome::Published
}

pub(super) fn unsubscribed((): ()) -> Outcome {
    Outcome::Unsubscribed
}

impl Driver {
    /// Serves a command while no connection is open or being opened (phases `Idle` and
    /// `Backoff`).
    pub(super) fn offline_command(&mut self, cmd: Command) {
        match cmd {
            Command::Connect { brokers, reply } => self.connect(brokers, reply),
            Command::Close { reply, .. } => {
                if matches!(self.phase, Phase::Backoff { .. }) {
                    // Cancels a pending automatic reconnection.
                    self.phase = Phase::Idle;
                    if let Some(r) = self.connect_reply.take() {
                        let _ = r.send(Err(ConnectError::Closed));
                    }
                    if let Some(reply) = reply {
                        let _ = reply.send(Ok(()));
                    }
                } else if let Some(reply) = reply {
                    let _ = reply.send(Err(ClientError::NotConnected));
                }
            }
            Command::Request(request) => self.request(request, now()),
        }
    }

    /// `connect()`: from `Idle`, or from `Backoff` (a new connect() takes over, at once).
    fn connect(
        &mut self,
        brokers: Vec<Broker>,
        reply: Option<oneshot::Sender<Result<bool, ConnectError>>>,
    ) {
        if matches!(self.phase, Phase::Backoff { .. })
            && let Some(old) = self.connect_reply.take()
        {
            let _ = old.send(Err(ConnectError::Closed));
        }
        if brokers.is_empty() {
            let e = ConnectError::InvalidOptions("no broker address given".into());
            reply_connect(reply, Err(e));
            return;
        }
        if let Err(e) = validate(&self.options) {
            self.emit(Event::ConnectFailed {
                error: e.clone(),
                will_retry: false,
            });
            reply_connect(reply, Err(e));
            return;
        }
        self.reconnect.start(brokers);
        if let Some(v5) = self.v5.as_deref_mut() {
            v5.redirect = None;
            v5.hops = 0;
        }
        self.connect_reply = reply;
        // The store is opened (off the runtime's thread) before the first attempt.
        self.phase = Phase::Online {
            open_store: self.options.session_store.is_some(),
        };
    }

    /// Serves a command while a connection is open (before CONNACK too); `now` is the
    /// driver's clock reading for the batch of commands this one came in.
    pub(super) fn online_command(
        &mut self,
        cmd: Command,
        link: &mut Link<'_>,
        now: std::time::Instant,
    ) {
        // A message the application took before issuing this command is acknowledged before
        // the command's packet leaves (a reply follows the PUBACK of what it answers).
        self.ack_taken();
        match cmd {
            Command::Close { reply, v5 } => {
                if let Some(d) = v5.as_deref()
                    && link.stage == Stage::Connected
                    && let Err(e) = self.check_disconnect(d)
                {
                    // A DISCONNECT with a reason the level or the expiry does not allow:
                    // refused, the connection stays.
                    if let Some(reply) = reply {
                        let _ = reply.send(Err(e.into()));
                    }
                    return;
                }
                self.phase = Phase::Idle;
                self.add_close_reply(reply);
                // What the application took before closing was acknowledged above, before
                // DISCONNECT; what it did not take never is.
                if link.stage == Stage::Connected {
                    if self.session.in_flight() + self.session.queued() > 0 {
                        // Requests made before `close()` leave and complete first (bounded);
                        // the DISCONNECT's reason waits in the boxed level 5 state.
                        link.draining = Some(Ticks::at(tokio::time::Instant::now()));
                        if let Some(d) = v5 {
                            self.v5.get_or_insert_default().disconnect = Some(d);
                        }
                    } else if self.disconnect(now, v5).is_err() {
                        link.ended.get_or_insert(DisconnectReason::Local);
                    }
                } else {
                    // Still waiting for CONNACK: abandon the attempt.
                    link.ended.get_or_insert(DisconnectReason::Local);
                }
            }
            Command::Connect { reply, .. } => {
                reply_connect(reply, Err(ConnectError::AlreadyConnected));
            }
            Command::Request(request) => self.request(request, now),
        }
    }

    /// Whether the session will take DISCONNECT `d` (what [`Session::disconnect_v5`]
    /// refuses), checked when `close_with` is called rather than after the drain, so that a
    /// refusal leaves the connection as it was.
    ///
    /// [`Session::disconnect_v5`]: tern_proto::Session::disconnect_v5
    fn check_disconnect(&self, d: &DisconnectV5) -> Result<(), ApiMisuse> {
        let config = self.session.config();
        if !config.level.is_v5() {
            return Err(ApiMisuse::NeedsV5("DISCONNECT with a reason"));
        }
        match d.properties.session_expiry_interval {
            Some(expiry) if expiry != 0 && config.session_expiry_interval() == 0 => {
                Err(ApiMisuse::ExpiryAfterZero)
            }
            _ => Ok(()),
        }
    }

    /// Sends DISCONNECT: `d`'s reason code and properties at MQTT 5, else a plain one.
    pub(super) fn disconnect(
        &mut self,
        now: std::time::Instant,
        d: Option<Box<DisconnectV5>>,
    ) -> Result<(), ApiMisuse> {
        match d {
            Some(d) => {
                let DisconnectV5 { reason, properties } = *d;
                self.session.disconnect_v5(now, reason, properties)
            }
            None => self.session.disconnect(now),
        }
    }

    /// Takes up to [`COMMAND_BATCH`] queued commands, so that a burst leaves in one write;
    /// returns how many. One clock reading serves the whole batch: `now`, if the caller took
    /// one already, else one taken at the first command (none when there is none).
    pub(super) fn take_commands(
        &mut self,
        commands: &mut chan::Receiver<Command>,
        link: &mut Link<'_>,
        mut now: Option<std::time::Instant>,
    ) -> usize {
        for n in 0..COMMAND_BATCH {
            if link.draining.is_some() {
                // What comes after `close()` waits for it to finish.
                return n;
            }
            match commands.try_recv() {
                Ok(cmd) => {
                    let at = *now.get_or_insert_with(super::now);
                    self.online_command(cmd, link, at);
                }
                Err(_) => return n,
            }
        }
        COMMAND_BATCH
    }

    /// Queues a publish, subscribe or unsubscribe in the session, or acknowledges a message
    /// (in every phase: offline, requests wait in the session's queue) at `now`.
    pub(super) fn request(&mut self, request: Request, now: std::time::Instant) {
        match request {
            Request::Publish { msg, reply } => match self.session.publish(now, msg) {
                Ok(id) => {
                    self.waiters.insert(id, Waiter::Publish(reply));
                }
                Err(e) => self.complete(reply, Err(e.into()), published),
            },
            Request::Subscribe { filters, reply } => {
                match self.session.subscribe(now, filters.clone()) {
                    Ok(id) => {
                        self.waiters.insert(id, Waiter::Subscribe(reply, filters));
                    }
                    Err(e) => self.complete(reply, Err(e.into()), Outcome::Subscribed),
                }
            }
            Request::Unsubscribe { filters, reply } => {
                match self.session.unsubscribe(now, filters.clone()) {
                    Ok(id) => {
                        self.waiters.insert(id, Waiter::Unsubscribe(reply, filters));
                    }
                    Err(e) => self.complete(reply, Err(e.into()), unsubscribed),
                }
            }
            Request::SubscribeV5 {
                filters,
                properties,
                reply,
            } => {
                let id = properties.subscription_identifier;
                match self.session.subscribe_v5(now, filters.clone(), properties) {
                    Ok(req) => {
                        self.waiters
                            .insert(req, Waiter::SubscribeV5(reply, filters, id));
                    }
                    Err(e) => {
                        self.complete(reply, Err(e.into()), |a| Outcome::SubscribedV5(Box::new(a)))
                    }
                }
            }
            Request::UnsubscribeV5 { filters, reply } => {
                match self.session.unsubscribe(now, filters.clone()) {
                    Ok(id) => {
                        self.waiters
                            .insert(id, Waiter::UnsubscribeV5(reply, filters));
                    }
                    Err(e) => self.complete(reply, Err(e.into()), |a| {
                        Outcome::UnsubscribedV5(Box::new(a))
                    }),
                }
            }
            Request::Exchange { publish, reply } => {
                self.rr_request(*publish, reply, now);
            }
            Request::GiveUp { ticket, after } => self.rr_give_up(ticket, after),
            Request::SubscribeStream {
                filter,
                options,
                tx,
                reply,
            } => {
                let v5 = self.session.config().level.is_v5();
                let id = self.add_route(&filter, tx, v5);
                let filters = vec![(filter.clone(), options)];
                let result = if v5 {
                    let properties = SubscribeProperties {
                        subscription_identifier: id,
                        ..SubscribeProperties::default()
                    };
                    self.session.subscribe_v5(now, filters.clone(), properties)
                } else if options.is_plain() {
                    self.session
                        .subscribe(now, vec![(filter.clone(), options.qos)])
                } else {
                    Err(ApiMisuse::NeedsV5("subscription options"))
                };
                match result {
                    Ok(req) => {
                        self.waiters
                            .insert(req, Waiter::SubscribeV5(reply, filters, id));
                    }
                    Err(e) => {
                        self.remove_route(id, &filter);
                        self.complete(reply, Err(e.into()), |a| Outcome::SubscribedV5(Box::new(a)));
                    }
                }
            }
            Request::ReAuthenticate { reply } => {
                let result = self.reauthenticate(now);
                self.complete(reply, result, |()| Outcome::ReAuthenticating);
            }
            Request::Ack(token) => self.session.ack(token),
        }
    }

    /// Sends a request's result to whoever waits for it.
    pub(super) fn complete<T>(
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

    /// Keeps `reply` (if any) for when the connection is closed.
    pub(super) fn add_close_reply(&mut self, reply: Option<CloseReply>) {
        if let Some(reply) = reply {
            self.close_replies.get_or_insert_default().push(reply);
        }
    }

    /// Answers every waiting `close()`: the connection is closed.
    pub(super) fn finish_close_replies(&mut self) {
        for reply in self.close_replies.take().into_iter().flat_map(|r| *r) {
            let _ = reply.send(Ok(()));
        }
    }

    pub(super) fn record_subscriptions(
        &mut self,
        filters: &[(TopicFilter, SubscriptionOptions)],
        granted: &[SubAckReasonCode],
        subscription_id: Option<SubscriptionId>,
    ) {
        for ((filter, options), code) in filters.iter().zip(granted) {
            if let Some(qos) = code.granted_qos() {
                self.subscriptions.insert(
                    filter.clone(),
                    (SubscriptionOptions { qos, ..*options }, subscription_id),
                );
            }
        }
    }

    /// Subscribes again to what was granted, after a reconnection without a session.
    pub(super) fn resubscribe(&mut self) {
        let enabled = self
            .options
            .reconnect
            .as_ref()
            .is_some_and(|p| p.resubscribe);
        if !enabled || self.subscriptions.is_empty() {
            return;
        }
        // At MQTT 5 by Subscription Identifier (one per SUBSCRIBE), with their options.
        let mut groups: BTreeMap<Option<u32>, Vec<(TopicFilter, SubscriptionOptions)>> =
            BTreeMap::new();
        for (f, (options, id)) in &self.subscriptions {
            groups
                .entry(id.map(SubscriptionId::get))
                .or_default()
                .push((f.clone(), *options));
        }
        // Chunked so one SUBSCRIBE stays well under any broker's packet limit.
        let now = now();
        let v5 = self.session.config().level.is_v5();
        for (id, filters) in groups {
            let id = id.and_then(SubscriptionId::new);
            for chunk in filters.chunks(64) {
                let sent = if v5 {
                    let properties = SubscribeProperties {
                        subscription_identifier: id,
                        ..SubscribeProperties::default()
                    };
                    self.session.subscribe_v5(now, chunk.to_vec(), properties)
                } else {
                    let plain = chunk.iter().map(|(f, o)| (f.clone(), o.qos)).collect();
                    self.session.subscribe(now, plain)
                };
                if let Ok(req) = sent {
                    self.waiters
                        .insert(req, Waiter::Resubscribe(chunk.to_vec(), id));
                }
            }
        }
    }
}
