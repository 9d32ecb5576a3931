//! The runs: connections opened at the `-R`/`-i` pace, then publishers driven by one
//! [`Pacer`], subscribers accounting what arrives, or connections held (and churned).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::{Duration, SystemTime};

use bytes::BytesMut;
use tern::{
    Client, ClientError, ConnectError, ConnectionError, Event, Events, Outcome, RequestError,
    SubscribeReturnCode, Subscription,
};
use tokio::sync::{Notify, mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::args::{Opts, Role};
use super::header::{self, Header};
use super::pace::Pacer;
use super::stats::{Counter, Reason, Reporter, Stage, Stats};
use super::streams::Streams;
use super::target::Target;
use super::topic::Fill;
use crate::mosq::{Fatal, exit};
use crate::pubcmd::with_properties;

/// How long a finished publisher waits for its last acknowledgements.
const DRAIN: Duration = Duration::from_secs(30);

/// How long stopping clients may take before the run ends anyway.
const CLOSE: Duration = Duration::from_secs(10);

/// Most publishes one publisher holds queued and not completed: its client's queue
/// (`max_queued`). A paced message due while its publisher holds this many is counted
/// `pub_overrun` (the asked rate outran the broker) instead of queued behind them.
pub(super) const PUB_QUEUE: usize = 10_000;

/// QoS 0 publishes one saturating publisher keeps queued ahead of its socket.
const QOS0_AHEAD: i64 = 1024;

/// What every task of a run shares.
#[derive(Clone)]
struct Ctx {
    o: Arc<Opts>,
    target: Arc<Target>,
    stats: Arc<Stats>,
    stop: watch::Receiver<bool>,
    /// A role's "finished" (pub: everything sent and acknowledged, with the publishing
    /// time; sub: `-L` messages received).
    done: mpsc::Sender<Option<Duration>>,
    /// Subscribers that heard every publisher's last message (`--until-last`); publishers
    /// whose connection is gone for good.
    finished: Arc<std::sync::atomic::AtomicU64>,
}

/// Runs `tern bench pub|sub|conn` to the end; the summary is printed either way.
pub(crate) fn run(o: Opts) -> Result<(), Fatal> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Fatal::new(exit::ERROR, format!("Error: cannot start the runtime: {e}")))?;
    rt.block_on(go(Arc::new(o)))
}

fn fatal(e: impl std::fmt::Display) -> Fatal {
    Fatal::new(exit::ERROR, format!("Error: {e}"))
}

