//! Session persistence: the store ops a session emits, the write-ahead gate on transmit and
//! events, `restore` after a restart, and proptest interleavings with crashes at random
//! points (a random prefix of the unpulled ops durable) checked against the model broker.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;

use super::harness::{Broker, Pair, config, connack, id, msg, publish, topic};
use crate::packet::{ConnectReturnCode, Packet, QoS, QosPid};
use crate::session::{
    ApiMisuse, Event, Message, OutgoingFlow, PersistOp, RequestError, RequestId, Session, Snapshot,
};

fn stored() -> Pair {
    let mut pair = Pair::new(config().clean_session(false).persistence(true));
    assert!(pair.connect(false).is_empty());
    pair
}

fn pid(p: &Packet) -> u16 {
    match p {
        Packet::Publish(p) => p.packet_id().map_or(0, |i| i.get()),
        Packet::PubRel(id) => id.get(),
        other => panic!("expected PUBLISH or PUBREL, got {other:?}"),
    }
}

#[test]
fn no_store_ops_are_made_without_persistence() {
    let mut pair = Pair::new(config().clean_session(false));
    pair.connect(false);
    pair.publish(msg("a", b"1", QoS::AtLeastOnce));
    pair.publish(msg("a", b"2", QoS::ExactlyOnce));
    let sent = pair.sent();
    pair.deliver(Packet::PubAck(id(pid(&sent[0])))).unwrap();
    pair.deliver(Packet::PubRec(id(pid(&sent[1])))).unwrap();
    pair.deliver(publish(QosPid::ExactlyOnce(id(9)), false, b"in"))
        .unwrap();
    pair.sent();
    assert!(pair.ops.is_empty(), "{:?}", pair.ops);
    assert!(pair.session.poll_persist().is_none());
}

#[test]
fn a_qos2_publish_is_recorded_at_each_stage_in_order() {
    let mut pair = stored();
    pair.publish(msg("a", b"x", QoS::ExactlyOnce));
    let sent = pair.sent();
    let n = id(pid(&sent[0]));
    pair.deliver(Packet::PubRec(n)).unwrap();
    assert_eq!(pair.sent(), [Packet::PubRel(n)]);
    pair.deliver(Packet::PubComp(n)).unwrap();
    let [
        PersistOp::Publish { seq, publish, .. },
        PersistOp::PubRel { seq: seq2, id: rel },
        PersistOp::Done(done),
    ] = pair.ops.as_slice()
    else {
        panic!("{:?}", pair.ops)
    };
    assert_eq!((seq, seq2, *rel, *done), (&0, &0, n, n));
    assert!(!publish.dup, "stored as first sent");
    assert_eq!(&publish.payload[..], b"x");
    assert!(pair.store.is_empty());
}

#[test]
fn incoming_qos2_ids_are_recorded_when_held_and_when_released() {
    let mut pair = stored();
    pair.deliver(publish(QosPid::ExactlyOnce(id(4)), false, b"m"))
        .unwrap();
    // A re-send before PUBREL changes nothing durable.
    pair.deliver(publish(QosPid::ExactlyOnce(id(4)), true, b"m"))
        .unwrap();
    assert_eq!(pair.ops, [PersistOp::Received(id(4))]);
    pair.deliver(Packet::PubRel(id(4))).unwrap();
    // PUBREL for an id not held: PUBCOMP, no record.
    pair.deliver(Packet::PubRel(id(5))).unwrap();
    assert_eq!(
        pair.ops,
        [PersistOp::Received(id(4)), PersistOp::Released(id(4))]
    );
}

