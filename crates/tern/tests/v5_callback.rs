//! The callback API at MQTT 5, against a real mosquitto: the level and capabilities readable
//! from the connect callback, subscribe with options and a Subscription Identifier, publish
//! with properties, the message handler seeing them, and a refused publish's reason code in
//! its completion.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod common;

use std::sync::mpsc;
use std::time::Duration;

use tern::callback::CallbackClient;
use tern::{
    Broker, ClientError, ConnectOptions, Protocol, PubAckReasonCode, Publish, QoS, RequestError,
    SubAckReasonCode, Subscription,
};
use tern_testkit::MosquittoConfig;

const WAIT: Duration = Duration::from_secs(20);

#[test]
fn v5_flow_with_per_call_callbacks() {
    let broker = MosquittoConfig::new()
        .acl(["topic readwrite cb5/#", "topic read ro/#"])
        .start();
    let m = CallbackClient::new(ConnectOptions::new(common::unique("cb5")).protocol(Protocol::V5));
    let (tx, rx) = mpsc::channel::<String>();
    let on_msg = tx.clone();
    m.on_message(move |_c, msg| {
        let props: Vec<_> = msg.user_properties().collect();
        let ids: Vec<_> = msg.subscription_ids().collect();
        let _ = on_msg.send(format!("message {props:?} {ids:?}"));
    });
    let ok_tx = tx.clone();
    m.connect(
        Broker::tcp("127.0.0.1", broker.port()),
        move |c| {
            let caps = c.server_capabilities().is_some();
            let _ = ok_tx.send(format!("connected {:?} caps {caps}", c.protocol()));
            let t1 = ok_tx.clone();
            c.subscribe_with(
                [Subscription::new("cb5/a", QoS::AtLeastOnce)],
                Some(42),
                move |c, r| {
                    let reasons = r.map(|a| a.reasons);
                    let _ = t1.send(format!("suback {reasons:?}"));
                    let t2 = t1.clone();
                    c.publish_with(
                        Publish::new("cb5/a", "x")
                            .qos(QoS::AtLeastOnce)
                            .user_property("k", "v"),
                        move |_c, r| {
                            let _ = t2.send(format!("puback {r:?}"));
                        },
                    )
                    .unwrap();
                    let t3 = t1.clone();
                    c.publish_with(
                        Publish::new("ro/x", "x").qos(QoS::AtLeastOnce),
                        move |_c, r| {
                            let refused = matches!(
                                r,
                                Err(ClientError::Request(RequestError::PubAckRefused {
                                    code: PubAckReasonCode::NotAuthorized,
                                    ..
                                }))
                            );
                            let _ = t3.send(format!("refused {refused}"));
                        },
                    )
                    .unwrap();
                },
            )
            .unwrap();
        },
        |_c, e| panic!("connect failed: {e}"),
    )
    .unwrap();
    let mut got = Vec::new();
    while got.len() < 5 {
        got.push(
            rx.recv_timeout(WAIT)
                .unwrap_or_else(|_| panic!("callbacks so far: {got:?}")),
        );
    }
    got.sort();
    assert_eq!(
        got,
        [
            "connected Some(V5) caps true".to_owned(),
            format!("message {:?} {:?}", [("k", "v")], [42]),
            "puback Ok(())".to_owned(),
            "refused true".to_owned(),
            format!("suback Ok({:?})", [SubAckReasonCode::GrantedQoS1]),
        ]
    );
    m.close().unwrap();
}

fn handlers_route_at(protocol: Protocol) {
    let broker = MosquittoConfig::new().start();
    let base = common::unique("cbr");
    let m = CallbackClient::new(ConnectOptions::new(common::unique("cbr")).protocol(protocol));
    let (tx, rx) = mpsc::channel::<String>();
    let rest = tx.clone();
    m.on_message(move |_c, msg| {
        let _ = rest.send(format!("on_message {}", msg.topic));
    });
    let ok_tx = tx.clone();
    let b = base.clone();
    m.connect(
        Broker::tcp("127.0.0.1", broker.port()),
        move |c| {
            let (t1, t2, t3) = (ok_tx.clone(), ok_tx.clone(), ok_tx.clone());
            let shared = format!("$share/g/{b}/a");
            c.subscribe_handler(
                Subscription::new(shared, QoS::AtLeastOnce),
                move |_c, msg| {
                    let _ = t1.send(format!("shared {}", msg.topic));
                },
                |_c, r| assert!(r.is_ok(), "{r:?}"),
            )
            .unwrap();
            let b2 = b.clone();
            c.subscribe_handler(
                Subscription::new(format!("{b}/b/+"), QoS::AtLeastOnce),
                move |_c, msg| {
                    let _ = t2.send(format!("plain {}", msg.topic));
                },
                move |c, r| {
                    assert!(r.is_ok(), "{r:?}");
                    c.subscribe([(format!("{b2}/c"), QoS::AtLeastOnce)], move |c, _| {
                        for t in ["a", "b/1", "c"] {
                            c.publish(&format!("{b2}/{t}"), t, QoS::AtLeastOnce, false, |_, _| {})
                                .unwrap();
                        }
                        let _ = t3.send("published".into());
                    })
                    .unwrap();
                },
            )
            .unwrap();
        },
        |_c, e| panic!("connect failed: {e}"),
    )
    .unwrap();
    let mut got = Vec::new();
    while got.len() < 4 {
        got.push(
            rx.recv_timeout(WAIT)
                .unwrap_or_else(|_| panic!("callbacks so far: {got:?}")),
        );
    }
    got.sort();
    assert_eq!(
        got,
        [
            format!("on_message {base}/c"),
            format!("plain {base}/b/1"),
            "published".to_owned(),
            format!("shared {base}/a"),
        ]
    );
    m.close().unwrap();
}

#[test]
fn subscription_handlers_get_their_messages_at_level_5() {
    handlers_route_at(Protocol::V5);
}

#[test]
fn subscription_handlers_get_their_messages_at_3_1_1() {
    handlers_route_at(Protocol::V3_1_1);
}
