//! MQTT 5 enhanced authentication wiring, against the scripted broker (mosquitto has no
//! AUTH methods built in): CONNECT carries the authenticator's method and first data, the
//! broker's AUTH Continue is answered with its next step, the CONNACK's data is verified,
//! and a failed verification ends the attempt with a clear error.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod common;

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use common::within;
use tern::{
    AuthError, Authenticator, Broker, Client, ConnectError, ConnectOptions, PacketType, Protocol,
};
use tern_testkit::{Script, ScriptedBroker};

/// Records what the broker sent at each step; `good` is the final data it accepts.
struct Recorder {
    log: Arc<Mutex<Vec<String>>>,
    good: &'static [u8],
}

impl Authenticator for Recorder {
    fn method(&self) -> &str {
        "TEST"
    }
    fn start(&mut self) -> Result<Option<Bytes>, AuthError> {
        self.log.lock().unwrap().push("start".into());
        Ok(Some(Bytes::from_static(b"c1")))
    }
    fn step(&mut self, data: Option<&[u8]>) -> Result<Option<Bytes>, AuthError> {
        let data = String::from_utf8_lossy(data.unwrap_or_default()).into_owned();
        self.log.lock().unwrap().push(format!("step {data}"));
        Ok(Some(Bytes::from_static(b"c2")))
    }
    fn finish(&mut self, data: Option<&[u8]>) -> Result<(), AuthError> {
        let data = data.unwrap_or_default();
        self.log
            .lock()
            .unwrap()
            .push(format!("finish {}", String::from_utf8_lossy(data)));
        if data == self.good {
            Ok(())
        } else {
            Err(AuthError::Failed("bad server signature".into()))
        }
    }
}

/// AUTH 0x18 (method TEST, data "s1"), then on our AUTH a CONNACK with method TEST and
/// data "ok".
fn exchange() -> Script {
    Script::new()
        .expect_connect()
        .send(&b"\xf0\x0e\x18\x0c\x15\x00\x04TEST\x16\x00\x02s1"[..])
        .expect(PacketType::Auth)
        .send(&b"\x20\x0f\x00\x00\x0c\x15\x00\x04TEST\x16\x00\x02ok"[..])
        .read_until_closed()
}

fn options(log: &Arc<Mutex<Vec<String>>>, good: &'static [u8]) -> ConnectOptions {
    ConnectOptions::new("auth")
        .protocol(Protocol::V5)
        .authenticator(Recorder {
            log: log.clone(),
            good,
        })
}

#[tokio::test]
async fn the_auth_exchange_goes_through_the_authenticator() {
    let broker = ScriptedBroker::start(exchange()).await;
    let log = Arc::new(Mutex::new(Vec::new()));
    let (client, _events) = Client::new(options(&log, b"ok"));
    within(
        "CONNACK",
        client.connect(Broker::tcp("127.0.0.1", broker.port())),
    )
    .await
    .unwrap();
    assert_eq!(*log.lock().unwrap(), ["start", "step s1", "finish ok"]);
    let conn = broker.connection(0).await;
    let connect = conn.connect_packet().unwrap();
    let body = connect.body();
    let has = |needle: &[u8]| body.windows(needle.len()).any(|w| w == needle);
    // Authentication Method (0x15) and Data (0x16) in CONNECT.
    assert!(has(b"\x15\x00\x04TEST"), "{body:x?}");
    assert!(has(b"\x16\x00\x02c1"), "{body:x?}");
    let auth = conn.wait_for(PacketType::Auth).await;
    // Our answer: Continue (0x18), the method again and the step's data.
    assert_eq!(auth.body()[0], 0x18);
    let body = auth.body();
    assert!(body.windows(4).any(|w| w == b"TEST"), "{body:x?}");
    assert!(body.windows(5).any(|w| w == b"\x16\x00\x02c2"), "{body:x?}");
    client.close().await.unwrap();
}

#[tokio::test]
async fn a_failed_verification_ends_the_attempt_with_the_authenticators_error() {
    let broker = ScriptedBroker::start(exchange()).await;
    let log = Arc::new(Mutex::new(Vec::new()));
    let (client, _events) = Client::new(options(&log, b"expected"));
    let e = within(
        "the attempt's end",
        client.connect(Broker::tcp("127.0.0.1", broker.port())),
    )
    .await
    .unwrap_err();
    assert!(matches!(e, ConnectError::Auth(_)), "{e:?}");
    assert!(e.to_string().contains("bad server signature"), "{e}");
}
