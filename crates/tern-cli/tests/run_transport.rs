//! Host forms and `secure` values: URIs (`mqtt://`, `ws://`, `mqtts://`), TLS as a table, a
//! number or a boolean.

mod run_support;

use run_support::run_src;
use tern_testkit::MosquittoConfig;

/// Connects to arg[1] (optionally with port arg[2] and `secure` built from arg[3]/arg[4]),
/// publishes to itself, prints the message.
const ROUND_TRIP: &str = r#"
local host, port, secure_kind, ca_file = arg[1], tonumber(arg[2]), arg[3], arg[4]
local secure
if secure_kind == "table" then
  local f = assert(io.open(ca_file, "rb"))
  secure = { ca_cert = f:read("*a") }
  f:close()
elseif secure_kind == "true" then
  secure = true
elseif secure_kind == "1" then
  secure = 1
end
local m = mqtt.Client("transport", 60)
m:on("message", function(c, topic, data) print(topic .. " " .. data) c:close() end)
m:connect(host, port, secure, function(c)
  c:subscribe("via", 1, function(c) c:publish("via", "ok", 1, 0) end)
end, function(c, reason, message) print("failed " .. reason) io.stderr:write(message, "\n") end)
"#;

#[test]
fn mqtt_uri_with_the_short_callback_form() {
    let broker = MosquittoConfig::new().start();
    run_src(
        r#"
        local m = mqtt.Client("uri", 60)
        m:connect(arg[1], function(c) print("connected") c:close() end, function(c, r) print("failed", r) end)
        "#,
        &[&broker.url()],
    )
    .assert_ok()
    .assert_lines(&["connected"]);
}

#[test]
fn websocket_uri() {
    let broker = MosquittoConfig::new().websockets().start();
    run_src(ROUND_TRIP, &[&broker.ws_url()])
        .assert_ok()
        .assert_lines(&["via ok"]);
}

#[test]
fn mqtts_uri_with_a_ca_table() {
    let broker = MosquittoConfig::new().tls().start();
    let ca = broker.tls().ca.cert_path.to_string_lossy().into_owned();
    run_src(ROUND_TRIP, &[&broker.tls_url(), "", "table", &ca])
        .assert_ok()
        .assert_lines(&["via ok"]);
}

#[test]
fn secure_table_with_host_and_port() {
    let broker = MosquittoConfig::new().tls().start();
    let ca = broker.tls().ca.cert_path.to_string_lossy().into_owned();
    let port = broker.tls_port().to_string();
    run_src(ROUND_TRIP, &["localhost", &port, "table", &ca])
        .assert_ok()
        .assert_lines(&["via ok"]);
}

#[test]
fn secure_number_or_boolean_verifies_against_the_system_roots() {
    // The test CA is in no system store, so verification must fail: TLS was used and
    // verified, and a boolean `secure` did not derail the callback arguments.
    let broker = MosquittoConfig::new().tls().start();
    let port = broker.tls_port().to_string();
    for secure in ["1", "true"] {
        let r = run_src(ROUND_TRIP, &["localhost", &port, secure]);
        r.assert_ok().assert_lines(&["failed -6"]);
        assert!(
            r.stderr.contains("TLS") || r.stderr.contains("certificate"),
            "{r}"
        );
    }
}

#[test]
fn plain_connect_to_a_tls_port_fails() {
    let broker = MosquittoConfig::new().tls().start();
    let port = broker.tls_port().to_string();
    let r = run_src(ROUND_TRIP, &["127.0.0.1", &port, "0"]);
    r.assert_ok();
    assert_eq!(r.lines().len(), 1, "{r}");
    assert!(r.lines()[0].starts_with("failed "), "{r}");
}
