//! Sessions that survive: clean session = false across a broker restart, automatic
//! reconnection with backoff, and re-subscription when the broker lost the session.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::{connected, next_event, next_message, unique, within};
use tern::{Broker, Client, ConnectOptions, Event, QoS, ReconnectPolicy, SubscribeReturnCode};
use tern_testkit::{FaultProxy, Mosquitto, MosquittoConfig};

fn fast_reconnect() -> ReconnectPolicy {
    ReconnectPolicy::default()
        .initial_delay(Duration::from_millis(50))
        .max_delay(Duration::from_millis(500))
}

#[tokio::test]
async fn qos2_is_exactly_once_across_a_broker_restart_with_persistent_sessions() {
    const N: usize = 400;
    let mut broker = MosquittoConfig::new()
        .persistence(true)
        .max_inflight_messages(20)
        .max_queued_messages(0)
        .start();
    let topic = unique("q2");
    let persistent = |id: &str| {
        ConnectOptions::new(id)
            .clean_session(false)
            .max_inflight(20)
            .reconnect(fast_reconnect())
            .connect_timeout(Duration::from_secs(2))
    };
    let (sub, mut events) = connected(persistent(&unique("sub")), broker.port()).await;
    sub.subscribe([(topic.as_str(), QoS::ExactlyOnce)])
        .await
        .unwrap();
    let (publisher, _pub_events) = connected(persistent(&unique("pub")), broker.port()).await;

    let sender = {
        let topic = topic.clone();
        tokio::spawn(async move {
            let mut handles = Vec::new();
            for i in 0..N {
                let p = publisher.clone();
                let t = topic.clone();
                handles.push(tokio::spawn(async move {
                    p.publish(&t, i.to_string(), QoS::ExactlyOnce, false).await
                }));
            }
            for h in handles {
                h.await
                    .expect("task")
                    .expect("every QoS 2 publish completes exactly once");
            }
        })
    };

    let mut seen: HashMap<usize, usize> = HashMap::new();
    let mut restarted = false;
    tern_testkit::timeout(
        Duration::from_secs(60),
        async {
            while seen.len() < N {
                match events.recv().await {
                    Some(Event::Message(m)) => {
                        let n: usize = std::str::from_utf8(&m.payload).unwrap().parse().unwrap();
                        *seen.entry(n).or_default() += 1;
                        if seen.len() == N / 3 && !restarted {
                            restarted = true;
                            broker.stop();
                            broker.restart();
                        }
                    }
                    Some(_) => {}
                    None => panic!("event stream ended"),
                }
            }
        },
        "all QoS 2 messages across the restart",
    )
    .await;
    assert!(restarted, "the broker was restarted mid-stream");
    within("publisher completions", sender).await.unwrap();
    let dups: Vec<_> = seen.iter().filter(|(_, c)| **c > 1).collect();
    assert!(dups.is_empty(), "QoS 2 duplicates: {dups:?}");
    assert_eq!(seen.len(), N);
}

/// A clean-session client with fast automatic reconnection, connected to a fresh broker
/// through a fault proxy.
async fn connected_through_proxy() -> (Mosquitto, FaultProxy, Client, tern::Events) {
    let broker = MosquittoConfig::new().start();
    let proxy = FaultProxy::start(broker.addr()).await;
    let (client, events) =
        Client::new(ConnectOptions::new(unique("c")).reconnect(fast_reconnect()));
    within(
        "CONNACK",
        client.connect(Broker::tcp("127.0.0.1", proxy.port())),
    )
    .await
    .unwrap();
    (broker, proxy, client, events)
}

#[tokio::test]
async fn reconnect_resubscribes_when_the_broker_has_no_session() {
    let (broker, proxy, client, mut events) = connected_through_proxy().await;
    let topic = unique("resub");
    client
        .subscribe([(topic.as_str(), QoS::AtLeastOnce)])
        .await
        .unwrap();

    proxy.cut_now();
    let will_reconnect = next_event(&mut events, "offline", |e| match e {
        Event::Disconnected { will_reconnect, .. } => Some(will_reconnect),
        _ => None,
    })
    .await;
    assert!(will_reconnect);
    let (present, reconnected) = next_event(&mut events, "reconnection", |e| match e {
        Event::Connected {
            session_present,
            reconnected,
            ..
        } => Some((session_present, reconnected)),
        _ => None,
    })
    .await;
    assert!(reconnected && !present);

    // The subscription was restored: a message published now arrives.
    let (other, _) = connected(ConnectOptions::new(unique("o")), broker.port()).await;
    // Publish until one arrives: the re-SUBSCRIBE may still be in flight (bounded).
    let msg = tern_testkit::timeout(
        Duration::from_secs(10),
        async {
            loop {
                other
                    .publish(&topic, "back", QoS::AtLeastOnce, false)
                    .await
                    .unwrap();
                if let Ok(Some(Event::Message(m))) =
                    tokio::time::timeout(Duration::from_millis(200), events.recv()).await
                {
                    return m;
                }
            }
        },
        "a message on the re-subscribed topic",
    )
    .await;
    assert_eq!(&msg.payload[..], b"back");
}

