//! Whole processes: `pub -l` reading lines from a file, into `sub -C` or into no subscriber
//! at all, for `tern pub/sub` and `mosquitto_pub/sub`. CPU is both processes' user+sys from
//! `wait4`; the publisher's wall time (start to exit) is recorded too.

use std::io::Read as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tern_bench::IDLE;
use tern_bench::measure;
use tern_bench::record::{Ctx, Record};
use tern_bench::scenario::Scenario;

/// Where `tern` lives: `$TERN_BIN`, else `target-bench/release/tern` beside this crate.
pub(crate) fn tern_bin() -> PathBuf {
    std::env::var_os("TERN_BIN").map_or_else(
        || {
            PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../target-bench/release/tern"
            ))
        },
        PathBuf::from,
    )
}

/// The longest a publisher process may run.
const PUB_LIMIT: Duration = tern_bench::RUN_LIMIT;

/// A child's exit: when, its user+sys CPU seconds, whether it exited with status 0.
pub(crate) struct Exited {
    pub(crate) at: Instant,
    pub(crate) cpu: f64,
    pub(crate) ok: bool,
}

/// Waits for `pid` on a thread, returning exit time and CPU time from `wait4`.
pub(crate) fn reaper(pid: u32) -> std::thread::JoinHandle<Exited> {
    std::thread::spawn(move || {
        let mut status = 0;
        // SAFETY: wait4 on our own child, writing into structs we own.
        let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
        let r = unsafe { libc::wait4(pid as libc::pid_t, &mut status, 0, &mut ru) };
        let at = Instant::now();
        let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
        Exited {
            at,
            cpu: tv(ru.ru_utime) + tv(ru.ru_stime),
            ok: r > 0 && libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        }
    })
}

pub(crate) fn run(ctx: &Ctx, lib: &str, scenario: Scenario) -> Record {
    let mut rec = Record::new(lib, &scenario.to_string());
    let Scenario::Process {
        qos, count, sub, ..
    } = scenario
    else {
        rec.error = Some("not a process scenario".to_owned());
        return rec;
    };
    if let Err(e) = measure_once(ctx, lib, qos, count, sub, &mut rec) {
        rec.error = Some(e);
    }
    rec
}

/// A subscriber process and what it printed.
struct SubProc {
    pid: u32,
    done: std::thread::JoinHandle<Exited>,
    lines: std::thread::JoinHandle<u64>,
}

fn measure_once(
    ctx: &Ctx,
    lib: &str,
    q: u8,
    count: u64,
    with_sub: bool,
    rec: &mut Record,
) -> Result<(), String> {
    let (pub_cmd, sub_cmd) = match lib {
        "tern-cli" => {
            let bin = tern_bin();
            if !bin.exists() {
                return Err(format!("{} not built", bin.display()));
            }
            let mut p = Command::new(&bin);
            p.arg("pub");
            let mut s = Command::new(&bin);
            s.arg("sub");
            (p, s)
        }
        "mosquitto-cli" => (Command::new("mosquitto_pub"), Command::new("mosquitto_sub")),
        other => return Err(format!("unknown tool {other}")),
    };
    let (mut pub_cmd, mut sub_cmd) = (pub_cmd, sub_cmd);
    let topic = ctx.topic("proc");
    let port = ctx.port.to_string();
    let qs = q.to_string();
    let input = std::env::temp_dir().join(format!("{}-lines", ctx.prefix));
    let mut line = vec![b'x'; 64];
    line.push(b'\n');
    std::fs::write(&input, line.repeat(count as usize)).map_err(|e| e.to_string())?;

    let sub = if with_sub {
        let mut sub = sub_cmd
            .args(["-h", &ctx.host, "-p", &port, "-t", &topic, "-q", &qs])
            .args(["-C", &count.to_string(), "-i", &ctx.client_id("sub")])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("spawn sub: {e}"))?;
        let mut out = sub.stdout.take().expect("piped");
        let lines = std::thread::spawn(move || {
            let mut buf = vec![0u8; 1 << 16];
            let mut n = 0u64;
            while let Ok(k) = out.read(&mut buf) {
                if k == 0 {
                    break;
                }
                n += buf[..k].iter().filter(|&&b| b == b'\n').count() as u64;
            }
            n
        });
        let pid = sub.id();
        let done = reaper(pid);
        // Give the subscriber time to connect and subscribe (no readiness signal exists in
        // either tool that would not also cost per-message output).
        std::thread::sleep(Duration::from_millis(700));
        Some(SubProc { pid, done, lines })
    } else {
        None
    };

    let win = measure::Window::start(ctx.broker_pid);
    let t0 = Instant::now();
    let publ = pub_cmd
        .args(["-h", &ctx.host, "-p", &port, "-t", &topic, "-q", &qs, "-l"])
        .args(["-M", &ctx.window.to_string(), "-i", &ctx.client_id("pub")])
        .stdin(std::fs::File::open(&input).map_err(|e| e.to_string())?)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("spawn pub: {e}"))?;
    let pub_pid = publ.id();
    let pub_done = reaper(pub_pid);
    // A publisher that stalls (mosquitto_pub -l reconnects for ever after the broker drops
    // it) is stopped: the run is bounded.
    let deadline = Instant::now() + PUB_LIMIT;
    while !pub_done.is_finished() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(2));
    }
    let stalled = !pub_done.is_finished();
    if stalled {
        // SAFETY: signalling our own child.
        unsafe { libc::kill(pub_pid as libc::pid_t, libc::SIGKILL) };
    }
    let p = pub_done.join().map_err(|_| "reaper panicked")?;
    let pub_secs = (p.at - t0).as_secs_f64();
    let (received, secs, sub_cpu, sub_ok) = match sub {
        Some(sub) => {
            // The subscriber gets IDLE after the publisher ends, then is stopped.
            let deadline = Instant::now() + IDLE;
            while !sub.done.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(2));
            }
            if !sub.done.is_finished() {
                // SAFETY: signalling our own child.
                unsafe { libc::kill(sub.pid as libc::pid_t, libc::SIGTERM) };
            }
            let s = sub.done.join().map_err(|_| "reaper panicked")?;
            let received = sub.lines.join().map_err(|_| "reader panicked")?;
            (received, (s.at - t0).as_secs_f64(), Some(s.cpu), s.ok)
        }
        None => (count, pub_secs, None, true),
    };
    let (_, broker) = win.finish();
    let _ = std::fs::remove_file(&input);
    let cpu = p.cpu + sub_cpu.unwrap_or(0.0);
    rec.set("msgs_per_sec", received as f64 / secs)
        .set("secs", secs)
        .set("pub_secs", pub_secs)
        .set("lost", count.saturating_sub(received) as f64)
        .set("client_cpu_us", cpu * 1e6 / count as f64)
        .set("pub_cpu_us", p.cpu * 1e6 / count as f64);
    if let Some(s) = sub_cpu {
        rec.set("sub_cpu_us", s * 1e6 / count as f64);
    }
    if let Some(b) = broker {
        rec.set("broker_cpu_us", b * 1e6 / count as f64);
    }
    if stalled {
        return Err(format!("the publisher did not finish within {PUB_LIMIT:?}"));
    }
    if received < count {
        return Err(format!("lost {} of {count}", count - received));
    }
    if !p.ok || !sub_ok {
        return Err(format!("exit status: pub ok={} sub ok={sub_ok}", p.ok));
    }
    Ok(())
}
