//! The load tool side by side (`rate:…` scenarios): one whole publisher process per run —
//! `tern bench pub`, or this harness's rumqttc or paho publisher (`compare rate-pub`) — with
//! the same connections, QoS, payload, in-flight window and asked total rate, against the same
//! broker. The process's CPU is its user+sys from `wait4`, as in [`crate::process`]. A tern
//! subscriber in the orchestrating process (the same for every client, outside the measured
//! process) counts what arrives, so the delivered rate is real.
//!
//! Pacing: `tern bench pub` paces itself (`--rate R --duration S`: exactly `R × S` messages,
//! one scheduler for all connections). The peers pace each connection on its own at `R / N`
//! msgs/s: message `k` of a connection is due at `start + k / (R / N)` (a token bucket that
//! never accumulates drift), sent when due. At saturation the peers publish unpaced for `S`
//! seconds, each connection held back only by its in-flight window (and rumqttc's request
//! channel), and so does `tern bench pub --rate max --duration S` (each connection waits
//! for its acknowledgements once it holds twice its window). The table's "refused" is
//! `tern bench pub`'s `pub_overrun` + `pub_fail`.
//!
//! The parts without peers (the report a publisher prints, the pacing) are in
//! [`tern_bench::rate`].

use std::collections::VecDeque;
use std::io::Read as _;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tern::{Broker, Client, ConnectOptions, Event, QoS};
use tern_bench::IDLE;
use tern_bench::measure;
use tern_bench::rate::{Sent, due, share, tern_summary};
use tern_bench::record::{Ctx, Record};
use tern_bench::scenario::Scenario;

use crate::process::{reaper, tern_bin};

/// The longest a publisher process may run beyond its sending time: more than
/// `tern bench pub` takes to give up on completions that never come (a 30 s drain, then 10 s
/// to close), so that even such a run reports its summary.
const GRACE: Duration = Duration::from_secs(60);

/// The topic of publisher connection `i`; the subscriber takes `…/rate/+`.
fn topic(ctx: &Ctx, i: impl std::fmt::Display) -> String {
    ctx.topic(&format!("rate/{i}"))
}

pub(crate) fn run(ctx: &Ctx, lib: &str, scenario: Scenario) -> Record {
    let mut rec = Record::new(lib, &scenario.to_string());
    if let Err(e) = measure_once(ctx, lib, scenario, &mut rec) {
        rec.error = Some(e);
    }
    rec
}

/// The subscriber: receipts, and the instants of the first and the last since `t0`.
#[derive(Default)]
struct Arrivals {
    received: AtomicU64,
    first_ns: AtomicU64,
    last_ns: AtomicU64,
    stop: AtomicBool,
}

/// Starts the subscriber on its own thread and runtime; returns once it is subscribed.
fn subscriber(
    ctx: &Ctx,
    q: u8,
    t0: Instant,
) -> Result<(Arc<Arrivals>, std::thread::JoinHandle<()>), String> {
    let arrivals = Arc::new(Arrivals::default());
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let filter = topic(ctx, "+");
    let (host, port, id) = (ctx.host.clone(), ctx.port, ctx.client_id("rate-sub"));
    let a = arrivals.clone();
    let handle = std::thread::spawn(move || {
        let rt = match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(rt) => rt,
            Err(e) => {
                let _ = ready_tx.send(Err(format!("subscriber runtime: {e}")));
                return;
            }
        };
        rt.block_on(async move {
            let (c, mut ev) = Client::new(ConnectOptions::new(id));
            if let Err(e) = c.connect(Broker::tcp(host, port)).await {
                let _ = ready_tx.send(Err(format!("subscriber connect: {e}")));
                return;
            }
            let qos = match q {
                0 => QoS::AtMostOnce,
                1 => QoS::AtLeastOnce,
                _ => QoS::ExactlyOnce,
            };
            if let Err(e) = c.subscribe([(filter.as_str(), qos)]).await {
                let _ = ready_tx.send(Err(format!("subscribe: {e}")));
                return;
            }
            let _ = ready_tx.send(Ok(()));
            while !a.stop.load(Ordering::Relaxed) {
                match tokio::time::timeout(Duration::from_millis(100), ev.recv()).await {
                    Ok(Some(Event::Message(_))) => {
                        let at = t0.elapsed().as_nanos() as u64;
                        if a.received.fetch_add(1, Ordering::Relaxed) == 0 {
                            a.first_ns.store(at, Ordering::Relaxed);
                        }
                        a.last_ns.store(at, Ordering::Relaxed);
                    }
                    Ok(Some(_)) | Err(_) => {}
                    Ok(None) => break,
                }
            }
            let _ = tokio::time::timeout(Duration::from_secs(2), c.close()).await;
        });
    });
    match ready_rx.recv_timeout(Duration::from_secs(30)) {
        Ok(Ok(())) => Ok((arrivals, handle)),
        Ok(Err(e)) => Err(e),
        Err(_) => Err("the subscriber did not subscribe within 30 s".to_owned()),
    }
}

