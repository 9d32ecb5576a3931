//! The comparative harness. `run-all` runs every scenario for every client interleaved (one
//! child process of this binary per measurement, so each library's CPU time is its own)
//! against a private mosquitto configured as the scenario asks (restarted when the
//! configuration changes), repeats, stops the broker and writes the report.
//! `client` is that child: it runs one scenario once and prints one JSON line.
//! `report` rebuilds the report from a saved results file.
//!
//! Built as a bench target so that rumqttc and paho-mqtt stay dev-dependencies:
//! `cargo bench --bench compare --no-run`, then run the executable (see `scripts/bench`).

mod paho_client;
mod process;
mod rate;
mod rumqttc_client;
mod rumqttc_v5_client;

use std::io::{BufRead as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use tern_bench::broker::Mosquitto;
use tern_bench::record::{Ctx, Record};
use tern_bench::scenario::{self, Filter, Scenario};
use tern_bench::{floor, measure, report};

#[derive(Parser)]
#[command(about = "tern vs rumqttc vs paho-mqtt vs the mosquitto clients")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run everything and write the report.
    RunAll {
        /// Small counts: a smoke run of about three minutes.
        #[arg(long)]
        quick: bool,
        /// Repetitions of every scenario for every client (default 3; 1 with --quick).
        #[arg(long)]
        reps: Option<u32>,
        /// Only scenarios matching one of these: `+`-joined terms that must all hold, each
        /// an id prefix (`tp:2`, `lat:0`) or an id token (`ct`, `mt`, `win20`, `win100`,
        /// `win0`, `nagle`, `nodelay`, `sub`, `nosub`, `v5`, `v5alias`, `tp`, `lat`, `conn`,
        /// `proc`).
        /// Example: `--only tp:2+ct+win0+nodelay+sub,lat`.
        #[arg(long, value_delimiter = ',')]
        only: Vec<String>,
        /// Only these clients (tern, rumqttc, paho, floor, tern-cli, mosquitto-cli).
        #[arg(long, value_delimiter = ',')]
        libs: Vec<String>,
        /// Raw results, one JSON record per line (appended to the report's inputs).
        #[arg(long, default_value = "target-bench/bench-results.jsonl")]
        results: PathBuf,
        /// Markdown report to write (its text outside the results markers is kept).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Criterion's output directory, for the codec figures.
        #[arg(long, default_value = "target-bench/criterion")]
        criterion: PathBuf,
    },
    /// Run one scenario once with one client and print one JSON line (used by run-all).
    Client {
        #[arg(long)]
        lib: String,
        #[arg(long)]
        scenario: Scenario,
        #[arg(long, default_value = "127.0.0.1")]
        host: String,
        #[arg(long)]
        port: u16,
        #[arg(long)]
        broker_pid: Option<u32>,
        #[arg(long, default_value = "bench")]
        prefix: String,
        #[arg(long, default_value_t = 1)]
        rep: u32,
        /// Pin this process to these CPUs before starting anything.
        #[arg(long, value_delimiter = ',')]
        pin: Vec<usize>,
        /// The longest a latency run may take, seconds.
        #[arg(long, default_value_t = 10.0)]
        latency_budget_secs: f64,
    },
    /// Print the jobs `run-all` would run with these options (scenario ids and clients).
    List {
        #[arg(long)]
        quick: bool,
        #[arg(long)]
        reps: Option<u32>,
        #[arg(long, value_delimiter = ',')]
        only: Vec<String>,
        #[arg(long, value_delimiter = ',')]
        libs: Vec<String>,
    },
    /// The peers' publisher process of a `rate:…` scenario (used by `client`): prints one
    /// JSON line of what it completed.
    RatePub(rate::PubArgs),
    /// Rebuild the report from a results file.
    Report {
        #[arg(long, default_value = "target-bench/bench-results.jsonl")]
        results: PathBuf,
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value = "target-bench/criterion")]
        criterion: PathBuf,
    },
}

