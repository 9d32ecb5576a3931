//! Test harness: a [`Session`] on a virtual clock, wired to a broker side that decodes what
//! the client sends and encodes what the test (or the model [`Broker`]) answers. Stepping is
//! bounded everywhere, as in quinn's `Pair::drive_bounded`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

use crate::packet::{
    ConnAck, ConnectReturnCode, Decoder, Packet, PacketId, Publish, QoS, QosPid, SubAck,
    SubscribeReturnCode, UnsubAckReasonCode, UnsubAckV5,
};
use crate::session::{
    AckToken, Event, Message, PersistOp, ProtocolError, RequestId, Session, SessionConfig, Snapshot,
};
use crate::text::MqttString;
use crate::topic::{TopicFilter, TopicName};

/// Upper bound on steps of any driving loop.
pub(super) const MAX_STEPS: usize = 10_000;

/// The one real instant of the tests; every other is this plus a duration.
#[allow(clippy::disallowed_methods)]
fn base_instant() -> Instant {
    Instant::now()
}

pub(super) fn id(n: u16) -> PacketId {
    PacketId::new(n).unwrap()
}

pub(super) fn topic(s: &str) -> TopicName {
    TopicName::new(s).unwrap()
}

pub(super) fn filter(s: &str) -> TopicFilter {
    TopicFilter::new(s).unwrap()
}

pub(super) fn msg(t: &str, payload: &'static [u8], qos: QoS) -> Message {
    Message {
        topic: topic(t),
        payload: Bytes::from_static(payload),
        qos,
        retain: false,
        properties: None,
    }
}

/// A broker-side PUBLISH.
/// The PUBLISHes of `events`, which must all be messages.
pub(super) fn messages(events: Vec<Event>) -> Vec<Publish> {
    events
        .into_iter()
        .map(|e| match e {
            Event::Message { publish, .. } => publish,
            other => panic!("expected only messages, got {other:?}"),
        })
        .collect()
}

pub(super) fn publish(qos_pid: QosPid, dup: bool, payload: &'static [u8]) -> Packet {
    Packet::Publish(Publish {
        dup,
        qos_pid,
        retain: false,
        topic: topic("a/b"),
        payload: Bytes::from_static(payload),
    })
}

pub(super) fn connack(code: ConnectReturnCode, session_present: bool) -> Packet {
    Packet::ConnAck(ConnAck {
        session_present,
        code,
    })
}

/// The configuration most tests use: 3.1.1, keepalive 60 s, clean session.
pub(super) fn config() -> SessionConfig {
    SessionConfig::new(MqttString::new("tern-test").unwrap())
}

/// A session, the broker end of its transport, and a virtual clock.
pub(super) struct Pair {
    pub(super) session: Session,
    pub(super) now: Instant,
    /// Decodes the client's bytes, as a broker would.
    decoder: Decoder,
    /// Client bytes not yet decoded by the broker side.
    wire: BytesMut,
    /// Every event polled so far and not yet taken by [`Pair::events`].
    events: Vec<Event>,
    /// The session store, as a driver keeps it: every op pulled is applied (made durable)
    /// before anything is transmitted or an event is taken.
    pub(super) store: Snapshot,
    /// Every op pulled so far, in order, for tests that check the records themselves.
    pub(super) ops: Vec<PersistOp>,
    /// Payloads of broker QoS 2 messages a crash lost in the hand-over window: their id
    /// was durably held, but the application never got the message.
    pub(super) lost_in_window: Vec<Bytes>,
    /// Payloads of broker QoS 2 messages the application had (and acked) whose held id a
    /// crash lost before it was durable: the broker delivers them again (a duplicate, the
    /// price of never acknowledging what the application has not got).
    pub(super) dup_in_window: Vec<Bytes>,
    /// The payload last delivered for each broker QoS 2 id.
    qos2_payloads: HashMap<PacketId, Bytes>,
    /// Acknowledge every QoS 1/2 message as soon as its event is polled, as a driver whose
    /// application takes each message at once (the default).
    pub(super) auto_ack: bool,
    /// Tokens of messages polled and not acknowledged (with `auto_ack` off), oldest first.
    pub(super) unacked: Vec<AckToken>,
}

impl Pair {
    pub(super) fn new(config: SessionConfig) -> Self {
        let decoder = Decoder::new(config.level, usize::MAX);
        Self {
            session: Session::new(config),
            now: base_instant(),
            decoder,
            wire: BytesMut::new(),
            events: Vec::new(),
            store: Snapshot::new(),
            ops: Vec::new(),
            lost_in_window: Vec::new(),
            dup_in_window: Vec::new(),
            qos2_payloads: HashMap::new(),
            auto_ack: true,
            unacked: Vec::new(),
        }
    }

