//! The `mqtt` module's Lua surface, without a broker: constants, argument errors, return
//! values of a client that never connected.

mod common;

use common::{run_err, run_ok};

#[test]
fn all_eleven_reason_codes_have_the_seeds_values() {
    let out = run_ok(
        r#"
        for _, name in ipairs({
          "CONN_FAIL_SERVER_NOT_FOUND", "CONN_FAIL_NOT_A_CONNACK_MSG", "CONN_FAIL_DNS",
          "CONN_FAIL_TIMEOUT_RECEIVING", "CONN_FAIL_TIMEOUT_SENDING", "CONNACK_ACCEPTED",
          "CONNACK_REFUSED_PROTOCOL_VER", "CONNACK_REFUSED_ID_REJECTED",
          "CONNACK_REFUSED_SERVER_UNAVAILABLE", "CONNACK_REFUSED_BAD_USER_OR_PASS",
          "CONNACK_REFUSED_NOT_AUTHORIZED" }) do
          emit(name, mqtt[name])
        end
        "#,
    );
    let values: Vec<i32> = out
        .iter()
        .map(|l| l.rsplit(' ').next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(values, (-5..=5).collect::<Vec<_>>(), "{out:?}");
}

#[test]
fn a_client_that_never_connected_refuses_commands_with_false() {
    let out = run_ok(
        r#"
        local m = mqtt.Client("id", 120)
        emit("publish", m:publish("/t", "x", 0, 0))
        emit("subscribe", m:subscribe("/t", 0))
        emit("unsubscribe", m:unsubscribe("/t"))
        emit("close", m:close())
        emit("lwt", (m:lwt("/lwt", "offline", 1, 1)))
        emit("on", (m:on("message", function() end)))
        "#,
    );
    assert_eq!(
        out,
        [
            "publish false",
            "subscribe false",
            "unsubscribe false",
            "close false",
            "lwt nil",
            "on nil"
        ]
    );
}

#[test]
fn wrong_arguments_raise_errors_naming_function_and_argument() {
    let out = run_ok(
        r#"
        local m = mqtt.Client("id", 120)
        local function try(f, ...)
          local ok, e = pcall(f, m, ...)
          emit(ok, (tostring(e):match("^[^\n]*")))
        end
        try(m.publish, "/t", "x", 3, 0)
        try(m.publish, "/t/#", "x", 0, 0)
        try(m.publish, {}, "x", 0, 0)
        try(m.subscribe, "/t", 7)
        try(m.subscribe, {["/a"]=0}, "cb")
        try(m.unsubscribe, "a/#/b")
        try(m.on, "bogus", function() end)
        try(m.on, "message", 42)
        try(m.lwt, "/lwt")
        try(m.connect, "h", "port")
        "#,
    );
    let expected = [
        "false bad argument #3 to 'publish' (qos must be 0, 1 or 2)",
        "false bad argument #1 to 'publish' (invalid topic \"/t/#\": topic name contains wildcard '#' at byte 3 [MQTT-4.7.1-1])",
        "false bad argument #1 to 'publish' (string expected, got table)",
        "false bad argument #2 to 'subscribe' (qos must be 0, 1 or 2)",
        "false bad argument #2 to 'subscribe' (function expected, got string)",
        "false bad argument #1 to 'unsubscribe' (invalid topic filter",
        "false bad argument #1 to 'on' (unknown event 'bogus'; expected one of connect, connfail, offline, message, overflow, puback, suback, unsuback)",
        "false bad argument #2 to 'on' (function expected, got number)",
        "false bad argument #2 to 'lwt' (string expected, got no value)",
        "false bad argument #2 to 'connect' (number expected, got string)",
    ];
    assert_eq!(out.len(), expected.len(), "{out:#?}");
    for (got, want) in out.iter().zip(expected) {
        assert!(got.starts_with(want), "got {got:?}\nwant {want:?}");
    }
}

#[test]
fn an_uncaught_argument_error_ends_the_run_with_a_traceback() {
    let e = run_err(
        r#"
        local m = mqtt.Client("id", 120)
        local function deeper() m:publish("/t", "x", 3, 0) end
        deeper()
        "#,
    );
    assert!(
        e.contains("bad argument #3 to 'publish' (qos must be 0, 1 or 2)"),
        "{e}"
    );
    assert!(e.contains("stack traceback"), "{e}");
    assert!(e.contains("deeper"), "{e}");
}

#[test]
fn clients_that_are_not_connecting_are_collectable() {
    let out = run_ok(
        r#"
        local weak = setmetatable({}, {__mode = "v"})
        do
          local m = mqtt.Client("id", 120)
          m:on("message", function(c) return m end) -- a cycle through the callback
          weak[1] = m
        end
        collectgarbage("collect")
        collectgarbage("collect")
        emit("collected", weak[1] == nil)
        "#,
    );
    assert_eq!(out, ["collected true"]);
}

#[test]
fn tostring_names_the_object() {
    let out = run_ok(
        r#"
        emit((tostring(mqtt.Client("id", 1)):match("^mqtt.client: ")))
        emit((tostring(tmr.create()):match("^timer: ")))
        "#,
    );
    assert_eq!(out, ["mqtt.client: ", "timer: "]);
}
