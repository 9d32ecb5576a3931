//! `tern rr` against a real mosquitto: at `-V 311` a request answered by a responder made of
//! `tern sub` piped into `tern pub -l` (it echoes each request onto the response topic), one
//! request per line, no answer within `-W`, a refused response subscription (scripted); at
//! MQTT 5 (the default) a library responder answering with the request's correlation data
//! after a decoy carrying someone else's.

mod pubsub_support;

use std::process::{Child, Command, Stdio};

use pubsub_support::*;
use tern_testkit::{Script, ScriptedBroker};

/// `tern sub -t req -C n | tern pub -t resp -l`: answers `n` requests, echoing each.
struct Responder {
    sub: Child,
    publisher: Child,
}

impl Responder {
    fn start(broker: &Mosquitto, id: &str, request: &str, response: &str, n: u32) -> Self {
        let mut sub = Command::new(env!("CARGO_BIN_EXE_tern"));
        sub.args([
            "sub",
            "-i",
            id,
            "-t",
            request,
            "-q",
            "1",
            "-C",
            &n.to_string(),
        ])
        .args(at(broker))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
        let mut sub = sub.spawn().expect("start the responder's tern sub");
        let pipe = sub.stdout.take().expect("piped stdout");
        let mut publisher = Command::new(env!("CARGO_BIN_EXE_tern"));
        publisher
            .args(["pub", "-t", response, "-q", "1", "-l"])
            .args(at(broker))
            .stdin(Stdio::from(pipe))
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        let publisher = publisher.spawn().expect("start the responder's tern pub");
        broker.wait_for_log(&format!("Sending SUBACK to {id}"));
        Self { sub, publisher }
    }
}

impl Drop for Responder {
    fn drop(&mut self) {
        let _ = self.sub.kill();
        let _ = self.sub.wait();
        let _ = self.publisher.kill();
        let _ = self.publisher.wait();
    }
}

fn rr(broker: &Mosquitto, extra: &[&str]) -> Command {
    let mut cmd = tern(["rr", "-V", "311"]);
    cmd.args(at(broker));
    cmd.args(extra);
    cmd
}

#[test]
fn a_request_is_answered_and_the_response_printed() {
    let broker = MosquittoConfig::new().start();
    let _responder = Responder::start(&broker, "responder", "svc/req", "svc/resp", 1);
    let out = run(rr(
        &broker,
        &[
            "-t", "svc/req", "-e", "svc/resp", "-m", "ping", "-q", "1", "-v", "-W", "15",
        ],
    ));
    out.assert_code(0);
    assert_eq!(out.text(), "svc/resp ping\n", "{out}");
}

#[test]
fn each_line_is_a_request_answered_before_the_next() {
    let broker = MosquittoConfig::new().start();
    let _responder = Responder::start(&broker, "lines", "l/req", "l/resp", 3);
    let out = run_with_input(
        rr(
            &broker,
            &[
                "-t", "l/req", "-e", "l/resp", "-l", "-q", "1", "-F", "%t=%p", "-W", "15",
            ],
        ),
        "a\nb\nc\n",
    );
    out.assert_code(0);
    assert_eq!(out.text(), "l/resp=a\nl/resp=b\nl/resp=c\n", "{out}");
}

#[test]
fn no_response_within_the_timeout_exits_27() {
    let broker = MosquittoConfig::new().start();
    let out = run(rr(
        &broker,
        &[
            "-t",
            "nobody/req",
            "-e",
            "nobody/resp",
            "-m",
            "hello?",
            "-W",
            "0.5",
        ],
    ));
    out.assert_code(27);
    assert!(out.stderr.contains("Timed out"), "{out}");
    assert!(out.stdout.is_empty(), "{out}");
}

