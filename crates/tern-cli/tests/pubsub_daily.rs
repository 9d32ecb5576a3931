//! Daily use of `tern pub` / `tern sub` (issue 21): Unix sockets, SOCKS5 proxies, the `-d`
//! trace, errors a person understands, closed pipes, defaults files, completions and man
//! pages, and the flags mosquitto_pub/sub 2.0 have. Against real mosquitto brokers.

mod pubsub_support;

use std::process::{Command, Stdio};

use pubsub_support::*;
use tern_testkit::{SocksProxy, SocksRequest, closed_port};

fn at(broker: &Mosquitto) -> Vec<String> {
    pubsub_support::at(broker)
}

fn args(base: Vec<String>, more: &[&str]) -> Vec<String> {
    // `base` is `-h 127.0.0.1 -p N`.
    let mut v = base;
    v.extend(more.iter().map(|s| (*s).to_owned()));
    v
}

#[test]
fn pub_and_sub_over_a_unix_socket() {
    let broker = MosquittoConfig::new().unix_socket().start();
    let sock = broker.unix_path().to_str().expect("utf-8 path").to_owned();
    let sub = subscribed(
        &broker,
        "unix-sub",
        ["--unix", &sock, "-t", "u", "-C", "1", "-v"],
    );
    run(tern([
        "pub",
        "--unix",
        &sock,
        "-t",
        "u",
        "-m",
        "via socket",
        "-q",
        "1",
    ]))
    .assert_code(0);
    assert_eq!(sub.wait().assert_code(0).text(), "u via socket\n");
    // Nothing at the path: a clear connect failure naming it, not a hang.
    let out = run(tern([
        "pub",
        "--unix",
        "/nonexistent/tern.sock",
        "-t",
        "u",
        "-n",
    ]));
    out.assert_code(3);
    assert!(out.stderr.contains("/nonexistent/tern.sock"), "{out}");
}

#[test]
fn tern_run_connects_to_a_unix_uri() {
    let broker = MosquittoConfig::new().unix_socket().start();
    let dir = tempfile::tempdir().expect("tempdir");
    let script = dir.path().join("unix.lua");
    let uri = format!("unix://{}", broker.unix_path().display());
    std::fs::write(
        &script,
        format!(
            r#"local m = mqtt.Client("lua-unix", 10)
m:connect("{uri}", function(c)
  print("connected")
  c:close()
end, function(c, reason)
  print("failed " .. tostring(reason))
end)
"#
        ),
    )
    .expect("write script");
    let out = run(tern([
        "run",
        "--timeout",
        "20",
        script.to_str().expect("utf-8"),
    ]));
    assert_eq!(out.text(), "connected\n", "{out}");
}

#[test]
fn socks5h_sends_the_name_to_the_proxy_and_authenticates() {
    let broker = MosquittoConfig::new().start();
    let proxy = SocksProxy::with_credentials("proxyuser", "proxy-s3cret");
    let url = proxy.url("socks5h", Some(("proxyuser", "proxy-s3cret")));
    let port = broker.port().to_string();
    let sub = subscribed(
        &broker,
        "socks-sub",
        [
            "--proxy",
            &url,
            "-h",
            "localhost",
            "-p",
            &port,
            "-t",
            "s",
            "-C",
            "1",
        ],
    );
    run(tern([
        "pub",
        "--proxy",
        &url,
        "-h",
        "localhost",
        "-p",
        &port,
        "-t",
        "s",
        "-m",
        "proxied",
        "-q",
        "2",
    ]))
    .assert_code(0);
    assert_eq!(sub.wait().assert_code(0).text(), "proxied\n");
    let requests = proxy.requests();
    assert_eq!(requests.len(), 2, "{requests:?}");
    for r in &requests {
        // socks5h: the proxy resolves the broker's name, tern sends it as a name.
        assert_eq!(r, &SocksRequest::Name("localhost".into(), broker.port()));
    }

    // socks5: tern resolves the name and sends an address.
    let plain = SocksProxy::start();
    run(tern([
        "pub",
        "--proxy",
        &plain.url("socks5", None),
        "-h",
        "localhost",
        "-p",
        &port,
        "-t",
        "s",
        "-n",
    ]))
    .assert_code(0);
    assert!(
        matches!(plain.requests().as_slice(), [SocksRequest::Addr(a)] if a.ip().is_loopback()),
        "{:?}",
        plain.requests()
    );

    // A wrong password: exit 3, the proxy named, the password nowhere.
    let bad = proxy.url("socks5h", Some(("proxyuser", "wrong-pw-xyz")));
    let out = run(tern([
        "pub",
        "--proxy",
        &bad,
        "-h",
        "localhost",
        "-p",
        &port,
        "-t",
        "s",
        "-n",
    ]));
    out.assert_code(3);
    assert!(
        out.stderr.contains("refused the user name and password"),
        "{out}"
    );
    assert!(!out.stderr.contains("wrong-pw-xyz"), "{out}");
    assert_eq!(proxy.auth_failures(), 1);
}

