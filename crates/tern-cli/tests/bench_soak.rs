//! The soak, by hand (not in CI):
//!
//! ```sh
//! TERN_SOAK_SECS=3600 cargo test -p tern-cli --release --test bench_soak -- --ignored --nocapture
//! ```
//!
//! 1,000 connections under churn (`tern bench conn --churn`) beside 100 QoS 1 publishers and
//! 10 persistent-session subscribers, all through the test kit's fault proxy, which cuts
//! every connection at random intervals. Checks: every message published (exit 0), none
//! lost by the subscribers, and the publisher's and the churning process's RSS flat within
//! ±5% after warm-up (the first fifth of the run).

mod bench_support;

use std::fs::File;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bench_support::*;
use tern_testkit::FaultProxy;

fn rss_kib(child: &Child) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{}/status", child.id())).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn start(args: &[String], out: &std::path::Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_tern"))
        .args(args)
        .stdout(File::create(out).expect("stdout file"))
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn tern")
}

/// Flat: every sample after warm-up within ±5% of their mean.
#[track_caller]
fn assert_flat(name: &str, samples: &[u64]) {
    let warm = &samples[samples.len() / 5..];
    let mean = warm.iter().sum::<u64>() as f64 / warm.len() as f64;
    let (min, max) = (warm.iter().min().copied(), warm.iter().max().copied());
    eprintln!("{name} RSS KiB after warm-up: mean {mean:.0}, min {min:?}, max {max:?}");
    for s in warm {
        assert!(
            (*s as f64 - mean).abs() <= mean * 0.05,
            "{name} RSS not flat: {s} KiB against a mean of {mean:.0}: {samples:?}"
        );
    }
}

#[test]
#[ignore = "a soak run by hand: TERN_SOAK_SECS=3600 (default 30)"]
fn soak_under_churn_and_cuts_keeps_rss_flat_and_loses_nothing() {
    let secs: u64 = std::env::var("TERN_SOAK_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(30);
    let broker = MosquittoConfig::new()
        .max_queued_messages(10_000_000)
        .line("max_connections -1")
        .start();
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let proxy = rt.block_on(FaultProxy::start_to_port(broker.port()));
    let dir = tempfile::tempdir().expect("tempdir");
    let path = |n: &str| dir.path().join(n).to_str().expect("utf8").to_owned();
    let common = |role: &str, prefix: &str| -> Vec<String> {
        [
            "bench",
            role,
            "-h",
            "127.0.0.1",
            "-p",
            &proxy.port().to_string(),
            "--prefix",
            prefix,
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .chain(["--reconnect", "forever", "--quiet"].map(str::to_owned))
        .collect()
    };
    let d = secs.to_string();
    let mut sub_args = common("sub", "soaks");
    sub_args.extend(
        [
            "-c",
            "10",
            "-i",
            "0",
            "-q",
            "1",
            "-C",
            "false",
            "-t",
            "soak/#",
            "--until-last",
        ]
        .map(str::to_owned),
    );
    sub_args.extend([
        "--duration".into(),
        format!("{}", secs + 120),
        "--json".into(),
        path("sub.json"),
    ]);
    let mut sub = start(&sub_args, &dir.path().join("sub.out"));
    for i in 0..10 {
        broker.wait_for_log(&format!("Sending SUBACK to soaks_bench_sub_{i}"));
    }
    let mut conn_args = common("conn", "soakc");
    conn_args
        .extend(["-c", "1000", "-R", "500", "--churn", "20", "--duration", &d].map(str::to_owned));
    let mut conn = start(&conn_args, &dir.path().join("conn.out"));
    let mut pub_args = common("pub", "soakp");
    pub_args.extend(
        [
            "-c",
            "100",
            "-i",
            "0",
            "-q",
            "1",
            "-C",
            "false",
            "-t",
            "soak/%i",
            "--rate",
            "1000",
            "--duration",
            &d,
        ]
        .map(str::to_owned),
    );
    pub_args.extend(["--json".into(), path("pub.json")]);
    let mut publisher = start(&pub_args, &dir.path().join("pub.out"));

    let (mut pub_rss, mut conn_rss) = (Vec::new(), Vec::new());
    let deadline = Instant::now() + Duration::from_secs(secs + 120);
    let mut next_cut = Instant::now() + Duration::from_secs(proxy.random(2..=10));
    let status = loop {
        if let Some(status) = publisher.try_wait().expect("try_wait") {
            break status;
        }
        assert!(Instant::now() < deadline, "the publisher did not finish");
        if Instant::now() >= next_cut {
            proxy.cut_now();
            next_cut = Instant::now() + Duration::from_secs(proxy.random(2..=10));
        }
        pub_rss.extend(rss_kib(&publisher));
        conn_rss.extend(rss_kib(&conn));
        // Sampling memory once a second: a measurement interval, not a synchronisation.
        std::thread::sleep(Duration::from_secs(1));
    };
    assert!(status.success(), "publisher: {status}");
    let sub_status = loop {
        if let Some(s) = sub.try_wait().expect("try_wait") {
            break s;
        }
        assert!(Instant::now() < deadline, "the subscribers did not finish");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(sub_status.success(), "subscribers: {sub_status}");
    let _ = conn.wait();

    let (p, s) = (
        summary(dir.path().join("pub.json").as_path()),
        summary(dir.path().join("sub.json").as_path()),
    );
    eprintln!("publisher: {p}\nsubscribers: {s}");
    assert_eq!(counter(&p, "pub"), 1000 * secs, "{p}");
    assert_eq!(s["lost"], 0, "{s}");
    assert!(counter(&s, "recv") >= 10 * 1000 * secs, "{s}");
    assert_flat("publisher", &pub_rss);
    assert_flat("conn", &conn_rss);
}