/// mosquitto's acl_file never refuses a SUBSCRIBE (it filters at delivery), so the refusal
/// comes from the scripted broker: SUBACK 0x80 for the response topic.
#[tokio::test]
async fn a_refused_response_subscription_is_an_error_and_sends_no_request() {
    let broker = ScriptedBroker::start(Script::suback_failure()).await;
    let port = broker.port().to_string();
    let out = tokio::task::spawn_blocking(move || {
        let mut cmd = tern(["rr", "-V", "311", "-h", "127.0.0.1", "-p", &port]);
        cmd.args(["-t", "svc/req", "-e", "svc/secret", "-m", "x", "-W", "10"]);
        run(cmd)
    })
    .await
    .expect("runner thread");
    out.assert_code(1);
    assert!(
        out.stderr
            .contains("the broker refused the subscription to the response topic 'svc/secret'"),
        "{out}"
    );
    let conn = broker.connection(0).await;
    let sent = conn.wait_closed().await;
    assert!(
        !sent
            .iter()
            .any(|p| p.packet_type() == Some(tern_proto::PacketType::Publish)),
        "no request may be sent without a way to hear the answer: {:?}",
        conn.packet_types()
    );
}

/// At MQTT 5 (tern rr's default) the request names its response topic and carries
/// correlation data; a responder on the tern library answers with `Publish::response_to`,
/// after a decoy reply carrying someone else's correlation data, which tern rr must skip.
#[tokio::test(flavor = "multi_thread")]
async fn at_v5_the_reply_with_the_requests_correlation_data_is_the_answer() {
    use tern::{Broker, Client, ConnectOptions, Event, Protocol, Publish, QoS, Subscription};
    let broker = MosquittoConfig::new().start();
    let (client, mut events) =
        Client::new(ConnectOptions::new("v5-responder").protocol(Protocol::V5));
    client
        .connect(Broker::new(tern::Scheme::Mqtt, "127.0.0.1", broker.port()))
        .await
        .expect("responder connects");
    client
        .subscribe_with([Subscription::new("svc5/req", QoS::AtLeastOnce)], None)
        .await
        .expect("responder subscribes");
    let responder = tokio::spawn(async move {
        loop {
            let Some(ev) = tokio::time::timeout(WAIT, events.recv())
                .await
                .expect("a request within the wait")
            else {
                panic!("the responder's client stopped");
            };
            let Event::Message(m) = ev else { continue };
            let to = m
                .response_topic()
                .expect("the request names a response topic")
                .to_owned();
            let decoy = Publish::new(to, "decoy")
                .qos(QoS::AtLeastOnce)
                .correlation_data("someone-else");
            client.publish_with(decoy).await.expect("decoy sent");
            let body = format!("pong:{}", String::from_utf8_lossy(&m.payload));
            let reply = Publish::response_to(&m, body).expect("a response topic");
            client.publish_with(reply).await.expect("reply sent");
            return m.correlation_data().cloned();
        }
    });
    let port = broker.port().to_string();
    let out = tokio::task::spawn_blocking(move || {
        let mut cmd = tern(["rr", "-h", "127.0.0.1", "-p", &port]);
        cmd.args(["-t", "svc5/req", "-e", "svc5/resp", "-m", "ping", "-q", "1"]);
        cmd.args(["-F", "%p %D", "-W", "15"]);
        // As mosquitto_rr, a single request carries correlation data only when given.
        cmd.args(["-D", "publish", "correlation-data", "req-42"]);
        run(cmd)
    })
    .await
    .expect("runner thread");
    out.assert_code(0);
    let sent = responder
        .await
        .expect("responder task")
        .expect("the request carried correlation data");
    assert_eq!(
        out.text(),
        format!("pong:ping {}\n", String::from_utf8_lossy(&sent)),
        "{out}"
    );
}

/// tern rr speaks MQTT 5 by default; a 3.1.1-only broker's refusal says what to do.
#[tokio::test]
async fn a_broker_without_v5_refuses_and_the_message_points_to_v311() {
    let broker = ScriptedBroker::start(Script::new().expect_connect().send_connack(1, false)).await;
    let port = broker.port().to_string();
    let out = tokio::task::spawn_blocking(move || {
        let mut cmd = tern(["rr", "-h", "127.0.0.1", "-p", &port]);
        cmd.args(["-t", "req", "-e", "resp", "-m", "x", "-W", "10"]);
        run(cmd)
    })
    .await
    .expect("runner thread");
    out.assert_code(5);
    assert!(
        out.stderr.contains("unacceptable protocol version"),
        "{out}"
    );
    assert!(out.stderr.contains("use -V 311"), "{out}");
}
