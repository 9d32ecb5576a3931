//! The async face: [`Client`] (a cheap, cloneable handle) and [`Events`] (what happened, in
//! order). One driver task per client owns the session and the socket; handles talk to it
//! over a bounded channel.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use tern_proto::session::AckToken;
use tern_proto::{
    PacketId, PublishProperties, QoS, ServerCapabilities, SubscribeProperties, SubscribeReturnCode,
    SubscriptionId, SubscriptionOptions, TopicFilter, TopicName,
};
use tokio::sync::oneshot;

use crate::broker::Broker;
use crate::chan;
use crate::error::{ClientError, ConnectError, ConnectionError, QueueLimit};
use crate::options::ConnectOptions;
use crate::v5::{Publish, SubAck, Subscription, UnsubAck};

/// Correlates a `try_*` command with its [`Event::Completed`]. Unique per client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ticket(pub u64);

/// A command accepted by the client and still waiting for the broker; await it for the
/// outcome. Dropping it does not cancel the command.
#[derive(Debug)]
#[must_use = "the command is queued either way; await this to learn its outcome"]
pub struct Pending<T> {
    rx: oneshot::Receiver<Result<T, ClientError>>,
}

impl<T> Future for Pending<T> {
    type Output = Result<T, ClientError>;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        std::pin::Pin::new(&mut self.rx)
            .poll(cx)
            .map(|r| r.unwrap_or(Err(ClientError::Shutdown)))
    }
}

/// What a completed command produced.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The publish completed: QoS 0 written, QoS 1 PUBACK, QoS 2 PUBCOMP.
    Published,
    /// SUBACK: granted QoS or failure (0x80) per filter, in request order.
    Subscribed(Vec<SubscribeReturnCode>),
    /// MQTT 5 SUBACK: a reason code per filter and the Reason String.
    SubscribedV5(Box<SubAck>),
    /// MQTT 5 UNSUBACK: a reason code per filter and the Reason String.
    UnsubscribedV5(Box<UnsubAck>),
    /// A re-authentication was started.
    ReAuthenticating,
    /// UNSUBACK.
    Unsubscribed,
    /// MQTT 5 request/response: the response to a request (of
    /// [`CallbackClient::request`](crate::callback::CallbackClient::request)).
    Response(Box<Message>),
}

/// An application message received from the broker; at MQTT 5 with its
/// [`properties`](Self::properties) (read them with the getters: [`user_properties`](Self::user_properties),
/// [`correlation_data`](Self::correlation_data), [`subscription_ids`](Self::subscription_ids), …).
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Topic name.
    pub topic: TopicName,
    /// Payload, whole however large (up to `max_packet_size`).
    pub payload: Bytes,
    /// QoS it was delivered with.
    pub qos: QoS,
    /// RETAIN flag: a retained message sent at subscription time.
    pub retain: bool,
    /// DUP flag as received.
    pub dup: bool,
    /// Packet identifier at QoS 1 and 2 (the broker's id for this delivery).
    pub packet_id: Option<PacketId>,
    /// MQTT 5: the PUBLISH's properties (Topic Alias already resolved into `topic` and
    /// removed); `None` when it had none.
    pub properties: Option<Box<PublishProperties>>,
    /// With [`ConnectOptions::manual_ack`], what [`Client::ack`] sends for a QoS 1/2
    /// message.
    pub(crate) ack: Option<AckToken>,
}

impl Message {
    /// Whether this message waits for [`Client::ack`] before the broker is told it
    /// arrived: QoS 1/2 with [`ConnectOptions::manual_ack`] on.
    pub fn needs_ack(&self) -> bool {
        self.ack.is_some()
    }

    /// MQTT 5: the User Properties, in order (empty when none).
    pub fn user_properties(&self) -> impl Iterator<Item = (&str, &str)> {
        self.properties
            .iter()
            .flat_map(|p| p.user_properties.iter())
            .map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// MQTT 5: the Correlation Data.
    pub fn correlation_data(&self) -> Option<&Bytes> {
        self.properties.as_ref()?.correlation_data.as_ref()
    }

    /// MQTT 5: the Response Topic.
    pub fn response_topic(&self) -> Option<&str> {
        Some(self.properties.as_ref()?.response_topic.as_ref()?.as_str())
    }

    /// MQTT 5: the Content Type.
    pub fn content_type(&self) -> Option<&str> {
        Some(self.properties.as_ref()?.content_type.as_ref()?.as_str())
    }

    /// MQTT 5: the Message Expiry Interval left, in seconds.
    pub fn message_expiry(&self) -> Option<u32> {
        self.properties.as_ref()?.message_expiry_interval
    }

    /// MQTT 5: whether the publisher marked the payload as UTF-8 text.
    pub fn is_utf8(&self) -> bool {
        self.properties
            .as_ref()
            .is_some_and(|p| p.payload_format_indicator == Some(tern_proto::PayloadFormat::Utf8))
    }

    /// MQTT 5: the Subscription Identifiers of the subscriptions this message matched.
    pub fn subscription_ids(&self) -> impl Iterator<Item = u32> + '_ {
        self.properties
            .iter()
            .flat_map(|p| p.subscription_identifiers.iter())
            .map(|id| id.get())
    }
}

