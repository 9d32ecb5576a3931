//! The callback face, mirroring the seed's module for code that does not want async:
//! `on_connect`, `on_offline`, `on_message`, `connect(ok, fail)`, and a completion callback
//! **per call** for publish / subscribe / unsubscribe (the seed's "the last callback wins
//! for ALL calls" is a limitation we do not copy).
//!
//! A QoS 1/2 message is acknowledged to the broker once its `on_message` handler has
//! returned (or when the handler calls [`CallbackClient::ack`], with
//! [`ConnectOptions::manual_ack`](crate::ConnectOptions::manual_ack)).
//!
//! MQTT 5 ([`Protocol::V5`](crate::Protocol)) the same way: [`publish_with`](CallbackClient::publish_with),
//! [`subscribe_with`](CallbackClient::subscribe_with), [`unsubscribe_with`](CallbackClient::unsubscribe_with)
//! with per-call completions carrying the broker's reason codes; the connection's level and
//! capabilities from [`protocol`](CallbackClient::protocol) and
//! [`server_capabilities`](CallbackClient::server_capabilities); `on_offline` gets the
//! broker's DISCONNECT reason ([`ConnectionError::Server`]);
//! [`subscribe_handler`](CallbackClient::subscribe_handler) gives a subscription (a shared
//! one too) its own message handler; [`request`](CallbackClient::request) is
//! request/response, its callback getting the response (or the timeout) in order with the
//! messages.
//!
//! No runtime to create: clients share one background tokio runtime, and each client has
//! one dispatcher thread that runs its callbacks one at a time, in event order. Callbacks
//! never run inside the driver, so a callback that publishes cannot deadlock it.
//!
//! ```no_run
//! use tern::callback::CallbackClient;
//! use tern::{Broker, ConnectOptions, QoS};
//! let m = CallbackClient::new(ConnectOptions::new("clientid"));
//! m.on_message(|_c, msg| println!("{}: {:?}", msg.topic, msg.payload));
//! m.connect(
//!     Broker::tcp("127.0.0.1", 1883),
//!     |c| {
//!         c.subscribe([("/topic", QoS::AtMostOnce)], |_c, _granted| println!("subscribe success"))
//!             .ok();
//!         c.publish("/topic", "hello", QoS::AtMostOnce, false, |_c, _r| println!("sent")).ok();
//!     },
//!     |_c, err| println!("failed reason: {}", err.code()),
//! );
//! ```

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};
use std::thread;

use bytes::Bytes;
use tern_proto::{QoS, ServerCapabilities, SubscribeReturnCode, TopicFilter};

use crate::broker::Broker;
use crate::client::{Client, Event, Events, Message, Outcome, Ticket};
use crate::error::{ClientError, ConnectError, ConnectionError};
use crate::options::{ConnectOptions, Protocol};
use crate::v5::{Publish, SubAck, Subscription, UnsubAck};

type ConnectFn = Box<dyn FnMut(&CallbackClient) + Send>;
type OfflineFn = Box<dyn FnMut(&CallbackClient, &ConnectionError) + Send>;
type MessageFn = Box<dyn FnMut(&CallbackClient, &Message) + Send>;
type ConnOkFn = Box<dyn FnOnce(&CallbackClient) + Send>;
type ConnFailFn = Box<dyn FnOnce(&CallbackClient, &ConnectError) + Send>;
type DoneFn = Box<dyn FnOnce(&CallbackClient, Result<Outcome, ClientError>) + Send>;

#[derive(Default)]
struct Handlers {
    on_connect: Option<ConnectFn>,
    on_offline: Option<OfflineFn>,
    on_message: Option<MessageFn>,
    connect_ok: Option<ConnOkFn>,
    connect_fail: Option<ConnFailFn>,
    done: HashMap<Ticket, DoneFn>,
    /// Per-subscription handlers ([`CallbackClient::subscribe_handler`]).
    routes: Vec<HandlerRoute>,
    /// The last Subscription Identifier given to a handler.
    next_route_id: u32,
}

