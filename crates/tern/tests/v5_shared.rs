//! Per-subscription message streams and shared subscriptions against a real mosquitto: a
//! shared subscription's messages (which carry the plain topic) reach the stream of the
//! subscription they matched, each message to exactly one consumer of a group, at MQTT 5
//! (by Subscription Identifier) and at 3.1.1 (by filter); refused locally when the broker
//! declares shared subscriptions unavailable.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod common;

use std::collections::BTreeSet;

use common::{connected, next_message, unique, within};
use tern::{
    ApiMisuse, ClientError, ConnectOptions, MessageStream, Protocol, Publish, QoS, Subscription,
};
use tern_testkit::{MosquittoConfig, Script, ScriptedBroker};

async fn recv(stream: &mut MessageStream, what: &str) -> tern::Message {
    within(what, stream.recv()).await.expect("stream open")
}

#[tokio::test]
async fn three_consumers_of_a_shared_subscription_each_get_every_message_exactly_once_between_them()
{
    let broker = MosquittoConfig::new().start();
    let topic = unique("jobs");
    let shared = format!("$share/workers/{topic}");
    let mut consumers = Vec::new();
    for i in 0..3 {
        let (client, _events) = connected(
            ConnectOptions::new(unique(&format!("w{i}"))).protocol(Protocol::V5),
            broker.port(),
        )
        .await;
        let (ack, stream) = client
            .subscribe_stream(Subscription::new(&shared, QoS::AtLeastOnce))
            .await
            .unwrap();
        assert!(!ack.reasons[0].is_error(), "{ack:?}");
        consumers.push((client, stream));
    }
    let (publisher, _p) = connected(ConnectOptions::new(unique("pub")), broker.port()).await;
    const N: usize = 30;
    for i in 0..N {
        publisher
            .publish(&topic, i.to_string(), QoS::AtLeastOnce, false)
            .await
            .unwrap();
    }
    let mut seen = Vec::new();
    let mut per_consumer = [0usize; 3];
    within("every message once", async {
        while seen.len() < N {
            let (a, b) = consumers.split_at_mut(1);
            let (b, c) = b.split_at_mut(1);
            let (i, m) = tokio::select! {
                Some(m) = a[0].1.recv() => (0, m),
                Some(m) = b[0].1.recv() => (1, m),
                Some(m) = c[0].1.recv() => (2, m),
            };
            // The message carries the plain topic, yet reached the shared subscription's
            // stream.
            assert_eq!(m.topic.as_str(), topic);
            per_consumer[i] += 1;
            seen.push(String::from_utf8(m.payload.to_vec()).unwrap());
        }
    })
    .await;
    let distinct: BTreeSet<_> = seen.iter().cloned().collect();
    assert_eq!(distinct.len(), N, "a message was delivered twice: {seen:?}");
    assert!(
        per_consumer.iter().all(|&n| n > 0),
        "the group shares the work: {per_consumer:?}"
    );
}

async fn routing_at(protocol: Protocol) {
    let broker = MosquittoConfig::new().start();
    let base = unique("route");
    let (client, mut events) = connected(
        ConnectOptions::new(unique("r")).protocol(protocol),
        broker.port(),
    )
    .await;
    let (_, mut a) = client
        .subscribe_stream(Subscription::new(
            format!("$share/g/{base}/a"),
            QoS::AtLeastOnce,
        ))
        .await
        .unwrap();
    let (_, mut b) = client
        .subscribe_stream(Subscription::new(format!("{base}/b/+"), QoS::AtLeastOnce))
        .await
        .unwrap();
    client
        .subscribe([(format!("{base}/c"), QoS::AtLeastOnce)])
        .await
        .unwrap();
    for t in ["a", "b/1", "c"] {
        client
            .publish_with(Publish::new(format!("{base}/{t}"), t).qos(QoS::AtLeastOnce))
            .await
            .unwrap();
    }
    assert_eq!(&recv(&mut a, "stream a").await.payload[..], b"a");
    assert_eq!(&recv(&mut b, "stream b").await.payload[..], b"b/1");
    // The rest goes to Events, and only it.
    assert_eq!(&next_message(&mut events).await.payload[..], b"c");
    assert!(a.try_recv_none() && b.try_recv_none());
    client.close().await.unwrap();
}