async fn go(o: Arc<Opts>) -> Result<(), Fatal> {
    let target = Arc::new(Target::new(o.clone()).map_err(fatal)?);
    let streams = match &o.state {
        Some(p) if p.exists() => {
            let text = std::fs::read_to_string(p)
                .map_err(|e| fatal(format!("cannot read {}: {e}", p.display())))?;
            let v =
                serde_json::from_str(&text).map_err(|e| fatal(format!("{}: {e}", p.display())))?;
            Streams::from_json(&v).map_err(|e| fatal(format!("{}: {e}", p.display())))?
        }
        _ => Streams::default(),
    };
    let tag = if o.role == Role::Conn {
        "connect"
    } else {
        "latency"
    };
    let stats = Arc::new(Stats::new(tag, streams));
    let bar_len = match o.role {
        Role::Pub => total_messages(&o),
        Role::Sub => o.limit,
        Role::Conn => Some(u64::from(o.count)),
    };
    let mut reporter = Reporter::new(o.json.as_deref(), o.hdr.as_deref(), o.quiet, bar_len, tag)
        .map(|r| r.with_established(o.role == Role::Conn))
        .map_err(|e| fatal(format!("cannot open an output file: {e}")))?;
    let (stop_tx, stop) = watch::channel(false);
    let (done, mut done_rx) = mpsc::channel(4);
    let ctx = Ctx {
        o: o.clone(),
        target,
        stats: stats.clone(),
        stop,
        done,
        finished: Arc::default(),
    };
    let run_start = Instant::now();
    let mut role = tokio::spawn(async move {
        match ctx.o.role {
            Role::Pub => publish(ctx).await,
            Role::Sub => subscribe(ctx).await,
            Role::Conn => hold(ctx).await,
        }
    });
    let deadline = match o.role {
        // A publisher's --duration is its message count (rate × duration).
        Role::Pub => None,
        Role::Sub | Role::Conn => o.duration.map(|d| start_instant(&o) + d),
    };
    let mut signals = Signals::new();
    let progress = |s: &Stats| match o.role {
        Role::Pub => s.get(Counter::Pub),
        Role::Sub => s.get(Counter::Recv),
        Role::Conn => s.get(Counter::ConnectSucc),
    };
    let mut elapsed = None;
    let mut interrupted = false;
    // A finished JoinHandle must not be polled again.
    let mut role_ended = false;
    loop {
        let tick = reporter.next_tick();
        tokio::select! {
            () = tokio::time::sleep_until(tick) => {
                reporter.tick(&stats, progress(&stats)).map_err(fatal)?;
            }
            () = signals.recv() => {
                interrupted = true;
                break;
            }
            () = sleep_until_opt(deadline) => break,
            d = done_rx.recv() => {
                elapsed = d.flatten();
                break;
            }
            _ = &mut role => {
                role_ended = true;
                break;
            }
        }
    }
    let _ = stop_tx.send(true);
    if !role_ended {
        let _ = tokio::time::timeout(CLOSE, &mut role).await;
    }
    let elapsed = elapsed.unwrap_or_else(|| run_start.elapsed());
    let summary = stats.summary(elapsed);
    reporter
        .finish(&stats, &summary, progress(&stats))
        .map_err(fatal)?;
    if let Some(p) = &o.state {
        std::fs::write(p, format!("{}\n", stats.streams_json()))
            .map_err(|e| fatal(format!("cannot write {}: {e}", p.display())))?;
    }
    if let (Role::Pub, Some(total), false) = (o.role, total_messages(&o), interrupted) {
        let done = stats.get(Counter::Pub);
        if done < total && stats.get(Counter::ConnectSucc) > 0 {
            return Err(Fatal::new(
                exit::ERROR,
                format!("Error: {done} of {total} messages published (see the summary)"),
            ));
        }
    }
    if stats.get(Counter::ConnectSucc) == 0
        && let Some((_, code, _, msg)) =
            stats.failures().into_iter().find(|f| f.0 == Stage::Connect)
    {
        // A refusal's text already ends in its code: "... not authorised (5)", "... Not
        // authorized (0x87)".
        let (exit, message) = if code.is_refusal() {
            (exit::REFUSED, format!("Connection error: {msg}"))
        } else {
            (
                exit::CONNECT_FAILED,
                format!("Connection error: {msg} ({code})"),
            )
        };
        return Err(Fatal::new(exit, message));
    }
    Ok(())
}

