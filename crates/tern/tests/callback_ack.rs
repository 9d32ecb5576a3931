//! The callback API and acknowledgements: with `manual_ack`, a message whose handler did not
//! call `ack` is delivered again in the next session; one acked is not.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod common;

use std::sync::mpsc;
use std::time::Duration;

use tern::callback::CallbackClient;
use tern::{Broker, ConnectOptions, QoS};
use tern_testkit::MosquittoConfig;

const WAIT: Duration = Duration::from_secs(20);

/// One session of the persistent client `id`: publishes `sentinel` once connected, hands
/// every message payload to the returned list until `sentinel` arrives, and acks each
/// message when `ack` is set.
fn session(port: u16, id: &str, topic: &str, sentinel: &str, ack: bool) -> Vec<String> {
    let m = CallbackClient::new(
        ConnectOptions::new(id)
            .clean_session(false)
            .manual_ack(true),
    );
    let (tx, rx) = mpsc::channel::<String>();
    m.on_message(move |c, msg| {
        assert!(msg.needs_ack(), "QoS 1 with manual_ack");
        if ack {
            c.ack(msg).unwrap();
        }
        let _ = tx.send(String::from_utf8_lossy(&msg.payload).into_owned());
    });
    let (topic, sentinel) = (topic.to_owned(), sentinel.to_owned());
    let end = sentinel.clone();
    m.connect(
        Broker::tcp("127.0.0.1", port),
        move |c| {
            c.publish(&topic, sentinel, QoS::AtLeastOnce, false, |_c, r| {
                r.unwrap();
            })
            .unwrap();
        },
        |_c, e| panic!("connect failed: {e}"),
    )
    .unwrap();
    let mut got = Vec::new();
    loop {
        let body = rx
            .recv_timeout(WAIT)
            .unwrap_or_else(|_| panic!("no {end} within {WAIT:?}; got {got:?}"));
        let done = body == end;
        got.push(body);
        if done {
            break;
        }
    }
    let (closed_tx, closed_rx) = mpsc::channel();
    m.on_offline(move |_c, _e| {
        let _ = closed_tx.send(());
    });
    // The acks (if any) were queued by the handlers before `close` is.
    m.close().unwrap();
    closed_rx
        .recv_timeout(WAIT)
        .expect("the client closes within the wait");
    got
}

#[test]
fn a_message_not_acked_in_its_handler_comes_back_and_an_acked_one_does_not() {
    let broker = MosquittoConfig::new().start();
    let (id, topic) = (common::unique("cback"), common::unique("cback/t"));
    // The persistent session, subscribed.
    let (sub, _events) = tokio::runtime::Runtime::new().unwrap().block_on(async {
        let (client, events) = common::connected(
            ConnectOptions::new(id.as_str()).clean_session(false),
            broker.port(),
        )
        .await;
        client
            .subscribe([(topic.as_str(), QoS::AtLeastOnce)])
            .await
            .unwrap();
        client.close().await.unwrap();
        (client, events)
    });
    drop(sub);

    assert_eq!(session(broker.port(), &id, &topic, "s1", false), ["s1"]);
    // Not acked: "s1" comes back before this session's own sentinel.
    assert_eq!(
        session(broker.port(), &id, &topic, "s2", true),
        ["s1", "s2"]
    );
    // Both acked now.
    assert_eq!(session(broker.port(), &id, &topic, "s3", true), ["s3"]);
}
