//! What a `message` callback publishes leaves in the same write as the PUBACK of that
//! message, as with the async API: the loop takes client events itself, so the driver's turn
//! for the application before it writes is the script's turn. A real broker cannot tell
//! writes apart, so a raw TCP listener plays the broker and the driver's `wrote` trace events
//! give the size of every write.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::time::Duration;

use tern_lua::Runtime;
use tern_testkit::DriverTrace;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const WAIT: Duration = Duration::from_secs(10);

/// Reads exactly `n` bytes, failing the test after [`WAIT`].
async fn read_n(s: &mut TcpStream, n: usize, what: &str) -> Vec<u8> {
    let mut buf = vec![0u8; n];
    tokio::time::timeout(WAIT, s.read_exact(&mut buf))
        .await
        .unwrap_or_else(|_| panic!("timed out after {WAIT:?} waiting for {what}"))
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
            s.write_all(&[0x20, 0x02, 0x00, 0x00]).await.unwrap();
            // The connect callback's QoS 0 PUBLISH on "ready": the script is connected.
            let ready = read_n(&mut s, 9, "the 'ready' PUBLISH").await;
            assert_eq!(ready, [&[0x30, 0x07, 0x00, 0x05][..], b"ready"].concat());
            // A QoS 1 PUBLISH "ping" on "q", packet id 7.
            s.write_all(&[
                0x32, 0x09, 0x00, 0x01, b'q', 0x00, 0x07, b'p', b'i', b'n', b'g',
            ])
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
        tokio::time::timeout(WAIT, lua.run())
            .await
            .expect("the script did not end within 10 s")
            .unwrap();
        let offline: bool = lua.lua().globals().get("offline").unwrap();
        assert!(offline, "the script saw 'offline'");
        let got = tokio::time::timeout(WAIT, broker).await.unwrap().unwrap();
        let puback = [0x40, 0x02, 0x00, 0x07];
        let reply = [0x30, 0x07, 0x00, 0x01, b'r', b'p', b'o', b'n', b'g'];
        assert_eq!(got, [&puback[..], &reply[..]].concat());
    });
    // CONNECT, "ready", then the PUBACK and the reply in one write of 13 bytes.
    let writes = trace.writes();
    assert_eq!(writes.len(), 3, "writes of the client: {writes:?}");
    assert_eq!(writes[2], 13, "writes of the client: {writes:?}");
}
