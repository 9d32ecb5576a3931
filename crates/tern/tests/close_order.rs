//! `close()` is a command like the others, in the one ordered queue: it takes effect after
//! everything the application asked before it, and every one of those requests gets its
//! completion. Against a real mosquitto, a burst of publishes followed at once by
//! `try_close()`:
//! - QoS 0: every publish is written before DISCONNECT and completes successfully before the
//!   local disconnect is reported.
//! - QoS 1, four times the in-flight window: `close()` waits (boundedly) for what is queued
//!   behind the window to leave and be acknowledged, so every publish completes successfully
//!   before DISCONNECT is written and the disconnect reported; a publish issued after
//!   `close()` waits for the next connection.
//!
//! - MQTT 5 `close_with(reason, expiry)` drains the same way, then sends its DISCONNECT:
//!   with Disconnect with Will Message (0x04) the broker publishes the will after the 200
//!   messages; with a normal disconnection (0x00) it does not publish it.
//!
//! Either way a subscriber gets every one of them, in call order, once: what was written
//! before DISCONNECT reached the broker. (Dropping the socket with the broker's PUBACKs
//! unread once made the kernel reset the connection, and mosquitto discarded the publishes
//! it had not read yet: 2 runs in 10 lost some.) Waiting for the broker's side to close is
//! bounded: against a broker that keeps it open, `close()` still returns.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod common;

use std::collections::{BTreeSet, HashMap};

use common::{connected, next_message, unique, within};
use std::time::Duration;

use tern::{
    ApiMisuse, Broker, ClientError, ConnectOptions, ConnectionError, DisconnectReasonCode, Event,
    Events, Protocol, QoS, Ticket, Will,
};
use tern_testkit::Mosquitto;

const BURST: usize = 200;
/// The publisher's in-flight window, below `BURST` so that some publishes wait behind it.
const WINDOW: u16 = 50;

/// The publishes completed successfully (by index), and how many completed in all, when
/// `stop` says so.
struct Completions {
    index: HashMap<Ticket, usize>,
    ok: BTreeSet<usize>,
    done: usize,
}

impl Completions {
    /// Reads `events` until the local disconnect (`until_disconnect`) or until every publish
    /// has completed.
    async fn read(&mut self, events: &mut Events, qos: QoS, until_disconnect: bool) {
        let what = if until_disconnect {
            "the publisher's disconnect"
        } else {
            "the queued publishes' completions"
        };
        within(what, async {
            while until_disconnect || self.done < BURST {
                match events.recv().await {
                    Some(Event::Completed { ticket, result }) => {
                        let i = self.index[&ticket];
                        match result {
                            Ok(_) => {
                                self.ok.insert(i);
                            }
                            Err(e) if qos == QoS::AtMostOnce || !until_disconnect => {
                                panic!("publish {i} at {qos:?}: {e}")
                            }
                            // In flight at DISCONNECT: unfinished.
                            Err(_) => {}
                        }
                        self.done += 1;
                    }
                    Some(Event::Disconnected { error, .. }) if until_disconnect => {
                        assert!(matches!(error, ConnectionError::Local), "{error}");
                        return;
                    }
                    Some(_) => {}
                    None => panic!("the publisher's events ended"),
                }
            }
        })
        .await;
    }
}

async fn burst_then_close(qos: QoS) {
    let broker = Mosquitto::start_default();
    let topic = unique("close-order");
    let (sub, mut sub_events) = connected(ConnectOptions::new(unique("sub")), broker.port()).await;
    within(
        "SUBACK",
        sub.subscribe([(topic.as_str(), QoS::AtLeastOnce)]),
    )
    .await
    .unwrap();
    let options = ConnectOptions::new(unique("pub")).max_inflight(WINDOW);
    let (publisher, mut events) = connected(options, broker.port()).await;
    let mut completions = Completions {
        index: HashMap::new(),
        ok: BTreeSet::new(),
        done: 0,
    };
    for i in 0..BURST {
        let ticket = publisher
            .try_publish(&topic, i.to_string(), qos, false)
            .unwrap();
        completions.index.insert(ticket, i);
    }
    publisher.try_close().unwrap();

    completions.read(&mut events, qos, true).await;
    if qos == QoS::AtMostOnce {
        assert_eq!(
            completions.ok.len(),
            BURST,
            "every QoS 0 publish completes before the disconnect"
        );
    } else {
        assert_eq!(
            completions.ok.len(),
            BURST,
            "every QoS 1 publish, the {} behind the window of {WINDOW} too, completes before \
             the disconnect",
            BURST - usize::from(WINDOW)
        );
    }

    // The subscriber: every publish, in call order, once.
    for i in 0..BURST {
        let m = next_message(&mut sub_events).await;
        assert_eq!(
            String::from_utf8_lossy(&m.payload),
            i.to_string(),
            "message {i} at {qos:?} ({} of the publisher's completed successfully)",
            completions.ok.len()
        );
    }
    within("close", sub.close()).await.unwrap();
}

