//! `tls.cert.verify` / `tls.cert.auth` (ESP8266) feed `connect(host, port, 1)`: verification
//! against a CA given as PEM or by a callback, client certificates for a broker that requires
//! them, and `verify(false)`; against a real mosquitto TLS listener.

mod run_support;

use run_support::run_src;
use tern_testkit::MosquittoConfig;

const CONNECT: &str = r#"
local m = mqtt.Client("tlscert-" .. arg[2], 60)
m:connect("127.0.0.1", tonumber(arg[1]), 1, function(c)
  print("connected")
  c:close()
end, function(c, reason) print("failed", reason) end)
"#;

fn read(path: &std::path::Path) -> String {
    std::fs::read_to_string(path).expect("TLS material")
}

/// A Lua long string holding `text`.
fn long(text: &str) -> String {
    format!("[==[{text}]==]")
}

#[test]
fn verify_with_a_pem_or_a_callback_and_auth_with_a_client_certificate() {
    let broker = MosquittoConfig::new()
        .tls()
        .require_certificate(true)
        .start();
    let m = broker.tls();
    let port = broker.tls_port().to_string();
    let ca = long(&read(&m.ca.cert_path));
    let auth = format!(
        "tls.cert.auth({} .. {})\n",
        long(&read(&m.client.key_path)),
        long(&read(&m.client.cert_path))
    );
    // CA as a string.
    let src = format!("tls.cert.verify({ca})\n{auth}{CONNECT}");
    run_src(&src, &[&port, "pem"])
        .assert_ok()
        .assert_lines(&["connected"]);
    // CA from a callback, asked for item 1, 2, ... until nil.
    let src =
        format!("tls.cert.verify(function(k) if k == 1 then return {ca} end end)\n{auth}{CONNECT}");
    run_src(&src, &[&port, "fn"])
        .assert_ok()
        .assert_lines(&["connected"]);
    // No client certificate: the broker refuses the handshake.
    let src = format!("tls.cert.verify({ca})\n{CONNECT}");
    let r = run_src(&src, &[&port, "noauth"]);
    r.assert_ok();
    assert_eq!(r.lines().len(), 1, "{r}");
    assert!(r.lines()[0].starts_with("failed\t"), "{r}");
}

#[test]
fn a_wrong_ca_fails_and_verify_false_connects_unverified() {
    let broker = MosquittoConfig::new().tls().start();
    let m = broker.tls();
    let port = broker.tls_port().to_string();
    let wrong = long(&read(&m.wrong_ca.cert_path));
    let r = run_src(
        &format!("tls.cert.verify({wrong})\n{CONNECT}"),
        &[&port, "wrong"],
    );
    r.assert_ok();
    assert_eq!(r.lines(), ["failed\t-6"], "{r}");
    run_src(
        &format!("tls.cert.verify(false)\n{CONNECT}"),
        &[&port, "off"],
    )
    .assert_ok()
    .assert_lines(&["connected"]);
}

#[test]
fn bad_arguments_use_the_devices_texts() {
    let r = run_src(
        "print(pcall(tls.cert.verify, 'not pem'))\ntls.cert.auth(42)\n",
        &[],
    );
    r.assert_code(1)
        .assert_lines(&["false\tbad argument #1 to 'verify' (no PEM block found)"]);
    assert!(
        r.stderr.contains(
            ":2: bad argument #1 to 'auth' (boolean, string or function expected, got number)"
        ),
        "{r}"
    );
}