/// The publisher process's command line.
fn publisher_cmd(ctx: &Ctx, lib: &str, scenario: Scenario, json: &str) -> Result<Command, String> {
    let Scenario::Rate {
        qos,
        size,
        rate,
        conns,
        secs,
        ..
    } = scenario
    else {
        return Err("not a rate scenario".to_owned());
    };
    let port = ctx.port.to_string();
    let window = ctx.window.to_string();
    match lib {
        "tern-bench" => {
            let bin = tern_bin();
            if !bin.exists() {
                return Err(format!("{} not built", bin.display()));
            }
            let mut c = Command::new(bin);
            c.args(["bench", "pub", "-h", &ctx.host, "-p", &port])
                .args(["-c", &conns.to_string(), "-i", "0"])
                .args(["-q", &qos.to_string(), "-s", &size.to_string()])
                .args(["--inflight", &window])
                .args(["--rate", &rate.map_or_else(|| "max".to_owned(), |r| r.to_string())])
                .args(["--duration", &secs.to_string()])
                .args(["-t", &topic(ctx, "%i"), "--prefix", &ctx.prefix])
                .args(["--json", json, "--quiet"]);
            Ok(c)
        }
        "rumqttc" | "paho" => {
            let exe = std::env::current_exe().map_err(|e| format!("own path: {e}"))?;
            let mut c = Command::new(exe);
            c.args([
                "rate-pub", "--lib", lib, "--host", &ctx.host, "--port", &port,
            ])
            .args(["--prefix", &ctx.prefix, "--conns", &conns.to_string()])
            .args(["--qos", &qos.to_string(), "--size", &size.to_string()])
            .args(["--rate", &rate.unwrap_or(0).to_string()])
            .args(["--secs", &secs.to_string(), "--window", &window]);
            Ok(c)
        }
        other => Err(format!("no rate publisher for {other}")),
    }
}