async fn sleep_until_opt(t: Option<Instant>) {
    match t {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}

/// SIGINT and SIGTERM end a run with its summary.
struct Signals {
    int: Option<tokio::signal::unix::Signal>,
    term: Option<tokio::signal::unix::Signal>,
}

impl Signals {
    fn new() -> Self {
        use tokio::signal::unix::{SignalKind, signal};
        Self {
            int: signal(SignalKind::interrupt()).ok(),
            term: signal(SignalKind::terminate()).ok(),
        }
    }

    async fn recv(&mut self) {
        async fn one(s: &mut Option<tokio::signal::unix::Signal>) {
            match s {
                Some(s) => {
                    s.recv().await;
                }
                None => std::future::pending().await,
            }
        }
        tokio::select! {
            () = one(&mut self.int) => {}
            () = one(&mut self.term) => {}
        }
    }
}

/// `--start-at` as a tokio instant (now when absent or past).
fn start_instant(o: &Opts) -> Instant {
    let wait = o
        .start_at
        .and_then(|t| t.duration_since(SystemTime::now()).ok())
        .unwrap_or_default();
    Instant::now() + wait
}

/// Messages a publisher run sends in all: `-L`, `--rate × --duration`, or the smaller
/// (saturating: `-L` only).
fn total_messages(o: &Opts) -> Option<u64> {
    // Saturating (no rate): `--duration` is a time, not a count.
    let by_time = o
        .duration
        .zip(o.msg_rate())
        .map(|(d, rate)| (rate * d.as_secs_f64()).floor() as u64);
    match (o.limit, by_time) {
        (Some(l), Some(t)) => Some(l.min(t)),
        (l, t) => l.or(t),
    }
}

/// Connects client `index`; counts the outcome.
async fn connect(ctx: &Ctx, index: u64) -> Option<(Client, Events)> {
    let (options, broker) = ctx.target.connection(index);
    let (client, events) = Client::new(options);
    let started = Instant::now();
    match client.connect(broker).await {
        Ok(_) => {
            ctx.stats.inc(Counter::ConnectSucc);
            ctx.stats.link(true);
            if ctx.o.role == Role::Conn {
                ctx.stats.latency(started.elapsed());
            }
            Some((client, events))
        }
        Err(e) => {
            ctx.stats.connect_failed(connect_reason(&e), e.to_string());
            None
        }
    }
}

/// A failed connection's reason code: an MQTT 5 CONNACK's own, else the seed's.
fn connect_reason(e: &ConnectError) -> Reason {
    match e {
        ConnectError::RefusedV5(ack) => Reason::Code(ack.reason.to_u8()),
        e => Reason::Seed(e.code()),
    }
}

/// The reason code of a publish the broker refused (MQTT 5 PUBACK or PUBREC >= 0x80, PUBCOMP
/// 0x92); `None` for failures without one (a session lost, a queue closed).
fn publish_reason(e: &ClientError) -> Option<Reason> {
    match e {
        ClientError::Request(
            RequestError::PubAckRefused { code, .. } | RequestError::PubRecRefused { code, .. },
        ) => Some(Reason::Code(code.to_u8())),
        ClientError::Request(RequestError::PubCompRefused { code, .. }) => {
            Some(Reason::Code(code.to_u8()))
        }
        _ => None,
    }
}

/// Opens `-c` connections at the `-R`/`-i` pace from `start`, one task each.
async fn open_all<F, Fut>(ctx: &Ctx, start: Instant, per_conn: F) -> JoinSet<()>
where
    F: Fn(u64, u64) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let mut pacer = Pacer::new(start, ctx.o.conn_pace.rate(), Some(u64::from(ctx.o.count)));
    let mut set = JoinSet::new();
    let mut stop = ctx.stop.clone();
    while !pacer.done() {
        let batch = tokio::select! {
            b = pacer.tick() => b,
            _ = stop.changed() => break,
        };
        for k in batch {
            set.spawn(per_conn(k, ctx.o.start + k));
        }
    }
    set
}

/// One publisher's client and where its messages go.
struct Publisher {
    index: u64,
    /// Its client id, for `%c` in `%rand_N` topics expanded per message.
    id: String,
    client: Client,
    topic: String,
    seq: u64,
    flight: Arc<Flight>,
}

/// A publisher's publishes queued and not completed yet, shared with the task that counts
/// its completions.
struct Flight {
    /// Queued less completed (signed: a completion may be counted before its queueing).
    outstanding: AtomicI64,
    /// The connection is gone for good: nothing it holds will complete.
    gone: AtomicBool,
    /// Woken at each completion of any publisher, and when one is gone (one for the run:
    /// the sending loop waits only when no publisher has room).
    room: Arc<Notify>,
}

impl Flight {
    fn new(room: Arc<Notify>) -> Self {
        Self {
            outstanding: AtomicI64::new(0),
            gone: AtomicBool::new(false),
            room,
        }
    }

    fn has_room(&self, cap: i64) -> bool {
        self.outstanding.load(Ordering::Relaxed) < cap
    }