#[test]
fn nothing_is_transmitted_and_no_event_handed_out_while_store_ops_are_pending() {
    let mut pair = stored();
    pair.publish(msg("a", b"x", QoS::AtLeastOnce));
    let mut out = BytesMut::new();
    assert_eq!(pair.session.poll_transmit(&mut out), 0);
    assert!(out.is_empty(), "PUBLISH left before its record was pulled");

    let mut bytes = BytesMut::new();
    publish(QosPid::ExactlyOnce(id(7)), false, b"m")
        .encode(&mut bytes)
        .unwrap();
    pair.session.handle_input(pair.now, &bytes).unwrap();
    // The PUBLISH leaves (its record is pulled by `sent`); the message is handed out, but
    // its PUBREC waits for the application's ack.
    pair.auto_ack = false;
    let sent = pair.sent();
    assert!(matches!(sent.as_slice(), [Packet::Publish(_)]), "{sent:?}");
    assert!(matches!(pair.events().as_slice(), [Event::Message { .. }]));
    let [token] = pair.unacked[..] else {
        panic!("{:?}", pair.unacked)
    };
    // The ack records the id; until that record is pulled, no PUBREC.
    pair.session.ack(token);
    assert_eq!(pair.session.poll_transmit(&mut out), 0);
    assert!(out.is_empty(), "PUBREC left before the id was durably held");
    assert_eq!(pair.sent(), [Packet::PubRec(id(7))]);
    assert_eq!(pair.ops.last(), Some(&PersistOp::Received(id(7))));
}

#[test]
fn the_store_tracks_the_live_session_state() {
    let mut pair = stored();
    for (body, q) in [
        (&b"1"[..], QoS::AtLeastOnce),
        (b"2", QoS::ExactlyOnce),
        (b"3", QoS::ExactlyOnce),
        (b"4", QoS::AtMostOnce),
    ] {
        pair.publish(Message {
            topic: topic("t"),
            payload: Bytes::copy_from_slice(body),
            qos: q,
            retain: false,
            properties: None,
        });
    }
    let sent = pair.sent();
    pair.deliver(Packet::PubRec(id(pid(&sent[1])))).unwrap();
    pair.deliver(publish(QosPid::ExactlyOnce(id(300)), false, b"in"))
        .unwrap();
    pair.sent();
    assert_eq!(pair.store, pair.session.durable_state());
    assert_eq!(pair.store.outgoing().len(), 3, "QoS 0 is not stored");
    assert_eq!(pair.store.incoming().collect::<Vec<_>>(), [id(300)]);
}

#[test]
fn restore_then_connect_resends_dup_publish_and_pubrel_in_original_order() {
    let mut pair = stored();
    pair.session.ids.set_wrap_after(u16::MAX);
    pair.session.ids.set_next(id(65_534));
    pair.publish(msg("a", b"a", QoS::ExactlyOnce));
    pair.publish(msg("a", b"b", QoS::AtLeastOnce));
    pair.publish(msg("a", b"c", QoS::ExactlyOnce));
    let ids: Vec<u16> = pair.sent().iter().map(pid).collect();
    assert_eq!(ids, [65_534, 65_535, 1]);
    pair.deliver(Packet::PubRec(id(ids[0]))).unwrap();
    pair.sent();
    pair.deliver(publish(QosPid::ExactlyOnce(id(42)), false, b"in"))
        .unwrap();
    pair.sent();
    pair.events();

    let restored = pair.crash(0);
    assert_eq!(restored.len(), 3);
    let resent = pair.connect(true);
    assert_eq!(resent.len(), 3, "{resent:?}");
    assert_eq!(resent[0], Packet::PubRel(id(65_534)));
    for (p, (n, body)) in resent[1..].iter().zip([(65_535, b"b"), (1, b"c")]) {
        let Packet::Publish(p) = p else {
            panic!("{p:?}")
        };
        assert!(p.dup, "a restored PUBLISH is a re-delivery [MQTT-3.3.1-1]");
        assert_eq!(
            (pid(&Packet::Publish(p.clone())), &p.payload[..]),
            (n, &body[..])
        );
    }
    // The broker's id 42 is still held: its re-send is acknowledged, not delivered.
    pair.deliver(publish(QosPid::ExactlyOnce(id(42)), true, b"in"))
        .unwrap();
    assert_eq!(pair.sent(), [Packet::PubRec(id(42))]);
    assert!(pair.events().is_empty());

    // Completions are reported under the restored request ids, and new ids skip the
    // restored ones.
    pair.deliver(Packet::PubComp(id(65_534))).unwrap();
    pair.deliver(Packet::PubAck(id(65_535))).unwrap();
    assert_eq!(
        pair.events(),
        [Event::Published(restored[0]), Event::Published(restored[1])]
    );
    pair.publish(msg("a", b"d", QoS::AtLeastOnce));
    assert_eq!(pair.sent().iter().map(pid).collect::<Vec<_>>(), [2]);
}