fn measure_once(ctx: &Ctx, lib: &str, scenario: Scenario, rec: &mut Record) -> Result<(), String> {
    let Scenario::Rate {
        qos, rate, secs, ..
    } = scenario
    else {
        return Err("not a rate scenario".to_owned());
    };
    let json = std::env::temp_dir().join(format!("{}-rate.json", ctx.prefix));
    let json_s = json.to_string_lossy().into_owned();
    let mut cmd = publisher_cmd(ctx, lib, scenario, &json_s)?;
    let t0 = Instant::now();
    let (arrivals, sub) = subscriber(ctx, qos, t0)?;

    let win = measure::Window::start(ctx.broker_pid);
    let started = Instant::now();
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("spawn the publisher: {e}"))?;
    let mut out = child.stdout.take().expect("piped");
    let mut err = child.stderr.take().expect("piped");
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let pid = child.id();
    let done = reaper(pid);
    let deadline = started + Duration::from_secs(u64::from(secs)) + GRACE;
    while !done.is_finished() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    let stalled = !done.is_finished();
    if stalled {
        // SAFETY: signalling our own child.
        unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
    }
    let p = done.join().map_err(|_| "reaper panicked")?;
    let wall = (p.at - started).as_secs_f64();
    let stdout = out.join().unwrap_or_default();
    let stderr = err.join().unwrap_or_default();
    let sent = if lib == "tern-bench" {
        let text = std::fs::read_to_string(&json).unwrap_or_default();
        let _ = std::fs::remove_file(&json);
        tern_summary(&text)
    } else {
        stdout
            .lines()
            .rev()
            .find_map(|l| serde_json::from_str::<Sent>(l).ok())
    };
    let Some(sent) = sent else {
        let _ = sub_stop(&arrivals, sub);
        if stalled {
            return Err(format!(
                "the publisher did not finish within {secs} s + {GRACE:?} and was killed"
            ));
        }
        return Err(format!(
            "the publisher reported nothing (exit ok={}); stderr: {}",
            p.ok,
            stderr.trim()
        ));
    };
    // The subscriber gets what was completed, or IDLE without progress.
    let mut seen = arrivals.received.load(Ordering::Relaxed);
    let mut progress = Instant::now();
    while seen < sent.completed && progress.elapsed() < IDLE {
        std::thread::sleep(Duration::from_millis(10));
        let now = arrivals.received.load(Ordering::Relaxed);
        if now != seen {
            seen = now;
            progress = Instant::now();
        }
    }
    let (_, broker) = win.finish();
    let received = arrivals.received.load(Ordering::Relaxed);
    let span_ns = arrivals
        .last_ns
        .load(Ordering::Relaxed)
        .saturating_sub(arrivals.first_ns.load(Ordering::Relaxed));
    sub_stop(&arrivals, sub)?;

    let n = sent.completed.max(1) as f64;
    if let Some(r) = rate {
        rec.set("asked_rate", r as f64);
    }
    rec.set("completed", sent.completed as f64)
        .set("received", received as f64)
        .set("send_rate", sent.completed as f64 / sent.secs.max(1e-9))
        .set(
            "delivered_rate",
            received as f64 / (span_ns as f64 / 1e9).max(1e-9),
        )
        .set("pub_secs", sent.secs)
        .set("wall_secs", wall)
        .set("client_cpu_s", p.cpu)
        .set("client_cpu_us", p.cpu * 1e6 / n)
        .set("client_busy", p.cpu / wall.max(1e-9))
        .set("overrun", sent.overrun as f64)
        .set("pub_failed", sent.failed as f64)
        .set("lost", sent.completed.saturating_sub(received) as f64);
    if let Some(b) = broker {
        rec.set("broker_cpu_s", b)
            .set("broker_cpu_us", b * 1e6 / n)
            .set("broker_busy", b / wall.max(1e-9));
    }
    if stalled {
        return Err(format!(
            "the publisher did not finish within {secs} s + {GRACE:?} and was killed"
        ));
    }
    if !p.ok {
        return Err(format!("the publisher failed; stderr: {}", stderr.trim()));
    }
    if sent.failed > 0 {
        return Err(format!(
            "{} publishes failed or never completed",
            sent.failed
        ));
    }
    if qos > 0 && received < sent.completed {
        return Err(format!(
            "lost {} of {}",
            sent.completed - received,
            sent.completed
        ));
    }
    Ok(())
}

fn sub_stop(arrivals: &Arrivals, sub: std::thread::JoinHandle<()>) -> Result<(), String> {
    arrivals.stop.store(true, Ordering::Relaxed);
    sub.join().map_err(|_| "subscriber panicked".to_owned())
}

/// `compare rate-pub`: the peers' publisher process.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct PubArgs {
    /// `rumqttc` or `paho`.
    #[arg(long)]
    lib: String,
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    #[arg(long)]
    port: u16,
    /// Client ids and topics start with it.
    #[arg(long)]
    prefix: String,
    /// Publisher connections.
    #[arg(long)]
    conns: u32,
    #[arg(long)]
    qos: u8,
    /// Payload bytes.
    #[arg(long)]
    size: usize,
    /// Total msgs/s over all connections; 0: unpaced (saturation).
    #[arg(long)]
    rate: u64,
    /// Seconds of sending.
    #[arg(long)]
    secs: u32,
    /// In-flight window per connection.
    #[arg(long)]
    window: u16,
}

impl PubArgs {
    fn ctx(&self) -> Ctx {
        Ctx {
            host: self.host.clone(),
            port: self.port,
            broker_pid: None,
            prefix: self.prefix.clone(),
            latency_budget: IDLE,
            window: self.window,
            broker_nagle: true,
        }
    }

    /// Messages in all when paced: rate × seconds (`None`: unpaced).
    fn total(&self) -> Option<u64> {
        (self.rate > 0).then(|| self.rate * u64::from(self.secs))
    }

    /// Connection `i`'s rate, msgs/s, when paced.
    fn conn_rate(&self) -> f64 {
        self.rate as f64 / f64::from(self.conns.max(1))
    }
}