fn main() {
    // `cargo bench` appends `--bench`; ignore it.
    let args = std::env::args_os().filter(|a| a != "--bench");
    let cli = Cli::parse_from(args);
    match cli.cmd {
        Cmd::Client {
            lib,
            scenario,
            host,
            port,
            broker_pid,
            prefix,
            rep,
            pin,
            latency_budget_secs,
        } => {
            if !pin.is_empty()
                && let Err(e) = measure::pin(0, &pin)
            {
                eprintln!("pin: {e}");
            }
            measure::raise_nofile();
            let ctx = Ctx {
                host,
                port,
                broker_pid,
                prefix,
                latency_budget: Duration::from_secs_f64(latency_budget_secs.max(0.1)),
                window: scenario.broker().client_window(),
                broker_nagle: !scenario.broker().nodelay,
            };
            let mut rec = match (lib.as_str(), scenario) {
                (l, s @ Scenario::Rate { .. }) => rate::run(&ctx, l, s),
                ("tern-cli" | "mosquitto-cli", s @ Scenario::Process { .. }) => {
                    process::run(&ctx, &lib, s)
                }
                ("floor", s @ Scenario::Latency { .. }) => floor::run(&ctx, s),
                ("tern", s) => tern_bench::tern_client::run(&ctx, s),
                ("rumqttc", s @ Scenario::Throughput { proto, .. }) if proto.is_v5() => {
                    rumqttc_v5_client::run(&ctx, s)
                }
                ("rumqttc", s) => rumqttc_client::run(&ctx, s),
                ("paho", s) if !matches!(s, Scenario::Throughput { proto, .. } if proto.is_v5()) => {
                    paho_client::run(&ctx, s)
                }
                (l, s) => {
                    let mut r = Record::new(l, &s.to_string());
                    r.error = Some("no such client for this scenario".to_owned());
                    r
                }
            };
            rec.rep = rep;
            let line = serde_json::to_string(&rec).expect("records serialize");
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{line}");
            let _ = out.flush();
            // Skip tearing down thousands of connections one by one.
            std::process::exit(0);
        }
        Cmd::RunAll {
            quick,
            reps,
            only,
            libs,
            results,
            out,
            criterion,
        } => run_all(
            quick,
            reps.unwrap_or(if quick { 1 } else { 3 }),
            &only,
            &libs,
            &results,
            out.as_deref(),
            &criterion,
        ),
        Cmd::List {
            quick,
            reps,
            only,
            libs,
        } => {
            let jobs = jobs(
                quick,
                reps.unwrap_or(if quick { 1 } else { 3 }),
                &only,
                &libs,
            );
            for j in &jobs {
                println!("rep {} {:<13} {}", j.rep, j.lib, j.scenario);
            }
            println!("{} jobs", jobs.len());
        }
        Cmd::RatePub(a) => {
            measure::raise_nofile();
            match rate::publish(&a) {
                Ok(sent) => {
                    let line = serde_json::to_string(&sent).expect("serializes");
                    let mut out = std::io::stdout().lock();
                    let _ = writeln!(out, "{line}");
                    let _ = out.flush();
                    // Paho C's clients are not destroyed (see rate.rs): exit now.
                    std::process::exit(0);
                }
                Err(e) => {
                    eprintln!("rate-pub: {e}");
                    std::process::exit(1);
                }
            }
        }
        Cmd::Report {
            results,
            out,
            criterion,
        } => {
            let recs = load(&results);
            report::write(&recs, &criterion, &out, None).expect("report written");
            println!("{}", report::summary(&recs, &criterion));
        }
    }
}

fn load(path: &Path) -> Vec<Record> {
    let Ok(f) = std::fs::File::open(path) else {
        return Vec::new();
    };
    std::io::BufReader::new(f)
        .lines()
        .map_while(Result::ok)
        .filter_map(|l| serde_json::from_str(&l).ok())
        .collect()
}

struct Job {
    rep: u32,
    scenario: Scenario,
    lib: &'static str,
}

/// The jobs of a run: the plan's scenarios that `only` selects, for the clients `libs`
/// selects, `reps` times.
fn jobs(quick: bool, reps: u32, only: &[String], libs: &[String]) -> Vec<Job> {
    let filter = Filter::new(only);
    let mut plan: Vec<Scenario> = scenario::plan(quick)
        .into_iter()
        .filter(|s| filter.matches(s))
        .collect();
    // Grouped by broker configuration (mosquitto's defaults first), so that a repetition
    // restarts the broker once per configuration; the order is otherwise the plan's.
    plan.sort_by_key(|s| s.broker().rank());
    // Interleaved: every repetition runs every scenario for every client, the clients'
    // order rotating from one repetition to the next.
    let mut jobs = Vec::new();
    for rep in 1..=reps {
        for s in &plan {
            let mut ls: Vec<&'static str> = s
                .libs()
                .iter()
                .copied()
                .filter(|l| libs.is_empty() || libs.iter().any(|x| x == l))
                .collect();
            if !ls.is_empty() {
                let k = (rep as usize - 1) % ls.len();
                ls.rotate_left(k);
            }
            for lib in ls {
                jobs.push(Job {
                    rep,
                    scenario: *s,
                    lib,
                });
            }
        }
    }
    jobs
}