    fn is_gone(&self) -> bool {
        self.gone.load(Ordering::Relaxed)
    }

    fn completed(&self) {
        self.outstanding.fetch_sub(1, Ordering::Relaxed);
        self.room.notify_one();
    }
}

/// What one message of a run is made of, besides its publisher.
struct Make<'a> {
    o: &'a Opts,
    body: &'a [u8],
    run: u64,
    user: &'a str,
}

impl Make<'_> {
    /// Builds publisher `p`'s next message and queues it; false when it was not queued
    /// (counted as an overrun or a failure).
    fn send(
        &self,
        ctx: &Ctx,
        p: &mut Publisher,
        rng: &mut fastrand::Rng,
        sent_ns: u64,
        last: bool,
    ) -> bool {
        let o = self.o;
        let mut payload = BytesMut::from(self.body);
        Header {
            run: self.run,
            publisher: p.index,
            seq: p.seq,
            sent_ns,
            last,
        }
        .write(&mut payload);
        let topic = match &o.topic {
            Some(t) if !t.is_fixed() => t.expand(
                Fill {
                    index: p.index,
                    client_id: &p.id,
                    user: self.user,
                },
                rng,
            ),
            _ => p.topic.clone(),
        };
        let queued = if o.props.any {
            p.client.try_publish_with(with_properties(
                tern::Publish::new(topic, payload.freeze())
                    .qos(o.qos)
                    .retain(o.retain),
                &o.props.publish,
            ))
        } else {
            p.client
                .try_publish(&topic, payload.freeze(), o.qos, o.retain)
        };
        match queued {
            Ok(_) => {
                // Sequence numbers count what was queued: a subscriber's gaps are losses.
                p.seq += 1;
                p.flight.outstanding.fetch_add(1, Ordering::Relaxed);
                true
            }
            Err(ClientError::QueueFull(_)) => {
                ctx.stats.inc(Counter::PubOverrun);
                false
            }
            Err(_) => {
                ctx.stats.inc(Counter::PubFail);
                false
            }
        }
    }
}

