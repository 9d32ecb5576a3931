//! Random interleavings of commands, broker answers (released in any order), broker
//! publishes, and connection drops with clean session off, checked against the model broker.

use std::collections::HashMap;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;

use super::harness::{Broker, Pair, config, filter, topic};
use crate::packet::{ConnectProperties, Packet, ProtocolLevel, QoS};
use crate::session::{Event, Message, RequestId};

#[derive(Debug, Clone)]
enum Op {
    /// The application publishes at this QoS.
    Publish(QoS),
    /// The application subscribes.
    Subscribe,
    /// The application unsubscribes.
    Unsubscribe,
    /// The application stops acknowledging messages as it gets them.
    HoldAcks,
    /// The application acknowledges one held message (index modulo the number held).
    AckOne(usize),
    /// The application acknowledges every held message and acknowledges at once again.
    AckAll,
    /// Client and broker exchange packets until the broker holds only unreleased answers.
    Drive,
    /// The broker releases one held answer (index modulo the number held).
    Release(usize),
    /// The broker releases every held answer.
    ReleaseAll,
    /// The broker publishes to the client at this QoS (it reaches the client at the next
    /// `Drive`, `Feed` or `Release`).
    BrokerPublish(QoS),
    /// The broker's released packets reach the client; the client's answers are not read.
    Feed,
    /// The transport drops (possibly with packets unsent or answers unreleased) and the
    /// client reconnects at once.
    Drop,
    /// Like `Drop`, and what the client handed out last never reaches the broker.
    LossyDrop,
}

fn qos() -> impl Strategy<Value = QoS> {
    prop_oneof![
        Just(QoS::AtMostOnce),
        Just(QoS::AtLeastOnce),
        Just(QoS::ExactlyOnce)
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => qos().prop_map(Op::Publish),
        1 => Just(Op::Subscribe),
        1 => Just(Op::Unsubscribe),
        1 => Just(Op::HoldAcks),
        2 => any::<usize>().prop_map(Op::AckOne),
        1 => Just(Op::AckAll),
        4 => Just(Op::Drive),
        4 => any::<usize>().prop_map(Op::Release),
        1 => Just(Op::ReleaseAll),
        2 => qos().prop_map(Op::BrokerPublish),
        1 => Just(Op::Feed),
        1 => Just(Op::Drop),
        1 => Just(Op::LossyDrop),
    ]
}

/// What the application did and saw.
#[derive(Default)]
struct Ledger {
    publishes: HashMap<RequestId, (QoS, Bytes)>,
    subscribes: Vec<RequestId>,
    /// Every command's key (publish payload, subscribe/unsubscribe filter), in call order.
    calls: Vec<Bytes>,
    completed: HashMap<RequestId, usize>,
    /// Broker → client payloads sent, by QoS.
    sent_by_broker: Vec<(QoS, Bytes)>,
    received: HashMap<Bytes, usize>,
    drops: usize,
}

impl Ledger {
    fn absorb(&mut self, events: Vec<Event>) {
        for e in events {
            match e {
                Event::Published(id)
                | Event::Unsubscribed(id)
                | Event::Subscribed { id, .. }
                | Event::SubscribedV5 { id, .. }
                | Event::UnsubscribedV5 { id, .. } => {
                    let n = self.completed.entry(id).or_default();
                    *n += 1;
                    assert_eq!(*n, 1, "request {id} completed twice");
                }
                Event::Message { publish: p, .. } => {
                    *self.received.entry(p.payload).or_default() += 1
                }
                Event::Connected { .. } => {}
                Event::Disconnected(reason) => {
                    assert_eq!(
                        reason,
                        crate::session::DisconnectReason::TransportClosed,
                        "only the test drops connections"
                    );
                    self.drops += 1;
                }
                other => panic!("unexpected event {other:?}"),
            }
        }
    }
}