    /// Pulls every pending store op and makes it "durable" (applies it to `store`), as a
    /// driver does before transmitting.
    pub(super) fn persist(&mut self) {
        for _ in 0..MAX_STEPS {
            match self.session.poll_persist() {
                Some(op) => {
                    self.ops.push(op.clone());
                    self.store.apply(op);
                }
                None => return,
            }
        }
        panic!("more than {MAX_STEPS} store ops at once");
    }

    /// The process dies: of the ops not yet pulled, only the first `durable` reached the
    /// disk (a torn batch). A new session with the same configuration restores what the
    /// store holds; returns the request ids of the restored publishes.
    pub(super) fn crash(&mut self, durable: usize) -> Vec<RequestId> {
        let mut kept = 0;
        let mut held = HashSet::new();
        while let Some(op) = self.session.poll_persist() {
            if kept < durable {
                if let PersistOp::Received(id) = op {
                    held.insert(id);
                }
                self.ops.push(op.clone());
                self.store.apply(op);
                kept += 1;
            } else if let PersistOp::Received(id) = op
                && let Some(body) = self.qos2_payloads.get(&id)
            {
                self.dup_in_window.push(body.clone());
            }
        }
        for e in &self.session.events {
            if let Event::Message { publish: p, .. } = e
                && let QosPid::ExactlyOnce(id) = p.qos_pid
                && held.contains(&id)
            {
                self.lost_in_window.push(p.payload.clone());
            }
        }
        self.session = Session::new(self.session.config().clone());
        self.wire.clear();
        self.decoder = Decoder::new(self.session.config().level, usize::MAX);
        self.events.clear();
        self.session
            .restore(&self.store)
            .unwrap_or_else(|e| panic!("restore into a fresh session failed: {e}"))
    }

    /// Feeds `packet` to the session without pulling anything afterwards (no store ops, no
    /// events): a crash may follow before the driver got to them.
    pub(super) fn deliver_unpolled(&mut self, packet: &Packet) -> Result<(), ProtocolError> {
        let mut bytes = BytesMut::new();
        packet
            .encode(&mut bytes)
            .unwrap_or_else(|e| panic!("test broker packet {packet:?} does not encode: {e}"));
        self.session.handle_input(self.now, &bytes)
    }

    /// Drains `poll_transmit` and returns the packets the client sent, decoded.
    pub(super) fn sent(&mut self) -> Vec<Packet> {
        self.persist();
        let n = self.session.poll_transmit(&mut self.wire);
        assert_eq!(n, self.wire.len(), "poll_transmit miscounted its bytes");
        let mut packets = Vec::new();
        for _ in 0..MAX_STEPS {
            match self.decoder.decode(&mut self.wire) {
                Ok(Some(p)) => packets.push(p),
                Ok(None) => break,
                Err(e) => panic!("the client sent an undecodable packet: {e}"),
            }
        }
        assert!(self.wire.is_empty(), "the client sent a partial packet");
        self.poll_events();
        packets
    }

    /// Encodes `packet` as the broker and feeds it to the session.
    pub(super) fn deliver(&mut self, packet: Packet) -> Result<(), ProtocolError> {
        let mut bytes = BytesMut::new();
        let level = self.session.config().level;
        // The model broker's UNSUBACK, at level 5 (where it lists a code per filter).
        let packet = match packet {
            Packet::UnsubAck(id) if level.is_v5() => {
                let filters = match self.session.inflight.get(id).map(|s| &s.packet) {
                    Some(Packet::Unsubscribe(u)) => u.filters.len(),
                    _ => 1,
                };
                Packet::UnsubAckV5(Box::new(UnsubAckV5 {
                    packet_id: id,
                    reason_codes: vec![UnsubAckReasonCode::Success; filters],
                    properties: Default::default(),
                }))
            }
            other => other,
        };
        if level.is_v5() {
            packet.encode_for(level, &mut bytes)
        } else {
            packet.encode(&mut bytes)
        }
        .unwrap_or_else(|e| panic!("test broker packet {packet:?} does not encode: {e}"));
        self.deliver_bytes(&bytes)
    }

    /// Feeds raw bytes to the session.
    pub(super) fn deliver_bytes(&mut self, bytes: &[u8]) -> Result<(), ProtocolError> {
        let r = self.session.handle_input(self.now, bytes);
        self.poll_events();
        r
    }

