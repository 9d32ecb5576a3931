//! A driver's turn is bounded: it hands the application at most a turn's worth of events
//! (128, plus what one read brought) before it yields, however much the socket holds, so
//! that the application and the other clients on the same thread get their turn. A real
//! broker cannot be made to keep a socket full on cue, so a plain listener plays the broker:
//! after CONNACK a thread writes a long burst of QoS 0 messages as fast as the socket takes
//! them, and the application counts how many events it finds queued each time it runs.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod common;

use std::io::{Read as _, Write as _};

use common::{connected, within};
use tern::{ConnectOptions, Event};

/// Messages in the burst, and their payload size (a 64 KiB read holds about 63 of them).
const MESSAGES: usize = 4000;
const PAYLOAD: usize = 1024;

/// A QoS 0 PUBLISH on topic "f" with a payload of [`PAYLOAD`] bytes.
fn publish_q0() -> Vec<u8> {
    let body = 3 + PAYLOAD;
    let mut p = vec![0x30, (body % 128) as u8 | 0x80, (body / 128) as u8];
    p.extend_from_slice(&[0x00, 0x01, b'f']);
    p.resize(p.len() + PAYLOAD, b'x');
    p
}

#[tokio::test]
async fn a_turn_hands_out_a_bounded_number_of_events() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (go, wait_go) = std::sync::mpsc::channel::<()>();
    let broker = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        s.set_read_timeout(Some(common::WAIT)).unwrap();
        let mut buf = [0u8; 256];
        let n = s.read(&mut buf).unwrap();
        assert!(
            n >= 2 && buf[0] == 0x10,
            "expected CONNECT, got {:?}",
            &buf[..n]
        );
        s.write_all(&[0x20, 0x02, 0x00, 0x00]).unwrap();
        wait_go.recv_timeout(common::WAIT).unwrap();
        let burst = publish_q0().repeat(MESSAGES);
        s.write_all(&burst).unwrap();
        // Keep the connection open until the client has read everything.
        let _ = s.read(&mut buf);
    });

    let (client, mut events) = connected(ConnectOptions::new("fair-turns"), port).await;
    go.send(()).unwrap();
    // The application: each time it runs, it takes everything queued; the largest such
    // batch is what one of the driver's turns handed out (the application is always ready,
    // so it runs after every turn of the driver).
    let largest = within("the whole burst", async {
        let (mut got, mut largest) = (0usize, 0usize);
        while got < MESSAGES {
            let mut batch = match events.recv().await {
                Some(Event::Message(_)) => 1,
                Some(_) => 0,
                None => panic!("events ended after {got} messages"),
            };
            while let Some(ev) = events.try_recv() {
                if matches!(ev, Event::Message(_)) {
                    batch += 1;
                }
            }
            got += batch;
            largest = largest.max(batch);
        }
        largest
    })
    .await;
    // 128 events per turn, plus the messages of the read that crossed the mark (64 KiB of
    // 1 KiB messages); the event channel alone would let 1,024 through.
    assert!(
        largest <= 128 + 64,
        "the application found {largest} events queued at once: a turn was not bounded"
    );
    client.close().await.unwrap();
    broker.join().unwrap();
}
