//! paho-mqtt 0.14 (bundled Paho C 1.3.16, no TLS)'s side of the scenarios: `AsyncClient`
//! with tokens, the scenario's in-flight window (`max_inflight` and at most as many tokens
//! outstanding),
//! messages read from `start_consuming()`.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use paho_mqtt as mqtt;
use tern_bench::record::{Ctx, Record};
use tern_bench::scenario::Scenario;
use tern_bench::{
    IDLE, Lag, LatencyHist, RUN_LIMIT, Throughput, connect_concurrency, measure, over_limit,
};

fn client(ctx: &Ctx, name: &str) -> Result<mqtt::AsyncClient, String> {
    mqtt::CreateOptionsBuilder::new_v3()
        .server_uri(format!("tcp://{}:{}", ctx.host, ctx.port))
        .client_id(ctx.client_id(name))
        .create_client()
        .map_err(|e| format!("create: {e}"))
}

fn conn_opts(ctx: &Ctx) -> mqtt::ConnectOptions {
    mqtt::ConnectOptionsBuilder::new_v3()
        .keep_alive_interval(Duration::from_secs(60))
        .clean_session(true)
        .max_inflight(i32::from(ctx.window))
        .connect_timeout(Duration::from_secs(30))
        .finalize()
}

fn wait(tok: mqtt::Token, what: &str) -> Result<(), String> {
    tok.wait_for(Duration::from_secs(30))
        .map(|_| ())
        .map_err(|e| format!("{what}: {e}"))
}

pub(crate) fn run(ctx: &Ctx, scenario: Scenario) -> Record {
    let mut rec = Record::new("paho", &scenario.to_string());
    let result = match scenario {
        Scenario::Throughput {
            qos,
            size,
            count,
            sub,
            ..
        } => throughput(ctx, qos, size, count, sub).map(|t| t.fill(&mut rec)),
        Scenario::Latency { qos, count, .. } => latency(ctx, qos, count).map(|h| h.fill(&mut rec)),
        Scenario::Connections { count } => connections(ctx, count, &mut rec),
        Scenario::Process { .. } | Scenario::Rate { .. } => {
            Err("not a library scenario".to_owned())
        }
    };
    if let Err(e) = result {
        rec.error = Some(e);
    }
    rec
}

fn throughput(
    ctx: &Ctx,
    q: u8,
    size: usize,
    count: u64,
    with_sub: bool,
) -> Result<Throughput, String> {
    let topic = ctx.topic("tp");
    let sub = if with_sub {
        let sub = client(ctx, "sub")?;
        let rx = sub.start_consuming();
        wait(sub.connect(conn_opts(ctx)), "connect")?;
        sub.subscribe(topic.as_str(), q as i32)
            .wait_for(IDLE)
            .map_err(|e| format!("subscribe: {e}"))?;
        Some((sub, rx))
    } else {
        None
    };
    let publ = client(ctx, "pub")?;
    wait(publ.connect(conn_opts(ctx)), "connect")?;
    let payload = vec![b'x'; size];
    let lag = Arc::new(Lag::default());

    let win = measure::Window::start(ctx.broker_pid);
    let t0 = Instant::now();
    let (sub, receiver) = match sub {
        Some((sub, rx)) => {
            let lag = lag.clone();
            let receiver = std::thread::spawn(move || {
                let mut n = 0u64;
                let mut last = t0;
                while n < count {
                    match rx.recv_timeout(IDLE) {
                        Ok(Some(_)) => {
                            n += 1;
                            lag.received();
                            last = Instant::now();
                        }
                        Ok(None) | Err(_) => break,
                    }
                }
                (n, last)
            });
            (Some(sub), Some(receiver))
        }
        None => (None, None),
    };
    let window = usize::from(ctx.window);
    let mut pending: VecDeque<mqtt::DeliveryToken> = VecDeque::with_capacity(window);
    let mut done = 0u64;
    for _ in 0..count {
        if t0.elapsed() > RUN_LIMIT {
            return Err(over_limit(done, count));
        }
        if pending.len() >= window {
            let tok = pending.pop_front().expect("window is non-empty");
            tok.wait_for(IDLE).map_err(|e| format!("publish: {e}"))?;
            done += 1;
            lag.completed(done);
        }
        let msg = mqtt::Message::new(topic.as_str(), payload.clone(), q as i32);
        pending.push_back(publ.publish(msg));
    }
    for tok in pending {
        tok.wait_for(IDLE).map_err(|e| format!("publish: {e}"))?;
        done += 1;
        lag.completed(done);
    }
    let published = Instant::now();
    let (received, last) = match receiver {
        Some(r) => r.join().map_err(|_| "receiver panicked".to_owned())?,
        None => (done, published),
    };
    let (cpu, broker) = win.finish();
    let sleeps = win.sleeps();
    let _ = publ.disconnect(None).wait_for(IDLE);
    if let Some(sub) = sub {
        let _ = sub.disconnect(None).wait_for(IDLE);
    }
    Ok(Throughput {
        count,
        size,
        received,
        secs: (last - t0).as_secs_f64(),
        cpu,
        broker,
        max_lag: with_sub.then(|| lag.max()),
        sleeps,
        wire: None,
    })
}