/// [`Session::owed_bytes`](crate::session::Session::owed_bytes) never exceeds what the
/// broker will still send in acknowledgement of packets it has: a driver that sleeps until
/// that many bytes are readable cannot sleep for ever.
fn assert_owed_bytes_will_arrive(pair: &Pair, broker: &Broker) {
    let acks: usize = broker
        .pending
        .iter()
        .chain(&broker.outgoing)
        .filter(|p| {
            matches!(
                p,
                Packet::PubAck(_)
                    | Packet::PubRec(_)
                    | Packet::PubRel(_)
                    | Packet::PubComp(_)
                    | Packet::SubAck(_)
                    | Packet::UnsubAck(_)
            )
        })
        .map(|p| {
            let mut bytes = BytesMut::new();
            p.encode(&mut bytes)
                .unwrap_or_else(|e| panic!("{p:?} does not encode: {e}"));
            bytes.len()
        })
        .sum();
    let owed = pair.session.owed_bytes();
    assert!(
        owed <= acks,
        "owed_bytes {owed} but the broker holds {acks} bytes of acknowledgements: {:?} / {:?}",
        broker.pending,
        broker.outgoing
    );
}

/// Runs `ops`, then lets everything settle and checks the outcome. Packet ids wrap after
/// `wrap_after`, so id reuse happens within a few packets. `v5`: at MQTT 5, the session
/// kept by a Session Expiry Interval instead of clean session off.
fn run(ops: &[Op], max_inflight: u16, wrap_after: u16, v5: bool) {
    let mut cfg = config()
        .clean_session(false)
        .max_inflight(max_inflight)
        .keep_alive(Duration::ZERO);
    if v5 {
        cfg = cfg
            .level(ProtocolLevel::V5)
            .connect_properties(ConnectProperties {
                session_expiry_interval: Some(u32::MAX),
                ..Default::default()
            });
    }
    let mut pair = Pair::new(cfg);
    pair.session.ids.set_wrap_after(wrap_after);
    let mut broker = Broker::default();
    let mut ledger = Ledger::default();
    let mut n = 0u32;
    let mut payload = |prefix: &str| {
        n += 1;
        Bytes::from(format!("{prefix}{n}"))
    };
    pair.session.connect(pair.now).unwrap();
    for op in ops {
        match op {
            Op::Publish(q) => {
                let body = payload("c");
                let m = Message {
                    topic: topic("t"),
                    payload: body.clone(),
                    qos: *q,
                    retain: false,
                    properties: None,
                };
                let id = pair.session.publish(pair.now, m).unwrap();
                ledger.calls.push(body.clone());
                ledger.publishes.insert(id, (*q, body));
            }
            Op::Subscribe | Op::Unsubscribe => {
                let name = String::from_utf8_lossy(&payload("t/s")).into_owned();
                let id = if matches!(op, Op::Subscribe) {
                    pair.session
                        .subscribe(pair.now, vec![(filter(&name), QoS::ExactlyOnce)])
                } else {
                    pair.session.unsubscribe(pair.now, vec![filter(&name)])
                };
                ledger.subscribes.push(id.unwrap());
                ledger.calls.push(Bytes::from(name));
            }
            Op::HoldAcks => pair.auto_ack = false,
            Op::AckOne(i) => {
                if !pair.unacked.is_empty() {
                    let i = i % pair.unacked.len();
                    let token = pair.unacked.remove(i);
                    pair.session.ack(token);
                }
            }
            Op::AckAll => ack_all(&mut pair),
            Op::Drive => pair.drive(&mut broker),
            Op::Release(i) => {
                broker.release(*i);
                pair.drive(&mut broker);
            }
            Op::ReleaseAll => {
                broker.release_all();
                pair.drive(&mut broker);
            }
            Op::BrokerPublish(q) => {
                if pair.session.is_connected() {
                    let body = payload("b");
                    broker.send_publish(*q, body.clone());
                    ledger.sent_by_broker.push((*q, body));
                }
            }
            Op::Feed => pair.feed(&mut broker),
            Op::Drop | Op::LossyDrop => {
                if matches!(op, Op::LossyDrop) {
                    pair.sent();
                }
                pair.close();
                broker.drop_connection();
                pair.session.connect(pair.now).unwrap();
            }
        }
        ledger.absorb(pair.events());
        assert_owed_bytes_will_arrive(&pair, &broker);
    }

    // Settle: the application acknowledges what it holds, the broker answers everything at
    // once until both sides are quiet.
    ack_all(&mut pair);
    broker.auto_respond = true;
    pair.drive(&mut broker);
    ledger.absorb(pair.events());
    assert!(pair.session.is_connected());
    assert_eq!(pair.session.in_flight(), 0, "everything acknowledged");
    assert_eq!(pair.session.queued(), 0, "nothing left queued");
    assert!(
        broker.out.is_empty(),
        "the client acknowledged every broker publish"
    );

    for (id, (q, body)) in &ledger.publishes {
        assert_eq!(
            ledger.completed.get(id),
            Some(&1),
            "publish {id} at QoS {q}"
        );
        let seen = broker.delivered.get(body).copied().unwrap_or(0);
        match q {
            QoS::AtMostOnce => assert!(seen <= 1, "QoS 0 {body:?} reached the broker twice"),
            QoS::AtLeastOnce => assert!(seen >= 1, "QoS 1 {body:?} never reached the broker"),
            QoS::ExactlyOnce => assert_eq!(seen, 1, "QoS 2 {body:?} reached it {seen} times"),
        }
    }
    for id in &ledger.subscribes {
        assert_eq!(ledger.completed.get(id), Some(&1), "subscribe {id}");
    }
    // Commands first reached the broker in the order they were made.
    let position: HashMap<&Bytes, usize> = ledger
        .calls
        .iter()
        .enumerate()
        .map(|(i, k)| (k, i))
        .collect();
    let arrived: Vec<usize> = broker.arrivals.iter().map(|k| position[k]).collect();
    assert!(
        arrived.windows(2).all(|w| w[0] < w[1]),
        "out of call order: {:?} for calls {:?}",
        broker.arrivals,
        ledger.calls
    );
    for (q, body) in &ledger.sent_by_broker {
        let got = ledger.received.get(body).copied().unwrap_or(0);
        match q {
            QoS::AtMostOnce => assert!(got <= 1, "broker QoS 0 {body:?} delivered twice"),
            QoS::AtLeastOnce => assert!(got >= 1, "broker QoS 1 {body:?} never delivered"),
            QoS::ExactlyOnce => assert_eq!(got, 1, "broker QoS 2 {body:?} delivered {got} times"),
        }
    }
}