#[tokio::test]
async fn qos_0_publishes_before_close_all_leave_before_it() {
    burst_then_close(QoS::AtMostOnce).await;
}

#[tokio::test]
async fn qos_1_publishes_before_close_all_complete_before_it_even_behind_the_window() {
    burst_then_close(QoS::AtLeastOnce).await;
}

/// Call order across `close()`: a publish issued after it (while the ones before it drain)
/// is not sent on the closing connection; it leaves on the next one.
#[tokio::test]
async fn a_publish_after_close_waits_for_the_next_connection() {
    let broker = Mosquitto::start_default();
    let topic = unique("after-close");
    let (sub, mut sub_events) = connected(ConnectOptions::new(unique("sub")), broker.port()).await;
    within(
        "SUBACK",
        sub.subscribe([(topic.as_str(), QoS::AtLeastOnce)]),
    )
    .await
    .unwrap();
    let options = ConnectOptions::new(unique("pub")).max_inflight(2);
    let (publisher, mut events) = connected(options, broker.port()).await;
    for i in 0..10 {
        publisher
            .try_publish(&topic, format!("before {i}"), QoS::AtLeastOnce, false)
            .unwrap();
    }
    publisher.try_close().unwrap();
    let after = publisher
        .try_publish(&topic, "after", QoS::AtLeastOnce, false)
        .unwrap();
    // Ten completions, then the local disconnect; "after" is not among them.
    within("the ten completions and the disconnect", async {
        let mut done = 0;
        loop {
            match events.recv().await {
                Some(Event::Completed { ticket, result }) => {
                    assert_ne!(
                        ticket, after,
                        "the publish after close() completed on the closing connection"
                    );
                    result.unwrap();
                    done += 1;
                }
                Some(Event::Disconnected { error, .. }) => {
                    assert!(matches!(error, ConnectionError::Local), "{error}");
                    break;
                }
                Some(_) => {}
                None => panic!("events ended"),
            }
        }
        assert_eq!(done, 10);
    })
    .await;
    for i in 0..10 {
        let m = next_message(&mut sub_events).await;
        assert_eq!(String::from_utf8_lossy(&m.payload), format!("before {i}"));
    }
    within(
        "reconnect",
        publisher.connect(Broker::tcp("127.0.0.1", broker.port())),
    )
    .await
    .unwrap();
    let m = next_message(&mut sub_events).await;
    assert_eq!(
        &m.payload[..],
        b"after",
        "the publish after close() leaves on the next connection"
    );
    within("close", publisher.close()).await.unwrap();
    within("close", sub.close()).await.unwrap();
}

/// A broker that reads DISCONNECT and our FIN but never closes its side (MQTT 3.1.1 says it
/// SHOULD close; nothing makes it): `close()` waits for it, but boundedly (5 s), and succeeds.
#[tokio::test]
async fn close_returns_when_the_broker_never_closes_its_side() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (fin_seen, got_fin) = tokio::sync::oneshot::channel();
    let broker = tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        let mut buf = [0u8; 1024];
        // CONNECT is short: one read takes it on loopback.
        let n = s.read(&mut buf).await.unwrap();
        assert!(
            n >= 2 && buf[0] == 0x10,
            "expected CONNECT: {:?}",
            &buf[..n]
        );
        s.write_all(&[0x20, 0x02, 0x00, 0x00]).await.unwrap();
        let mut received = Vec::new();
        loop {
            let n = s.read(&mut buf).await.unwrap();
            if n == 0 {
                break;
            }
            received.extend_from_slice(&buf[..n]);
        }
        fin_seen.send(received).unwrap();
        // Keeps its side open for as long as the test runs.
        std::future::pending::<()>().await;
    });
    let (client, _events) = connected(ConnectOptions::new(unique("nofin")), port).await;
    within("close against a broker that never closes", client.close())
        .await
        .unwrap();
    let received = within("the client's FIN", got_fin).await.unwrap();
    assert_eq!(received, [0xE0, 0x00], "DISCONNECT, then our side closed");
    broker.abort();
}

