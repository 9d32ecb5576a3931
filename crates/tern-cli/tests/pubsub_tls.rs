//! TLS flags: `--cafile`, mutual TLS with `--cert`/`--key`, a wrong CA failing with a clear
//! certificate error, `--insecure`, and `-L mqtts://`.

mod pubsub_support;

use pubsub_support::*;

fn tls_args(broker: &Mosquitto, ca: &std::path::Path, extra: &[&str]) -> Vec<String> {
    let mut v = vec![
        "-h".to_owned(),
        "127.0.0.1".to_owned(),
        "-p".to_owned(),
        broker.tls_port().to_string(),
        "--cafile".to_owned(),
        ca.display().to_string(),
    ];
    v.extend(extra.iter().map(|s| (*s).to_owned()));
    v
}

#[test]
fn cafile_round_trip() {
    let broker = MosquittoConfig::new().tls().start();
    let ca = &broker.tls().ca.cert_path;
    let sub = subscribed(
        &broker,
        "tls-sub",
        tls_args(&broker, ca, &["-t", "s", "-C", "1"]),
    );
    let mut cmd = tern(["pub"]);
    cmd.args(tls_args(
        &broker,
        ca,
        &["-t", "s", "-m", "secret", "-q", "1"],
    ));
    run(cmd).assert_code(0);
    assert_eq!(sub.wait().assert_code(0).text(), "secret\n");
}

#[test]
fn mutual_tls_with_client_certificate() {
    let broker = MosquittoConfig::new().require_certificate(true).start();
    let m = broker.tls();
    let cert = m.client.cert_path.display().to_string();
    let key = m.client.key_path.display().to_string();
    let sub = subscribed(
        &broker,
        "mtls-sub",
        tls_args(
            &broker,
            &m.ca.cert_path,
            &["--cert", &cert, "--key", &key, "-t", "s", "-C", "1"],
        ),
    );
    let mut cmd = tern(["pub"]);
    cmd.args(tls_args(
        &broker,
        &m.ca.cert_path,
        &["--cert", &cert, "--key", &key, "-t", "s", "-m", "mutual"],
    ));
    run(cmd).assert_code(0);
    assert_eq!(sub.wait().assert_code(0).text(), "mutual\n");
    // Without a client certificate the broker ends the handshake.
    let mut cmd = tern(["pub"]);
    cmd.args(tls_args(&broker, &m.ca.cert_path, &["-t", "s", "-m", "x"]));
    let out = run(cmd);
    out.assert_code(3);
    assert!(out.stderr.starts_with("Connection error: "), "{out}");
}

#[test]
fn wrong_ca_fails_with_a_certificate_error() {
    let broker = MosquittoConfig::new().tls().start();
    let wrong = &broker.tls().wrong_ca.cert_path;
    let mut cmd = tern(["pub"]);
    cmd.args(tls_args(&broker, wrong, &["-t", "s", "-m", "x"]));
    let out = run(cmd);
    out.assert_code(3);
    let err = out.stderr.to_lowercase();
    assert!(err.contains("tls") && err.contains("certificate"), "{out}");
    assert!(out.stderr.trim_end().ends_with("(-6)"), "{out}");
}

#[test]
fn insecure_still_verifies_the_chain() {
    // mosquitto's --insecure skips only the host-name check (tested in the library's TLS
    // tests with a mismatching server name): an untrusted CA still fails.
    let broker = MosquittoConfig::new().tls().start();
    let ca = &broker.tls().ca.cert_path;
    let mut ok = tern(["pub"]);
    ok.args(tls_args(&broker, ca, &["--insecure", "-t", "s", "-m", "x"]));
    run(ok).assert_code(0);
    let wrong = &broker.tls().wrong_ca.cert_path;
    let mut cmd = tern(["pub"]);
    cmd.args(tls_args(
        &broker,
        wrong,
        &["--insecure", "-t", "s", "-m", "x"],
    ));
    run(cmd).assert_code(3);
}

#[test]
fn mqtts_url_with_cafile() {
    let broker = MosquittoConfig::new().tls().start();
    let ca = broker.tls().ca.cert_path.display().to_string();
    let url = format!("mqtts://localhost:{}/u/t", broker.tls_port());
    let sub = subscribed(
        &broker,
        "url-tls",
        ["-L", &url, "--cafile", &ca, "-C", "1", "-v"],
    );
    run(tern(["pub", "-L", &url, "--cafile", &ca, "-m", "over tls"])).assert_code(0);
    assert_eq!(sub.wait().assert_code(0).text(), "u/t over tls\n");
}

#[test]
fn missing_cafile_is_an_input_error() {
    let out = run(tern([
        "pub",
        "-t",
        "t",
        "-m",
        "x",
        "--cafile",
        "/nonexistent/ca.pem",
    ]));
    out.assert_code(1);
    assert!(out.stderr.contains("/nonexistent/ca.pem"), "{out}");
}