async fn publish(ctx: Ctx) {
    let o = ctx.o.clone();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let room = Arc::new(Notify::new());
    let conns = {
        let ctx2 = ctx.clone();
        let room = room.clone();
        open_all(&ctx, Instant::now(), move |_, index| {
            let ctx = ctx2.clone();
            let tx = tx.clone();
            let room = room.clone();
            async move {
                let Some((client, events)) = connect(&ctx, index).await else {
                    let _ = tx.send(None);
                    return;
                };
                let flight = Arc::new(Flight::new(room));
                let _ = tx.send(Some((index, client.clone(), flight.clone())));
                drain_publisher(&ctx, client, events, &flight).await;
            }
        })
        .await
    };
    let mut rng = fastrand::Rng::new();
    let mut pubs = Vec::new();
    let mut stop = ctx.stop.clone();
    for _ in 0..o.count {
        let r = tokio::select! {
            r = rx.recv() => r,
            _ = stop.changed() => return,
        };
        match r {
            Some(Some((index, client, flight))) => {
                let id = o.client_id(index);
                let user = o.username.clone().unwrap_or_default();
                let topic = o.topic.as_ref().map_or_else(String::new, |t| {
                    t.expand(
                        Fill {
                            index,
                            client_id: &id,
                            user: &user,
                        },
                        &mut rng,
                    )
                });
                pubs.push(Publisher {
                    index,
                    id,
                    client,
                    topic,
                    seq: 0,
                    flight,
                });
            }
            Some(None) => {}
            None => break,
        }
    }
    if pubs.is_empty() {
        // Nothing connected: the summary tells why.
        let _ = ctx.done.send(None).await;
        return;
    }
    pubs.sort_by_key(|p| p.index);
    let body = match &o.payload_file {
        Some(p) => match std::fs::read(p) {
            Ok(b) => {
                let mut v = vec![0u8; header::LEN];
                v.extend_from_slice(&b);
                v
            }
            Err(e) => {
                crate::mosq::err_line(format_args!("Error: cannot read {}: {e}", p.display()));
                let _ = ctx.done.send(None).await;
                return;
            }
        },
        None => {
            let mut v = vec![0u8; o.size];
            rng.fill(&mut v);
            v
        }
    };
    let start = start_instant(&o);
    let total = total_messages(&o);
    let make = Make {
        o: &o,
        body: &body,
        run: fastrand::u64(..),
        user: o.username.as_deref().unwrap_or_default(),
    };
    let sent = match o.msg_rate() {
        Some(rate) => paced(&ctx, &make, &mut pubs, start, rate, total, &mut rng).await,
        None => saturating(&ctx, &make, &mut pubs, &room, start, total, &mut rng).await,
    };
    // Every publish queued completes (or fails) before the run ends.
    let deadline = Instant::now() + DRAIN;
    while ctx.stats.get(Counter::Pub) + ctx.stats.get(Counter::PubFail) < sent
        && ctx.finished.load(Ordering::Relaxed) < pubs.len() as u64
        && Instant::now() < deadline
        && !*stop.borrow()
    {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let completed = ctx.stats.get(Counter::Pub) + ctx.stats.get(Counter::PubFail);
    ctx.stats
        .add(Counter::PubUnfinished, sent.saturating_sub(completed));
    let _ = ctx.done.send(Some(start.elapsed())).await;
    let _ = stop.wait_for(|stopped| *stopped).await;
    drop(pubs);
    conns.join_all().await;
}

/// Publishes on the pacer's schedule from `start`, round-robin over `pubs`; returns how
/// many were queued.
async fn paced(
    ctx: &Ctx,
    make: &Make<'_>,
    pubs: &mut [Publisher],
    start: Instant,
    rate: f64,
    total: Option<u64>,
    rng: &mut fastrand::Rng,
) -> u64 {
    let start_ns =
        u128::from(header::now_ns()) + start.saturating_duration_since(Instant::now()).as_nanos();
    let mut pacer = Pacer::new(start, Some(rate), total);
    let mut stop = ctx.stop.clone();
    let n = pubs.len() as u64;
    let mut sent = 0u64;
    loop {
        let batch = tokio::select! {
            b = pacer.tick() => b,
            _ = stop.changed() => break,
        };
        // Nothing to send when no publisher has a connection left.
        if batch.is_empty() || ctx.finished.load(Ordering::Relaxed) >= n {
            break;
        }
        for j in batch {
            let p = &mut pubs[(j % n) as usize];
            let last = total.is_some_and(|t| j + n >= t);
            if p.flight.is_gone() {
                // Its connection is gone for good: this message cannot be published.
                ctx.stats.inc(Counter::PubFail);
                continue;
            }
            if !last && !p.flight.has_room(PUB_QUEUE as i64) {
                // The broker takes less than asked: not queued behind the backlog (a last
                // message always is: `--until-last` subscribers wait for it).
                ctx.stats.inc(Counter::PubOverrun);
                continue;
            }
            // The scheduled instant, not the moment of sending: a client falling behind
            // shows in the latency (no coordinated omission).
            let due = pacer.due(j).saturating_duration_since(start).as_nanos() + start_ns;
            if make.send(ctx, p, rng, u64::try_from(due).unwrap_or(u64::MAX), last) {
                sent += 1;
            }
        }
    }
    sent
}

/// Publishes as fast as each publisher's window takes (`--rate max`, `-I 0`): round-robin
/// over the publishers that have room — `2 × --inflight` queued and not completed (QoS 1/2),
/// [`QOS0_AHEAD`] at QoS 0 — waiting only when none has, so a slow or reconnecting
/// connection does not hold the others back. Sends `-L` messages (the last one of each
/// publisher flagged for `--until-last`), or for `--duration` and then one flagged last
/// message per publisher; returns how many were queued. Every wait is bounded: by a
/// completion, `--duration`'s end (then [`DRAIN`] for the last messages) or the run's stop.
async fn saturating(
    ctx: &Ctx,
    make: &Make<'_>,
    pubs: &mut [Publisher],
    room: &Notify,
    start: Instant,
    total: Option<u64>,
    rng: &mut fastrand::Rng,
) -> u64 {
    let o = make.o;
    let mut stop = ctx.stop.clone();
    tokio::select! {
        () = tokio::time::sleep_until(start) => {}
        _ = stop.changed() => return 0,
    }
    let cap = if o.qos == tern::QoS::AtMostOnce {
        QOS0_AHEAD
    } else {
        (2 * i64::from(o.inflight)).clamp(2, PUB_QUEUE as i64)
    };
    let end = o.duration.map(|d| start + d);
    let n = pubs.len();
    // With -L, the last n messages are the publishers' last ones.
    let bulk = total.map(|t| t.saturating_sub(n as u64));
    let mut sent = 0u64;
    let mut queued = 0u64;
    let mut next = 0usize;
    // The bulk: until -L's share or --duration's end.
    'bulk: while bulk.is_none_or(|b| queued < b) {
        if end.is_some_and(|e| Instant::now() >= e) {
            break;
        }
        // The next publisher with room, round-robin from `next`. (A completion between this
        // look and the wait below is not missed: `notify_one` keeps a permit for the next
        // wait.)
        let pick = (0..n)
            .map(|k| (next + k) % n)
            .find(|&i| !pubs[i].flight.is_gone() && pubs[i].flight.has_room(cap));
        let Some(i) = pick else {
            if pubs.iter().all(|p| p.flight.is_gone()) {
                return sent;
            }
            tokio::select! {
                () = room.notified() => {}
                () = sleep_until_opt(end) => break 'bulk,
                _ = stop.changed() => return sent,
            }
            continue;
        };
        next = (i + 1) % n;
        queued += 1;
        if make.send(ctx, &mut pubs[i], rng, header::now_ns(), false) {
            sent += 1;
        }
        // Let the runtime's other tasks (completions, the reporter) in between.
        tokio::task::consume_budget().await;
    }
    // One flagged last message per publisher still connected (with -L below the number of
    // publishers, the first -L of them), each waiting at most DRAIN for room.
    let deadline = Instant::now() + DRAIN;
    let lasts = total.map_or(n, |t| usize::try_from(t).unwrap_or(usize::MAX).min(n));
    for p in pubs.iter_mut().take(lasts) {
        while !p.flight.is_gone() && !p.flight.has_room(cap) {
            tokio::select! {
                () = room.notified() => {}
                () = tokio::time::sleep_until(deadline) => break,
                _ = stop.changed() => return sent,
            }
        }
        if p.flight.is_gone() {
            continue;
        }
        if make.send(ctx, p, rng, header::now_ns(), true) {
            sent += 1;
        }
    }
    sent
}

