//! The scripted broker runs its transcripts and records what the client does.

use std::time::Duration;

use tern_proto::{Packet, PacketType, ProtocolLevel};
use tern_testkit::{Script, ScriptStatus, ScriptedBroker, closed_port, raw, timeout};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const WAIT: Duration = Duration::from_secs(10);

async fn client(broker: &ScriptedBroker) -> TcpStream {
    timeout(
        WAIT,
        TcpStream::connect(broker.addr()),
        "connect to the scripted broker",
    )
    .await
    .expect("connect to the scripted broker")
}

async fn read_n(s: &mut TcpStream, n: usize) -> Vec<u8> {
    let mut buf = vec![0u8; n];
    timeout(
        WAIT,
        s.read_exact(&mut buf),
        "bytes from the scripted broker",
    )
    .await
    .expect("read from the scripted broker");
    buf
}

/// Reads until EOF; returns what came.
async fn read_to_eof(s: &mut TcpStream) -> Vec<u8> {
    let mut buf = Vec::new();
    timeout(
        WAIT,
        s.read_to_end(&mut buf),
        "EOF from the scripted broker",
    )
    .await
    .expect("read from the scripted broker");
    buf
}

#[tokio::test]
async fn connack_script_answers_connect_and_records_the_close() {
    let broker = ScriptedBroker::start(Script::connack(5)).await;
    let mut s = client(&broker).await;
    s.write_all(&raw::connect("c1", 30, true)).await.unwrap();
    assert_eq!(read_n(&mut s, 4).await, raw::connack(5, false));
    drop(s);
    let conn = broker.connection(0).await;
    let packets = conn.wait_closed().await;
    assert_eq!(packets.len(), 1);
    assert_eq!(packets[0].bytes()[..], raw::connect("c1", 30, true)[..]);
    conn.wait_script_done().await;
    // Recorded packets decode with tern-proto's codec.
    let connect = conn.connect_packet().expect("the CONNECT was recorded");
    match connect.decode(ProtocolLevel::V3_1_1).unwrap() {
        Packet::Connect(c) => {
            assert_eq!(c.client_id.as_str(), "c1");
            assert_eq!(c.keep_alive, 30);
            assert!(c.clean_session);
        }
        other => panic!("decoded as {other:?}"),
    }
}

#[tokio::test]
async fn unknown_connack_codes_are_sent_as_given() {
    let broker = ScriptedBroker::start(Script::connack(6)).await;
    let mut s = client(&broker).await;
    s.write_all(&raw::connect("c", 0, true)).await.unwrap();
    assert_eq!(read_n(&mut s, 4).await, [0x20, 0x02, 0x00, 0x06]);
}

#[tokio::test]
async fn never_answer_keeps_the_socket_open_and_records() {
    let broker = ScriptedBroker::start(Script::never_answer()).await;
    let mut s = client(&broker).await;
    s.write_all(&raw::connect("c", 0, true)).await.unwrap();
    let conn = broker.connection(0).await;
    conn.wait_for(PacketType::Connect).await;
    // Nothing comes back while we wait a little.
    let mut byte = [0u8; 1];
    let r = tokio::time::timeout(Duration::from_millis(200), s.read(&mut byte)).await;
    assert!(r.is_err(), "never_answer answered: {r:?}");
    assert!(!conn.is_closed());
    drop(s);
    conn.wait_closed().await;
    assert_eq!(conn.script_status(), ScriptStatus::Done);
}

#[tokio::test]
async fn canned_misbehaviours_send_their_bytes() {
    let cases: Vec<(Script, Vec<u8>)> = vec![
        (Script::non_connack_first(), raw::pingresp()),
        (
            Script::malformed_remaining_length(),
            [raw::connack(0, false), raw::malformed_remaining_length()].concat(),
        ),
        (
            Script::garbage(),
            [raw::connack(0, false), raw::garbage()].concat(),
        ),
        (
            Script::huge_publish(),
            [raw::connack(0, false), raw::huge_publish_header()].concat(),
        ),
        (
            Script::unsolicited(PacketType::PubRec, 999),
            [raw::connack(0, false), raw::pubrec(999)].concat(),
        ),
    ];
    for (script, expected) in cases {
        let broker = ScriptedBroker::start(script).await;
        let mut s = client(&broker).await;
        s.write_all(&raw::connect("c", 0, true)).await.unwrap();
        assert_eq!(read_n(&mut s, expected.len()).await, expected);
    }
}

#[tokio::test]
async fn truncated_then_close_ends_mid_packet() {
    let broker = ScriptedBroker::start(Script::truncated_then_close()).await;
    let mut s = client(&broker).await;
    s.write_all(&raw::connect("c", 0, true)).await.unwrap();
    let got = read_to_eof(&mut s).await;
    assert_eq!(
        got,
        [raw::connack(0, false), raw::truncated_publish()].concat()
    );
}

