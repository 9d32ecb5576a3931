//! The session store's blocking work (a write and an `fdatasync` per batch) runs off the
//! runtime's thread: on the current-thread runtime of `tern run` and the CLI, a slow disk
//! under one client must not stall every other client and timer. Write-ahead still holds:
//! the publish its record protects leaves only once the record is durable.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use common::{connected, unique, within};
use tern::{ConnectOptions, Event, QoS};
use tern_testkit::Mosquitto;

/// How long the slow fsync waits to be released before giving up by itself: a driver that
/// blocks the runtime's thread fails the test after this instead of hanging it.
const HELD_AT_MOST: Duration = Duration::from_secs(8);

const ROUND_TRIPS: usize = 20;

#[test]
fn a_slow_store_fsync_does_not_stall_another_client_on_the_same_thread() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(slow_store_and_a_second_client());
}

async fn slow_store_and_a_second_client() {
    let broker = Mosquitto::start_default();
    let dir = tempfile::tempdir().unwrap();

    // The hook runs before each fsync of the slow client's store. Once armed, it reports
    // that it was entered and holds the fsync until the test releases it.
    let armed = Arc::new(AtomicBool::new(false));
    let timed_out = Arc::new(AtomicBool::new(false));
    let (entered_tx, mut entered) = tokio::sync::mpsc::unbounded_channel::<()>();
    let (release, released) = mpsc::channel::<()>();
    let released = Mutex::new(released);
    let hook = {
        let (armed, timed_out) = (armed.clone(), timed_out.clone());
        move || {
            if !armed.load(Ordering::SeqCst) {
                return;
            }
            let _ = entered_tx.send(());
            let held = released.lock().unwrap().recv_timeout(HELD_AT_MOST);
            if held.is_err() {
                timed_out.store(true, Ordering::SeqCst);
            }
        }
    };
    let slow_topic = unique("store-slow");
    let slow_options = ConnectOptions::new(unique("store-slow"))
        .clean_session(false)
        .session_store(dir.path())
        .store_sync_hook(hook);
    let (slow, mut slow_events) = connected(slow_options, broker.port()).await;

    // The second client hears both its own pings and the slow client's topic.
    let ping_topic = unique("store-ping");
    let (fast, mut fast_events) =
        connected(ConnectOptions::new(unique("store-fast")), broker.port()).await;
    within(
        "SUBACK",
        fast.subscribe([
            (ping_topic.as_str(), QoS::AtLeastOnce),
            (slow_topic.as_str(), QoS::AtLeastOnce),
        ]),
    )
    .await
    .unwrap();

    // The slow client's QoS 1 publish needs its record synced before it may leave.
    armed.store(true, Ordering::SeqCst);
    slow.try_publish(&slow_topic, "durable first", QoS::AtLeastOnce, false)
        .unwrap();
    within("the slow client's fsync to start", entered.recv())
        .await
        .unwrap();

    // While that fsync is held, the second client keeps working, and the slow client's
    // publish has not left (its record is not durable yet).
    for i in 0..ROUND_TRIPS {
        fast.try_publish(&ping_topic, format!("ping {i}"), QoS::AtLeastOnce, false)
            .unwrap();
        within(&format!("round trip {i} while the store is slow"), async {
            loop {
                match fast_events.recv().await {
                    Some(Event::Message(m)) => {
                        assert!(
                            !timed_out.load(Ordering::SeqCst),
                            "the held fsync timed out: it blocked the runtime's thread"
                        );
                        assert_eq!(
                            m.topic.as_str(),
                            ping_topic,
                            "the slow client's publish left before its record was durable"
                        );
                        assert_eq!(&m.payload[..], format!("ping {i}").as_bytes());
                        return;
                    }
                    Some(Event::Completed { result, .. }) => {
                        result.unwrap();
                    }
                    Some(_) => {}
                    None => panic!("the second client stopped"),
                }
            }
        })
        .await;
    }
    assert!(
        !timed_out.load(Ordering::SeqCst),
        "the held fsync timed out: it blocked the runtime's thread"
    );
    while let Some(ev) = slow_events.try_recv() {
        assert!(
            !matches!(ev, Event::Completed { .. }),
            "the slow client's publish completed while its record was not durable: {ev:?}"
        );
    }

    // Released, the publish leaves and completes.
    armed.store(false, Ordering::SeqCst);
    release.send(()).unwrap();
    let slow_message = within("the slow client's message", async {
        loop {
            match fast_events.recv().await {
                Some(Event::Message(m)) if m.topic.as_str() == slow_topic => return m,
                Some(_) => {}
                None => panic!("the second client stopped"),
            }
        }
    })
    .await;
    assert_eq!(&slow_message.payload[..], b"durable first");
    within("the slow client's completion", async {
        loop {
            match slow_events.recv().await {
                Some(Event::Completed { result, .. }) => return result.unwrap(),
                Some(_) => {}
                None => panic!("the slow client stopped"),
            }
        }
    })
    .await;
    assert!(
        !timed_out.load(Ordering::SeqCst),
        "the held fsync timed out: it blocked the runtime's thread"
    );
    within("close", slow.close()).await.unwrap();
    within("close", fast.close()).await.unwrap();
}

#[tokio::test]
async fn a_store_that_cannot_be_opened_fails_connect_with_its_reason() {
    let broker = Mosquitto::start_default();
    let dir = tempfile::tempdir().unwrap();
    let id = unique("store-locked");
    // Held open here: the client's open (on the blocking pool) finds it locked.
    let _held = tern::store::SessionStore::open(dir.path(), &id).unwrap();
    let options = ConnectOptions::new(id)
        .clean_session(false)
        .session_store(dir.path());
    let (client, mut events) = tern::Client::new(options);
    let result = within(
        "connect to fail",
        client.connect(tern::Broker::tcp("127.0.0.1", broker.port())),
    )
    .await;
    match result {
        Err(tern::ConnectError::Store(e)) => {
            assert!(e.to_string().contains("in use"), "{e}");
        }
        other => panic!("expected a store error, got {other:?}"),
    }
    let failed = within("ConnectFailed", events.recv()).await;
    assert!(
        matches!(
            failed,
            Some(Event::ConnectFailed {
                will_retry: false,
                ..
            })
        ),
        "{failed:?}"
    );
}
