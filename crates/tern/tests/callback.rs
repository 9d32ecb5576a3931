//! The callback API: seed-style handlers, per-call completions, and no deadlock when a
//! message handler publishes under load.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod common;

use std::sync::mpsc;
use std::time::Duration;

use tern::callback::CallbackClient;
use tern::{Broker, ConnectOptions, QoS};
use tern_testkit::{MosquittoConfig, closed_port};

const WAIT: Duration = Duration::from_secs(20);

#[test]
fn seed_flow_with_per_call_callbacks() {
    let broker = MosquittoConfig::new().start();
    let m = CallbackClient::new(ConnectOptions::new(common::unique("cb")));
    let (tx, rx) = mpsc::channel::<String>();
    let on_msg = tx.clone();
    m.on_message(move |_c, msg| {
        let _ = on_msg.send(format!(
            "{}:{}",
            msg.topic,
            String::from_utf8_lossy(&msg.payload)
        ));
    });
    let on_conn = tx.clone();
    m.on_connect(move |_c| {
        let _ = on_conn.send("on_connect".into());
    });
    let ok_tx = tx.clone();
    m.connect(
        Broker::tcp("127.0.0.1", broker.port()),
        move |c| {
            let _ = ok_tx.send("connected".into());
            let t1 = ok_tx.clone();
            let t2 = ok_tx.clone();
            let t3 = ok_tx.clone();
            c.subscribe([("/cb/a", QoS::AtLeastOnce)], move |_c, r| {
                let _ = t1.send(format!("suback a {:?}", r.map(|g| g.len())));
            })
            .unwrap();
            c.subscribe([("/cb/b", QoS::AtLeastOnce)], move |_c, r| {
                let _ = t2.send(format!("suback b {:?}", r.map(|g| g.len())));
            })
            .unwrap();
            c.publish("/cb/a", "hello", QoS::AtLeastOnce, false, move |_c, r| {
                let _ = t3.send(format!("puback {r:?}"));
            })
            .unwrap();
        },
        |_c, e| panic!("connect failed: {e}"),
    )
    .unwrap();
    let mut got = Vec::new();
    while got.len() < 6 {
        got.push(
            rx.recv_timeout(WAIT)
                .unwrap_or_else(|_| panic!("timed out; got {got:?}")),
        );
    }
    assert_eq!(got[0], "connected", "one-shot connect callback runs first");
    assert_eq!(got[1], "on_connect");
    // Each call got its own completion (not "the last callback wins").
    for want in [
        "suback a Ok(1)",
        "suback b Ok(1)",
        "puback Ok(())",
        "/cb/a:hello",
    ] {
        assert!(
            got.contains(&want.to_owned()),
            "missing {want:?} in {got:?}"
        );
    }
}

#[test]
fn failure_callback_gets_the_seed_code() {
    let m = CallbackClient::new(ConnectOptions::new("cb-fail"));
    let (tx, rx) = mpsc::channel();
    m.connect(
        Broker::tcp("127.0.0.1", closed_port()),
        |_c| panic!("must not connect"),
        move |_c, e| {
            let _ = tx.send(e.code());
        },
    )
    .unwrap();
    assert_eq!(rx.recv_timeout(WAIT).expect("fail callback"), -5);
}

#[test]
fn publishing_from_the_message_callback_under_load_does_not_deadlock() {
    // An echo: every message on /load/in is republished to /load/out from inside the message
    // callback, with a tiny event channel and command queue so both back up.
    const N: usize = 5_000;
    let broker = MosquittoConfig::new()
        .max_inflight_messages(0)
        .max_queued_messages(0)
        .start();
    let mut opts = ConnectOptions::new(common::unique("echo")).max_inflight(10);
    opts.event_capacity = 4;
    let echo = CallbackClient::new(opts);
    echo.on_message(|c, msg| {
        c.publish(
            "/load/out",
            msg.payload.clone(),
            QoS::AtLeastOnce,
            false,
            |_c, r| {
                r.expect("echo publish completes");
            },
        )
        .expect("publish from a callback");
    });
    let (ready_tx, ready_rx) = mpsc::channel();
    echo.connect(
        Broker::tcp("127.0.0.1", broker.port()),
        move |c| {
            c.subscribe([("/load/in", QoS::AtLeastOnce)], move |_c, _| {
                let _ = ready_tx.send(());
            })
            .unwrap();
        },
        |_c, e| panic!("{e}"),
    )
    .unwrap();
    ready_rx.recv_timeout(WAIT).expect("echo subscribed");

    let sink = CallbackClient::new(ConnectOptions::new(common::unique("sink")));
    let (out_tx, out_rx) = mpsc::channel();
    sink.on_message(move |_c, _m| {
        let _ = out_tx.send(());
    });
    let (sub_tx, sub_rx) = mpsc::channel();
    sink.connect(
        Broker::tcp("127.0.0.1", broker.port()),
        move |c| {
            c.subscribe([("/load/out", QoS::AtLeastOnce)], move |_c, _| {
                let _ = sub_tx.send(());
            })
            .unwrap();
        },
        |_c, e| panic!("{e}"),
    )
    .unwrap();
    sub_rx.recv_timeout(WAIT).expect("sink subscribed");

    let source = CallbackClient::new(ConnectOptions::new(common::unique("src")));
    let (c_tx, c_rx) = mpsc::channel();
    source
        .connect(
            Broker::tcp("127.0.0.1", broker.port()),
            move |_c| {
                let _ = c_tx.send(());
            },
            |_c, e| panic!("{e}"),
        )
        .unwrap();
    c_rx.recv_timeout(WAIT).expect("source connected");
    for i in 0..N {
        source
            .publish(
                "/load/in",
                i.to_string(),
                QoS::AtLeastOnce,
                false,
                |_c, _| {},
            )
            .unwrap();
    }
    for i in 0..N {
        out_rx
            .recv_timeout(WAIT)
            .unwrap_or_else(|_| panic!("echo stalled after {i} of {N} messages: deadlock?"));
    }
}
