//! tern's side of the scenarios, on the scenario's tokio runtime (as rumqttc's).

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tern::{Broker, Client, ClientError, ConnectOptions, Event, Events, Protocol, QoS};

use crate::measure::{Window, new_socket, self_rss, socket_fds};
use crate::record::{Ctx, Record};
use crate::scenario::{Proto, Rt, Scenario};
use crate::{IDLE, Lag, LatencyHist, RUN_LIMIT, Throughput, Wire, connect_concurrency, over_limit};

/// Publishes queued beyond the in-flight window, at most: enough to keep the window full.
const QUEUE_AHEAD: u64 = 1000;

fn qos(q: u8) -> QoS {
    match q {
        0 => QoS::AtMostOnce,
        1 => QoS::AtLeastOnce,
        _ => QoS::ExactlyOnce,
    }
}

/// The runtime a scenario runs on (the multi-thread one with a worker per CPU, tokio's
/// default).
pub fn runtime(rt: Rt) -> tokio::runtime::Runtime {
    match rt {
        Rt::Current => tokio::runtime::Builder::new_current_thread(),
        Rt::Multi => tokio::runtime::Builder::new_multi_thread(),
    }
    .enable_all()
    .build()
    .expect("the runtime builds")
}

async fn connected(ctx: &Ctx, name: &str, proto: Proto) -> Result<(Client, Events), String> {
    let mut opts = ConnectOptions::new(ctx.client_id(name)).max_inflight(ctx.window);
    if proto.is_v5() {
        // Topic Aliases are on by default at level 5.
        opts = opts.protocol(Protocol::V5).topic_aliases(proto.aliases());
    }
    let (c, ev) = Client::new(opts);
    c.connect(Broker::tcp(ctx.host.clone(), ctx.port))
        .await
        .map_err(|e| format!("connect: {e}"))?;
    Ok((c, ev))
}

/// Runs `scenario` with tern.
pub fn run(ctx: &Ctx, scenario: Scenario) -> Record {
    let mut rec = Record::new("tern", &scenario.to_string());
    let rt = runtime(scenario.rt());
    // The scenario runs as a task, as an application's code usually does: a task woken by
    // tern's driver task is queued on the runtime directly, while waking the `block_on`
    // future makes the runtime poll the I/O driver first (one more `epoll_wait`).
    let ctx = ctx.clone();
    let task = async move {
        let result = match scenario {
            Scenario::Throughput {
                qos,
                size,
                count,
                sub,
                proto,
                ..
            } => throughput(&ctx, qos, size, count, sub, proto)
                .await
                .map(|t| t.fill(&mut rec)),
            Scenario::Latency { qos, count, .. } => {
                latency(&ctx, qos, count).await.map(|h| h.fill(&mut rec))
            }
            Scenario::Connections { count } => connections(&ctx, count, &mut rec).await,
            Scenario::Process { .. } | Scenario::Rate { .. } => {
                Err("not a library scenario".to_owned())
            }
        };
        if let Err(e) = result {
            rec.error = Some(e);
        }
        rec
    };
    rt.block_on(async move { tokio::spawn(task).await })
        .unwrap_or_else(|e| {
            let mut rec = Record::new("tern", &scenario.to_string());
            rec.error = Some(format!("scenario task: {e}"));
            rec
        })
}

