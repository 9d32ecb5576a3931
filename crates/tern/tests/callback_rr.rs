//! The callback API's request/response ([`CallbackClient::request`]) against a real
//! mosquitto: the callback gets the response carrying the request's correlation data (several
//! requests in flight each get their own), runs after the messages delivered before the
//! response, gets `NoResponse` after the timeout (exactly once: a late response is an
//! ordinary message), and below MQTT 5 the call is refused at once.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod common;

use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tern::callback::CallbackClient;
use tern::{
    ApiMisuse, Broker, ClientError, ConnectOptions, Message, Protocol, Publish, QoS, Subscription,
};
use tern_testkit::MosquittoConfig;

const WAIT: Duration = Duration::from_secs(20);

/// A callback client connected at `protocol` (the connect callback has run).
fn connected(port: u16, prefix: &str, protocol: Protocol) -> CallbackClient {
    let c = CallbackClient::new(ConnectOptions::new(common::unique(prefix)).protocol(protocol));
    let (tx, rx) = mpsc::channel::<Result<(), String>>();
    let fail = tx.clone();
    c.connect(
        Broker::tcp("127.0.0.1", port),
        move |_c| {
            let _ = tx.send(Ok(()));
        },
        move |_c, e| {
            let _ = fail.send(Err(e.to_string()));
        },
    )
    .unwrap();
    match rx.recv_timeout(WAIT) {
        Ok(Ok(())) => c,
        Ok(Err(e)) => panic!("connect failed: {e}"),
        Err(_) => panic!("no connect callback within {WAIT:?}"),
    }
}

/// Subscribes `c` with `handler` as the subscription's own handler; returns at SUBACK.
fn subscribed(
    c: &CallbackClient,
    filter: &str,
    handler: impl FnMut(&CallbackClient, &Message) + Send + 'static,
) {
    let (tx, rx) = mpsc::channel();
    c.subscribe_handler(
        Subscription::new(filter, QoS::AtLeastOnce),
        handler,
        move |_c, r| {
            let _ = tx.send(r.map(|a| a.reasons));
        },
    )
    .unwrap();
    let reasons = rx
        .recv_timeout(WAIT)
        .unwrap_or_else(|_| panic!("no SUBACK for {filter} within {WAIT:?}"))
        .unwrap();
    assert!(reasons.iter().all(|r| !r.is_error()), "{reasons:?}");
}

/// What the requester saw, in the order its callbacks ran.
#[derive(Debug, PartialEq, Eq)]
enum Seen {
    Notice(String),
    Reply(String, Vec<u8>),
}

#[test]
fn the_callback_gets_its_reply_after_the_messages_delivered_before_it() {
    let broker = MosquittoConfig::new().start();
    let service = common::unique("cbrr-svc");
    let notices = format!("{service}/notice");

    // The responder: for each request, a notice on `notices` first (QoS 1, acknowledged by
    // the broker), then the reply; it reports the correlation data it answered.
    let responder = connected(broker.port(), "cbrr-resp", Protocol::V5);
    let (corr_tx, corr_rx) = mpsc::channel::<Vec<u8>>();
    let notice_topic = notices.clone();
    subscribed(&responder, &service, move |c, request| {
        let corr = request.correlation_data().map(|d| d.to_vec()).unwrap();
        let _ = corr_tx.send(corr);
        let reply = [&b"re: "[..], &request.payload[..]].concat();
        let response = Publish::response_to(request, reply)
            .expect("a response topic")
            .qos(QoS::AtLeastOnce);
        let notice = Publish::new(&notice_topic, request.payload.clone()).qos(QoS::AtLeastOnce);
        c.publish_with(notice, move |c, r| {
            r.unwrap();
            c.publish_with(response, |_c, r| r.unwrap()).unwrap();
        })
        .unwrap();
    });

    let requester = connected(broker.port(), "cbrr-req", Protocol::V5);
    let (seen_tx, seen_rx) = mpsc::channel::<Seen>();
    let on_notice = seen_tx.clone();
    subscribed(&requester, &notices, move |_c, msg| {
        let text = String::from_utf8_lossy(&msg.payload).into_owned();
        let _ = on_notice.send(Seen::Notice(text));
    });
    for ask in ["one", "two", "three"] {
        let tx = seen_tx.clone();
        requester
            .request(
                Publish::new(&service, ask).qos(QoS::AtLeastOnce),
                WAIT,
                move |_c, r| {
                    let reply = r.unwrap_or_else(|e| panic!("request {ask}: {e}"));
                    let text = String::from_utf8_lossy(&reply.payload).into_owned();
                    let corr = reply.correlation_data().map(|d| d.to_vec()).unwrap();
                    let _ = tx.send(Seen::Reply(text, corr));
                },
            )
            .unwrap();
    }

    let mut seen = Vec::new();
    while seen.len() < 6 {
        seen.push(
            seen_rx
                .recv_timeout(WAIT)
                .unwrap_or_else(|_| panic!("callbacks so far: {seen:?}")),
        );
    }
    let answered: Vec<Vec<u8>> = (0..3)
        .map(|_| corr_rx.recv_timeout(WAIT).unwrap())
        .collect();
    // Each request got the reply to itself, with the correlation data the responder saw on
    // that request (all distinct).
    for ask in ["one", "two", "three"] {
        let notice = seen
            .iter()
            .position(|s| *s == Seen::Notice(ask.to_owned()))
            .unwrap_or_else(|| panic!("no notice {ask}: {seen:?}"));
        let reply = seen
            .iter()
            .position(|s| matches!(s, Seen::Reply(t, _) if *t == format!("re: {ask}")))
            .unwrap_or_else(|| panic!("no reply to {ask}: {seen:?}"));
        // The notice reached the broker before the reply was published: its handler ran
        // before the request's callback.
        assert!(notice < reply, "{seen:?}");
        let Seen::Reply(_, corr) = &seen[reply] else {
            unreachable!()
        };
        assert!(answered.contains(corr), "{corr:?} not in {answered:?}");
    }
    let mut distinct = answered.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), 3, "{answered:?}");
    requester.close().unwrap();
    responder.close().unwrap();
}

