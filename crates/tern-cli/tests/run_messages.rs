//! Messages through mosquitto: QoS 0/1/2, binary payloads, empty payloads, retained
//! messages, large messages, `max_message_length` and `overflow`.

mod run_support;

use run_support::{command, run_src, script, spawn};
use tern_testkit::Mosquitto;

/// Subscribes a mosquitto_sub (printing "qos retain topic payload-hex") and waits for its
/// SUBACK, so nothing published afterwards is missed.
fn subscriber(broker: &Mosquitto, id: &str, topic: &str, count: u32) -> tern_testkit::RunningTool {
    let sub = broker
        .mosquitto_sub()
        .id(id)
        .topic(topic)
        .qos(2)
        .count(count)
        .arg("-F")
        .arg("%q %r %t %x")
        .spawn();
    broker.wait_for_log(&format!("Sending SUBACK to {id}"));
    sub
}

#[test]
fn qos_0_1_2_round_trip_with_a_callback_each() {
    let broker = Mosquitto::start_default();
    let mut watcher = subscriber(&broker, "watcher", "q/#", 3);
    let r = run_src(
        r#"
        local m = mqtt.Client("qos", 60)
        -- Close once all three messages and all three completions are in (closing earlier
        -- would abandon an unfinished QoS 2 exchange and its callback).
        local events = 0
        local function count(c)
          events = events + 1
          if events == 6 then c:close() end
        end
        m:on("message", function(c, topic, data)
          print("message " .. topic .. " " .. data)
          count(c)
        end)
        m:connect("127.0.0.1", tonumber(arg[1]), function(c)
          c:subscribe("q/#", 2, function(c)
            for qos = 0, 2 do
              assert(c:publish("q/" .. qos, "at " .. qos, qos, 0, function(c)
                print("published " .. qos)
                count(c)
              end))
            end
          end)
        end)
        "#,
        &[&broker.port().to_string()],
    );
    r.assert_ok();
    let mut lines = r.lines();
    lines.sort_unstable();
    assert_eq!(
        lines,
        [
            "message q/0 at 0",
            "message q/1 at 1",
            "message q/2 at 2",
            "published 0",
            "published 1",
            "published 2"
        ],
        "{r}"
    );
    // The reference client saw each message with the QoS it was published with.
    for qos in 0..3 {
        let hex: String = format!("at {qos}")
            .bytes()
            .map(|b| format!("{b:02x}"))
            .collect();
        watcher.wait_for_line(|l| l == format!("{qos} 0 q/{qos} {hex}"));
    }
}