    fn poll_events(&mut self) {
        self.persist();
        for _ in 0..MAX_STEPS {
            match self.session.poll_event() {
                Some(e) => {
                    if let Event::Message { publish, .. } = &e
                        && let QosPid::ExactlyOnce(id) = publish.qos_pid
                    {
                        self.qos2_payloads.insert(id, publish.payload.clone());
                    }
                    if let Event::Message {
                        ack: Some(token), ..
                    } = &e
                    {
                        if self.auto_ack {
                            self.session.ack(*token);
                        } else {
                            self.unacked.push(*token);
                        }
                    }
                    self.events.push(e);
                }
                None => {
                    // Acks may have queued store ops (QoS 2 ids held).
                    self.persist();
                    return;
                }
            }
        }
        panic!("more than {MAX_STEPS} events at once");
    }

    /// Events emitted since the last call.
    pub(super) fn events(&mut self) -> Vec<Event> {
        self.poll_events();
        std::mem::take(&mut self.events)
    }

    /// `connect`, checks that CONNECT (and only CONNECT) goes out, answers CONNACK 0, and
    /// returns whatever the client sent right after CONNACK (resends, queued commands).
    pub(super) fn connect(&mut self, session_present: bool) -> Vec<Packet> {
        self.session.connect(self.now).unwrap();
        let sent = self.sent();
        assert!(
            matches!(sent.as_slice(), [Packet::Connect(_)]),
            "expected only CONNECT, got {sent:?}"
        );
        self.poll_events();
        let before = self.events.len();
        self.deliver(connack(ConnectReturnCode::Accepted, session_present))
            .unwrap();
        assert_eq!(
            self.events.get(before),
            Some(&Event::Connected { session_present })
        );
        self.events.remove(before);
        self.sent()
    }

    /// The transport closed: `handle_closed`, and a fresh broker-side decoder.
    pub(super) fn close(&mut self) {
        self.session.handle_closed(self.now);
        self.wire.clear();
        self.decoder = Decoder::new(self.session.config().level, usize::MAX);
        self.poll_events();
    }

    /// Advances the virtual clock by `d`, calling `handle_timeout` at every deadline reached
    /// on the way (bounded).
    pub(super) fn advance(&mut self, d: Duration) {
        let target = self.now + d;
        for _ in 0..MAX_STEPS {
            match self.session.poll_timeout() {
                Some(at) if at <= target => {
                    self.now = self.now.max(at);
                    self.session.handle_timeout(self.now);
                    self.poll_events();
                }
                _ => {
                    self.now = target;
                    return;
                }
            }
        }
        panic!("timers kept firing without reaching {target:?}");
    }

    /// Publishes and returns the request id.
    pub(super) fn publish(&mut self, m: Message) -> RequestId {
        self.session.publish(self.now, m).unwrap()
    }

    /// Feeds the client what `broker` released, without reading the client's answers (a
    /// following drop loses them).
    pub(super) fn feed(&mut self, broker: &mut Broker) {
        for p in broker.take_outgoing() {
            if !self.session.state.is_open() {
                break;
            }
            if let Err(e) = self.deliver(p.clone()) {
                panic!("the model broker caused a protocol error: {e}");
            }
            broker.arrived(&p);
        }
    }

    /// Exchanges packets with `broker` until neither side has anything to say (bounded).
    pub(super) fn drive(&mut self, broker: &mut Broker) {
        for _ in 0..MAX_STEPS {
            let sent = self.sent();
            for p in sent {
                broker.on_client_packet(p);
            }
            if broker.auto_respond {
                broker.release_all();
            }
            if broker.outgoing.is_empty() {
                return;
            }
            self.feed(broker);
        }
        panic!("pair did not settle within {MAX_STEPS} steps");
    }
}

/// Where a broker → client QoS 1/2 message stands, named after the packet awaited
/// (PUBACK, PUBREC, PUBCOMP).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum OutStage {
    Ack,
    Rec,
    Comp,
}