/// A burst of 200 QoS 1 publishes (window 50) at MQTT 5 by a client with a will, then
/// `close_with(reason)` right behind them: every publish completes before the local
/// disconnect, and a subscriber to both the topic and the will topic gets the 200 in call
/// order; then the will (0x04) or, for 0x00, the sentinel the subscriber publishes itself
/// once `close_with` has returned (no will before it).
async fn burst_then_close_with(reason: DisconnectReasonCode) {
    let broker = Mosquitto::start_default();
    let topic = unique("close-with");
    let will_topic = format!("{topic}/will");
    let v5 = |id: &str| ConnectOptions::new(unique(id)).protocol(Protocol::V5);
    let (sub, mut sub_events) = connected(v5("sub"), broker.port()).await;
    within(
        "SUBACK",
        sub.subscribe([
            (topic.as_str(), QoS::AtLeastOnce),
            (will_topic.as_str(), QoS::AtLeastOnce),
        ]),
    )
    .await
    .unwrap();
    let options = v5("pub").max_inflight(WINDOW).will(Will::new(
        will_topic.clone(),
        "gone",
        QoS::AtLeastOnce,
        false,
    ));
    let (publisher, mut events) = connected(options, broker.port()).await;

    // Refused at once (CONNECT asked for a Session Expiry of 0 [MQTT-3.14.2-2]): the
    // connection stays and nothing is drained.
    let e = within(
        "the refusal",
        publisher.close_with(reason, Some(Duration::from_secs(60))),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(e, ClientError::Misuse(ApiMisuse::ExpiryAfterZero)),
        "{e:?}"
    );

    let mut completions = Completions {
        index: HashMap::new(),
        ok: BTreeSet::new(),
        done: 0,
    };
    for i in 0..BURST {
        let ticket = publisher
            .try_publish(&topic, i.to_string(), QoS::AtLeastOnce, false)
            .unwrap();
        completions.index.insert(ticket, i);
    }
    let closing = publisher.clone();
    let close = tokio::spawn(async move { closing.close_with(reason, None).await });
    completions.read(&mut events, QoS::AtLeastOnce, true).await;
    assert_eq!(
        completions.ok.len(),
        BURST,
        "every QoS 1 publish, the {} behind the window of {WINDOW} too, completes before \
         close_with's disconnect",
        BURST - usize::from(WINDOW)
    );
    within("close_with", close).await.unwrap().unwrap();

    for i in 0..BURST {
        let m = next_message(&mut sub_events).await;
        assert_eq!(m.topic.as_str(), topic, "message {i}: the will came early");
        assert_eq!(String::from_utf8_lossy(&m.payload), i.to_string());
    }
    if reason == DisconnectReasonCode::NormalDisconnection {
        within(
            "the sentinel's PUBACK",
            sub.publish(&will_topic, "sentinel", QoS::AtLeastOnce, false),
        )
        .await
        .unwrap();
    }
    let m = next_message(&mut sub_events).await;
    assert_eq!(m.topic.as_str(), will_topic);
    let expected: &[u8] = if reason == DisconnectReasonCode::NormalDisconnection {
        b"sentinel"
    } else {
        b"gone"
    };
    assert_eq!(&m.payload[..], expected, "after close_with({reason:?})");
    within("close", sub.close()).await.unwrap();
}

#[tokio::test]
async fn close_with_will_drains_the_publishes_then_the_broker_publishes_the_will() {
    burst_then_close_with(DisconnectReasonCode::DisconnectWithWillMessage).await;
}

#[tokio::test]
async fn close_with_normal_disconnection_drains_the_publishes_and_deletes_the_will() {
    burst_then_close_with(DisconnectReasonCode::NormalDisconnection).await;
}
