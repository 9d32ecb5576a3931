//! `tern run`: commands leave in the order the script made them (issue 16, point 2), so the
//! broker delivers back exactly what a NodeMCU board would get.

mod run_support;

use run_support::run_src;
use tern_testkit::Mosquitto;

#[test]
fn subscribe_publish_unsubscribe_publish_delivers_the_first_publish_only() {
    let broker = Mosquitto::start_default();
    // Issued back to back in the connect callback. Once the last publish is acknowledged,
    // subscribe again and publish a sentinel: anything the four calls made the broker
    // deliver arrives before it.
    let r = run_src(
        r#"
        local t = "order/a"
        local m = mqtt.Client("order-a", 60)
        m:on("message", function(c, topic, data)
          print(data)
          if data == "end" then c:close() end
        end)
        m:connect("127.0.0.1", tonumber(arg[1]), function(c)
          c:subscribe(t, 1)
          c:publish(t, "a", 1, 0)
          c:unsubscribe(t)
          c:publish(t, "b", 1, 0, function(c)
            c:subscribe(t, 1, function(c)
              c:publish(t, "end", 1, 0)
            end)
          end)
        end)
        "#,
        &[&broker.port().to_string()],
    );
    r.assert_ok().assert_lines(&["a", "end"]);
}

#[test]
fn publish_before_subscribe_is_not_delivered_only_the_one_after() {
    let broker = Mosquitto::start_default();
    // Issued before CONNACK (the commands wait in the queue together), retain off.
    let r = run_src(
        r#"
        local t = "order/b"
        local m = mqtt.Client("order-b", 60)
        m:on("message", function(c, topic, data)
          print(data)
          if data == "end" then c:close() end
        end)
        m:connect("127.0.0.1", tonumber(arg[1]))
        m:publish(t, "before", 1, 0)
        m:subscribe(t, 1)
        m:publish(t, "after", 1, 0, function(c)
          c:publish(t, "end", 1, 0)
        end)
        "#,
        &[&broker.port().to_string()],
    );
    r.assert_ok().assert_lines(&["after", "end"]);
}

/// `m:manualack(true)` / `m:ack()` (tern extension): a message the script never acked is
/// delivered again in the next session; once acked, it is not.
#[test]
fn manual_ack_redelivers_until_the_script_acks() {
    let broker = Mosquitto::start_default();
    let port = broker.port().to_string();
    // cleansession 0; subscribe, then leave so the next message waits in the session.
    let setup = run_src(
        r#"
        local m = mqtt.Client("manual", 60, nil, nil, 0)
        m:connect("127.0.0.1", tonumber(arg[1]), function(c)
          c:subscribe("manual/t", 1, function(c) c:close() end)
        end)
        "#,
        &[&port],
    );
    setup.assert_ok();
    let publish = run_src(
        r#"
        local m = mqtt.Client("manual-pub", 60)
        m:connect("127.0.0.1", tonumber(arg[1]), function(c)
          c:publish("manual/t", "keep me", 1, 0, function(c) c:close() end)
        end)
        "#,
        &[&port],
    );
    publish.assert_ok();
    // arg[2] == "ack": ack every message; otherwise ack none. arg[3]: this session's
    // sentinel, published after connecting: everything older arrives before it.
    let session = r#"
        local m = mqtt.Client("manual", 60, nil, nil, 0)
        m:manualack(true)
        m:on("message", function(c, topic, data)
          print(data)
          if arg[2] == "ack" then assert(c:ack()) end
          if data == arg[3] then c:close() end
        end)
        m:connect("127.0.0.1", tonumber(arg[1]), function(c)
          c:publish("manual/t", arg[3], 1, 0)
        end)
        "#;
    run_src(session, &[&port, "keep", "end-1"])
        .assert_ok()
        .assert_lines(&["keep me", "end-1"]);
    // Not acked: delivered again, with the first session's sentinel.
    run_src(session, &[&port, "ack", "end-2"])
        .assert_ok()
        .assert_lines(&["keep me", "end-1", "end-2"]);
    // Acked: gone.
    run_src(session, &[&port, "ack", "end-3"])
        .assert_ok()
        .assert_lines(&["end-3"]);
}