#[tokio::test]
async fn a_subscribe_lost_with_the_connection_is_made_on_the_next_one() {
    let (broker, proxy, client, mut events) = connected_through_proxy().await;
    let topic = unique("lostsub");

    // The SUBSCRIBE leaves the client and vanishes; then the connection drops.
    proxy.black_hole();
    let subscribe = {
        let (client, topic) = (client.clone(), topic.clone());
        tokio::spawn(async move { client.subscribe([(topic.as_str(), QoS::AtLeastOnce)]).await })
    };
    proxy.wait_for_swallowed(1).await;
    proxy.heal();
    proxy.cut_now();

    // Clean session: the broker's new session has no subscription, so tern sends it again
    // and the caller's request completes once, with the broker's answer.
    let granted = within("the SUBACK after reconnecting", subscribe)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(granted, [SubscribeReturnCode::Success(QoS::AtLeastOnce)]);
    let (other, _) = connected(ConnectOptions::new(unique("o")), broker.port()).await;
    other
        .publish(&topic, "made", QoS::AtLeastOnce, false)
        .await
        .unwrap();
    assert_eq!(&next_message(&mut events).await.payload[..], b"made");
}

#[tokio::test]
async fn first_connection_failure_is_not_retried_even_with_autoreconnect() {
    let (client, mut events) = Client::new(ConnectOptions::new("t").reconnect(fast_reconnect()));
    let e = within(
        "failure",
        client.connect(Broker::tcp("127.0.0.1", tern_testkit::closed_port())),
    )
    .await
    .unwrap_err();
    assert_eq!(e.code(), -5);
    let retry = next_event(&mut events, "ConnectFailed", |e| match e {
        Event::ConnectFailed { will_retry, .. } => Some(will_retry),
        _ => None,
    })
    .await;
    assert!(
        !retry,
        "the seed: no reconnect attempt when the very first connection fails"
    );
}

#[tokio::test]
async fn qos1_state_survives_close_and_is_completed_after_reconnect() {
    // A QoS 1 publish queued while offline (after close) with clean session = false is sent
    // on the next connect and completes.
    let broker = MosquittoConfig::new().start();
    let topic = unique("offline");
    let (sub, mut events) = connected(ConnectOptions::new(unique("s")), broker.port()).await;
    sub.subscribe([(topic.as_str(), QoS::AtLeastOnce)])
        .await
        .unwrap();
    let id = unique("p");
    let (publisher, _) =
        connected(ConnectOptions::new(&id).clean_session(false), broker.port()).await;
    publisher.close().await.unwrap();
    let pending = {
        let p = publisher.clone();
        let t = topic.clone();
        tokio::spawn(async move { p.publish(&t, "queued", QoS::AtLeastOnce, false).await })
    };
    within(
        "reconnect",
        publisher.connect(Broker::tcp("127.0.0.1", broker.port())),
    )
    .await
    .unwrap();
    within("queued publish completes", pending)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&next_message(&mut events).await.payload[..], b"queued");
}

#[tokio::test]
async fn offline_queue_is_bounded_in_count_and_bytes() {
    // Never connected: publishes wait in the queue, until a bound refuses one.
    let (client, _) = Client::new(
        ConnectOptions::new("offline")
            .max_queued(3)
            .max_queued_bytes(1_000),
    );
    for _ in 0..3 {
        client
            .try_publish("t", vec![0u8; 10], QoS::AtMostOnce, false)
            .unwrap();
    }
    let e = within("refusal", client.publish("t", "x", QoS::AtLeastOnce, false))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("3 commands waiting"), "{e}");

    let (client, _) = Client::new(ConnectOptions::new("offline").max_queued_bytes(1_000));
    client
        .try_publish("t", vec![0u8; 900], QoS::AtLeastOnce, false)
        .unwrap();
    let e = within(
        "refusal",
        client.publish("t", vec![0u8; 200], QoS::AtLeastOnce, false),
    )
    .await
    .unwrap_err();
    assert!(e.to_string().contains("1000 bytes"), "{e}");
}
