//! One tern client per Lua client object: with `cleansession = 0` an unacknowledged QoS 1
//! publish survives `offline` and `close()` and completes on the next `connect()`; with
//! `cleansession = 1` it is dropped.

mod run_support;

use run_support::{run_src, server_runtime};
use tern_proto::PacketType;
use tern_testkit::{Script, ScriptedBroker, raw};

/// Publishes once on the first connection; reconnects after each `offline` until the publish
/// is acknowledged (or, with clean session, a marker publish is).
/// Arguments: port cleansession(0/1) how(drop/close).
const RESUME: &str = r#"
local port, clean, how = tonumber(arg[1]), tonumber(arg[2]), arg[3]
local m = mqtt.Client("resumer", 60, nil, nil, clean)
local connects, done = 0, false
m:on("offline", function(c)
  print("offline")
  if not done then c:connect("127.0.0.1", port) end
end)
m:on("connect", function(c)
  connects = connects + 1
  print("connected " .. connects)
  if connects == 1 then
    c:publish("s/t", "survivor", 1, 0, function(c2)
      print("survivor acked")
      done = true
      c2:close()
    end)
    if how == "close" then c:close() end
  elseif clean == 1 then
    c:publish("s/t", "marker", 1, 0, function(c2)
      print("marker acked")
      done = true
      c2:close()
    end)
  end
end)
m:connect("127.0.0.1", port)
"#;

/// First connection: take the PUBLISH, never acknowledge it, then hang up (or wait for the
/// client's DISCONNECT).
fn unacked(hang_up: bool) -> Script {
    let s = Script::new()
        .expect_connect()
        .send_connack(0, false)
        .expect(PacketType::Publish);
    if hang_up {
        s.close()
    } else {
        s.read_until_closed()
    }
}

/// Second connection: acknowledge the first PUBLISH that arrives.
fn acks(session_present: bool) -> Script {
    Script::new()
        .expect_connect()
        .send_connack(0, session_present)
        .expect(PacketType::Publish)
        .respond(|p| raw::puback(p.packet_id().unwrap_or(0)))
        .read_until_closed()
}

fn payload_ends_with(p: &raw::RawPacket, tail: &[u8]) -> bool {
    p.body().ends_with(tail)
}

#[test]
fn an_unacked_publish_survives_offline_with_cleansession_0() {
    let rt = server_runtime();
    let broker = rt.block_on(ScriptedBroker::start_sequence(vec![
        unacked(true),
        acks(true),
    ]));
    let r = run_src(RESUME, &[&broker.port().to_string(), "0", "drop"]);
    r.assert_ok().assert_lines(&[
        "connected 1",
        "offline",
        "connected 2",
        "survivor acked",
        "offline",
    ]);
    let again = rt.block_on(async {
        broker
            .connection(1)
            .await
            .wait_for(PacketType::Publish)
            .await
    });
    assert!(payload_ends_with(&again, b"survivor"));
    assert_ne!(
        again.flags() & 0x08,
        0,
        "the resent PUBLISH carries DUP [MQTT-3.3.1-1]"
    );
}

#[test]
fn an_unacked_publish_survives_close_with_cleansession_0() {
    let rt = server_runtime();
    let broker = rt.block_on(ScriptedBroker::start_sequence(vec![
        unacked(false),
        acks(true),
    ]));
    let r = run_src(RESUME, &[&broker.port().to_string(), "0", "close"]);
    r.assert_ok().assert_lines(&[
        "connected 1",
        "offline",
        "connected 2",
        "survivor acked",
        "offline",
    ]);
}

#[test]
fn an_unacked_publish_is_dropped_with_cleansession_1() {
    let rt = server_runtime();
    let broker = rt.block_on(ScriptedBroker::start_sequence(vec![
        unacked(true),
        acks(false),
    ]));
    let r = run_src(RESUME, &[&broker.port().to_string(), "1", "drop"]);
    r.assert_ok().assert_lines(&[
        "connected 1",
        "offline",
        "connected 2",
        "marker acked",
        "offline",
    ]);
    let second = rt.block_on(async { broker.connection(1).await.wait_closed().await });
    let publishes: Vec<_> = second
        .iter()
        .filter(|p| p.packet_type() == Some(PacketType::Publish))
        .collect();
    assert_eq!(publishes.len(), 1, "only the marker: {second:?}");
    assert!(payload_ends_with(publishes[0], b"marker"));
}

#[test]
fn autoreconnect_comes_back_after_a_broker_restart() {
    let mut broker = tern_testkit::MosquittoConfig::new().start();
    let mut tern = run_support::spawn(run_support::command(
        &run_support::script(
            r#"
            local m = mqtt.Client("phoenix", 60)
            local connects = 0
            m:on("connect", function(c)
              connects = connects + 1
              print("on connect " .. connects)
              if connects == 2 then
                -- Subscriptions are restored after an automatic reconnection.
                c:publish("phoenix/t", "back", 1, 0)
              end
            end)
            m:on("message", function(c, topic, data) print(topic .. " " .. data) c:close() end)
            m:on("offline", function() print("offline") end)
            m:connect("127.0.0.1", tonumber(arg[1]), 0, 1, function(c)
              print("conn_cb")
              c:subscribe("phoenix/#", 1)
            end, function(c, reason) print("failed " .. reason) end)
            "#,
        ),
        &[&broker.port().to_string()],
    ));
    tern.wait_for_line("on connect 1");
    broker.stop();
    tern.wait_for_line("offline");
    broker.restart();
    tern.wait_for_line("on connect 2");
    let r = tern.finish();
    r.assert_ok().assert_lines(&[
        "conn_cb",
        "on connect 1",
        "offline",
        "on connect 2",
        "phoenix/t back",
        "offline",
    ]);
}