/// No second message waiting on the stream.
trait Empty {
    fn try_recv_none(&mut self) -> bool;
}

impl Empty for MessageStream {
    fn try_recv_none(&mut self) -> bool {
        futures_util::FutureExt::now_or_never(self.recv()).is_none()
    }
}

#[tokio::test]
async fn each_stream_gets_its_subscriptions_messages_at_level_5() {
    routing_at(Protocol::V5).await;
}

#[tokio::test]
async fn each_stream_gets_its_subscriptions_messages_at_3_1_1() {
    routing_at(Protocol::V3_1_1).await;
}

#[tokio::test]
async fn a_shared_subscription_is_refused_locally_when_the_broker_has_none() {
    // CONNACK with Shared Subscription Available 0 (property 0x2A).
    let broker = ScriptedBroker::start(Script::reply_to_connect(
        b"\x20\x05\x00\x00\x02\x2a\x00".to_vec(),
    ))
    .await;
    let (client, _events) = connected(
        ConnectOptions::new("t").protocol(Protocol::V5),
        broker.port(),
    )
    .await;
    let e = client
        .subscribe_stream(Subscription::new("$share/g/x", QoS::AtMostOnce))
        .await
        .unwrap_err();
    assert!(
        matches!(e, ClientError::Misuse(ApiMisuse::SharedNotSupported { .. })),
        "{e:?}"
    );
}

#[tokio::test]
async fn a_reconnection_without_session_restores_streams_and_subscription_identifiers() {
    use common::next_event;
    use tern::{Broker, Client, Event, ReconnectPolicy};
    use tern_testkit::FaultProxy;
    let broker = MosquittoConfig::new().start();
    let proxy = FaultProxy::start(broker.addr()).await;
    let policy = ReconnectPolicy::default().initial_delay(std::time::Duration::from_millis(20));
    let opts = ConnectOptions::new(unique("re"))
        .protocol(Protocol::V5)
        .reconnect(policy);
    let (client, mut events) = Client::new(opts);
    within(
        "CONNACK",
        client.connect(Broker::tcp("127.0.0.1", proxy.port())),
    )
    .await
    .unwrap();
    let base = unique("restore");
    let (_, mut stream) = client
        .subscribe_stream(Subscription::new(
            format!("$share/g/{base}/s"),
            QoS::AtLeastOnce,
        ))
        .await
        .unwrap();
    client
        .subscribe_with(
            [Subscription::new(format!("{base}/e"), QoS::AtLeastOnce)],
            Some(9),
        )
        .await
        .unwrap();

    proxy.cut_now();
    let present = next_event(&mut events, "reconnection", |e| match e {
        Event::Connected {
            reconnected: true,
            session_present,
            ..
        } => Some(session_present),
        _ => None,
    })
    .await;
    assert!(!present, "clean session: no session on the broker");

    // Publish until both arrive: the re-SUBSCRIBE may still be in flight (bounded).
    let (other, _o) = connected(ConnectOptions::new(unique("o")), broker.port()).await;
    let got = within("both after the reconnection", async {
        loop {
            for t in ["s", "e"] {
                other
                    .publish(&format!("{base}/{t}"), t, QoS::AtLeastOnce, false)
                    .await
                    .unwrap();
            }
            let s =
                tokio::time::timeout(std::time::Duration::from_millis(300), stream.recv()).await;
            let e = tokio::time::timeout(
                std::time::Duration::from_millis(300),
                next_message(&mut events),
            )
            .await;
            if let (Ok(Some(s)), Ok(e)) = (s, e) {
                return (s, e);
            }
        }
    })
    .await;
    assert_eq!(&got.0.payload[..], b"s");
    assert_eq!(&got.1.payload[..], b"e");
    assert_eq!(got.1.subscription_ids().collect::<Vec<_>>(), [9]);
    assert_eq!(got.0.subscription_ids().count(), 1);
}