/// What happened on a client, in the order it happened.
#[non_exhaustive]
#[derive(Debug, Clone)]
pub enum Event {
    /// CONNACK accepted a connection.
    Connected {
        /// The broker resumed a stored session.
        session_present: bool,
        /// True when this connection was made by automatic reconnection.
        reconnected: bool,
        /// The broker connected to.
        broker: Broker,
        /// The protocol level in use ([`Protocol::Auto`](crate::Protocol::Auto) reports
        /// what the broker accepted).
        protocol: crate::Protocol,
        /// MQTT 5: what the broker declared in CONNACK (maximum QoS, retain available,
        /// server keep alive, assigned client id, response information, server
        /// reference, …); `None` below 5.
        capabilities: Option<Arc<ServerCapabilities>>,
    },
    /// A connection attempt failed.
    ConnectFailed {
        /// Why; `error.code()` is the seed's reason code.
        error: ConnectError,
        /// True when automatic reconnection will try again.
        will_retry: bool,
    },
    /// A message arrived.
    Message(Message),
    /// A `try_*` command completed or failed.
    Completed {
        /// The command's ticket.
        ticket: Ticket,
        /// Its outcome.
        result: Result<Outcome, ClientError>,
    },
    /// An established connection ended (the seed's `offline`).
    Disconnected {
        /// Why.
        error: ConnectionError,
        /// True when automatic reconnection will try again.
        will_reconnect: bool,
    },
}

/// Where a command's completion goes.
#[derive(Debug)]
pub(crate) enum Reply<T> {
    /// To an awaiting async caller.
    Await(oneshot::Sender<Result<T, ClientError>>),
    /// As an [`Event::Completed`] on the event stream.
    Event(Ticket),
}

/// What a handle asks of the driver, in one ordered queue: connecting and closing change
/// the driver's phase; requests go to the session whatever the phase.
#[derive(Debug)]
pub(crate) enum Command {
    Connect {
        brokers: Vec<Broker>,
        reply: Option<oneshot::Sender<Result<bool, ConnectError>>>,
    },
    /// Send DISCONNECT after everything queued before it, then close.
    Close {
        reply: Option<oneshot::Sender<Result<(), ClientError>>>,
        /// MQTT 5: the DISCONNECT's reason code and properties.
        v5: Option<Box<tern_proto::DisconnectV5>>,
    },
    Request(Request),
}

/// A command for the session, served in every phase of the driver.
#[derive(Debug)]
pub(crate) enum Request {
    Publish {
        msg: tern_proto::Message,
        reply: Reply<()>,
    },
    Subscribe {
        filters: Vec<(TopicFilter, QoS)>,
        reply: Reply<Vec<SubscribeReturnCode>>,
    },
    Unsubscribe {
        filters: Vec<TopicFilter>,
        reply: Reply<()>,
    },
    /// MQTT 5 SUBSCRIBE with options and properties.
    SubscribeV5 {
        filters: Vec<(TopicFilter, SubscriptionOptions)>,
        properties: SubscribeProperties,
        reply: Reply<SubAck>,
    },
    /// MQTT 5 UNSUBSCRIBE whose per-filter reason codes are wanted.
    UnsubscribeV5 {
        filters: Vec<TopicFilter>,
        reply: Reply<UnsubAck>,
    },
    /// A request of [`Client::request`]: published with a response topic and correlation
    /// data; the matching response goes to `reply` (as an [`Event::Completed`] with
    /// [`Outcome::Response`], in order with the messages, for the callback API).
    Exchange {
        publish: Box<Publish>,
        reply: Reply<Message>,
    },
    /// The request of `ticket` gave up after `after`: it completes with
    /// [`ClientError::NoResponse`] unless its response (or failure) came first.
    GiveUp { ticket: Ticket, after: Duration },
    /// A subscription whose messages go to their own stream ([`Client::subscribe_stream`]).
    SubscribeStream {
        filter: TopicFilter,
        options: SubscriptionOptions,
        tx: tokio::sync::mpsc::UnboundedSender<crate::driver::Routed>,
        reply: Reply<SubAck>,
    },
    /// MQTT 5 re-authentication ([`Client::reauthenticate`]).
    ReAuthenticate { reply: Reply<()> },
    /// The application acknowledges a message ([`ConnectOptions::manual_ack`]).
    Ack(AckToken),
}

