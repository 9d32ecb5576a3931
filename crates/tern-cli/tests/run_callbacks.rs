//! Callback semantics: per-call completion callbacks, the ESP8266 `on()` events, connect
//! callbacks, `offline` after `close()`, what commands return in each state.

mod run_support;

use run_support::{run_src, server_runtime};
use tern_testkit::{Mosquitto, Script, ScriptedBroker};

#[test]
fn completion_callbacks_are_per_call_not_last_one_wins() {
    let broker = Mosquitto::start_default();
    let r = run_src(
        r#"
        local m = mqtt.Client("percall", 60)
        local subacks, pubacks, unsubacks = 0, 0, 0
        m:on("suback", function() subacks = subacks + 1 end)
        m:on("puback", function() pubacks = pubacks + 1 end)
        m:on("unsuback", function() unsubacks = unsubacks + 1 end)
        m:connect("127.0.0.1", tonumber(arg[1]), function(c)
          -- Several calls in a row, each with its own callback (the seed warns against this
          -- on the device, where the last callback would fire for all of them).
          for _, name in ipairs({"a", "b", "c"}) do
            c:subscribe("cb/" .. name, 1, function(client)
              assert(client == c)
              print("subscribed " .. name)
            end)
          end
          for i = 1, 3 do
            c:publish("cb/a", "m" .. i, 1, 0, function() print("published " .. i) end)
          end
          c:publish("cb/b", "no callback", 1, 0)
          c:unsubscribe({["cb/a"] = true, ["cb/b"] = true}, function() print("unsubscribed a b") end)
          c:unsubscribe("cb/c", function(client)
            print("unsubscribed c")
            print("on() counts", subacks, pubacks, unsubacks)
            client:close()
          end)
        end)
        "#,
        &[&broker.port().to_string()],
    );
    // Completions come in request order: SUBACKs, then PUBACKs, then UNSUBACKs. The
    // on() handlers fire after the per-call callback, so the last count is one short.
    r.assert_ok().assert_lines(&[
        "subscribed a",
        "subscribed b",
        "subscribed c",
        "published 1",
        "published 2",
        "published 3",
        "unsubscribed a b",
        "unsubscribed c",
        "on() counts\t3\t4\t1",
    ]);
}

#[test]
fn connect_callbacks_fire_once_then_the_on_handlers() {
    let broker = Mosquitto::start_default();
    let r = run_src(
        r#"
        local m = mqtt.Client("order", 60)
        local n = 0
        m:on("connect", function(c) print("on connect") end)
        m:on("offline", function(c)
          print("offline")
          n = n + 1
          if n < 2 then
            -- A second connect() without callbacks: the first call's one-shot callback
            -- must not fire again.
            c:connect("127.0.0.1", tonumber(arg[1]))
          end
        end)
        m:connect("127.0.0.1", tonumber(arg[1]), function(c) print("conn_cb") end)
        m:on("connect", function(c) print("on connect") c:close() end)
        "#,
        &[&broker.port().to_string()],
    );
    r.assert_ok()
        .assert_lines(&["conn_cb", "on connect", "offline", "on connect", "offline"]);
}

#[test]
fn offline_fires_after_close_and_commands_then_return_false() {
    let broker = Mosquitto::start_default();
    let r = run_src(
        r#"
        local m = mqtt.Client("closer", 60)
        m:on("offline", function(c)
          print("offline")
          print("publish", c:publish("t", "x", 0, 0))
          print("subscribe", c:subscribe("t", 0))
          print("unsubscribe", c:unsubscribe("t"))
          print("close", c:close())
        end)
        m:connect("127.0.0.1", tonumber(arg[1]), function(c)
          print("connected")
          print("close", c:close())
          print("publish after close", c:publish("t", "x", 0, 0))
        end)
        "#,
        &[&broker.port().to_string()],
    );
    r.assert_ok().assert_lines(&[
        "connected",
        "close\ttrue",
        "publish after close\tfalse",
        "offline",
        "publish\tfalse",
        "subscribe\tfalse",
        "unsubscribe\tfalse",
        "close\tfalse",
    ]);
}