/// A subscription's own message handler.
struct HandlerRoute {
    /// The filter its messages match (without `$share/group/` or `$queue/`).
    filter: TopicFilter,
    /// MQTT 5: the Subscription Identifier it was made with.
    id: Option<u32>,
    /// `None` while it runs.
    handler: Option<MessageFn>,
}

struct Inner {
    client: Client,
    handlers: Mutex<Handlers>,
    /// The protocol level and MQTT 5 capabilities of the last connection.
    connection: Mutex<Option<(Protocol, Option<Arc<ServerCapabilities>>)>>,
}

/// A client driven by callbacks; cheap to clone. See the [module docs](self).
#[derive(Clone)]
pub struct CallbackClient {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for CallbackClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallbackClient").finish_non_exhaustive()
    }
}

/// The runtime shared by every callback client: one worker thread is plenty, the work per
/// message is small and the dispatcher threads run the user's code.
fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("tern-driver")
            .enable_all()
            .build()
            // Building a runtime fails only when the OS refuses a thread or an epoll fd.
            .expect("tern: cannot start the background tokio runtime")
    })
}

impl CallbackClient {
    /// Creates a client (not yet connected) and its dispatcher thread.
    pub fn new(options: ConnectOptions) -> Self {
        let (client, events) = Client::new_on(runtime().handle(), options);
        let inner = Arc::new(Inner {
            client,
            handlers: Mutex::new(Handlers::default()),
            connection: Mutex::new(None),
        });
        let weak = Arc::downgrade(&inner);
        // If the thread cannot be spawned the client still works, without callbacks.
        let _ = thread::Builder::new()
            .name("tern-callbacks".to_owned())
            .spawn(move || dispatch(weak, events));
        Self { inner }
    }

    /// The async handle underneath, for mixing styles.
    pub fn client(&self) -> &Client {
        &self.inner.client
    }