/// The messages of one subscription ([`Client::subscribe_stream`]), in arrival order.
#[derive(Debug)]
pub struct MessageStream {
    rx: tokio::sync::mpsc::UnboundedReceiver<crate::driver::Routed>,
    /// To acknowledge what is taken; does not keep the client alive.
    client: std::sync::Weak<Shared>,
}

impl MessageStream {
    /// The next message; `None` once the client is gone or the subscription was refused.
    /// Taking a QoS 1/2 message is what lets the client acknowledge it (unless
    /// [`ConnectOptions::manual_ack`]).
    pub async fn recv(&mut self) -> Option<Message> {
        let (msg, ack) = self.rx.recv().await?;
        if let (Some(token), Some(shared)) = (ack, self.client.upgrade()) {
            // Waits for room in the command queue rather than dropping the acknowledgement.
            let _ = shared
                .commands
                .send(Command::Request(Request::Ack(token)))
                .await;
        }
        Some(msg)
    }
}

struct Shared {
    commands: chan::Sender<Command>,
    /// The protocol the options ask for.
    protocol: crate::Protocol,
    next_ticket: AtomicU64,
    /// The command channel's capacity, for [`ClientError::QueueFull`].
    capacity: usize,
}

/// A handle to an MQTT client. Cheap to clone; the client's driver task stops when every
/// handle is dropped.
///
/// A complete program (needs `tokio = { version = "1", features = ["rt", "macros"] }`):
///
/// ```no_run
/// use tern::{Broker, Client, ConnectOptions, Event, QoS};
///
/// #[tokio::main(flavor = "current_thread")]
/// async fn main() -> Result<(), Box<dyn std::error::Error>> {
///     let (client, mut events) = Client::new(ConnectOptions::new("sensor-1"));
///     client.connect(Broker::tcp("127.0.0.1", 1883)).await?;
///     client.subscribe([("demo/#", QoS::AtLeastOnce)]).await?;
///     client.publish("demo/hello", "hello", QoS::AtLeastOnce, false).await?;
///     // Events come in order: Connected first, then the message.
///     while let Some(event) = events.recv().await {
///         match event {
///             Event::Message(msg) => {
///                 println!("{}: {}", msg.topic, String::from_utf8_lossy(&msg.payload));
///                 break;
///             }
///             Event::Disconnected { error, .. } => return Err(error.into()),
///             _ => {}
///         }
///     }
///     client.close().await?;
///     Ok(())
/// }
/// ```
#[derive(Clone)]
pub struct Client {
    shared: Arc<Shared>,
}

/// The event stream of a [`Client`]. Drain it: when it is full the client stops reading
/// from the broker (commands still flow, so handlers may publish).
///
/// Taking a QoS 1/2 [`Event::Message`] out (any of the `recv` methods) is what lets the
/// client acknowledge it to the broker (unless [`ConnectOptions::manual_ack`]): messages
/// still queued here when the client closes or this stream is dropped are never
/// acknowledged, and the broker delivers them again (clean session off).
#[derive(Debug)]
pub struct Events {
    rx: chan::Receiver<Event>,
}

impl Events {
    /// The next event; `None` once the driver has stopped.
    pub async fn recv(&mut self) -> Option<Event> {
        self.rx.recv().await
    }

    /// Polls for the next event, registering `cx`'s waker when there is none; `None` once
    /// the driver has stopped. For event loops that wait on several clients at once.
    pub fn poll_recv(&mut self, cx: &mut std::task::Context<'_>) -> std::task::Poll<Option<Event>> {
        self.rx.poll_recv(cx)
    }

    /// How many events other than messages were dropped because the event channel was
    /// full (see [`ConnectOptions::event_capacity`](crate::ConnectOptions::event_capacity));
    /// saturates at `u32::MAX`. Messages are never dropped.
    pub fn dropped(&self) -> u32 {
        self.rx.dropped()
    }

    /// The next event if one is ready.
    pub fn try_recv(&mut self) -> Option<Event> {
        self.rx.try_recv().ok()
    }

    /// The next event, blocking the thread (for synchronous code; not inside a runtime).
    pub fn blocking_recv(&mut self) -> Option<Event> {
        self.rx.blocking_recv()
    }

    /// A message counts as handed to the application only when the next event is asked for
    /// (the callback dispatcher: its handler has returned).
    pub(crate) fn defer_taken(&mut self) {
        self.rx.set_deferred();
    }
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared").finish_non_exhaustive()
    }
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client").finish_non_exhaustive()
    }
}

