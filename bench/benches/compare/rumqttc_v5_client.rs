//! rumqttc 0.25's MQTT 5 client (`rumqttc::v5`) in the level 5 throughput scenarios:
//! `AsyncClient` + `EventLoop` on the scenario's runtime, TCP_NODELAY on, the in-flight
//! window capped at the scenario's (the broker's Receive Maximum caps it too).
//!
//! rumqttc has no automatic Topic Aliases: the application sets the `topic_alias` property
//! and sends an empty topic itself. `v5alias` does that as a user would: the first PUBLISH
//! carries the topic and alias 1, every later one alias 1 and an empty topic.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rumqttc::NetworkOptions;
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::mqttbytes::v5::{Packet, PublishProperties};
use rumqttc::v5::{AsyncClient, Event, EventLoop, MqttOptions};
use tern_bench::record::{Ctx, Record};
use tern_bench::scenario::{Proto, Scenario};
use tern_bench::tern_client::runtime;
use tern_bench::{IDLE, Lag, RUN_LIMIT, Throughput, Wire, measure, over_limit};

/// The alias the publisher uses in `v5alias` (mosquitto allows 10 by default).
const ALIAS: u16 = 1;

fn qos(q: u8) -> QoS {
    match q {
        0 => QoS::AtMostOnce,
        1 => QoS::AtLeastOnce,
        _ => QoS::ExactlyOnce,
    }
}

fn client(ctx: &Ctx, name: &str, cap: usize) -> (AsyncClient, EventLoop) {
    let mut o = MqttOptions::new(ctx.client_id(name), ctx.host.clone(), ctx.port);
    o.set_outgoing_inflight_upper_limit(ctx.window);
    o.set_max_packet_size(Some(1 << 20));
    o.set_keep_alive(Duration::from_secs(60));
    let mut net = NetworkOptions::new();
    net.set_tcp_nodelay(true);
    o.set_network_options(net);
    AsyncClient::new(o, cap)
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
                proto,
                ..
            } => throughput(ctx, qos, size, count, sub, proto)
                .await
                .map(|t| t.fill(&mut rec)),
            _ => Err("MQTT 5 runs the throughput scenarios only".to_owned()),
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
    proto: Proto,
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
    let payload = bytes::Bytes::from(vec![b'x'; size]);
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
            for i in 0..count {
                let sent = if proto.aliases() {
                    let props = PublishProperties {
                        topic_alias: Some(ALIAS),
                        ..PublishProperties::default()
                    };
                    let t = if i == 0 { topic.as_str() } else { "" };
                    publ.publish_with_properties(t, qos(q), false, payload.clone(), props)
                        .await
                } else {
                    publ.publish(topic.as_str(), qos(q), false, payload.clone())
                        .await
                };
                if sent.is_err() {
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