#[test]
fn restore_orders_by_first_send_and_later_publishes_follow() {
    let mut s = Snapshot::new();
    let p = |n: u16, body: &'static [u8]| match publish(QosPid::AtLeastOnce(id(n)), false, body) {
        Packet::Publish(p) => p,
        _ => unreachable!(),
    };
    s.apply(PersistOp::Publish {
        seq: 9,
        publish: p(3, b"late"),
        properties: None,
    });
    s.apply(PersistOp::Publish {
        seq: 4,
        publish: p(8, b"early"),
        properties: None,
    });
    let mut pair = Pair::new(config().clean_session(false).persistence(true));
    pair.session.restore(&s).unwrap();
    let resent = pair.connect(true);
    assert_eq!(resent.iter().map(pid).collect::<Vec<_>>(), [8, 3]);
    pair.publish(msg("a", b"new", QoS::AtLeastOnce));
    pair.sent();
    let Some(PersistOp::Publish { seq, .. }) = pair.ops.last() else {
        panic!("{:?}", pair.ops)
    };
    assert_eq!(*seq, 10, "new flows order after restored ones");
}

#[test]
fn restore_after_connect_is_api_misuse() {
    let mut pair = stored();
    assert_eq!(
        pair.session.restore(&Snapshot::new()),
        Err(ApiMisuse::RestoreAfterStart)
    );
}

#[test]
fn clean_session_discards_a_restored_session_and_clears_the_store() {
    let mut pair = stored();
    pair.publish(msg("a", b"x", QoS::AtLeastOnce));
    pair.sent();
    pair.crash(0);
    assert!(!pair.store.is_empty());

    let mut fresh = Pair::new(config().clean_session(true).persistence(true));
    let reqs = fresh.session.restore(&pair.store).unwrap();
    fresh.store = pair.store.clone();
    fresh.session.connect(fresh.now).unwrap();
    fresh.sent();
    assert!(fresh.store.is_empty(), "Clear reached the store");
    assert_eq!(
        fresh.events(),
        [Event::Failed {
            id: reqs[0],
            error: RequestError::SessionLost
        }]
    );
}

#[test]
fn a_broker_without_the_session_makes_the_store_forget_incoming_ids() {
    let mut pair = stored();
    pair.deliver(publish(QosPid::ExactlyOnce(id(4)), false, b"m"))
        .unwrap();
    pair.sent();
    pair.close();
    pair.session.connect(pair.now).unwrap();
    pair.sent();
    pair.deliver(connack(ConnectReturnCode::Accepted, false))
        .unwrap();
    pair.sent();
    assert_eq!(pair.ops.last(), Some(&PersistOp::ForgetIncoming));
    assert!(pair.store.is_empty());
}

#[test]
fn snapshot_ops_rebuild_the_snapshot() {
    let mut pair = stored();
    pair.publish(msg("a", b"1", QoS::ExactlyOnce));
    pair.publish(msg("a", b"2", QoS::AtLeastOnce));
    let sent = pair.sent();
    pair.deliver(Packet::PubRec(id(pid(&sent[0])))).unwrap();
    pair.deliver(publish(QosPid::ExactlyOnce(id(3)), false, b"m"))
        .unwrap();
    pair.sent();
    let mut rebuilt = Snapshot::new();
    for op in pair.store.ops() {
        rebuilt.apply(op);
    }
    assert_eq!(rebuilt, pair.store);
    assert!(matches!(
        pair.store.outgoing()[0],
        OutgoingFlow::PubRel { .. }
    ));
}

// Crashes at random points.

#[derive(Debug, Clone)]
enum Op {
    Publish(QoS),
    Drive,
    Release(usize),
    BrokerPublish(QoS),
    /// The broker's released packets reach the client, which handles them; then the process
    /// dies with only `durable` of the resulting store ops on disk, and restarts.
    FeedThenCrash(usize),
    /// The application publishes and the process dies before the driver pulls anything.
    PublishThenCrash(QoS, usize),
    /// The process dies between loop iterations (everything pulled is durable).
    Crash,
    /// The broker's released packets reach the client and the application gets what they
    /// deliver, the client's answers are handed out but never reach the broker, then the
    /// process dies.
    LossyCrash,
    /// The transport drops; the process lives on.
    Drop,
}