impl Client {
    /// Creates a client and spawns its driver on the current tokio runtime.
    ///
    /// # Panics
    /// Outside a tokio runtime (use [`Client::new_on`] with a handle there).
    pub fn new(options: ConnectOptions) -> (Self, Events) {
        Self::new_on(&tokio::runtime::Handle::current(), options)
    }

    /// Creates a client after checking its options ([`ConnectOptions::validate`]): options
    /// that cannot work are refused here, not at `connect`. [`new`](Self::new) does not
    /// check; its `connect` fails with [`ConnectError::Options`] instead.
    pub fn try_new(options: ConnectOptions) -> Result<(Self, Events), crate::OptionsError> {
        options.validate()?;
        Ok(Self::new(options))
    }

    /// Creates a client whose driver runs on `runtime`.
    pub fn new_on(runtime: &tokio::runtime::Handle, options: ConnectOptions) -> (Self, Events) {
        // The channel holds what the application queued since the driver last ran (which
        // on a busy or current-thread runtime can be a whole burst), so it takes as many
        // commands as the session may queue: `try_*` refuses at the documented
        // `max_queued`, not at some smaller number of its own. It allocates only for what it
        // holds.
        let capacity = options.max_queued.max(1);
        let (cmd_tx, cmd_rx) = chan::channel(capacity);
        let (ev_tx, ev_rx) = chan::channel(options.event_capacity.max(1));
        let protocol = options.protocol;
        runtime.spawn(crate::driver::run(Box::new(options), cmd_rx, ev_tx));
        let shared = Arc::new(Shared {
            commands: cmd_tx,
            protocol,
            next_ticket: AtomicU64::new(1),
            capacity,
        });
        (Self { shared }, Events { rx: ev_rx })
    }

    /// The protocol the options ask for.
    pub(crate) fn protocol_option(&self) -> crate::Protocol {
        self.shared.protocol
    }

    fn ticket(&self) -> Ticket {
        Ticket(self.shared.next_ticket.fetch_add(1, Ordering::Relaxed))
    }

    async fn send(&self, cmd: Command) -> Result<(), ClientError> {
        self.shared
            .commands
            .send(cmd)
            .await
            .map_err(|_| ClientError::Shutdown)
    }

    fn try_send(&self, cmd: Command) -> Result<(), ClientError> {
        self.shared.commands.try_send(cmd).map_err(|e| match e {
            chan::TrySendError::Full(_) => {
                ClientError::QueueFull(QueueLimit::Commands(self.shared.capacity))
            }
            chan::TrySendError::Closed(_) => ClientError::Shutdown,
        })
    }