/// Counts a publisher's completions until the run stops.
async fn drain_publisher(ctx: &Ctx, client: Client, mut events: Events, flight: &Flight) {
    let mut stop = ctx.stop.clone();
    let mut up = true;
    loop {
        tokio::select! {
            ev = events.recv() => match ev {
                Some(Event::Completed { result: Ok(_), .. }) => {
                    ctx.stats.inc(Counter::Pub);
                    flight.completed();
                }
                Some(Event::Completed { result: Err(e), .. }) => {
                    ctx.stats.inc(Counter::PubFail);
                    if let Some(reason) = publish_reason(&e) {
                        ctx.stats.failed(Stage::Publish, reason, e.to_string());
                    }
                    flight.completed();
                }
                Some(other) => {
                    if !lifecycle(ctx, &other, &mut up) {
                        // Gone for good: what it had queued will not complete.
                        ctx.finished.fetch_add(1, Ordering::Relaxed);
                        flight.gone.store(true, Ordering::Relaxed);
                        flight.room.notify_one();
                    }
                }
                None => return,
            },
            _ = stop.changed() => break,
        }
    }
    close(ctx, &client, up).await;
}

/// Closes a client (DISCONNECT), bounded; counts the connection down if it was up.
async fn close(ctx: &Ctx, client: &Client, up: bool) {
    let _ = tokio::time::timeout(CLOSE, client.close()).await;
    if up {
        ctx.stats.link(false);
    }
}