#[test]
fn debug_trace_shows_steps_and_a_whole_qos2_flow_without_the_password() {
    let broker = MosquittoConfig::new()
        .user("alice", "hunter2-pw")
        .allow_anonymous(false)
        .start();
    let argv = args(
        at(&broker),
        &[
            "-d",
            "-i",
            "dbg2",
            "-u",
            "alice",
            "-P",
            "hunter2-pw",
            "-t",
            "q2",
            "-m",
            "traced",
            "-q",
            "2",
        ],
    );
    let out = run(tern(std::iter::once("pub".to_owned()).chain(argv)));
    out.assert_code(0);
    let expected = [
        "Client dbg2 TCP connected to 127.0.0.1:",
        "Client dbg2 sending CONNECT (id 'dbg2', MQTT 3.1.1, clean session 1, keepalive 60, user 'alice', password (hidden))",
        "Client dbg2 received CONNACK (session present 0, return code 0",
        "Client dbg2 sending PUBLISH (d0, q2, r0, m1, 'q2', ... (6 bytes))",
        "Client dbg2 received PUBREC (m1)",
        "Client dbg2 sending PUBREL (m1)",
        "Client dbg2 received PUBCOMP (m1)",
        "Client dbg2 sending DISCONNECT",
    ];
    let lines: Vec<&str> = out.stderr.lines().collect();
    let mut at_line = 0;
    for want in expected {
        let found = lines[at_line..].iter().position(|l| l.starts_with(want));
        let Some(i) = found else {
            panic!("missing (in order) {want:?}:\n{out}");
        };
        at_line += i + 1;
    }
    assert!(
        !out.stderr.contains("hunter2-pw"),
        "password in the trace:\n{out}"
    );

    // Refused TCP: the failure is traced, no CONNECT is.
    let port = closed_port().to_string();
    let out = run(tern([
        "pub",
        "-d",
        "-h",
        "127.0.0.1",
        "-p",
        &port,
        "-t",
        "t",
        "-n",
    ]));
    out.assert_code(3);
    assert!(out.stderr.contains("TCP connection to 127.0.0.1:"), "{out}");
    assert!(!out.stderr.contains("sending CONNECT"), "{out}");
}

#[test]
fn a_closed_stderr_pipe_exits_quietly() {
    let broker = MosquittoConfig::new().start();
    let script = format!(
        "{} pub -d -h 127.0.0.1 -p {} -t t -m x -q 1 --repeat 50 2>&1 | head -1; \
         echo \"status=${{PIPESTATUS[0]}}\"",
        env!("CARGO_BIN_EXE_tern"),
        broker.port()
    );
    let mut bash = Command::new("bash");
    bash.args(["-c", &script]).stdin(Stdio::null());
    let out = run(bash);
    let text = out.text();
    assert!(text.ends_with("status=0\n"), "{out}");
    assert!(!text.contains("panicked"), "{out}");
}

