//! CPU time, resident memory and CPU pinning of this process and of others, read from
//! `getrusage` and `/proc`.

use std::time::Duration;

/// User + system CPU time consumed so far by this whole process (all threads).
pub fn self_cpu() -> Duration {
    // SAFETY: getrusage writes into the zeroed struct we own.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// Times this whole process (all threads) went to sleep waiting for something: voluntary
/// context switches. On loopback each one is a wake-up that the peer's write pays for.
pub fn self_sleeps() -> u64 {
    // SAFETY: getrusage writes into the zeroed struct we own.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    ru.ru_nvcsw as u64
}

/// Voluntary context switches of another (single-threaded) process's main thread, from
/// `/proc/<pid>/status`.
pub fn proc_sleeps(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("voluntary_ctxt_switches:"))?
        .trim()
        .parse()
        .ok()
}

fn tv(t: libc::timeval) -> Duration {
    Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
}

/// User + system CPU time of another process, from `/proc/<pid>/stat` (clock ticks, usually
/// 10 ms resolution: measure windows of seconds).
pub fn proc_cpu(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces; fields after the closing parenthesis are fixed.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state is field 3, so utime (14) and stime (15) are at 11 and 12.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Some(Duration::from_nanos((utime + stime) * 1_000_000_000 / hz))
}

/// Resident set size of this process in bytes, from `/proc/self/statm`.
pub fn self_rss() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(1) as u64;
    pages * page
}

/// Pins process (or thread) `pid` (0: the calling thread) to the given CPUs. Threads created
/// afterwards inherit the mask, so call it before starting runtimes.
pub fn pin(pid: u32, cpus: &[usize]) -> std::io::Result<()> {
    // SAFETY: cpu_set_t is plain data; CPU_SET indexes within it for cpu < CPU_SETSIZE.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        for &c in cpus {
            libc::CPU_SET(c, &mut set);
        }
        if libc::sched_setaffinity(pid as libc::pid_t, size_of::<libc::cpu_set_t>(), &set) != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Number of online CPUs.
pub fn cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Raises the soft open-file limit to the hard limit; returns the new soft limit.
pub fn raise_nofile() -> u64 {
    // SAFETY: getrlimit/setrlimit write/read the struct we own.
    unsafe {
        let mut rl: libc::rlimit = std::mem::zeroed();
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl);
        rl.rlim_cur = rl.rlim_max;
        libc::setrlimit(libc::RLIMIT_NOFILE, &rl);
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl);
        rl.rlim_cur
    }
}

/// Wall-clock and CPU (this process and the broker) over a measurement window.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    cpu: Duration,
    broker: Option<Duration>,
    broker_pid: Option<u32>,
    sleeps: u64,
    broker_sleeps: Option<u64>,
}

impl Window {
    /// Starts a window.
    pub fn start(broker_pid: Option<u32>) -> Self {
        Self {
            cpu: self_cpu(),
            broker: broker_pid.and_then(proc_cpu),
            broker_pid,
            sleeps: self_sleeps(),
            broker_sleeps: broker_pid.and_then(proc_sleeps),
        }
    }

    /// The broker's pid this window watches.
    pub fn broker_pid(&self) -> Option<u32> {
        self.broker_pid
    }

    /// CPU seconds used by this process and by the broker since [`Window::start`].
    pub fn finish(&self) -> (f64, Option<f64>) {
        let cpu = (self_cpu() - self.cpu).as_secs_f64();
        let broker = match (self.broker, self.broker_pid.and_then(proc_cpu)) {
            (Some(a), Some(b)) => Some(b.saturating_sub(a).as_secs_f64()),
            _ => None,
        };
        (cpu, broker)
    }

    /// Times this process and the broker slept since [`Window::start`].
    pub fn sleeps(&self) -> Sleeps {
        Sleeps {
            client: self_sleeps().saturating_sub(self.sleeps),
            broker: match (self.broker_sleeps, self.broker_pid.and_then(proc_sleeps)) {
                (Some(a), Some(b)) => Some(b.saturating_sub(a)),
                _ => None,
            },
        }
    }
}

/// Voluntary context switches over a window: how often the client process and the broker
/// went to sleep and had to be woken (each wake-up is a context switch in the waker's CPU
/// time on a machine where both share cores).
#[derive(Debug, Clone, Copy, Default)]
pub struct Sleeps {
    /// This process, all threads.
    pub client: u64,
    /// The broker, when its pid is known.
    pub broker: Option<u64>,
}

/// The file descriptors of this process that are sockets, from `/proc/self/fd`.
pub fn socket_fds() -> Vec<i32> {
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else {
        return Vec::new();
    };
    dir.filter_map(Result::ok)
        .filter(|e| {
            std::fs::read_link(e.path()).is_ok_and(|t| t.to_string_lossy().starts_with("socket:"))
        })
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .collect()
}

/// The one socket that is in `after` and not in `before` (the connection a client opened
/// in between), if exactly one is.
pub fn new_socket(before: &[i32], after: &[i32]) -> Option<i32> {
    let mut new = after.iter().filter(|fd| !before.contains(fd));
    match (new.next(), new.next()) {
        (Some(fd), None) => Some(*fd),
        _ => None,
    }
}

/// TCP payload bytes a socket of this process has sent (first transmissions: retransmitted
/// bytes are taken out) and received so far, from the kernel's `TCP_INFO`
/// (`tcpi_bytes_sent - tcpi_bytes_retrans`, `tcpi_bytes_received`; Linux 4.19 and later).
/// `None` if `fd` is not a TCP socket.
pub fn tcp_bytes(fd: i32) -> Option<(u64, u64)> {
    // SAFETY: getsockopt writes at most `len` bytes into the zeroed struct we own; `fd` is
    // only read from, and a stale or foreign fd makes the call fail, not misbehave.
    let mut info: libc::tcp_info = unsafe { std::mem::zeroed() };
    let mut len = size_of::<libc::tcp_info>() as libc::socklen_t;
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            (&raw mut info).cast(),
            &mut len,
        )
    };
    // The kernel fills what it knows; an older one stops before the byte counters.
    let need = std::mem::offset_of!(libc::tcp_info, tcpi_bytes_retrans) + 8;
    if rc != 0 || (len as usize) < need {
        return None;
    }
    Some((
        info.tcpi_bytes_sent.saturating_sub(info.tcpi_bytes_retrans),
        info.tcpi_bytes_received,
    ))
}

#[cfg(test)]
mod tests {
    use std::io::{Read as _, Write as _};
    use std::os::fd::AsRawFd as _;

    use super::*;
    use crate::Wire;

    #[test]
    fn tcp_bytes_count_a_connections_payload() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let before = socket_fds();
        let mut client =
            std::net::TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
        let (mut server, _) = listener.accept().expect("accept");
        let after = socket_fds();
        // The client's and the accepted socket are both new: not one.
        assert_eq!(new_socket(&before, &after), None);
        assert_eq!(
            new_socket(
                &before,
                &[before.clone(), vec![client.as_raw_fd()]].concat()
            ),
            Some(client.as_raw_fd())
        );
        let wire = Wire::start(Some(client.as_raw_fd())).expect("a TCP socket");
        client.write_all(&[7; 1000]).expect("write");
        server.write_all(&[9; 10]).expect("write");
        let mut got = [0; 1000];
        server.read_exact(&mut got).expect("read");
        let mut back = [0; 10];
        client.read_exact(&mut back).expect("read");
        assert_eq!(wire.finish(), Some((1000, 10)));
        assert_eq!(tcp_bytes(-1), None);
    }
}
