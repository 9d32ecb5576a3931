//! Commands leave in the order the application made them (issue 16, point 2), against a
//! real mosquitto: the wire order decides what the broker delivers back.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod common;

use common::{connected, next_message, unique, within};
use tern::{Broker, Client, ConnectOptions, Event, Events, QoS, Ticket};
use tern_testkit::Mosquitto;

/// Waits for the completion of every ticket in `tickets`, each successful.
async fn completed(events: &mut Events, tickets: &[Ticket]) -> Vec<String> {
    let mut left: Vec<Ticket> = tickets.to_vec();
    let mut messages = Vec::new();
    within("every command's completion", async {
        while !left.is_empty() {
            match events.recv().await {
                Some(Event::Completed { ticket, result }) => {
                    result.unwrap_or_else(|e| panic!("command {ticket:?} failed: {e}"));
                    left.retain(|t| *t != ticket);
                }
                Some(Event::Message(m)) => {
                    messages.push(String::from_utf8_lossy(&m.payload).into_owned());
                }
                Some(_) => {}
                None => panic!("event stream ended"),
            }
        }
    })
    .await;
    messages
}

/// Publishes `end` on `topic` (which `client` must be subscribed to) and returns every
/// message payload received, `earlier` first, until `end` arrives. mosquitto forwards one
/// client's messages in order, so anything the earlier commands made it deliver arrives
/// before `end`.
async fn until_sentinel(
    client: &Client,
    events: &mut Events,
    topic: &str,
    mut earlier: Vec<String>,
) -> Vec<String> {
    client
        .publish(topic, "end", QoS::AtLeastOnce, false)
        .await
        .unwrap();
    loop {
        let m = next_message(events).await;
        let body = String::from_utf8_lossy(&m.payload).into_owned();
        if body == "end" {
            return earlier;
        }
        earlier.push(body);
    }
}

/// The first script, issued back to back: subscribe(t, 1), publish(t, "a", 1),
/// unsubscribe(t), publish(t, "b", 1).
fn script_a(client: &Client, topic: &str) -> Vec<Ticket> {
    vec![
        client.try_subscribe([(topic, QoS::AtLeastOnce)]).unwrap(),
        client
            .try_publish(topic, "a", QoS::AtLeastOnce, false)
            .unwrap(),
        client.try_unsubscribe([topic]).unwrap(),
        client
            .try_publish(topic, "b", QoS::AtLeastOnce, false)
            .unwrap(),
    ]
}

/// After script (a), "a" (published while subscribed) comes back and "b" (published after
/// the unsubscribe) does not.
async fn check_script_a(client: &Client, events: &mut Events, topic: &str, earlier: Vec<String>) {
    // Subscribed again to see the sentinel; "b" was routed (or not) before this.
    client.subscribe([(topic, QoS::AtLeastOnce)]).await.unwrap();
    let got = until_sentinel(client, events, topic, earlier).await;
    assert_eq!(got, ["a"], "wire order must be call order");
}

#[tokio::test]
async fn script_a_connected_delivers_a_and_not_b() {
    let broker = Mosquitto::start_default();
    let topic = unique("order/a");
    let (client, mut events) = connected(ConnectOptions::new(unique("c")), broker.port()).await;
    let tickets = script_a(&client, &topic);
    let earlier = completed(&mut events, &tickets).await;
    check_script_a(&client, &mut events, &topic, earlier).await;
}

#[tokio::test]
async fn script_a_issued_offline_then_behind_the_window_delivers_a_and_not_b() {
    let broker = Mosquitto::start_default();
    let topic = unique("order/a");
    // Issued before connecting, with a window of one: "b" waits for the window after the
    // UNSUBSCRIBE, and nothing may overtake anything.
    let (client, mut events) = Client::new(ConnectOptions::new(unique("c")).max_inflight(1));
    let tickets = script_a(&client, &topic);
    within(
        "CONNACK",
        client.connect(Broker::tcp("127.0.0.1", broker.port())),
    )
    .await
    .unwrap();
    let earlier = completed(&mut events, &tickets).await;
    check_script_a(&client, &mut events, &topic, earlier).await;
}

#[tokio::test]
async fn publish_before_subscribe_is_not_delivered_only_the_one_after() {
    let broker = Mosquitto::start_default();
    let topic = unique("order/b");
    // Offline and with a window of one, so both publishes wait in the queue with the
    // SUBSCRIBE between them: "publish before, subscribe, publish after".
    let (client, mut events) = Client::new(ConnectOptions::new(unique("c")).max_inflight(1));
    let tickets = vec![
        client
            .try_publish(&topic, "before", QoS::AtLeastOnce, false)
            .unwrap(),
        client
            .try_subscribe([(topic.as_str(), QoS::AtLeastOnce)])
            .unwrap(),
        client
            .try_publish(&topic, "after", QoS::AtLeastOnce, false)
            .unwrap(),
    ];
    within(
        "CONNACK",
        client.connect(Broker::tcp("127.0.0.1", broker.port())),
    )
    .await
    .unwrap();
    let earlier = completed(&mut events, &tickets).await;
    let got = until_sentinel(&client, &mut events, &topic, earlier).await;
    assert_eq!(
        got,
        ["after"],
        "retain off: only what was published after subscribing"
    );
}