#[test]
fn plain_mqtt_to_a_tls_port_suggests_tls() {
    let broker = MosquittoConfig::new().tls().start();
    let port = broker.tls_port().to_string();
    let out = run(tern([
        "pub",
        "-h",
        "127.0.0.1",
        "-p",
        &port,
        "-t",
        "t",
        "-m",
        "x",
    ]));
    out.assert_code(3);
    assert!(out.stderr.contains("TLS"), "{out}");
    assert!(!out.stderr.contains("no broker listening"), "{out}");
}

/// openssl's `x509 -req` without extensions makes X.509 v1 certificates, which rustls
/// refuses: the error says whose certificate, what is wrong and how to make one that works.
#[test]
fn a_version_1_broker_certificate_is_explained() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let openssl = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(d)
            .output()
            .unwrap_or_else(|e| panic!("openssl is needed for this test: {e}"));
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
        "-subj",
        "/CN=test-ca",
        "-days",
        "2",
    ]);
    openssl(&[
        "req",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=127.0.0.1",
    ]);
    openssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.crt",
        "-days",
        "2",
    ]);
    // mosquitto (OpenSSL) serves a v1 certificate happily.
    let port = tern_testkit::free_port();
    let broker = MosquittoConfig::new()
        .line(String::new())
        .line(format!("listener {port} 127.0.0.1"))
        .line(format!("cafile {}", d.join("ca.crt").display()))
        .line(format!("certfile {}", d.join("server.crt").display()))
        .line(format!("keyfile {}", d.join("server.key").display()))
        .start();
    let port = port.to_string();
    let ca = d.join("ca.crt");
    let ca = ca.to_str().expect("utf-8");
    for extra in [&[][..], &["--insecure"][..]] {
        let mut argv = vec![
            "pub",
            "-h",
            "127.0.0.1",
            "-p",
            &port,
            "--cafile",
            ca,
            "-t",
            "t",
            "-n",
        ];
        argv.extend(extra);
        let out = run(tern(&argv));
        out.assert_code(3);
        for needle in [
            "the broker's certificate",
            "X.509 version 1",
            "-extfile",
            "subjectAltName=IP:127.0.0.1",
        ] {
            assert!(out.stderr.contains(needle), "{needle:?} missing:\n{out}");
        }
        assert!(
            !out.stderr.contains("Other("),
            "a Rust debug format:\n{out}"
        );
    }
    drop(broker);
}