/// The application acknowledges every message it holds, and from now on each at once.
fn ack_all(pair: &mut Pair) {
    pair.auto_ack = true;
    for token in std::mem::take(&mut pair.unacked) {
        pair.session.ack(token);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn every_publish_completes_once_and_qos2_reaches_the_broker_exactly_once(
        ops in prop::collection::vec(op(), 1..80),
        max_inflight in 1u16..5,
        wrap_after in 3u16..12,
    ) {
        run(&ops, max_inflight, wrap_after, false);
    }

    /// The same at MQTT 5: every level 3/4 guarantee holds at level 5.
    #[test]
    fn every_publish_completes_once_and_qos2_reaches_the_broker_exactly_once_at_level_5(
        ops in prop::collection::vec(op(), 1..80),
        max_inflight in 1u16..5,
        wrap_after in 3u16..12,
    ) {
        run(&ops, max_inflight, wrap_after, true);
    }
}

#[test]
fn drops_between_every_step_of_a_qos2_flow_still_deliver_exactly_once() {
    // A deterministic worst case: drop after each half of the exchange.
    let ops = [
        Op::Publish(QoS::ExactlyOnce),
        Op::Drive,
        Op::Drop,
        Op::Drive,
        Op::Release(0),
        Op::Drop,
        Op::Drive,
        Op::Release(0),
        Op::Drop,
        Op::Drive,
        Op::BrokerPublish(QoS::ExactlyOnce),
        Op::Drop,
        Op::Drive,
        Op::BrokerPublish(QoS::ExactlyOnce),
        Op::Feed,
        Op::Drop,
        Op::Drive,
        Op::Publish(QoS::AtLeastOnce),
        Op::LossyDrop,
        Op::Drive,
    ];
    run(&ops, 1, u16::MAX, false);
    run(&ops, 1, u16::MAX, true);
}
