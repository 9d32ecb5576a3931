//! MQTT 5 messages against a real mosquitto: publish properties round trip, subscription
//! options and identifiers, reason codes per filter (an ACL refusal is 0x87), a publish
//! refused with its reason, topic aliases cutting bytes on the wire, and request/response.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod common;

use std::time::Duration;

use common::{connected, next_message, unique, within};
use tern::PacketType;
use tern::{
    ClientError, ConnectOptions, Protocol, PubAckReasonCode, Publish, QoS, RequestError,
    RetainHandling, SubAckReasonCode, Subscription, UnsubAckReasonCode,
};
use tern_testkit::{DriverTrace, MosquittoConfig, Script, ScriptedBroker};

fn v5(id: &str) -> ConnectOptions {
    ConnectOptions::new(id).protocol(Protocol::V5)
}

#[tokio::test]
async fn publish_properties_and_subscription_identifiers_round_trip() {
    let broker = MosquittoConfig::new().start();
    let topic = unique("props");
    let (sub, mut events) = connected(v5(&unique("s")), broker.port()).await;
    let ack = sub
        .subscribe_with([Subscription::new(&topic, QoS::AtLeastOnce)], Some(7))
        .await
        .unwrap();
    assert_eq!(ack.reasons, [SubAckReasonCode::GrantedQoS1]);
    let (publisher, _p) = connected(v5(&unique("p")), broker.port()).await;
    publisher
        .publish_with(
            Publish::new(&topic, "21.5")
                .qos(QoS::AtLeastOnce)
                .message_expiry(Duration::from_secs(600))
                .content_type("text/plain")
                .utf8_payload(true)
                .response_topic("replies/here")
                .correlation_data(&b"\x00\x01corr"[..])
                .user_property("unit", "celsius")
                .user_property("b", "2")
                .user_property("unit", "again"),
        )
        .await
        .unwrap();
    let m = next_message(&mut events).await;
    assert_eq!(&m.payload[..], b"21.5");
    assert_eq!(m.content_type(), Some("text/plain"));
    assert!(m.is_utf8());
    assert_eq!(m.response_topic(), Some("replies/here"));
    assert_eq!(
        m.correlation_data().map(|c| &c[..]),
        Some(&b"\x00\x01corr"[..])
    );
    // User properties keep their order, repeated names included.
    let props: Vec<_> = m.user_properties().collect();
    assert_eq!(props, [("unit", "celsius"), ("b", "2"), ("unit", "again")]);
    let expiry = m.message_expiry().expect("message expiry forwarded");
    assert!((590..=600).contains(&expiry), "{expiry}");
    assert_eq!(m.subscription_ids().collect::<Vec<_>>(), [7]);
}

#[tokio::test]
async fn no_local_and_retain_handling_are_honoured() {
    let broker = MosquittoConfig::new().start();
    let topic = unique("opts");
    let (client, mut events) = connected(v5(&unique("me")), broker.port()).await;
    // A retained message exists before the subscription.
    client
        .publish_with(
            Publish::new(&topic, "old")
                .retain(true)
                .qos(QoS::AtLeastOnce),
        )
        .await
        .unwrap();
    client
        .subscribe_with(
            [Subscription::new(&topic, QoS::AtLeastOnce)
                .no_local(true)
                .retain_handling(RetainHandling::DoNotSend)],
            None,
        )
        .await
        .unwrap();
    // Our own publish is not sent back (No Local) ...
    client
        .publish_with(Publish::new(&topic, "mine").qos(QoS::AtLeastOnce))
        .await
        .unwrap();
    // ... another client's is; the retained one never came (Retain Handling 2).
    let (other, _o) = connected(v5(&unique("other")), broker.port()).await;
    other
        .publish_with(Publish::new(&topic, "theirs").qos(QoS::AtLeastOnce))
        .await
        .unwrap();
    let m = next_message(&mut events).await;
    assert_eq!(&m.payload[..], b"theirs");
    // Clean up the retained message.
    client
        .publish_with(Publish::new(&topic, "").retain(true))
        .await
        .unwrap();
}

#[tokio::test]
async fn a_suback_lists_a_reason_per_filter_with_the_reason_string() {
    // mosquitto 2.0's acl_file grants every SUBSCRIBE (it filters deliveries instead): a
    // scripted SUBACK: Granted QoS 1, 0x87 Not authorized, Reason String "no".
    let broker = ScriptedBroker::start(
        Script::new()
            .expect_connect()
            .send(&b"\x20\x03\x00\x00\x00"[..])
            .expect(PacketType::Subscribe)
            .respond(|p| {
                let b = p.body();
                vec![
                    0x90, 0x0a, b[0], b[1], 0x05, 0x1f, 0x00, 0x02, b'n', b'o', 0x01, 0x87,
                ]
            })
            .read_until_closed(),
    )
    .await;
    let (client, _events) = connected(v5("t"), broker.port()).await;
    let ack = client
        .subscribe_with(
            [
                Subscription::new("open/a", QoS::AtLeastOnce),
                Subscription::new("secret/a", QoS::AtLeastOnce),
            ],
            None,
        )
        .await
        .unwrap();
    assert_eq!(
        ack.reasons,
        [
            SubAckReasonCode::GrantedQoS1,
            SubAckReasonCode::NotAuthorized
        ]
    );
    assert_eq!(ack.reason_string.as_deref(), Some("no"));
}