/// Runs the peers' publisher and prints one [`Sent`] JSON line.
pub(crate) fn publish(a: &PubArgs) -> Result<Sent, String> {
    match a.lib.as_str() {
        "rumqttc" => rumqttc_pub::run(a),
        "paho" => paho_pub::run(a),
        other => Err(format!("no rate publisher for {other}")),
    }
}

mod rumqttc_pub {
    use super::*;
    use rumqttc::{AsyncClient, Event, MqttOptions, NetworkOptions, Outgoing, Packet, QoS};

    /// Requests rumqttc's channel holds (the comparative harness's setting).
    const CHANNEL: usize = 1000;

    fn qos(q: u8) -> QoS {
        match q {
            0 => QoS::AtMostOnce,
            1 => QoS::AtLeastOnce,
            _ => QoS::ExactlyOnce,
        }
    }

    pub(super) fn run(a: &PubArgs) -> Result<Sent, String> {
        // `tern bench pub`'s runtime: multi-thread, a worker per CPU.
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("runtime: {e}"))?;
        rt.block_on(go(a))
    }

    async fn go(a: &PubArgs) -> Result<Sent, String> {
        let ctx = a.ctx();
        let q = a.qos;
        let completed = Arc::new(AtomicU64::new(0));
        let last_ns = Arc::new(AtomicU64::new(0));
        let t0 = Instant::now();
        let mut clients = Vec::new();
        let mut loops = Vec::new();
        for i in 0..a.conns {
            let mut o = MqttOptions::new(ctx.client_id(&format!("p{i}")), a.host.clone(), a.port);
            o.set_inflight(a.window);
            o.set_keep_alive(Duration::from_secs(60));
            let (c, mut el) = AsyncClient::new(o, CHANNEL);
            let mut net = NetworkOptions::new();
            net.set_tcp_nodelay(true);
            el.set_network_options(net);
            let (tx, rx) = tokio::sync::oneshot::channel();
            let (completed, last_ns) = (completed.clone(), last_ns.clone());
            loops.push(tokio::spawn(async move {
                let mut tx = Some(tx);
                loop {
                    match el.poll().await {
                        Ok(Event::Incoming(Packet::ConnAck(_))) => {
                            if let Some(tx) = tx.take() {
                                let _ = tx.send(Ok(()));
                            }
                        }
                        Ok(ev) => {
                            let done = match ev {
                                Event::Outgoing(Outgoing::Publish(_)) => q == 0,
                                Event::Incoming(Packet::PubAck(_)) => q == 1,
                                Event::Incoming(Packet::PubComp(_)) => q == 2,
                                _ => false,
                            };
                            if done {
                                completed.fetch_add(1, Ordering::Relaxed);
                                last_ns.store(t0.elapsed().as_nanos() as u64, Ordering::Relaxed);
                            }
                        }
                        Err(e) => {
                            if let Some(tx) = tx.take() {
                                let _ = tx.send(Err(format!("connect: {e}")));
                            }
                            return;
                        }
                    }
                }
            }));
            clients.push((c, rx));
        }
        let mut ready = Vec::new();
        for (c, rx) in clients {
            tokio::time::timeout(Duration::from_secs(30), rx)
                .await
                .map_err(|_| "connect timed out".to_owned())?
                .map_err(|_| "event loop ended".to_owned())??;
            ready.push(c);
        }
        let start = Instant::now();
        let start_ns = (start - t0).as_nanos() as u64;
        let end = start + Duration::from_secs(u64::from(a.secs));
        let payload = vec![b'x'; a.size];
        let mut producers = Vec::new();
        for (i, c) in ready.iter().enumerate() {
            let c = c.clone();
            let topic = topic(&ctx, i);
            let payload = payload.clone();
            let count = a.total().map(|t| share(t, a.conns, i as u32));
            let rate = a.conn_rate();
            producers.push(tokio::spawn(async move {
                let mut k = 0u64;
                loop {
                    match count {
                        Some(n) if k >= n => break,
                        Some(_) => {
                            let at = due(start, k, rate);
                            if at > Instant::now() {
                                tokio::time::sleep_until(at.into()).await;
                            }
                        }
                        None if k.is_multiple_of(64) && Instant::now() >= end => break,
                        None => {}
                    }
                    if c.publish(topic.as_str(), qos(q), false, payload.clone())
                        .await
                        .is_err()
                    {
                        break;
                    }
                    k += 1;
                }
                k
            }));
        }
        let mut sent = 0u64;
        for p in producers {
            sent += p.await.map_err(|e| e.to_string())?;
        }
        // Every publish completes, or IDLE passes without progress.
        let mut seen = completed.load(Ordering::Relaxed);
        let mut progress = Instant::now();
        while seen < sent && progress.elapsed() < IDLE {
            tokio::time::sleep(Duration::from_millis(5)).await;
            let now = completed.load(Ordering::Relaxed);
            if now != seen {
                seen = now;
                progress = Instant::now();
            }
        }
        let done = completed.load(Ordering::Relaxed);
        let last = last_ns.load(Ordering::Relaxed).saturating_sub(start_ns);
        for c in &ready {
            let _ = c.try_disconnect();
        }
        Ok(Sent {
            completed: done,
            failed: sent.saturating_sub(done),
            overrun: 0,
            secs: last as f64 / 1e9,
        })
    }
}

