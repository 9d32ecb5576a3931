//! Every connection-failure reason code reaches `fail_cb` (and `on("connfail")`), with a
//! message, and nothing fires after it: not `offline`, not the success callback.

mod run_support;

use run_support::{Run, run_src, server_runtime};
use tern_testkit::{Mosquitto, MosquittoConfig, Script, ScriptedBroker, closed_port};

/// Connects with the given host/port/credentials; prints what fired. Arguments:
/// host port [user password [connect-timeout-seconds [secure]]].
const CONNECT: &str = r#"
local host, port, user, pass, timeout = arg[1], tonumber(arg[2]), arg[3], arg[4], arg[5]
local secure = arg[6] == "1"
if user == "" then user = nil end
if pass == "" then pass = nil end
local m = mqtt.Client("failing", 60, user, pass)
if timeout then m:connecttimeout(tonumber(timeout)) end
m:on("connect", function() print("on connect") end)
m:on("offline", function() print("offline") end)
m:on("connfail", function(c, reason) print("on connfail " .. reason) end)
local started = m:connect(host, port, secure, function(c) print("connected") c:close() end,
  function(c, reason, message)
    assert(c == m, "fail_cb gets the client")
    print("failed reason: " .. reason)
    io.stderr:write("message: ", tostring(message), "\n")
  end)
print("started " .. tostring(started))
"#;

fn connect(host: &str, port: u16, extra: &[&str]) -> Run {
    let port = port.to_string();
    let mut args = vec![host, port.as_str()];
    args.extend_from_slice(extra);
    run_src(CONNECT, &args)
}

#[track_caller]
fn assert_failed(r: &Run, code: i32, message_part: &str) {
    let reason = format!("failed reason: {code}");
    let connfail = format!("on connfail {code}");
    r.assert_ok()
        .assert_lines(&["started true", reason.as_str(), connfail.as_str()]);
    assert!(
        r.stderr.contains("message: ") && r.stderr.contains(message_part),
        "message should mention {message_part:?}\n{r}"
    );
}

#[test]
fn closed_port_is_server_not_found() {
    let r = connect("127.0.0.1", closed_port(), &[]);
    assert_failed(&r, -5, "no broker listening");
}

#[test]
fn unresolvable_host_is_dns_failure() {
    let r = connect("nonexistent.invalid", 1883, &[]);
    assert_failed(&r, -3, "DNS");
}

#[test]
fn silent_broker_is_timeout_receiving() {
    let rt = server_runtime();
    let broker = rt.block_on(ScriptedBroker::start(Script::never_answer()));
    let r = connect("127.0.0.1", broker.port(), &["", "", "0.5"]);
    assert_failed(&r, -2, "CONNACK");
}

#[test]
fn a_stalled_tls_handshake_is_timeout_sending() {
    // The broker accepts TCP but never answers the TLS ClientHello: CONNECT cannot be sent.
    let rt = server_runtime();
    let broker = rt.block_on(ScriptedBroker::start(Script::never_answer()));
    let r = connect("127.0.0.1", broker.port(), &["", "", "0.5", "1"]);
    assert_failed(&r, -1, "CONNECT could not be sent");
}

#[test]
fn non_connack_reply_is_not_a_connack() {
    let rt = server_runtime();
    let broker = rt.block_on(ScriptedBroker::start(Script::non_connack_first()));
    let r = connect("127.0.0.1", broker.port(), &[]);
    assert_failed(&r, -4, "CONNACK");
}

#[test]
fn connack_refusals_pass_their_return_code() {
    let rt = server_runtime();
    for code in 1..=5u8 {
        let broker = rt.block_on(ScriptedBroker::start(Script::connack(code)));
        let r = connect("127.0.0.1", broker.port(), &[]);
        assert_failed(&r, i32::from(code), "refused");
    }
}

/// mosquitto 2.0 answers every authentication failure of a 3.1.1 client with CONNACK 5 (not
/// authorised), never 4 (bad user name or password); code 4 is covered by the scripted broker
/// in `connack_refusals_pass_their_return_code`.
#[test]
fn mosquitto_refuses_a_wrong_password() {
    let broker = MosquittoConfig::new()
        .allow_anonymous(false)
        .user("alice", "secret")
        .start();
    let r = connect("127.0.0.1", broker.port(), &["alice", "wrong"]);
    assert_failed(&r, 5, "not authorised");
}

#[test]
fn mosquitto_refuses_anonymous_clients_when_told_to() {
    let broker = MosquittoConfig::new()
        .allow_anonymous(false)
        .user("alice", "secret")
        .start();
    let r = connect("127.0.0.1", broker.port(), &[]);
    assert_failed(&r, 5, "refused");
}

#[test]
fn mosquitto_accepts_the_right_password() {
    let broker = MosquittoConfig::new()
        .allow_anonymous(false)
        .user("alice", "secret")
        .start();
    let r = connect("127.0.0.1", broker.port(), &["alice", "secret"]);
    r.assert_ok()
        .assert_lines(&["started true", "connected", "on connect", "offline"]);
}

#[test]
fn a_failed_attempt_can_be_retried_on_the_same_client() {
    let port = closed_port();
    let broker = Mosquitto::start_default();
    let r = run_src(
        r#"
        local m = mqtt.Client("retry", 60)
        m:connect("127.0.0.1", tonumber(arg[1]), function() print("unexpected") end,
          function(c, reason)
            print("failed " .. reason)
            c:connect("127.0.0.1", tonumber(arg[2]), function(c2)
              print("connected")
              c2:close()
            end)
          end)
        "#,
        &[&port.to_string(), &broker.port().to_string()],
    );
    r.assert_ok().assert_lines(&["failed -5", "connected"]);
}
