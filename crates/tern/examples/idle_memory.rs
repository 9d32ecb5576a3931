//! Measures the memory an idle connection costs: N clients connected to a local mosquitto,
//! each with one application task waiting on its `Events`, nothing sent. Prints the growth
//! of this process's resident set divided by N. The target is at most 4 KiB per connection
//! (issue 16, point 6).
//!
//! ```text
//! ulimit -n 20000   # N sockets here, N in mosquitto
//! PATH=/usr/sbin:$PATH cargo run --release -p tern --example idle_memory -- 2000
//! cargo run --release -p tern --example idle_memory -- 2000 --multi-thread
//! cargo run --release -p tern --example idle_memory -- 2000 --port 1883   # a broker of your own
//! ```
//!
//! Without `--port` it starts mosquitto on a free loopback port (`tern-testkit`'s launcher).
//! A few warm-up connections are made before the baseline is taken, so that per-process
//! costs (the runtime's buffers, the thread's read buffer, the allocator's first arenas)
//! are not charged to the connections.
#![allow(clippy::print_stdout)]

use std::time::{Duration, Instant};

use tern::{Broker, Client, ConnectOptions};
use tokio::task::JoinHandle;

/// Connections made before the baseline.
const WARM_UP: usize = 16;
/// Connection attempts in flight at once.
const CONCURRENT_CONNECTS: usize = 16;

/// This process's resident set in KiB (`VmRSS` in `/proc/self/status`; Linux).
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// One client, connected, with one application task draining its events.
struct Idle {
    _client: Client,
    _app: JoinHandle<()>,
}

async fn connect_one(port: u16, id: String) -> Result<Idle, String> {
    let (client, mut events) = Client::new(ConnectOptions::new(id.clone()));
    match tokio::time::timeout(
        Duration::from_secs(30),
        client.connect(Broker::tcp("127.0.0.1", port)),
    )
    .await
    {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => return Err(format!("{id}: {e}")),
        Err(_) => return Err(format!("{id}: no CONNACK within 30 s")),
    }
    // The application: one task per client, as a program that reacts to its messages has.
    let app = tokio::spawn(async move { while events.recv().await.is_some() {} });
    Ok(Idle {
        _client: client,
        _app: app,
    })
}

/// Connects `count` clients, `CONCURRENT_CONNECTS` at a time.
async fn connect_many(port: u16, prefix: &str, count: usize) -> Result<Vec<Idle>, String> {
    let mut clients = Vec::with_capacity(count);
    let mut started = 0;
    while started < count {
        let batch = CONCURRENT_CONNECTS.min(count - started);
        let attempts: Vec<_> = (started..started + batch)
            .map(|i| tokio::spawn(connect_one(port, format!("{prefix}-{i}"))))
            .collect();
        for attempt in attempts {
            clients.push(attempt.await.map_err(|e| e.to_string())??);
        }
        started += batch;
    }
    Ok(clients)
}

async fn measure(port: u16, count: usize) -> Result<(), String> {
    let prefix = format!("idle-{}", std::process::id());
    let _warm = connect_many(port, &format!("{prefix}-warm"), WARM_UP).await?;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let before = rss_kib();
    let started = Instant::now();
    let clients = connect_many(port, &prefix, count).await?;
    let took = started.elapsed();
    // Let the connections settle (CONNACKs read, the connect-time buffers freed).
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = rss_kib();
    let per = (after.saturating_sub(before)) as f64 / count as f64;
    println!(
        "{count} idle connections (one application task each) in {:.2} s: RSS {before} → {after} KiB, \
         {per:.2} KiB per connection (target ≤ 4 KiB)",
        took.as_secs_f64()
    );
    drop(clients);
    Ok(())
}

fn main() -> Result<(), String> {
    let mut count = 2000;
    let mut port = None;
    let mut multi = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--port" => {
                let p = args.next().ok_or("--port needs a value")?;
                port = Some(p.parse().map_err(|e| format!("--port {p}: {e}"))?);
            }
            "--multi-thread" => multi = true,
            n => {
                count = n
                    .parse()
                    .map_err(|e| format!("connection count {n}: {e}"))?
            }
        }
    }
    let _broker;
    let port = match port {
        Some(p) => p,
        None => {
            let broker = tern_testkit::MosquittoConfig::new()
                .line("max_connections -1")
                .start();
            let p = broker.port();
            _broker = broker;
            p
        }
    };
    let rt = if multi {
        tokio::runtime::Builder::new_multi_thread()
    } else {
        tokio::runtime::Builder::new_current_thread()
    }
    .enable_all()
    .build()
    .map_err(|e| format!("runtime: {e}"))?;
    rt.block_on(measure(port, count))
}