fn latency(ctx: &Ctx, q: u8, count: u64) -> Result<LatencyHist, String> {
    let topic = ctx.topic("pp");
    let c = client(ctx, "pp")?;
    let rx = c.start_consuming();
    wait(c.connect(conn_opts(ctx)), "connect")?;
    c.subscribe(topic.as_str(), q as i32)
        .wait_for(IDLE)
        .map_err(|e| format!("subscribe: {e}"))?;
    let payload = vec![b'x'; 64];
    let mut hist = LatencyHist::new(ctx.broker_pid, count, ctx.latency_budget);
    while hist.more() {
        let i = hist.index();
        let t = Instant::now();
        let _tok = c.publish(mqtt::Message::new(
            topic.as_str(),
            payload.clone(),
            q as i32,
        ));
        match rx.recv_timeout(IDLE) {
            Ok(Some(_)) => {}
            Ok(None) => return Err(format!("round trip {i}: disconnected")),
            Err(_) => return Err(format!("round trip {i} timed out")),
        }
        hist.record(t.elapsed());
    }
    hist.finish();
    let _ = c.disconnect(None).wait_for(IDLE);
    Ok(hist)
}

fn connections(ctx: &Ctx, count: u64, rec: &mut Record) -> Result<(), String> {
    let rss0 = measure::self_rss();
    let t0 = Instant::now();
    // Destroying hundreds of Paho C clients deadlocks (MQTTAsync_destroy blocks in
    // Socket_interrupt on a full interrupt socket while its threads wait on the global
    // mutex), on success and on error alike: they are leaked, and the process exits right
    // after printing.
    let clients: &mut Vec<mqtt::AsyncClient> =
        Box::leak(Box::new(Vec::with_capacity(count as usize)));
    let mut pending: VecDeque<(u64, mqtt::Token)> = VecDeque::new();
    for i in 0..count {
        if pending.len() >= connect_concurrency() {
            let (j, tok) = pending.pop_front().expect("non-empty");
            wait(tok, &format!("connection {j}"))?;
        }
        let c = client(ctx, &format!("c{i}"))?;
        pending.push_back((i, c.connect(conn_opts(ctx))));
        clients.push(c);
    }
    for (j, tok) in pending {
        wait(tok, &format!("connection {j}"))?;
    }
    let secs = t0.elapsed().as_secs_f64();
    std::thread::sleep(Duration::from_millis(500));
    let rss1 = measure::self_rss();
    rec.set("connect_secs", secs)
        .set("connections", clients.len() as f64)
        .set(
            "rss_kib_per_conn",
            rss1.saturating_sub(rss0) as f64 / 1024.0 / count as f64,
        );
    Ok(())
}
