//! rumqttc 0.25's side of the scenarios: `AsyncClient` + `EventLoop` on the scenario's
//! runtime, TCP_NODELAY on, the scenario's in-flight window, packet limits raised for 16 KiB
//! payloads.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rumqttc::{AsyncClient, Event, EventLoop, MqttOptions, NetworkOptions, Packet, QoS};
use tern_bench::record::{Ctx, Record};
use tern_bench::scenario::Scenario;
use tern_bench::tern_client::runtime;
use tern_bench::{
    IDLE, Lag, LatencyHist, RUN_LIMIT, Throughput, Wire, connect_concurrency, measure, over_limit,
};

fn qos(q: u8) -> QoS {
    match q {
        0 => QoS::AtMostOnce,
        1 => QoS::AtLeastOnce,
        _ => QoS::ExactlyOnce,
    }
}

fn client(ctx: &Ctx, name: &str, cap: usize) -> (AsyncClient, EventLoop) {
    let mut o = MqttOptions::new(ctx.client_id(name), ctx.host.clone(), ctx.port);
    o.set_inflight(ctx.window);
    o.set_max_packet_size(1 << 20, 1 << 20);
    o.set_keep_alive(Duration::from_secs(60));
    let (c, mut el) = AsyncClient::new(o, cap);
    let mut net = NetworkOptions::new();
    net.set_tcp_nodelay(true);
    el.set_network_options(net);
    (c, el)
}

/// Polls until CONNACK.
async fn connack(el: &mut EventLoop) -> Result<(), String> {
    loop {
        match tokio::time::timeout(Duration::from_secs(30), el.poll()).await {
            Ok(Ok(Event::Incoming(Packet::ConnAck(_)))) => return Ok(()),
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(format!("connect: {e}")),
            Err(_) => return Err("connect timed out".to_owned()),
        }
    }
}

/// Polls until SUBACK.
async fn suback(el: &mut EventLoop) -> Result<(), String> {
    loop {
        match tokio::time::timeout(IDLE, el.poll()).await {
            Ok(Ok(Event::Incoming(Packet::SubAck(_)))) => return Ok(()),
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(format!("subscribe: {e}")),
            Err(_) => return Err("subscribe timed out".to_owned()),
        }
    }
}

pub(crate) fn run(ctx: &Ctx, scenario: Scenario) -> Record {
    let mut rec = Record::new("rumqttc", &scenario.to_string());
    let rt = runtime(scenario.rt());
    let result = rt.block_on(async {
        match scenario {
            Scenario::Throughput {
                qos,
                size,
                count,
                sub,
                ..
            } => throughput(ctx, qos, size, count, sub)
                .await
                .map(|t| t.fill(&mut rec)),
            Scenario::Latency { qos, count, .. } => {
                latency(ctx, qos, count).await.map(|h| h.fill(&mut rec))
            }
            Scenario::Connections { count } => connections(ctx, count, &mut rec).await,
            Scenario::Process { .. } | Scenario::Rate { .. } => {
                Err("not a library scenario".to_owned())
            }
        }
    });
    if let Err(e) = result {
        rec.error = Some(e);
    }
    rec
}