#[tokio::test]
async fn a_publish_refused_by_the_acl_is_an_error_with_its_reason_code() {
    let broker = MosquittoConfig::new()
        .acl(["topic readwrite open/#", "topic read denied-write/#"])
        .start();
    let (client, _events) = connected(v5(&unique("acl")), broker.port()).await;
    let e = client
        .publish_with(Publish::new("denied-write/x", "x").qos(QoS::AtLeastOnce))
        .await
        .unwrap_err();
    match &e {
        ClientError::Request(RequestError::PubAckRefused { code, .. }) => {
            assert_eq!(*code, PubAckReasonCode::NotAuthorized);
        }
        other => panic!("expected a refused publish, got {other:?}"),
    }
    assert!(e.to_string().contains("Not authorized"), "{e}");
    // The plain API reports it the same way.
    let e = client
        .publish("denied-write/y", "y", QoS::AtLeastOnce, false)
        .await
        .unwrap_err();
    assert!(
        matches!(e, ClientError::Request(RequestError::PubAckRefused { .. })),
        "{e:?}"
    );
    client
        .publish_with(Publish::new("open/x", "x").qos(QoS::AtLeastOnce))
        .await
        .unwrap();

    client
        .subscribe([("open/a", QoS::AtMostOnce)])
        .await
        .unwrap();
    let unsub = client
        .unsubscribe_with(["open/a", "never/subscribed"])
        .await
        .unwrap();
    assert_eq!(
        unsub.reasons,
        [
            UnsubAckReasonCode::Success,
            UnsubAckReasonCode::NoSubscriptionExisted
        ]
    );
}

/// The sizes of the writes of 5 QoS 1 publishes on a long topic, one at a time.
async fn publish_write_sizes(aliases: bool, port: u16) -> Vec<u64> {
    let trace = DriverTrace::default();
    let _guard = trace.install();
    let topic = format!("{}/a/rather/long/topic/name/for/aliasing", unique("alias"));
    let opts = v5(&unique("al")).topic_aliases(aliases);
    let (client, _events) = connected(opts, port).await;
    let before = trace.writes().len();
    for i in 0..5u8 {
        client
            .publish_with(Publish::new(&topic, vec![i; 8]).qos(QoS::AtLeastOnce))
            .await
            .unwrap();
    }
    client.close().await.unwrap();
    let writes = trace.writes();
    // Each publish waits for its PUBACK: one write each (DISCONNECT is the last write).
    writes[before..before + 5].to_vec()
}

#[tokio::test(flavor = "current_thread")]
async fn topic_aliases_replace_the_topic_after_its_first_use_unless_turned_off() {
    let broker = MosquittoConfig::new().start();
    let with = publish_write_sizes(true, broker.port()).await;
    let without = publish_write_sizes(false, broker.port()).await;
    // Off: every PUBLISH carries the topic.
    assert!(without.iter().all(|&w| w == without[0]), "{without:?}");
    // On: the first carries topic + alias, the others only the alias.
    assert!(with[0] > without[0], "{with:?} vs {without:?}");
    // The topic is 52 bytes; an alias costs 3.
    for &w in &with[1..] {
        assert!(w + 45 < without[0], "{with:?} vs {without:?}");
    }
}

#[tokio::test]
async fn request_resolves_with_the_matching_response_or_times_out() {
    let broker = MosquittoConfig::new().start();
    let service = unique("svc");
    let (responder, mut requests) = connected(v5(&unique("responder")), broker.port()).await;
    responder
        .subscribe([(service.as_str(), QoS::AtLeastOnce)])
        .await
        .unwrap();
    let answering = responder.clone();
    let task = tokio::spawn(async move {
        for _ in 0..2 {
            let m = next_message(&mut requests).await;
            let reply = [&b"re: "[..], &m.payload[..]].concat();
            let response = Publish::response_to(&m, reply).expect("a response topic");
            answering.publish_with(response).await.unwrap();
        }
    });

    let (client, _events) = connected(v5(&unique("requester")), broker.port()).await;
    for ask in ["one", "two"] {
        let reply = within(
            "the response",
            client.request(
                Publish::new(&service, ask).qos(QoS::AtLeastOnce),
                common::WAIT,
            ),
        )
        .await
        .unwrap();
        assert_eq!(reply.payload, format!("re: {ask}").as_bytes());
    }
    task.await.unwrap();

    // Nobody answers: a clear timeout.
    let e = client
        .request(
            Publish::new(unique("nobody"), "?"),
            Duration::from_millis(200),
        )
        .await
        .unwrap_err();
    assert!(matches!(e, ClientError::NoResponse(_)), "{e:?}");
}