fn run_all(
    quick: bool,
    reps: u32,
    only: &[String],
    libs: &[String],
    results: &Path,
    out: Option<&Path>,
    criterion: &Path,
) {
    let nofile = measure::raise_nofile();
    let jobs = jobs(quick, reps, only, libs);
    let Some(first) = jobs.first() else {
        eprintln!("no scenario selected");
        return;
    };
    let mut broker = Mosquitto::start(first.scenario.broker()).expect("mosquitto starts");
    eprintln!(
        "mosquitto pid {} on 127.0.0.1:{}, RLIMIT_NOFILE {nofile}, {} jobs",
        broker.pid(),
        broker.port,
        jobs.len()
    );
    let budget = tern_bench::latency_budget(quick);
    if let Some(dir) = results.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let mut sink = std::fs::File::create(results).expect("results file");
    let exe = std::env::current_exe().expect("own path");
    let pb = ProgressBar::new(jobs.len() as u64);
    pb.set_style(
        ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} {msg}")
            .expect("template")
            .progress_chars("=> "),
    );
    let ncpu = measure::cpus();
    let mut records = Vec::new();
    for (i, job) in jobs.iter().enumerate() {
        if broker.cfg != job.scenario.broker() {
            broker.stop();
            broker = Mosquitto::start(job.scenario.broker()).expect("mosquitto starts");
        }
        let latency = matches!(job.scenario, Scenario::Latency { .. });
        pb.set_message(format!(
            "rep {} {} {}",
            job.rep,
            job.lib,
            job.scenario.label()
        ));
        // Latency: broker and client share one core, so the figure is the clients' path and
        // not the VM's cross-core wake-ups.
        let pin_cpu = ncpu - 1;
        if latency {
            let _ = measure::pin(broker.pid(), &[pin_cpu]);
        }
        let mut cmd = Command::new(&exe);
        cmd.arg("client")
            .args(["--lib", job.lib])
            .args(["--scenario", &job.scenario.to_string()])
            .args(["--port", &broker.port.to_string()])
            .args(["--broker-pid", &broker.pid().to_string()])
            .args(["--prefix", &format!("j{i}-{}", std::process::id())])
            .args(["--rep", &job.rep.to_string()])
            .args(["--latency-budget-secs", &budget.as_secs_f64().to_string()]);
        if latency {
            cmd.args(["--pin", &pin_cpu.to_string()]);
        }
        let rec = run_child(cmd, job);
        if latency {
            let all: Vec<usize> = (0..ncpu).collect();
            let _ = measure::pin(broker.pid(), &all);
        }
        let _ = writeln!(sink, "{}", serde_json::to_string(&rec).expect("serialize"));
        if pb.is_hidden() {
            eprintln!("{}", report::one_line(&rec));
        } else {
            pb.println(report::one_line(&rec));
        }
        records.push(rec);
        pb.inc(1);
        // Let the broker finish closing the previous run's connections.
        let settle = match job.scenario {
            Scenario::Connections { count } => 500 + count / 5,
            _ if quick => 100,
            _ => 200,
        };
        std::thread::sleep(Duration::from_millis(settle));
        if broker_dead(&mut broker) {
            pb.println("mosquitto died; restarting it");
            broker = Mosquitto::start(job.scenario.broker()).expect("mosquitto restarts");
        }
    }
    pb.finish_with_message("done");
    broker.stop();
    if let Some(out) = out {
        report::write(&records, criterion, out, Some(quick)).expect("report written");
        eprintln!("wrote {}", out.display());
    }
    println!("{}", report::summary(&records, criterion));
}

fn broker_dead(b: &mut Mosquitto) -> bool {
    measure::proc_cpu(b.pid()).is_none()
}

/// Runs one child, bounded: 10 minutes, then killed.
fn run_child(mut cmd: Command, job: &Job) -> Record {
    let fail = |e: String| {
        let mut r = Record::new(job.lib, &job.scenario.to_string());
        r.rep = job.rep;
        r.error = Some(e);
        r
    };
    let mut child = match cmd.stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn() {
        Ok(c) => c,
        Err(e) => return fail(format!("spawn: {e}")),
    };
    let mut stdout = child.stdout.take().expect("piped");
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut stdout, &mut s);
        s
    });
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return fail("timed out after 600 s".to_owned());
            }
        }
    }
    let text = reader.join().unwrap_or_default();
    match text
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str::<Record>(l).ok())
    {
        Some(r) => r,
        None => fail(format!("no result line; output: {}", text.trim())),
    }
}