/// A model broker that keeps its session across connections (as with clean session off)
/// and checks the client's behaviour on the wire.
///
/// It answers client packets into `pending`, released to the client in any order the test
/// picks ([`Broker::release`]) or all at once; it delivers QoS 2 messages once per id like a
/// real broker (deduplicating re-sent PUBLISHes until PUBREL), and it checks that the client
/// never uses a packet id for a new packet while that id is still in flight.
#[derive(Debug, Default)]
pub(super) struct Broker {
    /// Release every answer as soon as it is produced.
    pub(super) auto_respond: bool,
    /// Answer PUBREL for no publish in flight with PUBCOMP, as a real broker must, instead
    /// of failing the test: a client restarted from its store re-sends PUBREL when the
    /// record of the PUBCOMP it got did not reach the disk.
    pub(super) lenient_pubrel: bool,
    /// Answers produced but not yet released.
    pub(super) pending: Vec<Packet>,
    /// Packets released, to be fed to the client in order.
    pub(super) outgoing: Vec<Packet>,
    /// QoS 2 ids PUBREC'd and awaiting PUBREL (the dedup set).
    inbound_qos2: HashSet<u16>,
    /// How often each payload was delivered to subscribers.
    pub(super) delivered: HashMap<Bytes, usize>,
    /// Client packet ids in flight, with what they carry, from the broker's view: added on
    /// a new PUBLISH QoS>0 / SUBSCRIBE / UNSUBSCRIBE, removed when the completing answer
    /// (PUBACK, PUBCOMP, SUBACK, UNSUBACK) reaches the client.
    open: HashMap<u16, Packet>,
    /// SUBSCRIBEs seen (re-sends included).
    pub(super) subscribes: usize,
    /// Broker → client messages in flight, by broker id.
    pub(super) out: BTreeMap<u16, (Bytes, OutStage)>,
    next_out_id: u16,
    /// CONNECTs seen.
    pub(super) connects: usize,
    /// Each command's first arrival, in arrival order: a PUBLISH by payload, a
    /// SUBSCRIBE/UNSUBSCRIBE by its first filter.
    pub(super) arrivals: Vec<Bytes>,
    arrived_keys: HashSet<Bytes>,
}

impl Broker {
    /// Records the first arrival of the command known by `key`.
    fn first_arrival(&mut self, key: Bytes) {
        if self.arrived_keys.insert(key.clone()) {
            self.arrivals.push(key);
        }
    }

    /// Handles one packet the client sent.
    pub(super) fn on_client_packet(&mut self, p: Packet) {
        match &p {
            Packet::Publish(publish) => self.first_arrival(publish.payload.clone()),
            Packet::Subscribe(s) => {
                if let Some((f, _)) = s.filters.first() {
                    self.first_arrival(Bytes::from(f.as_str().to_owned()));
                }
            }
            Packet::Unsubscribe(u) => {
                if let Some(f) = u.filters.first() {
                    self.first_arrival(Bytes::from(f.as_str().to_owned()));
                }
            }
            _ => {}
        }
        match p {
            Packet::Connect(c) => {
                assert!(!c.clean_session, "the model broker keeps sessions");
                self.connects += 1;
                // A new connection: answers not released are lost with the old one.
                self.pending.clear();
                self.outgoing.clear();
                self.outgoing.push(Packet::ConnAck(ConnAck {
                    session_present: true,
                    code: ConnectReturnCode::Accepted,
                }));
                // Re-send our unacknowledged messages, in id order (= send order here).
                for (&n, (payload, stage)) in &self.out {
                    let id = id(n);
                    self.outgoing.push(match stage {
                        OutStage::Ack => out_publish(QosPid::AtLeastOnce(id), payload, true),
                        OutStage::Rec => out_publish(QosPid::ExactlyOnce(id), payload, true),
                        OutStage::Comp => Packet::PubRel(id),
                    });
                }
            }
            Packet::Publish(ref publish) => match publish.qos_pid {
                QosPid::AtMostOnce => {
                    *self.delivered.entry(publish.payload.clone()).or_default() += 1;
                }
                QosPid::AtLeastOnce(id) => {
                    self.check_new_id(id, publish.dup, &p);
                    *self.delivered.entry(publish.payload.clone()).or_default() += 1;
                    self.pending.push(Packet::PubAck(id));
                }
                QosPid::ExactlyOnce(id) => {
                    self.check_new_id(id, publish.dup, &p);
                    if self.inbound_qos2.insert(id.get()) {
                        *self.delivered.entry(publish.payload.clone()).or_default() += 1;
                    }
                    self.pending.push(Packet::PubRec(id));
                }
            },
            Packet::PubRel(id) => {
                let open = self.open.get(&id.get());
                if self.lenient_pubrel && open.is_none() {
                    self.pending.push(Packet::PubComp(id));
                    return;
                }
                assert!(
                    matches!(open, Some(Packet::Publish(p)) if p.qos() == QoS::ExactlyOnce),
                    "PUBREL {id} for no QoS 2 publish in flight: {open:?}"
                );
                self.inbound_qos2.remove(&id.get());
                self.pending.push(Packet::PubComp(id));
            }
            Packet::Subscribe(ref s) => {
                self.check_new_id(s.packet_id, true, &p);
                self.subscribes += 1;
                let codes = s
                    .filters
                    .iter()
                    .map(|(_, q)| SubscribeReturnCode::Success(*q))
                    .collect();
                self.pending.push(Packet::SubAck(SubAck {
                    packet_id: s.packet_id,
                    return_codes: codes,
                }));
            }
            Packet::Unsubscribe(ref u) => {
                self.check_new_id(u.packet_id, true, &p);
                self.pending.push(Packet::UnsubAck(u.packet_id));
            }
            Packet::PubAck(id) => {
                let stage = self.out.get(&id.get()).map(|(_, s)| *s);
                assert_eq!(stage, Some(OutStage::Ack), "client PUBACK {id}");
                self.out.remove(&id.get());
            }
            Packet::PubRec(id) => {
                let entry = self.out.get_mut(&id.get());
                let Some((_, stage)) = entry else {
                    panic!("client PUBREC {id} for nothing in flight")
                };
                assert_ne!(*stage, OutStage::Ack, "client PUBREC {id} at QoS 1");
                *stage = OutStage::Comp;
                self.outgoing.push(Packet::PubRel(id));
            }
            Packet::PubComp(id) => {
                // PUBCOMP for an unknown id is legal (the client answers any PUBREL).
                if let Some((_, OutStage::Comp)) = self.out.get(&id.get()) {
                    self.out.remove(&id.get());
                }
            }
            Packet::PingReq => self.outgoing.push(Packet::PingResp),
            Packet::Disconnect => {}
            other => panic!("a client never sends {other:?}"),
        }
    }