#[test]
fn commands_issued_while_connecting_are_sent_after_connack() {
    let broker = Mosquitto::start_default();
    let r = run_src(
        r#"
        local m = mqtt.Client("early", 60)
        local pending = 2
        local function done(c) pending = pending - 1 if pending == 0 then c:close() end end
        m:on("message", function(c, topic, data) print(topic, data) done(c) end)
        print("connect", m:connect("127.0.0.1", tonumber(arg[1])))
        print("subscribe", m:subscribe("early", 1, function() print("suback") end))
        print("publish", m:publish("early", "bird", 1, 0, function(c) print("puback") done(c) end))
        "#,
        &[&broker.port().to_string()],
    );
    r.assert_ok();
    let lines = r.lines();
    assert_eq!(
        lines[..4],
        [
            "connect\ttrue",
            "subscribe\ttrue",
            "publish\ttrue",
            "suback"
        ],
        "{r}"
    );
    // The broker may forward the message before it acknowledges the publish.
    let mut rest = lines[4..].to_vec();
    rest.sort_unstable();
    assert_eq!(rest, ["early\tbird", "puback"], "{r}");
}

#[test]
fn connect_while_connected_is_an_error_on_esp8266() {
    let broker = Mosquitto::start_default();
    let r = run_support::run_src_with(
        &["--firmware", "esp8266"],
        r#"
        local m = mqtt.Client("twice", 60)
        m:connect("127.0.0.1", tonumber(arg[1]), function(c)
          local ok, err = pcall(c.connect, c, "127.0.0.1", tonumber(arg[1]))
          print(ok, (tostring(err):match("^[^\n]*")))
          c:close()
        end)
        print("connecting", (pcall(m.connect, m, "127.0.0.1", tonumber(arg[1]))))
        "#,
        &[&broker.port().to_string()],
    );
    r.assert_ok();
    let lines = r.lines();
    assert_eq!(lines[0], "connecting\tfalse", "{r}");
    assert_eq!(
        lines[1], "false\talready connected (call close() and wait for 'offline' first)",
        "{r}"
    );
}

#[test]
fn close_while_connecting_ends_the_attempt_quietly() {
    let rt = server_runtime();
    let broker = rt.block_on(ScriptedBroker::start(Script::never_answer()));
    let r = run_src(
        r#"
        local m = mqtt.Client("quitter", 60)
        m:on("offline", function() print("offline") end)
        m:on("connfail", function() print("connfail") end)
        m:connect("127.0.0.1", tonumber(arg[1]), function() print("connected") end,
          function() print("failed") end)
        print("close", m:close())
        "#,
        &[&broker.port().to_string()],
    );
    r.assert_ok().assert_lines(&["close\ttrue"]);
}

#[test]
fn a_connected_client_keeps_the_script_running_until_closed() {
    let broker = Mosquitto::start_default();
    let r = run_src(
        r#"
        local m = mqtt.Client("lingerer", 60)
        m:on("offline", function() print("offline at", tmr.now() >= 300000) end)
        m:connect("127.0.0.1", tonumber(arg[1]), function(c)
          print("connected")
          tmr.create():alarm(300, tmr.ALARM_SINGLE, function() c:close() end)
        end)
        "#,
        &[&broker.port().to_string()],
    );
    r.assert_ok()
        .assert_lines(&["connected", "offline at\ttrue"]);
}

#[test]
fn offline_fires_when_the_broker_goes_away() {
    let mut broker = Mosquitto::start_default();
    let mut tern = run_support::spawn(run_support::command(
        &run_support::script(
            r#"
            local m = mqtt.Client("abandoned", 60)
            m:on("offline", function() print("offline") end)
            m:connect("127.0.0.1", tonumber(arg[1]), function() print("connected") end)
            "#,
        ),
        &[&broker.port().to_string()],
    ));
    tern.wait_for_line("connected");
    broker.kill();
    let r = tern.finish();
    r.assert_ok().assert_lines(&["connected", "offline"]);
}