#[test]
fn help_completions_and_man_pages_come_from_the_flag_table() {
    let out = run(tern(["help", "pub"]));
    out.assert_code(0);
    assert!(out.text().contains("--repeat-delay"), "{out}");
    assert!(
        out.text()
            .starts_with(&format!("tern {} pub", env!("CARGO_PKG_VERSION"))),
        "{out}"
    );
    let sub_help = run(tern(["sub", "--help"])).text();
    assert!(!sub_help.contains("always 0"), "{sub_help}");
    assert!(
        sub_help.contains("%m") && sub_help.contains("(0 at QoS 0)"),
        "{sub_help}"
    );

    let bash = run(tern(["completions", "bash"]));
    bash.assert_code(0);
    for flag in ["--remove-retained", "--proxy", "--unix", "--cafile"] {
        assert!(bash.text().contains(flag), "bash completion lacks {flag}");
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("tern.bash");
    std::fs::write(&file, &bash.stdout).expect("write");
    let syntax = Command::new("bash")
        .arg("-n")
        .arg(&file)
        .output()
        .expect("bash");
    assert!(
        syntax.status.success(),
        "{}",
        String::from_utf8_lossy(&syntax.stderr)
    );
    for shell in ["zsh", "fish"] {
        let out = run(tern(["completions", shell]));
        out.assert_code(0);
        assert!(out.text().contains("remove-retained"), "{shell}: {out}");
    }
    run(tern(["completions", "tcsh"])).assert_code(2);

    let man = run(tern(["man", "sub"]));
    man.assert_code(0);
    assert!(man.text().starts_with(".TH TERN-SUB 1"), "{man}");
    assert!(man.text().contains("remove\\-retained"), "{man}");
    run(tern(["man", "all", dir.path().to_str().expect("utf-8")])).assert_code(0);
    assert!(dir.path().join("tern-pub.1").is_file());
}

#[test]
fn defaults_files_are_read_and_terns_own_take_precedence() {
    let broker = MosquittoConfig::new().start();
    let config = tempfile::tempdir().expect("tempdir");
    let write =
        |name: &str, text: String| std::fs::write(config.path().join(name), text).expect("write");
    write(
        "mosquitto_sub",
        format!("# mosquitto's\n-h 127.0.0.1\n-p {}\n-v\n", broker.port()),
    );
    let mut sub = tern(["sub", "-i", "dflt-sub", "-t", "d", "-C", "1"]);
    sub.env("XDG_CONFIG_HOME", config.path());
    let sub = spawn(sub, None);
    broker.wait_for_log("Sending SUBACK to dflt-sub");
    // tern_pub wins over mosquitto_pub (which names a closed port).
    write(
        "mosquitto_pub",
        format!("-h 127.0.0.1\n-p {}\n", closed_port()),
    );
    write(
        "tern_pub",
        format!("-h 127.0.0.1\n-p {}\n-t d\n", broker.port()),
    );
    let mut publ = tern(["pub", "-m", "from defaults"]);
    publ.env("XDG_CONFIG_HOME", config.path());
    run(publ).assert_code(0);
    assert_eq!(sub.wait().assert_code(0).text(), "d from defaults\n");
}

#[test]
fn remove_retained_payload_size_and_options_files() {
    let broker = MosquittoConfig::new().start();
    let cmd = |sub: &str, more: &[&str]| {
        let mut c = tern([sub]);
        c.args(at(&broker)).args(more);
        c
    };
    // -o: options from a file, where it stands.
    let dir = tempfile::tempdir().expect("tempdir");
    let opts = dir.path().join("opts");
    std::fs::write(&opts, "-t keep/me\n-r\n").expect("write");
    let opts = opts.to_str().expect("utf-8");
    run(cmd("pub", &["-o", opts, "-m", "old"])).assert_code(0);
    let out = run(cmd(
        "sub",
        &["-t", "keep/#", "--remove-retained", "-C", "1", "-v"],
    ));
    assert_eq!(out.assert_code(0).text(), "keep/me old\n");
    // Gone: nothing retained any more, so --retained-only waits until -W.
    let out = run(cmd("sub", &["-t", "keep/#", "--retained-only", "-W", "1"]));
    out.assert_code(27);
    assert_eq!(out.text(), "");

    let mut sub_args = at(&broker);
    sub_args.extend(["-t", "r", "-C", "2", "-F", "%l"].map(String::from));
    let sub = subscribed(&broker, "size-sub", sub_args);
    let sizes = [
        "-t",
        "r",
        "--payload-size",
        "1000",
        "--repeat",
        "2",
        "-q",
        "1",
    ];
    run(cmd("pub", &sizes)).assert_code(0);
    assert_eq!(sub.wait().assert_code(0).text(), "1000\n1000\n");
}

#[test]
fn connect_timeout_and_refused_flags() {
    // A listener that never answers: --connect-timeout bounds the wait.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = silent.local_addr().expect("addr").port().to_string();
    let started = std::time::Instant::now();
    let out = run(tern([
        "pub",
        "-h",
        "127.0.0.1",
        "-p",
        &port,
        "--connect-timeout",
        "0.5",
        "-t",
        "t",
        "-n",
    ]));
    out.assert_code(3);
    assert!(out.stderr.contains("(-2)"), "{out}");
    assert!(started.elapsed() < WAIT, "{out}");

    let out = run(tern([
        "sub",
        "-t",
        "t",
        "--psk",
        "deadbeef",
        "--psk-identity",
        "me",
    ]));
    out.assert_code(2);
    assert!(out.stderr.contains("rustls"), "{out}");
    let out = run(tern(["pub", "-t", "t", "-n", "-c", "-i", ""]));
    out.assert_code(2);
    assert!(out.stderr.contains("empty client id"), "{out}");
}

#[test]
fn tls_version_alpn_bind_address_and_pretty_json() {
    let broker = MosquittoConfig::new().tls().start();
    let ca = broker
        .tls()
        .ca
        .cert_path
        .to_str()
        .expect("utf-8")
        .to_owned();
    let tls_port = broker.tls_port().to_string();
    let plain_port = broker.port().to_string();
    for version in ["tlsv1.2", "tlsv1.3"] {
        let out = run(tern([
            "pub",
            "-h",
            "127.0.0.1",
            "-p",
            &tls_port,
            "--cafile",
            &ca,
            "--tls-version",
            version,
            "--tls-alpn",
            "mqtt",
            "-d",
            "-t",
            "v",
            "-n",
        ]));
        out.assert_code(0);
        // The trace names the version negotiated.
        let want = if version == "tlsv1.2" {
            "TLSv1_2"
        } else {
            "TLSv1_3"
        };
        assert!(out.stderr.contains(want), "{version}: {out}");
        assert!(out.stderr.contains("broker certificate subject"), "{out}");
    }
    // -A: connect from a given local address; an IPv6 one cannot reach an IPv4 broker.
    let out = run(tern([
        "pub",
        "-A",
        "127.0.0.1",
        "-h",
        "127.0.0.1",
        "-p",
        &plain_port,
        "-t",
        "a",
        "-n",
    ]));
    out.assert_code(0);
    let out = run(tern([
        "pub",
        "-A",
        "::1",
        "-h",
        "127.0.0.1",
        "-p",
        &plain_port,
        "-t",
        "a",
        "-n",
    ]));
    out.assert_code(3);
    assert!(out.stderr.contains("::1"), "{out}");
    // --pretty: indented JSON as mosquitto_sub's cJSON_Print (tabs), keys in its order.
    let sub = subscribed(
        &broker,
        "pretty-sub",
        [
            "-h",
            "127.0.0.1",
            "-p",
            &plain_port,
            "-t",
            "j",
            "-C",
            "1",
            "-F",
            "%J",
            "--pretty",
        ],
    );
    run(tern([
        "pub",
        "-h",
        "127.0.0.1",
        "-p",
        &plain_port,
        "-t",
        "j",
        "-m",
        r#"{"t":21.5}"#,
    ]))
    .assert_code(0);
    let text = sub.wait().assert_code(0).text();
    assert!(text.starts_with("{\n\t\""), "{text}");
    assert!(
        text.contains("\"payload\":\t{\n\t\t\"t\":\t21.5\n\t}"),
        "{text}"
    );
}

#[test]
fn debug_trace_shows_dns_and_the_websocket_upgrade() {
    let broker = MosquittoConfig::new().websockets().start();
    let url = format!("ws://localhost:{}/t", broker.ws_port());
    let out = run(tern(["pub", "-d", "-i", "ws-dbg", "-L", &url, "-m", "x"]));
    out.assert_code(0);
    for needle in [
        "Client ws-dbg resolved localhost to ",
        "Client ws-dbg TCP connected to ",
        "Client ws-dbg WebSocket upgrade to ws://localhost:",
        "Client ws-dbg sending CONNECT",
        "Client ws-dbg sending PUBLISH (d0, q0, r0, 't', ... (1 bytes))",
    ] {
        assert!(out.stderr.contains(needle), "missing {needle:?}:\n{out}");
    }
}