    fn handlers(&self) -> MutexGuard<'_, Handlers> {
        lock(&self.inner.handlers)
    }

    /// Called after every successful connection (the seed's `on("connect")`).
    pub fn on_connect(&self, f: impl FnMut(&Self) + Send + 'static) {
        self.handlers().on_connect = Some(Box::new(f));
    }

    /// Called when an established connection ends (the seed's `on("offline")`), with why.
    pub fn on_offline(&self, f: impl FnMut(&Self, &ConnectionError) + Send + 'static) {
        self.handlers().on_offline = Some(Box::new(f));
    }

    /// Called for every message received (the seed's `on("message")`).
    pub fn on_message(&self, f: impl FnMut(&Self, &Message) + Send + 'static) {
        self.handlers().on_message = Some(Box::new(f));
    }

    /// Starts connecting; `ok` runs at CONNACK, `fail` with the reason (`err.code()` is the
    /// seed's -5..5) if the attempt fails. Returns at once.
    pub fn connect(
        &self,
        broker: Broker,
        ok: impl FnOnce(&Self) + Send + 'static,
        fail: impl FnOnce(&Self, &ConnectError) + Send + 'static,
    ) -> Result<(), ClientError> {
        self.connect_any(vec![broker], ok, fail)
    }

    /// Like [`connect`](Self::connect), over a list of brokers tried in order.
    pub fn connect_any(
        &self,
        brokers: Vec<Broker>,
        ok: impl FnOnce(&Self) + Send + 'static,
        fail: impl FnOnce(&Self, &ConnectError) + Send + 'static,
    ) -> Result<(), ClientError> {
        {
            let mut h = self.handlers();
            h.connect_ok = Some(Box::new(ok));
            h.connect_fail = Some(Box::new(fail));
        }
        self.inner.client.start_connect(brokers)
    }

    /// Publishes; `done` runs when it completes (QoS 0 written, QoS 1 PUBACK, QoS 2
    /// PUBCOMP) or fails. Blocks only while the command queue is full.
    pub fn publish(
        &self,
        topic: &str,
        payload: impl Into<Bytes>,
        qos: QoS,
        retain: bool,
        done: impl FnOnce(&Self, Result<(), ClientError>) + Send + 'static,
    ) -> Result<(), ClientError> {
        let payload = payload.into();
        self.with_ticket(
            |c| c.try_publish(topic, payload.clone(), qos, retain),
            Box::new(move |c, r| done(c, r.map(|_| ()))),
        )
    }

    /// Subscribes to every `(filter, qos)` in one SUBSCRIBE; `done` gets the granted QoS
    /// (or failure) per filter.
    pub fn subscribe<I, S>(
        &self,
        filters: I,
        done: impl FnOnce(&Self, Result<Vec<SubscribeReturnCode>, ClientError>) + Send + 'static,
    ) -> Result<(), ClientError>
    where
        I: IntoIterator<Item = (S, QoS)>,
        S: AsRef<str>,
    {
        let filters: Vec<(String, QoS)> = filters
            .into_iter()
            .map(|(f, q)| (f.as_ref().to_owned(), q))
            .collect();
        self.with_ticket(
            |c| c.try_subscribe(filters.iter().map(|(f, q)| (f.as_str(), *q))),
            Box::new(move |c, r| {
                done(
                    c,
                    r.map(|o| match o {
                        Outcome::Subscribed(granted) => granted,
                        _ => Vec::new(),
                    }),
                );
            }),
        )
    }

    /// Unsubscribes from every filter in one UNSUBSCRIBE; `done` runs at UNSUBACK.
    pub fn unsubscribe<I, S>(
        &self,
        filters: I,
        done: impl FnOnce(&Self, Result<(), ClientError>) + Send + 'static,
    ) -> Result<(), ClientError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let filters: Vec<String> = filters.into_iter().map(|f| f.as_ref().to_owned()).collect();
        self.with_ticket(
            |c| c.try_unsubscribe(filters.iter()),
            Box::new(move |c, r| done(c, r.map(|_| ()))),
        )
    }

    /// Acknowledges `msg` to the broker, with
    /// [`ConnectOptions::manual_ack`](crate::ConnectOptions::manual_ack) on (see
    /// [`Client::ack`]); without it, a message is acknowledged when its `on_message`
    /// handler returns. Blocks only while the command queue is full.
    pub fn ack(&self, msg: &Message) -> Result<(), ClientError> {
        retry_while_full(|| self.inner.client.try_ack(msg))
    }

    /// Sends DISCONNECT once the requests made before it have left and completed (as
    /// [`Client::close`], bounded) and closes; `on_offline` follows with
    /// [`ConnectionError::Local`]. Called from an `on_message` handler, it leaves that
    /// message unacknowledged (its handler has not returned; with clean session off the
    /// broker delivers it again) unless the handler acked it first with
    /// [`ack`](Self::ack) under `manual_ack`.
    pub fn close(&self) -> Result<(), ClientError> {
        self.inner.client.try_close()
    }

    /// The protocol level of the last connection (what [`Protocol::Auto`] settled on);
    /// `None` before the first.
    pub fn protocol(&self) -> Option<Protocol> {
        let c = self
            .inner
            .connection
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        c.as_ref().map(|(p, _)| *p)
    }

    /// MQTT 5: what the broker declared in the last CONNACK (maximum QoS, retain available,
    /// server keep alive, assigned client id, …); `None` below 5 or before the first
    /// connection. Readable from `on_connect`.
    pub fn server_capabilities(&self) -> Option<Arc<ServerCapabilities>> {
        let c = self
            .inner
            .connection
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        c.as_ref().and_then(|(_, caps)| caps.clone())
    }

    /// MQTT 5: publishes `publish` (with its properties); `done` gets the outcome, a
    /// broker's refusal with its reason code and Reason String
    /// ([`RequestError::PubAckRefused`](crate::RequestError::PubAckRefused)).
    pub fn publish_with(
        &self,
        publish: Publish,
        done: impl FnOnce(&Self, Result<(), ClientError>) + Send + 'static,
    ) -> Result<(), ClientError> {
        self.with_ticket(
            |c| c.try_publish_with(publish.clone()),
            Box::new(move |c, r| done(c, r.map(|_| ()))),
        )
    }

    /// MQTT 5: subscribes with options and an optional Subscription Identifier; `done` gets
    /// the SUBACK's reason per filter and Reason String.
    pub fn subscribe_with<I>(
        &self,
        subscriptions: I,
        subscription_id: Option<u32>,
        done: impl FnOnce(&Self, Result<SubAck, ClientError>) + Send + 'static,
    ) -> Result<(), ClientError>
    where
        I: IntoIterator<Item = Subscription>,
    {
        let subscriptions: Vec<Subscription> = subscriptions.into_iter().collect();
        self.with_ticket(
            |c| c.try_subscribe_with(subscriptions.iter().cloned(), subscription_id),
            Box::new(move |c, r| {
                done(
                    c,
                    r.and_then(|o| match o {
                        Outcome::SubscribedV5(ack) => Ok(*ack),
                        _ => Err(ClientError::Shutdown),
                    }),
                );
            }),
        )
    }

    /// MQTT 5: unsubscribes; `done` gets the UNSUBACK's reason per filter.
    pub fn unsubscribe_with<I, S>(
        &self,
        filters: I,
        done: impl FnOnce(&Self, Result<UnsubAck, ClientError>) + Send + 'static,
    ) -> Result<(), ClientError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let filters: Vec<String> = filters.into_iter().map(|f| f.as_ref().to_owned()).collect();
        self.with_ticket(
            |c| c.try_unsubscribe_with(filters.iter()),
            Box::new(move |c, r| {
                done(
                    c,
                    r.and_then(|o| match o {
                        Outcome::UnsubscribedV5(ack) => Ok(*ack),
                        _ => Err(ClientError::Shutdown),
                    }),
                );
            }),
        )
    }

    /// Subscribes with `on_message` as this subscription's own handler: its messages go there
    /// instead of [`on_message`](Self::on_message) — by a Subscription Identifier the client
    /// assigns at MQTT 5, by matching the filter (without a `$share/group/` or `$queue/`
    /// prefix) otherwise, so a shared subscription's messages, which carry the plain topic,
    /// reach their handler. A message matching several handlers goes to each; one matching
    /// none goes to `on_message`. `done` gets the SUBACK (at 3.1.1 its reasons are the
    /// granted QoS or 0x80 as "Unspecified error"); a refused subscription's handler is
    /// dropped. Handlers run on the dispatcher thread, in event order, like every callback.
    pub fn subscribe_handler(
        &self,
        subscription: Subscription,
        on_message: impl FnMut(&Self, &Message) + Send + 'static,
        done: impl FnOnce(&Self, Result<SubAck, ClientError>) + Send + 'static,
    ) -> Result<(), ClientError> {
        let (filter, options) = subscription.checked()?;
        let v5 = self.protocol().is_none_or(|p| p == Protocol::V5)
            && matches!(
                self.inner.client.protocol_option(),
                Protocol::V5 | Protocol::Auto
            );
        let id = {
            let mut h = self.handlers();
            let id = v5.then(|| {
                h.next_route_id = h.next_route_id.max(2_000_000) + 1;
                h.next_route_id
            });
            h.routes.push(HandlerRoute {
                filter: crate::driver::plain_filter(&filter),
                id,
                handler: Some(Box::new(on_message)),
            });
            id
        };
        let plain = filter.clone();
        let result = self.with_ticket(
            |c| {
                if v5 {
                    c.try_subscribe_with([subscription.clone()], id)
                } else {
                    c.try_subscribe([(subscription.filter.as_str(), options.qos)])
                }
            },
            Box::new(move |c, r| {
                let r = r.and_then(|o| match o {
                    Outcome::SubscribedV5(ack) => Ok(*ack),
                    Outcome::Subscribed(granted) => Ok(SubAck {
                        reasons: crate::driver::reason_codes(&granted),
                        reason_string: None,
                        subscription_id: None,
                    }),
                    _ => Err(ClientError::Shutdown),
                });
                let refused = r
                    .as_ref()
                    .map_or(true, |a| a.reasons.iter().all(|r| r.is_error()));
                if refused {
                    c.handlers().routes.retain(|route| {
                        !(route.id == id && route.filter == crate::driver::plain_filter(&plain))
                    });
                }
                done(c, r);
            }),
        );
        if result.is_err() {
            let plain = crate::driver::plain_filter(&filter);
            self.handlers()
                .routes
                .retain(|route| !(route.id == id && route.filter == plain));
        }
        result
    }

    /// MQTT 5 request/response, as [`Client::request`]: publishes `publish` with a Response
    /// Topic and fresh Correlation Data; `callback` gets the response (its
    /// [`correlation_data`](Message::correlation_data) is the request's), or
    /// [`ClientError::NoResponse`] once `timeout` has passed, or the failure (a refused
    /// publish, the client gone). It runs once, on the dispatcher thread like every
    /// callback, never concurrently with another: in event order, so a message the broker
    /// delivered before the response has been handed to its handler
    /// ([`on_message`](Self::on_message) or a [`subscribe_handler`](Self::subscribe_handler)
    /// one) before `callback` runs. A QoS 1/2 response is acknowledged once `callback` has
    /// returned (with [`manual_ack`](crate::ConnectOptions::manual_ack) too: the request owns
    /// it). A response arriving after the timeout goes to `on_message` like any message.
    ///
    /// Below MQTT 5 (the options ask for 3.1/3.1.1, or [`Protocol::Auto`] settled on one)
    /// it returns [`ApiMisuse::NeedsV5`](crate::ApiMisuse::NeedsV5) at once and `callback`
    /// never runs. Blocks only while the command queue is full.
    pub fn request(
        &self,
        publish: Publish,
        timeout: std::time::Duration,
        callback: impl FnOnce(&Self, Result<Message, ClientError>) + Send + 'static,
    ) -> Result<(), ClientError> {
        let below_v5 = matches!(
            self.inner.client.protocol_option(),
            Protocol::V3_1 | Protocol::V3_1_1
        ) || self.protocol().is_some_and(|p| p != Protocol::V5);
        if below_v5 {
            return Err(tern_proto::ApiMisuse::NeedsV5("request/response").into());
        }
        self.with_ticket(
            |c| c.try_request_on(publish.clone(), timeout, runtime().handle()),
            Box::new(move |c, r| {
                callback(
                    c,
                    r.and_then(|o| match o {
                        Outcome::Response(msg) => Ok(*msg),
                        _ => Err(ClientError::Shutdown),
                    }),
                );
            }),
        )
    }

    /// Registers `done` under the ticket of the command `send` issues. The handlers lock is
    /// held across `send` so the dispatcher cannot see the completion before `done` is in
    /// place; when the queue is full, waits outside the lock and retries (bounded by the
    /// driver draining it).
    fn with_ticket(
        &self,
        send: impl Fn(&Client) -> Result<Ticket, ClientError>,
        done: DoneFn,
    ) -> Result<(), ClientError> {
        let mut done = Some(done);
        retry_while_full(|| {
            let mut h = self.handlers();
            let ticket = send(&self.inner.client)?;
            if let Some(done) = done.take() {
                h.done.insert(ticket, done);
            }
            Ok(())
        })
    }
}

