//! How the driver writes: what the application sends in response to a message leaves in the
//! same write as the acknowledgement of that message. A real broker cannot tell writes
//! apart, so a raw TCP listener plays the broker and looks at what one read returns, and the
//! driver's `wrote` trace events give the size of every write it made.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod common;

use common::{connected, next_message, within};
use tern::{ConnectOptions, QoS};
use tern_testkit::DriverTrace;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// CONNACK, session not present, accepted.
const CONNACK: [u8; 4] = [0x20, 0x02, 0x00, 0x00];

/// A QoS 1 PUBLISH of `payload` on topic "q" with packet id 7.
fn publish_q1(payload: &[u8]) -> Vec<u8> {
    let len = u8::try_from(5 + payload.len()).unwrap();
    [&[0x32, len, 0x00, 0x01, b'q', 0x00, 0x07], payload].concat()
}

/// The application is the test's own future (a runtime's `block_on` future).
#[tokio::test]
async fn a_reply_leaves_in_the_same_write_as_the_puback() {
    reply_and_puback_share_a_write(false).await;
}

/// The application is a task of its own on the same current-thread runtime (the driver then
/// lets it run by queueing itself behind it, with no I/O poll in between).
#[tokio::test]
async fn a_spawned_applications_reply_leaves_with_the_puback() {
    reply_and_puback_share_a_write(true).await;
}

async fn reply_and_puback_share_a_write(spawned: bool) {
    // Every task of this test runs on this thread (a current-thread runtime).
    let trace = DriverTrace::default();
    let _trace = trace.install();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    // The message is sent once the application waits for it (not in the CONNACK's read).
    let (go, wait_go) = tokio::sync::oneshot::channel::<()>();
    let broker = tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        let mut buf = vec![0u8; 4096];
        // CONNECT is short: one read takes it on loopback.
        let n = s.read(&mut buf).await.unwrap();
        assert!(
            n >= 2 && buf[0] == 0x10,
            "expected CONNECT, got {:?}",
            &buf[..n]
        );
        s.write_all(&CONNACK).await.unwrap();
        wait_go.await.unwrap();
        s.write_all(&publish_q1(b"ping")).await.unwrap();
        // One write from the client carries the PUBACK and the reply; a read returns what one
        // write put on the socket at least.
        let n = s.read(&mut buf).await.unwrap();
        buf.truncate(n);
        buf
    });

    let (client, mut events) = connected(ConnectOptions::new("batch"), port).await;
    let app = async move {
        let msg = next_message(&mut events).await;
        assert_eq!(&msg.payload[..], b"ping");
        client
            .try_publish("r", &b"pong"[..], QoS::AtMostOnce, false)
            .unwrap();
        (client, events)
    };
    let _keep = if spawned {
        let app = tokio::spawn(app);
        go.send(()).unwrap();
        within("the application task", app).await.unwrap()
    } else {
        go.send(()).unwrap();
        app.await
    };

    let got = within("the client's write", broker).await.unwrap();
    let puback = [0x40, 0x02, 0x00, 0x07];
    let reply = [0x30, 0x07, 0x00, 0x01, b'r', b'p', b'o', b'n', b'g'];
    assert_eq!(
        got,
        [&puback[..], &reply[..]].concat(),
        "the PUBACK and the reply arrive together, in that order"
    );
    // The CONNECT, then both packets in one write: on one thread the listener reads only
    // after both tasks have run, so its read alone cannot tell one write from two.
    let writes = trace.writes();
    assert_eq!(writes.len(), 2, "writes of the client: {writes:?}");
    assert_eq!(writes[1], 13, "writes of the client: {writes:?}");
}