#[test]
fn all_256_byte_values_round_trip_exactly() {
    let broker = Mosquitto::start_default();
    let mut watcher = subscriber(&broker, "watcher", "bin", 1);
    let r = run_src(
        r#"
        local bytes = {}
        for i = 0, 255 do bytes[#bytes + 1] = string.char(i) end
        local all = table.concat(bytes)
        local m = mqtt.Client("binary", 60)
        m:on("message", function(c, topic, data)
          print("length " .. #data)
          print("exact " .. tostring(data == all))
          c:close()
        end)
        m:connect("127.0.0.1", tonumber(arg[1]), function(c)
          c:subscribe("bin", 1, function(c) c:publish("bin", all, 1, 0) end)
        end)
        "#,
        &[&broker.port().to_string()],
    );
    r.assert_ok().assert_lines(&["length 256", "exact true"]);
    let hex: String = (0..=255u8).map(|b| format!("{b:02x}")).collect();
    watcher.wait_for_line(|l| l == format!("1 0 bin {hex}"));
}

#[test]
fn binary_payloads_from_another_client_arrive_exactly() {
    let broker = Mosquitto::start_default();
    let file = script(""); // a scratch path for the payload
    let payload: Vec<u8> = (0..=255u8).rev().collect();
    std::fs::write(&file, &payload).unwrap();
    let mut tern = spawn(command(
        &script(
            r#"
            local m = mqtt.Client("bin-sub", 60)
            m:on("message", function(c, topic, data)
              local hex = data:gsub(".", function(ch) return string.format("%02x", ch:byte()) end)
              print(#data .. " " .. hex)
              c:close()
            end)
            m:connect("127.0.0.1", tonumber(arg[1]), function(c)
              c:subscribe("from/pub", 0, function() print("subscribed") end)
            end)
            "#,
        ),
        &[&broker.port().to_string()],
    ));
    tern.wait_for_line("subscribed");
    broker
        .mosquitto_pub()
        .topic("from/pub")
        .arg("-f")
        .arg(&file)
        .run()
        .assert_success();
    let r = tern.finish();
    let hex: String = payload.iter().map(|b| format!("{b:02x}")).collect();
    r.assert_ok()
        .assert_lines(&["subscribed", &format!("256 {hex}")]);
}

#[test]
fn an_empty_payload_gives_nil_data() {
    let broker = Mosquitto::start_default();
    let r = run_src(
        r#"
        local m = mqtt.Client("empty", 60)
        m:on("message", function(...)
          local c, topic, data = ...
          print(select('#', ...), topic, tostring(data))
          c:close()
        end)
        m:connect("127.0.0.1", tonumber(arg[1]), function(c)
          c:subscribe("empty", 0, function(c) c:publish("empty", "", 0, 0) end)
        end)
        "#,
        &[&broker.port().to_string()],
    );
    r.assert_ok().assert_lines(&["2\tempty\tnil"]);
}

#[test]
fn retained_messages_reach_later_subscribers() {
    let broker = Mosquitto::start_default();
    let port = broker.port().to_string();
    run_src(
        r#"
        local m = mqtt.Client("retainer", 60)
        m:connect("127.0.0.1", tonumber(arg[1]), function(c)
          c:publish("kept/topic", "remember me", 1, 1, function(c)
            print("stored")
            c:close()
          end)
        end)
        "#,
        &[&port],
    )
    .assert_ok()
    .assert_lines(&["stored"]);
    run_src(
        r#"
        local m = mqtt.Client("latecomer", 60)
        m:on("message", function(c, topic, data)
          print(topic .. " " .. data)
          c:close()
        end)
        m:connect("127.0.0.1", tonumber(arg[1]), function(c) c:subscribe("kept/#", 1) end)
        "#,
        &[&port],
    )
    .assert_ok()
    .assert_lines(&["kept/topic remember me"]);
    let out = broker
        .mosquitto_sub()
        .topic("kept/topic")
        .count(1)
        .arg("-F")
        .arg("%r %p")
        .run();
    out.assert_success();
    assert_eq!(out.stdout.trim(), "1 remember me", "{out}");
}

#[test]
fn large_messages_arrive_whole() {
    let broker = Mosquitto::start_default();
    let r = run_src(
        r#"
        local big = string.rep("0123456789abcdef", 65536) -- 1 MiB
        local m = mqtt.Client("large", 60)
        m:on("message", function(c, topic, data)
          print(#data, data == big)
          c:close()
        end)
        m:connect("127.0.0.1", tonumber(arg[1]), function(c)
          c:subscribe("big", 1, function(c) c:publish("big", big, 1, 0) end)
        end)
        "#,
        &[&broker.port().to_string()],
    );
    r.assert_ok().assert_lines(&["1048576\ttrue"]);
}

#[test]
fn messages_over_max_message_length_go_to_overflow_truncated() {
    let broker = Mosquitto::start_default();
    let r = run_src(
        r#"
        -- 6th argument: max_message_length (ESP8266), counting the whole PUBLISH packet.
        local m = mqtt.Client("overflow", 60, nil, nil, 1, 100)
        local seen = 0
        local function done(c) seen = seen + 1 if seen == 2 then c:close() end end
        m:on("message", function(c, topic, data) print("message", topic, #data) done(c) end)
        m:on("overflow", function(c, topic, data)
          print("overflow", topic, #data, data == string.rep("x", #data))
          done(c)
        end)
        m:connect("127.0.0.1", tonumber(arg[1]), function(c)
          c:subscribe("o/#", 0, function(c)
            c:publish("o/small", string.rep("x", 50), 0, 0)
            c:publish("o/big", string.rep("x", 500), 0, 0)
          end)
        end)
        "#,
        &[&broker.port().to_string()],
    );
    // o/big at QoS 0: 1 + 2 length bytes + 2 + 5 topic + 500 = 510 bytes; 90 payload bytes fit.
    r.assert_ok()
        .assert_lines(&["message\to/small\t50", "overflow\to/big\t90\ttrue"]);
}
