//! Round trips through a real mosquitto at every QoS, both protocol levels, odd payloads.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod common;

use bytes::Bytes;
use common::{connected, next_message, unique, within};
use tern::{ConnectOptions, Event, Protocol, QoS, SubscribeReturnCode};
use tern_testkit::MosquittoConfig;

#[tokio::test]
async fn qos_0_1_2_round_trip_on_both_protocol_levels() {
    let broker = MosquittoConfig::new().start();
    for protocol in [Protocol::V3_1_1, Protocol::V3_1] {
        for qos in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce] {
            let topic = unique("rt");
            let (sub, mut events) = connected(
                ConnectOptions::new(unique("s")).protocol(protocol),
                broker.port(),
            )
            .await;
            let granted = within("SUBACK", sub.subscribe([(topic.as_str(), qos)]))
                .await
                .unwrap();
            assert_eq!(granted, vec![SubscribeReturnCode::Success(qos)]);
            let (publisher, _) = connected(
                ConnectOptions::new(unique("p")).protocol(protocol),
                broker.port(),
            )
            .await;
            within(
                "publish completion",
                publisher.publish(&topic, "hello", qos, false),
            )
            .await
            .unwrap();
            let msg = next_message(&mut events).await;
            assert_eq!(msg.topic.as_str(), topic);
            assert_eq!(&msg.payload[..], b"hello");
            assert_eq!(msg.qos, qos, "{protocol:?}");
            publisher.close().await.unwrap();
            sub.close().await.unwrap();
        }
    }
}

#[tokio::test]
async fn binary_large_and_utf8_payloads_arrive_exactly() {
    let broker = MosquittoConfig::new().start();
    let topic = format!("unicode/ünï/日本/{}", unique("t"));
    let (client, mut events) = connected(ConnectOptions::new(unique("c")), broker.port()).await;
    within(
        "SUBACK",
        client.subscribe([(topic.as_str(), QoS::AtLeastOnce)]),
    )
    .await
    .unwrap();

    let binary: Vec<u8> = (0..=255u8).chain([0, 0, 0]).collect();
    let big: Vec<u8> = (0..1024 * 1024).map(|i| (i % 251) as u8).collect();
    for payload in [Bytes::from(binary), Bytes::from(big), Bytes::new()] {
        within(
            "publish",
            client.publish(&topic, payload.clone(), QoS::AtLeastOnce, false),
        )
        .await
        .unwrap();
        let msg = next_message(&mut events).await;
        assert_eq!(msg.topic.as_str(), topic);
        assert_eq!(msg.payload.len(), payload.len());
        assert!(
            msg.payload == payload,
            "payload of {} bytes differs",
            payload.len()
        );
    }
}

#[tokio::test]
async fn retained_message_reaches_a_later_subscriber() {
    let broker = MosquittoConfig::new().start();
    let topic = unique("retained");
    let (publisher, _) = connected(ConnectOptions::new(unique("p")), broker.port()).await;
    publisher
        .publish(&topic, "kept", QoS::AtLeastOnce, true)
        .await
        .unwrap();
    let (sub, mut events) = connected(ConnectOptions::new(unique("s")), broker.port()).await;
    sub.subscribe([(topic.as_str(), QoS::AtLeastOnce)])
        .await
        .unwrap();
    let msg = next_message(&mut events).await;
    assert!(msg.retain, "a retained message carries RETAIN=1");
    assert_eq!(&msg.payload[..], b"kept");
}

#[tokio::test]
async fn ten_thousand_pipelined_qos1_publishes_arrive_in_order() {
    const N: usize = 10_000;
    let broker = MosquittoConfig::new()
        .max_inflight_messages(0)
        .max_queued_messages(0)
        .start();
    let topic = unique("pipe");
    let (sub, mut events) = connected(ConnectOptions::new(unique("s")), broker.port()).await;
    sub.subscribe([(topic.as_str(), QoS::AtLeastOnce)])
        .await
        .unwrap();
    let (publisher, _) = connected(
        ConnectOptions::new(unique("p")).max_inflight(100),
        broker.port(),
    )
    .await;

    let sender = {
        let publisher = publisher.clone();
        let topic = topic.clone();
        tokio::spawn(async move {
            let mut pending = Vec::with_capacity(N);
            for i in 0..N {
                let p = publisher.clone();
                let t = topic.clone();
                pending.push(tokio::spawn(async move {
                    p.publish(&t, i.to_string(), QoS::AtLeastOnce, false).await
                }));
            }
            for p in pending {
                p.await.expect("task").expect("publish completes");
            }
        })
    };
    let mut next = 0usize;
    tern_testkit::timeout(
        std::time::Duration::from_secs(60),
        async {
            while next < N {
                match events.recv().await {
                    Some(Event::Message(m)) => {
                        let n: usize = std::str::from_utf8(&m.payload).unwrap().parse().unwrap();
                        assert!(
                            n >= next,
                            "message {n} arrived after {next}: out of order or duplicated"
                        );
                        assert_eq!(n, next, "message {next} lost (got {n})");
                        next += 1;
                    }
                    Some(_) => {}
                    None => panic!("events ended"),
                }
            }
        },
        "10,000 messages",
    )
    .await;
    within("all publish completions", sender).await.unwrap();
}

#[tokio::test]
async fn subscribe_many_filters_in_one_call_reports_each_grant() {
    let broker = MosquittoConfig::new().start();
    let (client, _) = connected(ConnectOptions::new(unique("c")), broker.port()).await;
    let granted = client
        .subscribe([
            ("a/+", QoS::AtMostOnce),
            ("b/#", QoS::ExactlyOnce),
            ("c", QoS::AtLeastOnce),
        ])
        .await
        .unwrap();
    assert_eq!(
        granted,
        vec![
            SubscribeReturnCode::Success(QoS::AtMostOnce),
            SubscribeReturnCode::Success(QoS::ExactlyOnce),
            SubscribeReturnCode::Success(QoS::AtLeastOnce),
        ]
    );
}

#[tokio::test]
async fn suback_failure_code_is_reported_per_filter() {
    // mosquitto 2.0 grants every 3.1.1 subscription, so 0x80 comes from a scripted broker.
    let broker = tern_testkit::ScriptedBroker::start(tern_testkit::Script::suback_failure()).await;
    let (client, _) = connected(ConnectOptions::new(unique("c")), broker.port()).await;
    let granted = within("SUBACK", client.subscribe([("x", QoS::AtLeastOnce)]))
        .await
        .unwrap();
    assert_eq!(granted, vec![SubscribeReturnCode::Failure]);
}

#[tokio::test]
async fn invalid_topics_are_refused_before_sending() {
    let broker = MosquittoConfig::new().start();
    let (client, _) = connected(ConnectOptions::new(unique("c")), broker.port()).await;
    let e = client
        .publish("a/+/b", "x", QoS::AtMostOnce, false)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("wildcard"), "{e}");
    let e = client
        .subscribe([("a/#/b", QoS::AtMostOnce)])
        .await
        .unwrap_err();
    assert!(e.to_string().contains("MQTT-4.7.1-2"), "{e}");
    // The connection is still usable.
    client
        .publish("ok/topic", "x", QoS::AtLeastOnce, false)
        .await
        .unwrap();
}