/// Calls `attempt` until the command queue has room for it: the queue is full only while the
/// driver catches up, and the driver serves commands even when events back up, so the wait
/// is bounded by the driver. Each retry gives it a moment, outside any lock `attempt` takes.
fn retry_while_full<T>(
    mut attempt: impl FnMut() -> Result<T, ClientError>,
) -> Result<T, ClientError> {
    loop {
        match attempt() {
            Err(ClientError::QueueFull(_)) => thread::sleep(std::time::Duration::from_micros(200)),
            other => return other,
        }
    }
}

fn lock(m: &Mutex<Handlers>) -> MutexGuard<'_, Handlers> {
    // A callback that panicked poisons nothing we cannot keep using.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The dispatcher thread: runs callbacks one at a time, in event order. A handler is taken
/// out of the table while it runs, so it may register handlers or issue commands freely.
fn dispatch(weak: Weak<Inner>, mut events: Events) {
    // A message is acknowledged to the broker once its handler has returned (when the next
    // event is asked for), not when it is taken out here.
    events.defer_taken();
    while let Some(event) = events.blocking_recv() {
        let Some(inner) = weak.upgrade() else { return };
        let client = CallbackClient { inner };
        match event {
            Event::Connected {
                protocol,
                capabilities,
                ..
            } => {
                *client
                    .inner
                    .connection
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) =
                    Some((protocol, capabilities));
                let ok = client.handlers().connect_ok.take();
                client.handlers().connect_fail = None;
                if let Some(ok) = ok {
                    ok(&client);
                }
                run_mut(&client, |h| &mut h.on_connect, |f, c| f(c));
            }
            Event::ConnectFailed { error, will_retry } => {
                if !will_retry {
                    let fail = client.handlers().connect_fail.take();
                    client.handlers().connect_ok = None;
                    if let Some(fail) = fail {
                        fail(&client, &error);
                    }
                }
            }
            Event::Message(msg) => {
                if !run_routes(&client, &msg) {
                    run_mut(&client, |h| &mut h.on_message, |f, c| f(c, &msg));
                }
            }
            Event::Completed { ticket, result } => {
                let done = client.handlers().done.remove(&ticket);
                if let Some(done) = done {
                    done(&client, result);
                }
            }
            Event::Disconnected { error, .. } => {
                run_mut(&client, |h| &mut h.on_offline, |f, c| f(c, &error));
            }
        }
    }
}