async fn subscribe(ctx: Ctx) {
    let ctx2 = ctx.clone();
    let conns = open_all(&ctx, Instant::now(), move |_, index| {
        let ctx = ctx2.clone();
        async move {
            if let Some((client, events)) = connect(&ctx, index).await {
                receive(&ctx, index, client, events).await;
            }
        }
    })
    .await;
    conns.join_all().await;
}

/// One subscriber: subscribes, then accounts every message until the run stops.
async fn receive(ctx: &Ctx, index: u64, client: Client, mut events: Events) {
    let o = &ctx.o;
    let id = o.client_id(index);
    let user = o.username.clone().unwrap_or_default();
    let topic = o.topic.as_ref().map_or_else(String::new, |t| {
        t.expand(
            Fill {
                index,
                client_id: &id,
                user: &user,
            },
            &mut fastrand::Rng::new(),
        )
    });
    // Not `subscribe().await`: a resumed session's backlog arrives before the SUBACK and
    // must be read for the SUBACK to be read.
    let subscribed = if o.v5() {
        // The MQTT 5 form: its SUBACK's reason code per filter comes back.
        client.try_subscribe_with([Subscription::new(topic.as_str(), o.qos)], None)
    } else {
        client.try_subscribe([(topic.as_str(), o.qos)])
    };
    let ticket = match subscribed {
        Ok(t) => Some(t),
        Err(_) => {
            ctx.stats.inc(Counter::SubFail);
            None
        }
    };
    let mut stop = ctx.stop.clone();
    // --until-last: the streams heard, and whether each has ended.
    let mut heard: HashMap<(u64, u64), bool> = HashMap::new();
    let mut finished = false;
    let mut up = true;
    loop {
        tokio::select! {
            ev = events.recv() => match ev {
                Some(Event::Message(m)) => {
                    ctx.stats.inc(Counter::Recv);
                    if let Some(h) = Header::read(&m.payload) {
                        let d = header::now_ns().saturating_sub(h.sent_ns);
                        ctx.stats.latency(Duration::from_nanos(d));
                        ctx.stats.sequence(index, &h);
                        *heard.entry((h.run, h.publisher)).or_default() |= h.last;
                        if o.until_last && !finished && heard.values().all(|&e| e) {
                            finished = true;
                            subscriber_finished(ctx);
                        }
                    }
                    if o.limit.is_some_and(|l| ctx.stats.get(Counter::Recv) >= l) {
                        let _ = ctx.done.try_send(None);
                    }
                }
                Some(Event::Completed { ticket: t, result }) if Some(t) == ticket => {
                    suback(ctx, &result);
                }
                Some(other) => {
                    if !lifecycle(ctx, &other, &mut up) {
                        return;
                    }
                }
                None => return,
            },
            _ = stop.changed() => break,
        }
    }
    close(ctx, &client, up).await;
}

/// Counts a subscription's outcome: `sub` when every filter was granted, else `sub_fail`
/// and each refusal under its reason code.
fn suback(ctx: &Ctx, result: &Result<Outcome, ClientError>) {
    let refused: Vec<(Reason, String)> = match result {
        Ok(Outcome::Subscribed(codes)) => codes
            .iter()
            .filter(|c| **c == SubscribeReturnCode::Failure)
            .map(|c| {
                (
                    Reason::Code(c.to_u8()),
                    "SUBACK refused the filter".to_owned(),
                )
            })
            .collect(),
        Ok(Outcome::SubscribedV5(ack)) => ack
            .reasons
            .iter()
            .filter(|r| r.is_error())
            .map(|r| {
                let why = match &ack.reason_string {
                    Some(s) => format!("SUBACK refused the filter: {r}: {s:?}"),
                    None => format!("SUBACK refused the filter: {r}"),
                };
                (Reason::Code(r.to_u8()), why)
            })
            .collect(),
        Ok(_) => Vec::new(),
        Err(_) => {
            ctx.stats.inc(Counter::SubFail);
            return;
        }
    };
    if refused.is_empty() {
        ctx.stats.inc(Counter::Sub);
        return;
    }
    ctx.stats.inc(Counter::SubFail);
    for (reason, why) in refused {
        ctx.stats.failed(Stage::Subscribe, reason, why);
    }
}

