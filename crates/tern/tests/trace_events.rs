//! What library users see through `tracing`: each connection step on `tern::connect` and
//! every packet on `tern::packet`, a QoS 2 flow readable end to end, never the password.
//!
//! One test in its own binary: `tracing` caches per call site whether anyone listens, and a
//! test on another thread without a subscriber could race the cache.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod common;

use common::within;
use tern::{Broker, Client, ConnectOptions, QoS};
use tern_testkit::MosquittoConfig;

/// Collects the messages of `tern::connect` and `tern::packet` events on this thread.
#[derive(Clone, Default)]
struct Captured(std::sync::Arc<std::sync::Mutex<Vec<String>>>);

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Captured {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        let target = event.metadata().target();
        if target != tern::trace::PACKET_TARGET && target != tern::trace::CONNECT_TARGET {
            return;
        }
        struct Message(String);
        impl tracing::field::Visit for Message {
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                if field.name() == "message" {
                    self.0 = format!("{value:?}");
                }
            }
        }
        let mut m = Message(String::new());
        event.record(&mut m);
        self.0.lock().unwrap().push(m.0);
    }
}

#[tokio::test]
async fn library_users_get_each_step_and_packet_through_tracing() {
    use tracing_subscriber::layer::SubscriberExt;
    let captured = Captured::default();
    let _guard =
        tracing::subscriber::set_default(tracing_subscriber::registry().with(captured.clone()));
    let broker = MosquittoConfig::new()
        .user("bob", "pa55-secret")
        .allow_anonymous(false)
        .start();
    let options = ConnectOptions::new("lib-trace").credentials("bob", Some("pa55-secret"));
    let (client, _events) = Client::new(options);
    within(
        "CONNACK",
        client.connect(Broker::tcp("localhost", broker.port())),
    )
    .await
    .unwrap();
    within(
        "PUBCOMP",
        client.publish("lib/q2", "hi", QoS::ExactlyOnce, false),
    )
    .await
    .unwrap();
    within("close", client.close()).await.unwrap();
    let lines = captured.0.lock().unwrap().clone();
    let expected = [
        "resolved localhost to ",
        "TCP connected to ",
        "sending CONNECT (id 'lib-trace', MQTT 3.1.1, clean session 1, keepalive 60, user 'bob', password (hidden))",
        "received CONNACK (session present 0, return code 0: connection accepted)",
        "sending PUBLISH (d0, q2, r0, m1, 'lib/q2', ... (2 bytes))",
        "received PUBREC (m1)",
        "sending PUBREL (m1)",
        "received PUBCOMP (m1)",
        "sending DISCONNECT",
    ];
    let mut from = 0;
    for want in expected {
        let Some(i) = lines[from..].iter().position(|l| l.starts_with(want)) else {
            panic!("missing (in order) {want:?} in {lines:#?}");
        };
        from += i + 1;
    }
    assert!(
        lines.iter().all(|l| !l.contains("pa55-secret")),
        "{lines:#?}"
    );
}