fn qos12() -> impl Strategy<Value = QoS> {
    prop_oneof![Just(QoS::AtLeastOnce), Just(QoS::ExactlyOnce)]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => qos12().prop_map(Op::Publish),
        4 => Just(Op::Drive),
        4 => any::<usize>().prop_map(Op::Release),
        2 => qos12().prop_map(Op::BrokerPublish),
        2 => (0usize..6).prop_map(Op::FeedThenCrash),
        1 => (qos12(), 0usize..3).prop_map(|(q, d)| Op::PublishThenCrash(q, d)),
        1 => Just(Op::Crash),
        1 => Just(Op::LossyCrash),
        1 => Just(Op::Drop),
    ]
}

/// Which process life a request id belongs to (request ids restart with each process).
type Req = (usize, RequestId);

#[derive(Default)]
struct Ledger {
    life: usize,
    /// Publishes by payload.
    publishes: HashMap<Bytes, QoS>,
    /// Payloads of publishes the store held at a crash, or completed: the library's
    /// custody, which must reach the broker.
    custody: HashSet<Bytes>,
    /// Requests of the current life not completed yet, with their payload when known.
    open: HashMap<Req, Option<Bytes>>,
    completed: HashSet<Req>,
    sent_by_broker: Vec<(QoS, Bytes)>,
    received: HashMap<Bytes, usize>,
}

impl Ledger {
    fn absorb(&mut self, events: Vec<Event>) {
        for e in events {
            match e {
                Event::Published(id) => {
                    let req = (self.life, id);
                    assert!(self.completed.insert(req), "{req:?} completed twice");
                    if let Some(Some(body)) = self.open.remove(&req) {
                        self.custody.insert(body);
                    }
                }
                Event::Message { publish: p, .. } => {
                    *self.received.entry(p.payload).or_default() += 1
                }
                Event::Connected { .. } | Event::Disconnected(_) => {}
                other => panic!("unexpected event {other:?}"),
            }
        }
    }

    fn crashed(&mut self, store: &Snapshot, restored: Vec<RequestId>) {
        self.life += 1;
        self.open.clear();
        for (flow, req) in store.outgoing().into_iter().zip(restored) {
            let body = match flow {
                OutgoingFlow::Publish { publish, .. } => {
                    self.custody.insert(publish.payload.clone());
                    Some(publish.payload.clone())
                }
                // The broker has the PUBLISH already (it sent PUBREC).
                OutgoingFlow::PubRel { .. } => None,
            };
            self.open.insert((self.life, req), body);
        }
    }
}

