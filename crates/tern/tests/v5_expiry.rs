//! MQTT 5 Message Expiry on publishes the client holds, against a real mosquitto behind a
//! fault proxy [MQTT-3.3.2-6]: a QoS 1 publish in flight when the link dies is re-sent after
//! the reconnect with its interval reduced by the time it was held (run out, with 1 s: an
//! unacknowledged PUBLISH is always re-sent [MQTT-4.4.0-1]), as is one that waited in the
//! in-flight window; a waiting one whose interval ran out is not sent and completes with
//! `RequestError::Expired`. (Across a restart with a file store the time held is not known:
//! a restored publish is re-sent with the interval it was first sent with.)
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod common;

use std::time::Duration;

use common::{connected, next_message, unique, within};
use tern::{
    Broker, Client, ClientError, ConnectOptions, Protocol, Publish, QoS, ReconnectPolicy,
    RequestError,
};
use tern_testkit::{FaultProxy, MosquittoConfig};

fn v5(id: &str) -> ConnectOptions {
    ConnectOptions::new(id).protocol(Protocol::V5)
}

#[tokio::test]
async fn held_publishes_leave_with_what_is_left_of_their_expiry_and_unsent_expired_ones_fail() {
    let broker = MosquittoConfig::new().start();
    let topic = unique("expiry");
    let (sub, mut sub_events) = connected(v5(&unique("sub")), broker.port()).await;
    within(
        "SUBACK",
        sub.subscribe([(topic.as_str(), QoS::AtLeastOnce)]),
    )
    .await
    .unwrap();

    let proxy = FaultProxy::start(broker.addr()).await;
    let options = v5(&unique("pub"))
        .clean_session(false)
        .session_expiry(Duration::from_secs(300))
        .max_inflight(2)
        .reconnect(
            ReconnectPolicy::default()
                .initial_delay(Duration::from_millis(50))
                .max_delay(Duration::from_millis(500)),
        );
    let (publisher, _events) = Client::new(options);
    within(
        "CONNACK",
        publisher.connect(Broker::tcp("127.0.0.1", proxy.port())),
    )
    .await
    .unwrap();

    // Two in flight (their PUBLISHes vanish), two waiting behind the window of 2.
    proxy.black_hole();
    let publish = |payload: &'static str, expiry: u64| {
        let p = Publish::new(&topic, payload)
            .qos(QoS::AtLeastOnce)
            .message_expiry(Duration::from_secs(expiry));
        let publisher = publisher.clone();
        tokio::spawn(async move { publisher.publish_with(p).await })
    };
    let in_flight = publish("in flight", 60);
    let short_in_flight = publish("short in flight", 1);
    let queued = publish("queued", 60);
    let short_queued = publish("short queued", 1);
    proxy.wait_for_swallowed(2 * 20).await;
    // The time held is what is under test: more than the short interval, whole seconds off
    // the long one.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    proxy.heal();
    proxy.cut_now();

    let e = within("short queued", short_queued)
        .await
        .unwrap()
        .unwrap_err();
    assert!(
        matches!(e, ClientError::Request(RequestError::Expired)),
        "short queued: {e:?}"
    );
    within("in flight", in_flight).await.unwrap().unwrap();
    within("short in flight", short_in_flight)
        .await
        .unwrap()
        .unwrap();
    within("queued", queued).await.unwrap().unwrap();
    for (name, range) in [
        ("in flight", 30..=58),
        ("short in flight", 0..=1),
        ("queued", 30..=58),
    ] {
        let m = next_message(&mut sub_events).await;
        assert_eq!(String::from_utf8_lossy(&m.payload), name);
        let left = m.message_expiry().unwrap_or(0);
        assert!(
            range.contains(&left),
            "{name}: held over 2 s, expected {range:?} s left, got {left}"
        );
    }
    // Nothing else came: the expired queued one was never sent.
    within(
        "the sentinel's PUBACK",
        sub.publish(&topic, "sentinel", QoS::AtLeastOnce, false),
    )
    .await
    .unwrap();
    assert_eq!(
        &next_message(&mut sub_events).await.payload[..],
        b"sentinel"
    );
    within("close", publisher.close()).await.unwrap();
    within("close", sub.close()).await.unwrap();
}
