//! A list of brokers: tried in order at connect, and the next one after a loss.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod common;

use std::time::Duration;

use common::{next_event, next_message, unique, within};
use tern::{Broker, Client, ConnectOptions, Event, QoS, ReconnectPolicy};
use tern_testkit::{MosquittoConfig, closed_port};

fn reconnecting(id: &str) -> ConnectOptions {
    ConnectOptions::new(id)
        .connect_timeout(Duration::from_secs(2))
        .reconnect(
            ReconnectPolicy::default()
                .initial_delay(Duration::from_millis(20))
                .max_delay(Duration::from_millis(200)),
        )
}

#[tokio::test]
async fn connect_skips_dead_brokers_in_the_list() {
    let broker = MosquittoConfig::new().start();
    let (client, mut events) = Client::new(ConnectOptions::new(unique("fo")));
    let list = vec![
        Broker::tcp("127.0.0.1", closed_port()),
        Broker::tcp("127.0.0.1", broker.port()),
    ];
    within("CONNACK from the second broker", client.connect_any(list))
        .await
        .unwrap();
    let connected_to = next_event(&mut events, "Connected", |e| match e {
        Event::Connected { broker, .. } => Some(broker),
        _ => None,
    })
    .await;
    assert_eq!(connected_to.port, broker.port());
}

#[tokio::test]
async fn all_brokers_failing_reports_the_last_error() {
    let (client, _) = Client::new(ConnectOptions::new(unique("fo")));
    let list = vec![
        Broker::tcp("127.0.0.1", closed_port()),
        Broker::tcp("nonexistent.invalid", 1883),
    ];
    let e = within("failure", client.connect_any(list))
        .await
        .unwrap_err();
    assert_eq!(e.code(), -3, "{e}");
}

#[tokio::test]
async fn losing_the_first_broker_fails_over_to_the_second_mid_session() {
    let mut first = MosquittoConfig::new().start();
    let second = MosquittoConfig::new().start();
    let topic = unique("failover");
    let (client, mut events) = Client::new(reconnecting(&unique("fo")));
    let list = vec![
        Broker::tcp("127.0.0.1", first.port()),
        Broker::tcp("127.0.0.1", second.port()),
    ];
    within("CONNACK", client.connect_any(list)).await.unwrap();
    client
        .subscribe([(topic.as_str(), QoS::AtLeastOnce)])
        .await
        .unwrap();

    first.stop();
    let back_on = next_event(
        &mut events,
        "reconnection to the second broker",
        |e| match e {
            Event::Connected {
                broker,
                reconnected: true,
                ..
            } => Some(broker),
            _ => None,
        },
    )
    .await;
    assert_eq!(back_on.port, second.port());

    // The subscription was re-made on the new broker; a publish through it round-trips.
    let publish = tern_testkit::timeout(
        Duration::from_secs(10),
        async {
            loop {
                client
                    .publish(&topic, "via second", QoS::AtLeastOnce, false)
                    .await
                    .unwrap();
                let got =
                    tokio::time::timeout(Duration::from_millis(300), next_message(&mut events))
                        .await;
                if let Ok(msg) = got {
                    return msg;
                }
            }
        },
        "a message through the second broker",
    )
    .await;
    assert_eq!(&publish.payload[..], b"via second");
}