fn run(ops: &[Op], max_inflight: u16, wrap_after: u16) {
    let cfg = config()
        .clean_session(false)
        .persistence(true)
        .max_inflight(max_inflight)
        .keep_alive(Duration::ZERO);
    let mut pair = Pair::new(cfg);
    pair.session.ids.set_wrap_after(wrap_after);
    let mut broker = Broker::default();
    broker.lenient_pubrel = true;
    let mut ledger = Ledger::default();
    let mut n = 0u32;
    let mut payload = |prefix: &str| {
        n += 1;
        Bytes::from(format!("{prefix}{n}"))
    };
    pair.session.connect(pair.now).unwrap();
    let publish_now = |pair: &mut Pair, ledger: &mut Ledger, q: QoS, body: Bytes| {
        let m = Message {
            topic: topic("t"),
            payload: body.clone(),
            qos: q,
            retain: false,
            properties: None,
        };
        let req = pair.session.publish(pair.now, m).unwrap();
        ledger.publishes.insert(body.clone(), q);
        ledger.open.insert((ledger.life, req), Some(body));
    };
    let restart = |pair: &mut Pair, broker: &mut Broker, ledger: &mut Ledger, durable| {
        let restored = pair.crash(durable);
        pair.session.ids.set_wrap_after(wrap_after);
        broker.drop_connection();
        ledger.crashed(&pair.store, restored);
        pair.session.connect(pair.now).unwrap();
    };
    for op in ops {
        match op {
            Op::Publish(q) => {
                let body = payload("c");
                publish_now(&mut pair, &mut ledger, *q, body);
            }
            Op::Drive => pair.drive(&mut broker),
            Op::Release(i) => {
                broker.release(*i);
                pair.drive(&mut broker);
            }
            Op::BrokerPublish(q) => {
                if pair.session.is_connected() {
                    let body = payload("b");
                    broker.send_publish(*q, body.clone());
                    ledger.sent_by_broker.push((*q, body));
                }
            }
            Op::FeedThenCrash(durable) => {
                for p in broker.take_outgoing() {
                    if pair.deliver_unpolled(&p).is_err() {
                        break;
                    }
                    broker.arrived(&p);
                }
                restart(&mut pair, &mut broker, &mut ledger, *durable);
            }
            Op::PublishThenCrash(q, durable) => {
                let body = payload("c");
                publish_now(&mut pair, &mut ledger, *q, body);
                restart(&mut pair, &mut broker, &mut ledger, *durable);
            }
            Op::Crash => restart(&mut pair, &mut broker, &mut ledger, 0),
            Op::LossyCrash => {
                pair.feed(&mut broker);
                ledger.absorb(pair.events());
                pair.sent();
                restart(&mut pair, &mut broker, &mut ledger, 0);
            }
            Op::Drop => {
                pair.close();
                broker.drop_connection();
                pair.session.connect(pair.now).unwrap();
            }
        }
        ledger.absorb(pair.events());
        assert_eq!(
            pair.store,
            pair.session.durable_state(),
            "the store and the session disagree after {op:?}"
        );
    }

    broker.auto_respond = true;
    pair.drive(&mut broker);
    ledger.absorb(pair.events());
    assert_eq!(pair.session.in_flight(), 0, "everything acknowledged");
    assert!(pair.store.is_empty(), "the store emptied: {:?}", pair.store);
    assert!(
        ledger.open.is_empty(),
        "every request of this life completed: {:?}",
        ledger.open
    );
    for (body, q) in &ledger.publishes {
        let seen = broker.delivered.get(body).copied().unwrap_or(0);
        if *q == QoS::ExactlyOnce {
            assert!(seen <= 1, "QoS 2 {body:?} reached the broker {seen} times");
        }
        if ledger.custody.contains(body) {
            assert!(
                seen >= 1,
                "{body:?} was in the store but never reached the broker"
            );
        }
    }
    for (q, body) in &ledger.sent_by_broker {
        let got = ledger.received.get(body).copied().unwrap_or(0);
        match q {
            QoS::AtLeastOnce => assert!(got >= 1, "broker QoS 1 {body:?} never delivered"),
            _ => {
                // Twice only if a crash lost the record of its ack (see `dup_in_window`).
                assert!(
                    got <= 1 || pair.dup_in_window.contains(body),
                    "broker QoS 2 {body:?} delivered {got} times"
                );
                // Lost only if a crash hit between its id being held and its delivery.
                assert!(
                    got == 1 || pair.lost_in_window.contains(body),
                    "broker QoS 2 {body:?} never delivered"
                );
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn crashes_at_any_point_lose_nothing_stored_and_duplicate_no_qos2(
        ops in prop::collection::vec(op(), 1..80),
        max_inflight in 1u16..5,
        wrap_after in 3u16..12,
    ) {
        run(&ops, max_inflight, wrap_after);
    }
}

#[test]
fn a_crash_between_every_step_of_both_qos2_flows_stays_exactly_once() {
    let mut ops = vec![
        Op::Publish(QoS::ExactlyOnce),
        Op::BrokerPublish(QoS::ExactlyOnce),
    ];
    for durable in [0, 1, 2] {
        ops.extend([Op::Drive, Op::Release(0), Op::FeedThenCrash(durable)]);
        ops.extend([Op::Drive, Op::Release(0), Op::Crash]);
        ops.extend([Op::BrokerPublish(QoS::ExactlyOnce), Op::LossyCrash]);
    }
    ops.push(Op::Drive);
    run(&ops, 1, u16::MAX);
}

#[test]
fn a_new_session_restores_nothing_from_an_empty_snapshot() {
    let mut s = Session::new(config());
    assert_eq!(s.restore(&Snapshot::new()), Ok(Vec::new()));
    assert_eq!(s.in_flight(), 0);
}