async fn throughput(
    ctx: &Ctx,
    q: u8,
    size: usize,
    count: u64,
    with_sub: bool,
    proto: Proto,
) -> Result<Throughput, String> {
    let topic = ctx.topic("tp");
    let sub = if with_sub {
        let (sub, sub_ev) = connected(ctx, "sub", proto).await?;
        sub.subscribe([(topic.as_str(), qos(q))])
            .await
            .map_err(|e| format!("subscribe: {e}"))?;
        Some((sub, sub_ev))
    } else {
        None
    };
    let before = socket_fds();
    let (publ, mut pub_ev) = connected(ctx, "pub", proto).await?;
    let wire = Wire::start(new_socket(&before, &socket_fds()));
    let payload = Bytes::from(vec![b'x'; size]);
    let lag = Arc::new(Lag::default());

    let win = Window::start(ctx.broker_pid);
    let t0 = Instant::now();
    let receiver = sub.map(|(sub, mut sub_ev)| {
        let lag = lag.clone();
        tokio::spawn(async move {
            let mut n = 0u64;
            let mut last = t0;
            while n < count {
                match tokio::time::timeout(IDLE, sub_ev.recv()).await {
                    Ok(Some(Event::Message(_))) => {
                        n += 1;
                        lag.received();
                        last = Instant::now();
                    }
                    Ok(Some(_)) => {}
                    Ok(None) | Err(_) => break,
                }
            }
            (n, last, sub)
        })
    });
    let (mut sent, mut done) = (0u64, 0u64);
    while done < count {
        if t0.elapsed() > RUN_LIMIT {
            return Err(over_limit(done, count));
        }
        if sent < count && sent - done < QUEUE_AHEAD {
            match publ.try_publish(&topic, payload.clone(), qos(q), false) {
                Ok(_) => {
                    sent += 1;
                    continue;
                }
                Err(ClientError::QueueFull(_)) => {}
                Err(e) => return Err(format!("publish: {e}")),
            }
        }
        match tokio::time::timeout(IDLE, pub_ev.recv()).await {
            Ok(Some(Event::Completed { result, .. })) => {
                result.map_err(|e| format!("publish completion: {e}"))?;
                done += 1;
                lag.completed(done);
            }
            Ok(Some(_)) => {}
            Ok(None) => return Err("publisher stopped".to_owned()),
            Err(_) => return Err(format!("no completion for {IDLE:?} after {done}")),
        }
    }
    let published = Instant::now();
    let (received, last, sub) = match receiver {
        Some(r) => {
            let (n, last, sub) = r.await.map_err(|e| e.to_string())?;
            (n, last, Some(sub))
        }
        None => (done, published, None),
    };
    let (cpu, broker) = win.finish();
    let sleeps = win.sleeps();
    let wire = wire.and_then(|w| w.finish());
    let _ = publ.close().await;
    if let Some(sub) = sub {
        let _ = sub.close().await;
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
        wire,
    })
}

async fn latency(ctx: &Ctx, q: u8, count: u64) -> Result<LatencyHist, String> {
    let topic = ctx.topic("pp");
    let (c, mut ev) = connected(ctx, "pp", Proto::V311).await?;
    c.subscribe([(topic.as_str(), qos(q))])
        .await
        .map_err(|e| format!("subscribe: {e}"))?;
    let payload = Bytes::from(vec![b'x'; 64]);
    let mut hist = LatencyHist::new(ctx.broker_pid, count, ctx.latency_budget);
    while hist.more() {
        let i = hist.index();
        let t = Instant::now();
        c.try_publish(&topic, payload.clone(), qos(q), false)
            .map_err(|e| format!("publish: {e}"))?;
        loop {
            match tokio::time::timeout(IDLE, ev.recv()).await {
                Ok(Some(Event::Message(_))) => break,
                Ok(Some(Event::Completed { result, .. })) => {
                    result.map_err(|e| format!("publish completion: {e}"))?;
                }
                Ok(Some(_)) => {}
                Ok(None) => return Err("client stopped".to_owned()),
                Err(_) => return Err(format!("round trip {i} timed out")),
            }
        }
        hist.record(t.elapsed());
    }
    hist.finish();
    let _ = c.close().await;
    Ok(hist)
}

async fn connections(ctx: &Ctx, count: u64, rec: &mut Record) -> Result<(), String> {
    let rss0 = self_rss();
    let sem = Arc::new(tokio::sync::Semaphore::new(connect_concurrency()));
    let t0 = Instant::now();
    let mut tasks = Vec::with_capacity(count as usize);
    for i in 0..count {
        let sem = sem.clone();
        let id = ctx.client_id(&format!("c{i}"));
        let broker = Broker::tcp(ctx.host.clone(), ctx.port);
        tasks.push(tokio::spawn(async move {
            let _permit = sem.acquire_owned().await;
            let (c, ev) = Client::new(ConnectOptions::new(id));
            match tokio::time::timeout(Duration::from_secs(30), c.connect(broker)).await {
                Ok(Ok(_)) => Ok((c, ev)),
                Ok(Err(e)) => Err(format!("connection {i}: {e}")),
                Err(_) => Err(format!("connection {i}: timed out")),
            }
        }));
    }
    let mut clients = Vec::with_capacity(count as usize);
    for t in tasks {
        clients.push(t.await.map_err(|e| e.to_string())??);
    }
    let secs = t0.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss1 = self_rss();
    rec.set("connect_secs", secs)
        .set("connections", clients.len() as f64)
        .set(
            "rss_kib_per_conn",
            rss1.saturating_sub(rss0) as f64 / 1024.0 / count as f64,
        );
    Ok(())
}
