//! What a `message` callback publishes leaves in the same write as the PUBACK of that
//! message, as with the async API: the loop takes client events itself, so the driver's turn
//! for the application before it writes is the script's turn. A real broker cannot tell
//! writes apart, so a raw TCP listener plays the broker and the driver's `wrote` trace events
//! give the size of every write.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::time::Duration;

use tern_lua::Runtime;
use tern_testkit::{DriverTrace, raw, timeout};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const WAIT: Duration = Duration::from_secs(10);

/// Reads exactly `n` bytes, failing the test after [`WAIT`].
async fn read_n(s: &mut TcpStream, n: usize, what: &str) -> Vec<u8> {
    let mut buf = vec![0u8; n];
    timeout(WAIT, s.read_exact(&mut buf), what)
        .await
        .unwrap_or_else(|e| panic!("reading {what}: {e}"));
    buf
}

const SCRIPT: &str = r#"
m = mqtt.Client("lua-batch", 60)
m:on("message", function(c, topic, data)
  c:publish("r", "pong", 0, 0)
end)
m:on("offline", function() offline = true end)
m:connect("127.0.0.1", PORT, false, function(c)
  c:publish("ready", "", 0, 0)
end)
"#;

#[test]
fn a_reply_from_a_message_callback_leaves_with_the_puback() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let trace = DriverTrace::default();
    let _trace = trace.install();
    rt.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let broker = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            // CONNECT: fixed header, then the rest.
            let head = read_n(&mut s, 2, "CONNECT").await;
            assert_eq!(head[0], 0x10, "expected CONNECT");
            read_n(&mut s, usize::from(head[1]), "CONNECT's body").await;
            s.write_all(&raw::connack(0, false)).await.unwrap();
            // The connect callback's QoS 0 PUBLISH on "ready": the script is connected.
            let ready = read_n(&mut s, 9, "the 'ready' PUBLISH").await;
            assert_eq!(ready, raw::publish("ready", b"", 0, 0, false));
            s.write_all(&raw::publish("q", b"ping", 1, 7, false))
                .await
                .unwrap();
            let got = read_n(&mut s, 13, "the PUBACK and the reply").await;
            // Closing the connection ends the script (no autoreconnect).
            drop(s);
            got
        });
        let mut lua = Runtime::new().unwrap();
        lua.lua().globals().set("PORT", port).unwrap();
        lua.exec(SCRIPT, "batch").unwrap();
        timeout(WAIT, lua.run(), "the script to end").await.unwrap();
        let offline: bool = lua.lua().globals().get("offline").unwrap();
        assert!(offline, "the script saw 'offline'");
        let got = timeout(WAIT, broker, "the broker task").await.unwrap();
        let puback = raw::puback(7);
        let reply = raw::publish("r", b"pong", 0, 0, false);
        assert_eq!(got, [puback, reply].concat());
    });
    // CONNECT, "ready", then the PUBACK and the reply in one write of 13 bytes.
    let writes = trace.writes();
    assert_eq!(writes.len(), 3, "writes of the client: {writes:?}");
    assert_eq!(writes[2], 13, "writes of the client: {writes:?}");
}