    /// [MQTT-2.3.1-2] a new packet must not use an id still in flight; a re-send
    /// ([MQTT-2.3.1-3]) carries the same packet (PUBLISH with DUP=1).
    fn check_new_id(&mut self, id: PacketId, dup: bool, p: &Packet) {
        match self.open.get(&id.get()) {
            Some(prev) => {
                let same = match (prev, p) {
                    (Packet::Publish(a), Packet::Publish(b)) => {
                        a.payload == b.payload && a.qos_pid == b.qos_pid
                    }
                    (a, b) => a == b,
                };
                assert!(
                    same && dup,
                    "packet id {id} reused while in flight: had {prev:?}, got {p:?}"
                );
            }
            None => {
                self.open.insert(id.get(), p.clone());
            }
        }
    }

    /// Sends the broker → client message `payload` at `qos`.
    pub(super) fn send_publish(&mut self, qos: QoS, payload: Bytes) {
        let qos_pid = match qos {
            QoS::AtMostOnce => QosPid::AtMostOnce,
            _ => {
                self.next_out_id = self.next_out_id.wrapping_add(1).max(1);
                let id = id(self.next_out_id);
                let (qos_pid, stage) = if qos == QoS::AtLeastOnce {
                    (QosPid::AtLeastOnce(id), OutStage::Ack)
                } else {
                    (QosPid::ExactlyOnce(id), OutStage::Rec)
                };
                self.out.insert(id.get(), (payload.clone(), stage));
                qos_pid
            }
        };
        self.outgoing.push(out_publish(qos_pid, &payload, false));
    }

    /// Releases the pending answer at `index` (modulo the number pending), if any.
    pub(super) fn release(&mut self, index: usize) {
        if self.pending.is_empty() {
            return;
        }
        let p = self.pending.remove(index % self.pending.len());
        self.release_packet(p);
    }

    /// Releases every pending answer, in order.
    pub(super) fn release_all(&mut self) {
        for p in std::mem::take(&mut self.pending) {
            self.release_packet(p);
        }
    }

    fn release_packet(&mut self, p: Packet) {
        self.outgoing.push(p);
    }

    /// `p` reached the client: a completing answer frees the client's id.
    pub(super) fn arrived(&mut self, p: &Packet) {
        if let Packet::PubAck(id)
        | Packet::PubComp(id)
        | Packet::UnsubAck(id)
        | Packet::SubAck(SubAck { packet_id: id, .. }) = p
        {
            self.open.remove(&id.get());
        }
    }

    /// Packets released and not yet fed to the client.
    pub(super) fn take_outgoing(&mut self) -> Vec<Packet> {
        std::mem::take(&mut self.outgoing)
    }

    /// The connection dropped: unreleased answers are lost.
    pub(super) fn drop_connection(&mut self) {
        self.pending.clear();
        self.outgoing.clear();
    }
}

fn out_publish(qos_pid: QosPid, payload: &Bytes, dup: bool) -> Packet {
    Packet::Publish(Publish {
        dup,
        qos_pid,
        retain: false,
        topic: topic("from/broker"),
        payload: payload.clone(),
    })
}