/// Counts a connection's comings and goings (`up`: it is established now); false once it is
/// gone for good.
fn lifecycle(ctx: &Ctx, ev: &Event, up: &mut bool) -> bool {
    match ev {
        Event::Connected {
            reconnected: true, ..
        } => {
            ctx.stats.inc(Counter::Reconnect);
            if !*up {
                *up = true;
                ctx.stats.link(true);
            }
        }
        Event::ConnectFailed { error, will_retry } => {
            ctx.stats
                .connect_failed(connect_reason(error), error.to_string());
            return *will_retry;
        }
        Event::Disconnected {
            will_reconnect,
            error,
        } => {
            ctx.stats.inc(Counter::Disconnect);
            if let ConnectionError::Server(d) = error {
                ctx.stats.failed(
                    Stage::Disconnect,
                    Reason::Code(d.reason.to_u8()),
                    error.to_string(),
                );
            }
            if *up {
                *up = false;
                ctx.stats.link(false);
            }
            return *will_reconnect;
        }
        _ => {}
    }
    true
}

/// One more subscriber heard every publisher's end; the run is done when all have.
fn subscriber_finished(ctx: &Ctx) {
    let n = ctx.finished.fetch_add(1, Ordering::Relaxed) + 1;
    let s = &ctx.stats;
    let attempted = s.get(Counter::ConnectSucc) + s.get(Counter::ConnectFail);
    if attempted >= u64::from(ctx.o.count) && n >= s.get(Counter::ConnectSucc) {
        let _ = ctx.done.try_send(None);
    }
}

async fn hold(ctx: Ctx) {
    let count = ctx.o.count as usize;
    let churn: Arc<Vec<Notify>> = Arc::new((0..count).map(|_| Notify::new()).collect());
    let start = start_instant(&ctx.o);
    if let Some(rate) = ctx.o.churn {
        let churn = churn.clone();
        let mut stop = ctx.stop.clone();
        // Churn starts once every connection has had its turn to open.
        let open_time = ctx.o.conn_pace.rate().map_or(Duration::ZERO, |r| {
            Duration::from_secs_f64(count as f64 / r)
        });
        tokio::spawn(async move {
            let mut pacer = Pacer::new(start + open_time, Some(rate), None);
            loop {
                let batch = tokio::select! {
                    b = pacer.tick() => b,
                    _ = stop.changed() => return,
                };
                for j in batch {
                    churn[(j % count as u64) as usize].notify_one();
                }
            }
        });
    }
    let ctx2 = ctx.clone();
    let conns = open_all(&ctx, start, move |k, index| {
        let ctx = ctx2.clone();
        let churn = churn.clone();
        async move {
            let mut stop = ctx.stop.clone();
            loop {
                let Some((client, mut events)) = connect(&ctx, index).await else {
                    return;
                };
                let mut up = true;
                let reopen = loop {
                    tokio::select! {
                        ev = events.recv() => match ev {
                            Some(ev) => {
                                if !lifecycle(&ctx, &ev, &mut up) {
                                    return;
                                }
                            }
                            None => return,
                        },
                        () = churn[k as usize].notified() => break true,
                        _ = stop.changed() => break false,
                    }
                };
                close(&ctx, &client, up).await;
                if !reopen {
                    return;
                }
            }
        }
    })
    .await;
    conns.join_all().await;
}
