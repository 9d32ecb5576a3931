//! The fault proxy forwards, counts, and injects each fault on command.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tern_testkit::{Direction, FaultProxy, Mosquitto, raw, timeout};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const WAIT: Duration = Duration::from_secs(10);

/// An echo server on 127.0.0.1:0; lives as long as the test's runtime.
async fn echo_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("echo server socket");
    let addr = listener.local_addr().expect("echo server socket");
    tokio::spawn(async move {
        loop {
            let (mut s, _) = listener.accept().await.expect("echo server socket");
            tokio::spawn(async move {
                let (mut rd, mut wr) = s.split();
                let _ = tokio::io::copy(&mut rd, &mut wr).await;
            });
        }
    });
    addr
}

async fn connect(proxy: &FaultProxy) -> TcpStream {
    timeout(
        WAIT,
        TcpStream::connect(proxy.addr()),
        "connect to the proxy",
    )
    .await
    .expect("connect to the proxy")
}

async fn read_n(s: &mut TcpStream, n: usize) -> Vec<u8> {
    let mut buf = vec![0u8; n];
    timeout(WAIT, s.read_exact(&mut buf), "bytes through the proxy")
        .await
        .expect("read through the proxy");
    buf
}

async fn read_to_eof(s: &mut TcpStream) -> Vec<u8> {
    let mut buf = Vec::new();
    timeout(WAIT, s.read_to_end(&mut buf), "EOF through the proxy")
        .await
        .expect("read through the proxy");
    buf
}

/// Asserts nothing arrives for a moment (a negative check, not synchronisation).
async fn assert_quiet(s: &mut TcpStream) {
    let mut byte = [0u8; 1];
    let r = tokio::time::timeout(Duration::from_millis(200), s.read(&mut byte)).await;
    assert!(r.is_err(), "expected silence, read {r:?}");
}

#[tokio::test]
async fn forwards_both_ways_and_counts() {
    let proxy = FaultProxy::start(echo_server().await).await;
    let mut s = connect(&proxy).await;
    s.write_all(b"hello").await.unwrap();
    assert_eq!(read_n(&mut s, 5).await, b"hello");
    assert_eq!(proxy.bytes(Direction::ToServer), 5);
    assert_eq!(proxy.bytes(Direction::ToClient), 5);
    assert_eq!(proxy.connection_count(), 1);
    proxy.wait_for_active(1).await;
    drop(s);
    proxy.wait_for_active(0).await;
}

#[tokio::test]
async fn cut_after_lets_exactly_n_bytes_through_in_total() {
    let proxy = FaultProxy::start(echo_server().await).await;
    let mut s = connect(&proxy).await;
    proxy.cut_after(15);
    s.write_all(b"0123456789").await.unwrap();
    assert_eq!(read_to_eof(&mut s).await, b"01234");
    // One-shot: the next connection is clean.
    let mut s = connect(&proxy).await;
    s.write_all(b"again").await.unwrap();
    assert_eq!(read_n(&mut s, 5).await, b"again");
}

#[tokio::test]
async fn cut_after_in_one_direction_counts_only_that_direction() {
    let proxy = FaultProxy::start(echo_server().await).await;
    proxy.cut_after_in(Direction::ToClient, 3);
    let mut s = connect(&proxy).await;
    s.write_all(b"abcdefgh").await.unwrap();
    assert_eq!(read_to_eof(&mut s).await, b"abc");
    assert_eq!(proxy.bytes(Direction::ToServer), 8);
}

#[tokio::test]
async fn cut_now_drops_the_connection_and_accepts_the_next() {
    let proxy = FaultProxy::start(echo_server().await).await;
    let mut s = connect(&proxy).await;
    s.write_all(b"x").await.unwrap();
    read_n(&mut s, 1).await;
    proxy.cut_now();
    assert!(read_to_eof(&mut s).await.is_empty());
    let mut s = connect(&proxy).await;
    s.write_all(b"y").await.unwrap();
    assert_eq!(read_n(&mut s, 1).await, b"y");
    proxy.wait_for_connections(2).await;
}

#[tokio::test]
async fn stall_holds_data_until_resume() {
    let proxy = FaultProxy::start(echo_server().await).await;
    let mut s = connect(&proxy).await;
    proxy.stall();
    s.write_all(b"held").await.unwrap();
    assert_eq!(proxy.bytes(Direction::ToServer), 0);
    assert_quiet(&mut s).await;
    proxy.resume();
    assert_eq!(read_n(&mut s, 4).await, b"held");
}

#[tokio::test]
async fn delay_holds_each_chunk() {
    let proxy = FaultProxy::start(echo_server().await).await;
    let mut s = connect(&proxy).await;
    proxy.delay(Duration::from_millis(100));
    let start = Instant::now();
    s.write_all(b"slow").await.unwrap();
    assert_eq!(read_n(&mut s, 4).await, b"slow");
    // One chunk each way.
    assert!(
        start.elapsed() >= Duration::from_millis(200),
        "{:?}",
        start.elapsed()
    );
    proxy.delay(Duration::ZERO);
}

#[tokio::test]
async fn split_writes_keep_the_bytes_intact() {
    let proxy = FaultProxy::start(echo_server().await).await;
    proxy.split_writes(true);
    let mut s = connect(&proxy).await;
    let data: Vec<u8> = (0..=255).collect();
    s.write_all(&data).await.unwrap();
    assert_eq!(read_n(&mut s, 256).await, data);
}

#[tokio::test]
async fn black_hole_swallows_until_heal() {
    let proxy = FaultProxy::start(echo_server().await).await;
    let mut s = connect(&proxy).await;
    proxy.black_hole();
    s.write_all(b"lost").await.unwrap();
    proxy.wait_for_swallowed(4).await;
    assert_quiet(&mut s).await;
    assert_eq!(proxy.swallowed(), 4);
    proxy.heal();
    s.write_all(b"back").await.unwrap();
    assert_eq!(read_n(&mut s, 4).await, b"back");
}

#[tokio::test]
async fn random_cut_points_follow_the_seed() {
    let target = echo_server().await;
    let a = FaultProxy::with_seed(target, 7).await;
    let b = FaultProxy::with_seed(target, 7).await;
    assert_eq!(a.seed(), 7);
    let n = a.cut_after_random(1..=1000);
    assert_eq!(n, b.cut_after_random(1..=1000));
    assert!((1..=1000).contains(&n));
}

#[tokio::test]
async fn a_client_reconnects_to_mosquitto_through_the_proxy_after_a_cut() {
    let broker = Mosquitto::start_default();
    let proxy = FaultProxy::start(broker.addr()).await;
    for round in 0..2u64 {
        let mut s = connect(&proxy).await;
        s.write_all(&raw::connect("through-proxy", 60, true))
            .await
            .unwrap();
        assert_eq!(
            read_n(&mut s, 4).await,
            raw::connack(0, false),
            "round {round}"
        );
        proxy
            .wait_for_bytes(Direction::ToServer, 27 * (round + 1))
            .await;
        proxy.cut_now();
        assert!(read_to_eof(&mut s).await.is_empty());
    }
    assert_eq!(proxy.connection_count(), 2);
}