    /// Connects to `broker`; resolves at CONNACK with the session-present flag.
    // Not an `async fn`: that would keep `broker` in the future beside the `Vec` it is moved
    // into, and applications often spawn one task per connection around this future.
    pub fn connect(
        &self,
        broker: Broker,
    ) -> impl Future<Output = Result<bool, ConnectError>> + Send + '_ {
        self.connect_any(vec![broker])
    }

    /// Connects to the first of `brokers` that accepts, trying them in order; after a loss,
    /// automatic reconnection resumes with the next one (failover, as Paho's URI list).
    pub async fn connect_any(&self, brokers: Vec<Broker>) -> Result<bool, ConnectError> {
        let (tx, rx) = oneshot::channel();
        // Room first, then the command: the future holds the command's parts once, not a
        // built command beside them. A driver gone meanwhile drops the reply: `Closed`.
        let permit = self
            .shared
            .commands
            .reserve()
            .await
            .map_err(|_| ConnectError::Closed)?;
        permit.send(Command::Connect {
            brokers,
            reply: Some(tx),
        });
        rx.await.map_err(|_| ConnectError::Closed)?
    }

    /// Starts connecting without waiting; the outcome arrives as [`Event::Connected`] or
    /// [`Event::ConnectFailed`].
    pub fn start_connect(&self, brokers: Vec<Broker>) -> Result<(), ClientError> {
        self.try_send(Command::Connect {
            brokers,
            reply: None,
        })
    }

    /// Publishes and waits for completion: QoS 0 once written, QoS 1 at PUBACK, QoS 2 at
    /// PUBCOMP. Works offline too: the message waits in the queue until connected.
    pub async fn publish(
        &self,
        topic: &str,
        payload: impl Into<Bytes>,
        qos: QoS,
        retain: bool,
    ) -> Result<(), ClientError> {
        self.start_publish(topic, payload, qos, retain).await?.await
    }

    /// Queues a publish, waiting only for room in the command queue, and returns a
    /// [`Pending`] that resolves at completion. Publishes started one after another leave
    /// in that order: the way to pipeline many messages with backpressure.
    ///
    /// ```no_run
    /// # async fn demo(client: tern::Client) -> Result<(), tern::ClientError> {
    /// let mut pending = Vec::new();
    /// for i in 0..1000 {
    ///     pending.push(client.start_publish("t", i.to_string(), tern::QoS::AtLeastOnce, false).await?);
    /// }
    /// for p in pending {
    ///     p.await?;
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn start_publish(
        &self,
        topic: &str,
        payload: impl Into<Bytes>,
        qos: QoS,
        retain: bool,
    ) -> Result<Pending<()>, ClientError> {
        let msg = message(topic, payload.into(), qos, retain)?;
        let (tx, rx) = oneshot::channel();
        self.send(Command::Request(Request::Publish {
            msg,
            reply: Reply::Await(tx),
        }))
        .await?;
        Ok(Pending { rx })
    }

    /// Queues a publish without waiting; fails fast with [`ClientError::QueueFull`]. The
    /// completion arrives as [`Event::Completed`] with the returned ticket.
    pub fn try_publish(
        &self,
        topic: &str,
        payload: impl Into<Bytes>,
        qos: QoS,
        retain: bool,
    ) -> Result<Ticket, ClientError> {
        let msg = message(topic, payload.into(), qos, retain)?;
        let ticket = self.ticket();
        self.try_send(Command::Request(Request::Publish {
            msg,
            reply: Reply::Event(ticket),
        }))?;
        Ok(ticket)
    }

    /// Subscribes to every `(filter, qos)` in one SUBSCRIBE; resolves at SUBACK with the
    /// granted QoS (or failure) per filter.
    pub async fn subscribe<I, S>(&self, filters: I) -> Result<Vec<SubscribeReturnCode>, ClientError>
    where
        I: IntoIterator<Item = (S, QoS)>,
        S: AsRef<str>,
    {
        let filters = sub_filters(filters)?;
        let (tx, rx) = oneshot::channel();
        self.send(Command::Request(Request::Subscribe {
            filters,
            reply: Reply::Await(tx),
        }))
        .await?;
        rx.await.map_err(|_| ClientError::Shutdown)?
    }

    /// Queues a subscribe without waiting; see [`try_publish`](Self::try_publish).
    pub fn try_subscribe<I, S>(&self, filters: I) -> Result<Ticket, ClientError>
    where
        I: IntoIterator<Item = (S, QoS)>,
        S: AsRef<str>,
    {
        let filters = sub_filters(filters)?;
        let ticket = self.ticket();
        self.try_send(Command::Request(Request::Subscribe {
            filters,
            reply: Reply::Event(ticket),
        }))?;
        Ok(ticket)
    }

    /// Unsubscribes from every filter in one UNSUBSCRIBE; resolves at UNSUBACK.
    pub async fn unsubscribe<I, S>(&self, filters: I) -> Result<(), ClientError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let filters = unsub_filters(filters)?;
        let (tx, rx) = oneshot::channel();
        self.send(Command::Request(Request::Unsubscribe {
            filters,
            reply: Reply::Await(tx),
        }))
        .await?;
        rx.await.map_err(|_| ClientError::Shutdown)?
    }

    /// Queues an unsubscribe without waiting; see [`try_publish`](Self::try_publish).
    pub fn try_unsubscribe<I, S>(&self, filters: I) -> Result<Ticket, ClientError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let filters = unsub_filters(filters)?;
        let ticket = self.ticket();
        self.try_send(Command::Request(Request::Unsubscribe {
            filters,
            reply: Reply::Event(ticket),
        }))?;
        Ok(ticket)
    }

    /// Acknowledges `msg` to the broker (PUBACK at QoS 1, PUBREC at QoS 2) with
    /// [`ConnectOptions::manual_ack`] on; does nothing for a QoS 0 message or without
    /// manual acknowledgement (the client then acknowledges each message as it is taken).
    ///
    /// Acknowledgements leave in the order the messages arrived: this one waits for the
    /// messages before it to be acknowledged too [MQTT-4.6.0-2]. A message received on a
    /// connection that has since ended is not acknowledged at QoS 1 (the broker delivers it
    /// again, clean session off); at QoS 2 the acknowledgement answers the broker's re-send.
    /// A message of another client acknowledges nothing here.
    pub async fn ack(&self, msg: &Message) -> Result<(), ClientError> {
        match msg.ack {
            Some(token) => self.send(Command::Request(Request::Ack(token))).await,
            None => Ok(()),
        }
    }

    /// Like [`ack`](Self::ack), without waiting for room in the command queue; fails with
    /// [`ClientError::QueueFull`] when there is none.
    pub fn try_ack(&self, msg: &Message) -> Result<(), ClientError> {
        match msg.ack {
            Some(token) => self.try_send(Command::Request(Request::Ack(token))),
            None => Ok(()),
        }
    }

    /// Publishes `publish` (with its MQTT 5 properties) and waits for completion, as
    /// [`publish`](Self::publish). A broker's refusal is
    /// [`ClientError::Request`]`(`[`RequestError::PubAckRefused`](crate::RequestError::PubAckRefused)`)`
    /// carrying its reason code and Reason String; a limit the broker declared (Maximum
    /// QoS, Retain Available, Maximum Packet Size) is refused locally as
    /// [`ClientError::Misuse`]. Properties on a connection below MQTT 5 are refused
    /// ([`ApiMisuse::NeedsV5`](crate::ApiMisuse::NeedsV5)).
    pub async fn publish_with(&self, publish: Publish) -> Result<(), ClientError> {
        let msg = publish.into_message()?;
        let (tx, rx) = oneshot::channel();
        self.send(Command::Request(Request::Publish {
            msg,
            reply: Reply::Await(tx),
        }))
        .await?;
        Pending { rx }.await
    }

    /// Like [`publish_with`](Self::publish_with) without waiting; see
    /// [`try_publish`](Self::try_publish).
    pub fn try_publish_with(&self, publish: Publish) -> Result<Ticket, ClientError> {
        let msg = publish.into_message()?;
        let ticket = self.ticket();
        self.try_send(Command::Request(Request::Publish {
            msg,
            reply: Reply::Event(ticket),
        }))?;
        Ok(ticket)
    }

    /// Like [`subscribe_with`](Self::subscribe_with) without waiting; the completion is
    /// [`Outcome::SubscribedV5`].
    pub fn try_subscribe_with<I>(
        &self,
        subscriptions: I,
        subscription_id: Option<u32>,
    ) -> Result<Ticket, ClientError>
    where
        I: IntoIterator<Item = Subscription>,
    {
        let (filters, properties) = subscribe_v5_parts(subscriptions, subscription_id)?;
        let ticket = self.ticket();
        self.try_send(Command::Request(Request::SubscribeV5 {
            filters,
            properties,
            reply: Reply::Event(ticket),
        }))?;
        Ok(ticket)
    }

    /// Like [`unsubscribe_with`](Self::unsubscribe_with) without waiting; the completion is
    /// [`Outcome::UnsubscribedV5`].
    pub fn try_unsubscribe_with<I, S>(&self, filters: I) -> Result<Ticket, ClientError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let filters = unsub_filters(filters)?;
        let ticket = self.ticket();
        self.try_send(Command::Request(Request::UnsubscribeV5 {
            filters,
            reply: Reply::Event(ticket),
        }))?;
        Ok(ticket)
    }

    /// MQTT 5: subscribes with subscription options (No Local, Retain As Published, Retain
    /// Handling) and an optional Subscription Identifier (1..=268,435,455) that the broker
    /// puts on every message the subscriptions deliver ([`Message::subscription_ids`]).
    /// Resolves at SUBACK with a reason code per filter (e.g. 0x87 Not authorized) and the
    /// broker's Reason String.
    pub async fn subscribe_with<I>(
        &self,
        subscriptions: I,
        subscription_id: Option<u32>,
    ) -> Result<SubAck, ClientError>
    where
        I: IntoIterator<Item = Subscription>,
    {
        let (filters, properties) = subscribe_v5_parts(subscriptions, subscription_id)?;
        let (tx, rx) = oneshot::channel();
        self.send(Command::Request(Request::SubscribeV5 {
            filters,
            properties,
            reply: Reply::Await(tx),
        }))
        .await?;
        rx.await.map_err(|_| ClientError::Shutdown)?
    }

    /// MQTT 5: unsubscribes; resolves at UNSUBACK with a reason code per filter (Success,
    /// No subscription existed, or a refusal) and the broker's Reason String. At 3.1.1 every
    /// reason is Success.
    pub async fn unsubscribe_with<I, S>(&self, filters: I) -> Result<UnsubAck, ClientError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let filters = unsub_filters(filters)?;
        let (tx, rx) = oneshot::channel();
        self.send(Command::Request(Request::UnsubscribeV5 {
            filters,
            reply: Reply::Await(tx),
        }))
        .await?;
        rx.await.map_err(|_| ClientError::Shutdown)?
    }

    /// Subscribes and returns the subscription's own message stream: its messages go to the
    /// [`MessageStream`], not to [`Events`] — the way to give each subscription its own
    /// handler, and to consume a shared subscription (`$share/group/filter`, or EMQX's
    /// `$queue/filter` at 3.1.1) whose messages carry the plain topic. Routing is by a
    /// Subscription Identifier the client assigns at MQTT 5 (the broker names the matching
    /// subscriptions on every message), by matching the filter (without its `$share/group/`
    /// or `$queue/` prefix) otherwise; a message matching several streams goes to each.
    /// A message matching no stream goes to [`Events`], as does everything once the
    /// stream is dropped (dropping it does not unsubscribe).
    ///
    /// Resolves at SUBACK; a refusal (the reason code in [`SubAck::reasons`]) leaves the
    /// stream ended. A shared subscription the broker declared unavailable is refused
    /// locally ([`ApiMisuse::SharedNotSupported`](crate::ApiMisuse::SharedNotSupported)).
    ///
    /// A QoS 1/2 message is acknowledged once taken from the stream (or with
    /// [`ConnectOptions::manual_ack`], by [`Client::ack`]); acknowledgements leave in
    /// arrival order across the stream and [`Events`]. The stream is unbounded: QoS 1/2
    /// messages are bounded by the broker's flow control (nothing is acknowledged before it
    /// is taken), QoS 0 messages of a stream nobody reads accumulate.
    pub async fn subscribe_stream(
        &self,
        subscription: Subscription,
    ) -> Result<(SubAck, MessageStream), ClientError> {
        let (filter, options) = subscription.checked()?;
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let (reply_tx, reply_rx) = oneshot::channel();
        self.send(Command::Request(Request::SubscribeStream {
            filter,
            options,
            tx,
            reply: Reply::Await(reply_tx),
        }))
        .await?;
        let ack = reply_rx.await.map_err(|_| ClientError::Shutdown)??;
        let stream = MessageStream {
            rx,
            client: Arc::downgrade(&self.shared),
        };
        Ok((ack, stream))
    }

    /// MQTT 5 request/response: publishes `publish` with a Response Topic and fresh
    /// Correlation Data and resolves with the matching response, or
    /// [`ClientError::NoResponse`] after `timeout`.
    ///
    /// The response topic is the broker's Response Information (asked for with
    /// [`ConnectOptions::request_response_information`]) followed by `/tern-rr`, else
    /// `tern-rr/<client id>` (a random name when the client id cannot be part of a topic);
    /// the client subscribes to it (QoS 1) before the first request. Responses are handed to
    /// their request, not to [`Events`]; one that arrives after its request gave up goes to
    /// [`Events`] as an ordinary message (nothing is dropped).
    ///
    /// A responder answers with [`Publish::response_to`]. Below MQTT 5 it fails with
    /// [`ApiMisuse::NeedsV5`](crate::ApiMisuse::NeedsV5) (nothing is subscribed or sent).
    /// The callback API's counterpart is
    /// [`CallbackClient::request`](crate::callback::CallbackClient::request).
    pub async fn request(
        &self,
        publish: Publish,
        timeout: Duration,
    ) -> Result<Message, ClientError> {
        let (tx, rx) = oneshot::channel();
        self.send(Command::Request(Request::Exchange {
            publish: Box::new(publish),
            reply: Reply::Await(tx),
        }))
        .await?;
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(ClientError::Shutdown),
            Err(_) => Err(ClientError::NoResponse(timeout)),
        }
    }

    /// Like [`request`](Self::request) without waiting: the response (or the failure, or
    /// [`ClientError::NoResponse`] once `timeout` has passed, timed on `runtime`) is an
    /// [`Event::Completed`] with [`Outcome::Response`] for the returned ticket, in event
    /// order: after every message received before the response. The driver decides between
    /// the response and the timeout, so exactly one completion comes.
    pub(crate) fn try_request_on(
        &self,
        publish: Publish,
        timeout: Duration,
        runtime: &tokio::runtime::Handle,
    ) -> Result<Ticket, ClientError> {
        let ticket = self.ticket();
        self.try_send(Command::Request(Request::Exchange {
            publish: Box::new(publish),
            reply: Reply::Event(ticket),
        }))?;
        // Does not keep the client alive: once every handle is gone nobody waits.
        let shared = Arc::downgrade(&self.shared);
        runtime.spawn(async move {
            tokio::time::sleep(timeout).await;
            if let Some(shared) = shared.upgrade() {
                let give_up = Request::GiveUp {
                    ticket,
                    after: timeout,
                };
                let _ = shared.commands.send(Command::Request(give_up)).await;
            }
        });
        Ok(ticket)
    }

    /// MQTT 5 enhanced authentication: starts a re-authentication with the
    /// [`ConnectOptions::authenticator`]'s first data (AUTH 0x19); resolves once the AUTH is
    /// queued. The broker's answers are handled by the authenticator; a failure ends the
    /// connection ([`ConnectionError::Auth`] or [`ConnectionError::Server`]).
    pub async fn reauthenticate(&self) -> Result<(), ClientError> {
        let (tx, rx) = oneshot::channel();
        self.send(Command::Request(Request::ReAuthenticate {
            reply: Reply::Await(tx),
        }))
        .await?;
        rx.await.map_err(|_| ClientError::Shutdown)?
    }

    /// Closes the connection in call order: the requests made before it leave first and
    /// complete (publishes waiting behind the in-flight window too: `close()` waits up to
    /// 5 s for their acknowledgements), then DISCONNECT is sent and flushed and the
    /// connection closed (the broker then discards the will). Requests made after `close()`
    /// wait for the next `connect`. It returns once the broker has closed its side too (at
    /// most 5 s each for the flush and for that), so that nothing written before DISCONNECT
    /// is lost to a connection reset. What has not completed when the 5 s drain ends stays
    /// in the session: with clean session = false it is kept for the next `connect`.
    pub async fn close(&self) -> Result<(), ClientError> {
        let (tx, rx) = oneshot::channel();
        self.send(Command::Close {
            reply: Some(tx),
            v5: None,
        })
        .await?;
        rx.await.map_err(|_| ClientError::Shutdown)?
    }

    /// MQTT 5: [`close`](Self::close) with the DISCONNECT's reason code —
    /// [`DisconnectReasonCode::DisconnectWithWillMessage`](crate::DisconnectReasonCode) has the
    /// broker publish the will, which a normal close (0x00) deletes — and, optionally, a new
    /// Session Expiry Interval. It drains as `close()` does: the requests made before it
    /// leave and complete first (publishes behind the in-flight window too, for up to 5 s),
    /// then this DISCONNECT is sent, flushed, and the connection closed.
    ///
    /// While connected it is refused at once, the connection staying open and nothing
    /// drained, below MQTT 5 ([`ApiMisuse::NeedsV5`](crate::ApiMisuse::NeedsV5)) and for a
    /// non-zero expiry when CONNECT asked for 0
    /// ([`ApiMisuse::ExpiryAfterZero`](crate::ApiMisuse::ExpiryAfterZero), [MQTT-3.14.2-2]).
    pub async fn close_with(
        &self,
        reason: tern_proto::DisconnectReasonCode,
        session_expiry: Option<Duration>,
    ) -> Result<(), ClientError> {
        let mut d = tern_proto::DisconnectV5::new(reason);
        d.properties.session_expiry_interval =
            session_expiry.map(|e| u32::try_from(e.as_secs()).unwrap_or(u32::MAX));
        let (tx, rx) = oneshot::channel();
        self.send(Command::Close {
            reply: Some(tx),
            v5: Some(Box::new(d)),
        })
        .await?;
        rx.await.map_err(|_| ClientError::Shutdown)?
    }

    /// Starts closing without waiting; [`Event::Disconnected`] with
    /// [`ConnectionError::Local`] follows.
    pub fn try_close(&self) -> Result<(), ClientError> {
        self.try_send(Command::Close {
            reply: None,
            v5: None,
        })
    }
}