mod paho_pub {
    use super::*;
    use paho_mqtt as mqtt;

    pub(super) fn run(a: &PubArgs) -> Result<Sent, String> {
        let ctx = a.ctx();
        let mut clients = Vec::new();
        for i in 0..a.conns {
            let c = mqtt::CreateOptionsBuilder::new_v3()
                .server_uri(format!("tcp://{}:{}", a.host, a.port))
                .client_id(ctx.client_id(&format!("p{i}")))
                .create_client()
                .map_err(|e| format!("create: {e}"))?;
            let opts = mqtt::ConnectOptionsBuilder::new_v3()
                .keep_alive_interval(Duration::from_secs(60))
                .clean_session(true)
                .max_inflight(i32::from(a.window))
                .connect_timeout(Duration::from_secs(30))
                .finalize();
            c.connect(opts)
                .wait_for(Duration::from_secs(30))
                .map_err(|e| format!("connect: {e}"))?;
            clients.push(c);
        }
        let start = Instant::now();
        let end = start + Duration::from_secs(u64::from(a.secs));
        let window = usize::from(a.window).max(1);
        let mut threads = Vec::new();
        for (i, c) in clients.iter().enumerate() {
            let c = c.clone();
            let topic = topic(&ctx, i);
            let payload = vec![b'x'; a.size];
            let count = a.total().map(|t| share(t, a.conns, i as u32));
            let rate = a.conn_rate();
            let q = i32::from(a.qos);
            // Each connection on its own thread: publish when due, at most `window` tokens
            // outstanding (Paho C refuses more than its window).
            threads.push(std::thread::spawn(move || {
                let mut pending: VecDeque<mqtt::DeliveryToken> = VecDeque::with_capacity(window);
                let (mut k, mut done, mut failed) = (0u64, 0u64, 0u64);
                let mut last = start;
                let mut complete = |tok: mqtt::DeliveryToken, done: &mut u64, failed: &mut u64| {
                    if tok.wait_for(IDLE).is_ok() {
                        *done += 1;
                        last = Instant::now();
                    } else {
                        *failed += 1;
                    }
                };
                loop {
                    match count {
                        Some(n) if k >= n => break,
                        Some(_) => {
                            let at = due(start, k, rate);
                            let now = Instant::now();
                            if at > now {
                                std::thread::sleep(at - now);
                            }
                        }
                        None if k.is_multiple_of(64) && Instant::now() >= end => break,
                        None => {}
                    }
                    if pending.len() >= window {
                        let tok = pending.pop_front().expect("window is non-empty");
                        complete(tok, &mut done, &mut failed);
                    }
                    let msg = mqtt::Message::new(topic.as_str(), payload.clone(), q);
                    pending.push_back(c.publish(msg));
                    k += 1;
                }
                for tok in pending {
                    complete(tok, &mut done, &mut failed);
                }
                (done, failed, last)
            }));
        }
        let mut sent = Sent::default();
        let mut last = start;
        for t in threads {
            let (done, failed, l) = t.join().map_err(|_| "publisher thread panicked")?;
            sent.completed += done;
            sent.failed += failed;
            last = last.max(l);
        }
        sent.secs = (last - start).as_secs_f64();
        // Paho C's destroy can deadlock with many clients (see paho_client.rs): the process
        // exits right after printing, without disconnecting.
        std::mem::forget(clients);
        Ok(sent)
    }
}