/// Runs the per-subscription handlers `msg` matches (outside the lock); false when none.
fn run_routes(client: &CallbackClient, msg: &Message) -> bool {
    let ids: Vec<u32> = msg.subscription_ids().collect();
    let matched: Vec<(usize, MessageFn)> = {
        let mut h = client.handlers();
        h.routes
            .iter_mut()
            .enumerate()
            .filter(|(_, r)| match r.id {
                Some(id) if !ids.is_empty() => ids.contains(&id),
                _ => r.filter.matches(&msg.topic),
            })
            .filter_map(|(i, r)| r.handler.take().map(|f| (i, f)))
            .collect()
    };
    if matched.is_empty() {
        return false;
    }
    for (i, mut f) in matched {
        f(client, msg);
        let mut h = client.handlers();
        // Put back unless the route was removed meanwhile (indexes only grow by pushes;
        // a removal while the handler ran leaves it dropped).
        if let Some(route) = h.routes.get_mut(i)
            && route.handler.is_none()
        {
            route.handler = Some(f);
        }
    }
    true
}

/// Runs a persistent handler outside the lock, then puts it back unless the callback
/// registered a new one meanwhile.
fn run_mut<F: ?Sized>(
    client: &CallbackClient,
    slot: impl Fn(&mut Handlers) -> &mut Option<Box<F>>,
    call: impl FnOnce(&mut Box<F>, &CallbackClient),
) {
    let taken = slot(&mut client.handlers()).take();
    if let Some(mut f) = taken {
        call(&mut f, client);
        let mut h = client.handlers();
        let s = slot(&mut h);
        if s.is_none() {
            *s = Some(f);
        }
    }
}