fn message(
    topic: &str,
    payload: Bytes,
    qos: QoS,
    retain: bool,
) -> Result<tern_proto::Message, ClientError> {
    let topic = TopicName::new(topic).map_err(|source| ClientError::Topic {
        topic: topic.to_owned(),
        source,
    })?;
    Ok(tern_proto::Message::new(topic, payload, qos, retain))
}

/// The filters and properties of an MQTT 5 SUBSCRIBE, checked.
fn subscribe_v5_parts<I>(
    subscriptions: I,
    subscription_id: Option<u32>,
) -> Result<(Vec<(TopicFilter, SubscriptionOptions)>, SubscribeProperties), ClientError>
where
    I: IntoIterator<Item = Subscription>,
{
    let filters = subscriptions
        .into_iter()
        .map(|s| s.checked())
        .collect::<Result<Vec<_>, _>>()?;
    let properties = SubscribeProperties {
        subscription_identifier: match subscription_id {
            None => None,
            Some(n) => Some(SubscriptionId::new(n).ok_or(ClientError::SubscriptionId(n))?),
        },
        ..SubscribeProperties::default()
    };
    Ok((filters, properties))
}

fn filter(s: &str) -> Result<TopicFilter, ClientError> {
    TopicFilter::new(s).map_err(|source| ClientError::Topic {
        topic: s.to_owned(),
        source,
    })
}

fn sub_filters<I, S>(filters: I) -> Result<Vec<(TopicFilter, QoS)>, ClientError>
where
    I: IntoIterator<Item = (S, QoS)>,
    S: AsRef<str>,
{
    filters
        .into_iter()
        .map(|(f, q)| Ok((filter(f.as_ref())?, q)))
        .collect()
}

fn unsub_filters<I, S>(filters: I) -> Result<Vec<TopicFilter>, ClientError>
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    filters.into_iter().map(|f| filter(f.as_ref())).collect()
}