async fn throughput(
    ctx: &Ctx,
    q: u8,
    size: usize,
    count: u64,
    with_sub: bool,
) -> Result<Throughput, String> {
    let topic = ctx.topic("tp");
    let sub = if with_sub {
        let (sub, mut sub_el) = client(ctx, "sub", 10);
        connack(&mut sub_el).await?;
        sub.subscribe(topic.clone(), qos(q))
            .await
            .map_err(|e| e.to_string())?;
        suback(&mut sub_el).await?;
        Some((sub, sub_el))
    } else {
        None
    };
    let before = measure::socket_fds();
    let (publ, mut pub_el) = client(ctx, "pub", 1000);
    connack(&mut pub_el).await?;
    let wire = Wire::start(measure::new_socket(&before, &measure::socket_fds()));
    let payload = vec![b'x'; size];
    let lag = Arc::new(Lag::default());

    let win = measure::Window::start(ctx.broker_pid);
    let t0 = Instant::now();
    let receiver = sub.map(|(sub, mut sub_el)| {
        let lag = lag.clone();
        tokio::spawn(async move {
            let mut n = 0u64;
            let mut last = t0;
            while n < count {
                match tokio::time::timeout(IDLE, sub_el.poll()).await {
                    Ok(Ok(Event::Incoming(Packet::Publish(_)))) => {
                        n += 1;
                        lag.received();
                        last = Instant::now();
                    }
                    Ok(Ok(_)) => {}
                    Ok(Err(_)) | Err(_) => break,
                }
            }
            (n, last, sub, sub_el)
        })
    });
    // The event loop sends; this task queues (bounded channel of 1000).
    let producer = {
        let publ = publ.clone();
        let topic = topic.clone();
        tokio::spawn(async move {
            for _ in 0..count {
                if publ
                    .publish(topic.as_str(), qos(q), false, payload.clone())
                    .await
                    .is_err()
                {
                    break;
                }
            }
        })
    };
    // Completion: QoS 0 when written, 1 at PUBACK, 2 at PUBCOMP.
    let mut done = 0u64;
    while done < count {
        if t0.elapsed() > RUN_LIMIT {
            return Err(over_limit(done, count));
        }
        let before = done;
        match tokio::time::timeout(IDLE, pub_el.poll()).await {
            Ok(Ok(Event::Outgoing(rumqttc::Outgoing::Publish(_)))) if q == 0 => done += 1,
            Ok(Ok(Event::Incoming(Packet::PubAck(_)))) if q == 1 => done += 1,
            Ok(Ok(Event::Incoming(Packet::PubComp(_)))) if q == 2 => done += 1,
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(format!("publisher: {e}")),
            Err(_) => return Err(format!("publisher stalled after {done}")),
        }
        if done != before {
            lag.completed(done);
        }
    }
    let published = Instant::now();
    let _ = producer.await;
    let (received, last) = match receiver {
        Some(r) => {
            let (n, last, _sub, _sub_el) = r.await.map_err(|e| e.to_string())?;
            (n, last)
        }
        None => (done, published),
    };
    let (cpu, broker) = win.finish();
    let sleeps = win.sleeps();
    let wire = wire.and_then(|w| w.finish());
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
    let (c, mut el) = client(ctx, "pp", 10);
    connack(&mut el).await?;
    c.subscribe(topic.clone(), qos(q))
        .await
        .map_err(|e| e.to_string())?;
    suback(&mut el).await?;
    let payload = vec![b'x'; 64];
    let mut hist = LatencyHist::new(ctx.broker_pid, count, ctx.latency_budget);
    while hist.more() {
        let i = hist.index();
        let t = Instant::now();
        c.try_publish(topic.as_str(), qos(q), false, payload.clone())
            .map_err(|e| format!("publish: {e}"))?;
        loop {
            match tokio::time::timeout(IDLE, el.poll()).await {
                Ok(Ok(Event::Incoming(Packet::Publish(_)))) => break,
                Ok(Ok(_)) => {}
                Ok(Err(e)) => return Err(format!("round trip {i}: {e}")),
                Err(_) => return Err(format!("round trip {i} timed out")),
            }
        }
        hist.record(t.elapsed());
    }
    hist.finish();
    Ok(hist)
}

async fn connections(ctx: &Ctx, count: u64, rec: &mut Record) -> Result<(), String> {
    let rss0 = measure::self_rss();
    let sem = Arc::new(tokio::sync::Semaphore::new(connect_concurrency()));
    let t0 = Instant::now();
    let mut tasks = Vec::with_capacity(count as usize);
    for i in 0..count {
        let sem = sem.clone();
        let (c, mut el) = client(ctx, &format!("c{i}"), 10);
        let (tx, rx) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            let permit = sem.acquire_owned().await;
            let r = connack(&mut el).await;
            drop(permit);
            let ok = r.is_ok();
            let _ = tx.send(r.map(|()| c));
            // Keep the connection serviced (keepalive) for the rest of the run.
            while ok && el.poll().await.is_ok() {}
        });
        tasks.push(rx);
    }
    let mut clients = Vec::with_capacity(count as usize);
    for (i, rx) in tasks.into_iter().enumerate() {
        let c = rx
            .await
            .map_err(|_| format!("connection {i}: task ended"))?
            .map_err(|e| format!("connection {i}: {e}"))?;
        clients.push(c);
    }
    let secs = t0.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss1 = measure::self_rss();
    rec.set("connect_secs", secs)
        .set("connections", clients.len() as f64)
        .set(
            "rss_kib_per_conn",
            rss1.saturating_sub(rss0) as f64 / 1024.0 / count as f64,
        );
    Ok(())
}