#[test]
fn a_timed_out_request_gets_no_response_once_and_a_late_reply_is_an_ordinary_message() {
    let broker = MosquittoConfig::new().start();
    let service = common::unique("cbrr-late");

    // The responder keeps the request and answers only when the test says so.
    let responder = connected(broker.port(), "cbrr-resp", Protocol::V5);
    let held: Arc<Mutex<Option<Message>>> = Arc::default();
    let (got_tx, got_rx) = mpsc::channel::<()>();
    let keep = Arc::clone(&held);
    subscribed(&responder, &service, move |_c, request| {
        *keep.lock().unwrap() = Some(request.clone());
        let _ = got_tx.send(());
    });

    let requester = connected(broker.port(), "cbrr-req", Protocol::V5);
    let (tx, rx) = mpsc::channel::<String>();
    let on_message = tx.clone();
    requester.on_message(move |_c, msg| {
        let corr = msg.correlation_data().is_some();
        let text = String::from_utf8_lossy(&msg.payload).into_owned();
        let _ = on_message.send(format!("on_message {text} corr {corr}"));
    });
    let timeout = Duration::from_millis(300);
    let outcome = tx.clone();
    requester
        .request(
            Publish::new(&service, "?").qos(QoS::AtLeastOnce),
            timeout,
            move |_c, r| {
                let text = match r {
                    Err(ClientError::NoResponse(after)) => format!("no response after {after:?}"),
                    other => format!("unexpected {other:?}"),
                };
                let _ = outcome.send(text);
            },
        )
        .unwrap();
    got_rx
        .recv_timeout(WAIT)
        .expect("the responder got the request");
    assert_eq!(
        rx.recv_timeout(WAIT).expect("the request's callback"),
        format!("no response after {timeout:?}")
    );

    // Answered now: the request gave up, so the reply goes to on_message (the callback does
    // not run twice).
    let request = held.lock().unwrap().take().unwrap();
    let late = Publish::response_to(&request, "late")
        .unwrap()
        .qos(QoS::AtLeastOnce);
    responder.publish_with(late, |_c, r| r.unwrap()).unwrap();
    assert_eq!(
        rx.recv_timeout(WAIT).expect("the late reply"),
        "on_message late corr true"
    );
    assert!(
        rx.recv_timeout(Duration::from_millis(300)).is_err(),
        "one callback per request"
    );
    requester.close().unwrap();
    responder.close().unwrap();
}

#[test]
fn below_mqtt_5_a_request_is_refused_at_once() {
    let broker = MosquittoConfig::new().start();
    // Not connected yet: the options decide.
    let idle = CallbackClient::new(ConnectOptions::new(common::unique("cbrr-311")));
    let (tx, rx) = mpsc::channel::<()>();
    let e = idle
        .request(Publish::new("svc", "?"), WAIT, move |_c, _r| {
            let _ = tx.send(());
        })
        .unwrap_err();
    assert!(
        matches!(e, ClientError::Misuse(ApiMisuse::NeedsV5(_))),
        "{e:?}"
    );
    // Connected at 3.1.1 too.
    let c = connected(broker.port(), "cbrr-311", Protocol::V3_1_1);
    let e = c
        .request(Publish::new("svc", "?"), WAIT, |_c, _r| {})
        .unwrap_err();
    assert!(
        matches!(e, ClientError::Misuse(ApiMisuse::NeedsV5(_))),
        "{e:?}"
    );
    assert!(rx.recv_timeout(Duration::from_millis(200)).is_err());
    c.close().unwrap();
}

/// The async request at 3.1.1 fails with the same error, without subscribing to a response
/// topic first.
#[tokio::test]
async fn the_async_request_below_mqtt_5_needs_v5() {
    let broker = MosquittoConfig::new().start();
    let opts = ConnectOptions::new(common::unique("rr-311")).protocol(Protocol::V3_1_1);
    let (client, _events) = common::connected(opts, broker.port()).await;
    let e = common::within(
        "the refusal",
        client.request(Publish::new("svc", "?"), common::WAIT),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(e, ClientError::Misuse(ApiMisuse::NeedsV5(_))),
        "{e:?}"
    );
    client.close().await.unwrap();
}