#[tokio::test]
async fn unsolicited_pubrel_records_the_clients_pubcomp() {
    let broker = ScriptedBroker::start(Script::unsolicited(PacketType::PubRel, 77)).await;
    let mut s = client(&broker).await;
    s.write_all(&raw::connect("c", 0, true)).await.unwrap();
    assert_eq!(
        read_n(&mut s, 8).await,
        [raw::connack(0, false), raw::pubrel(77)].concat()
    );
    // What a correct client does [MQTT-4.3.3-2]:
    s.write_all(&raw::pubcomp(77)).await.unwrap();
    let conn = broker.connection(0).await;
    let comp = conn.wait_for(PacketType::PubComp).await;
    assert_eq!(comp.packet_id(), Some(77));
}

#[tokio::test]
async fn suback_failure_echoes_the_packet_id_per_filter() {
    let broker = ScriptedBroker::start(Script::suback_failure()).await;
    let mut s = client(&broker).await;
    s.write_all(&raw::connect("c", 0, true)).await.unwrap();
    assert_eq!(read_n(&mut s, 4).await, raw::connack(0, false));
    s.write_all(&raw::subscribe(42, &[("a", 1), ("b", 2)]))
        .await
        .unwrap();
    assert_eq!(read_n(&mut s, 6).await, raw::suback(42, &[0x80, 0x80]));
    // Pings are answered afterwards.
    s.write_all(&raw::pingreq()).await.unwrap();
    assert_eq!(read_n(&mut s, 2).await, raw::pingresp());
}

#[tokio::test]
async fn a_wrong_packet_fails_the_script_and_closes() {
    let broker = ScriptedBroker::start(Script::connack(0)).await;
    let mut s = client(&broker).await;
    s.write_all(&raw::pingreq()).await.unwrap();
    assert!(read_to_eof(&mut s).await.is_empty());
    let conn = broker.connection(0).await;
    match conn.script_status() {
        ScriptStatus::Failed(why) => assert!(why.contains("expected CONNECT"), "{why}"),
        other => panic!("script should have failed: {other:?}"),
    }
}

#[tokio::test]
async fn dribble_sends_one_byte_at_a_time() {
    let script = Script::new()
        .expect_connect()
        .dribble(raw::connack(0, true), Duration::from_millis(5))
        .read_until_closed();
    let broker = ScriptedBroker::start(script).await;
    let mut s = client(&broker).await;
    s.write_all(&raw::connect("c", 0, false)).await.unwrap();
    let mut first = [0u8; 4];
    let n = timeout(WAIT, s.read(&mut first), "first dribbled byte")
        .await
        .unwrap();
    assert_eq!(n, 1, "dribble sent more than one byte at once");
    let rest = read_n(&mut s, 3).await;
    assert_eq!([&first[..1], &rest[..]].concat(), raw::connack(0, true));
}

#[tokio::test]
async fn reset_aborts_the_connection() {
    let script = Script::new().expect_connect().reset();
    let broker = ScriptedBroker::start(script).await;
    let mut s = client(&broker).await;
    s.write_all(&raw::connect("c", 0, true)).await.unwrap();
    let mut buf = [0u8; 8];
    let r = timeout(WAIT, s.read(&mut buf), "the reset").await;
    let err = r.expect_err("expected a reset, got a clean read");
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionReset);
}

#[tokio::test]
async fn sequences_give_reconnects_their_own_script() {
    let broker = ScriptedBroker::start_sequence(vec![
        Script::new().expect_connect().close(),
        Script::accept(),
    ])
    .await;
    let mut first = client(&broker).await;
    first.write_all(&raw::connect("c", 0, true)).await.unwrap();
    assert!(read_to_eof(&mut first).await.is_empty());
    for _ in 0..2 {
        let mut s = client(&broker).await;
        s.write_all(&raw::connect("c", 0, true)).await.unwrap();
        assert_eq!(read_n(&mut s, 4).await, raw::connack(0, false));
    }
    assert_eq!(broker.connection_count(), 3);
    broker
        .connection(2)
        .await
        .wait_for(PacketType::Connect)
        .await;
}

#[tokio::test]
#[should_panic(expected = "waiting for the client to close connection 0")]
async fn waiting_for_a_close_that_never_comes_panics() {
    let broker = ScriptedBroker::start(Script::never_answer()).await;
    let _s = client(&broker).await;
    let conn = broker
        .connection(0)
        .await
        .within(Duration::from_millis(100));
    conn.wait_closed().await;
}

#[test]
fn closed_port_refuses() {
    let port = closed_port();
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
}
