//! A private mosquitto on a free loopback port, with the limits raised so that it never
//! drops what the scenarios send; the in-flight window and Nagle's algorithm are the
//! matrix's to choose ([`BrokerCfg`]).

use std::io::Write as _;
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::scenario::BrokerCfg;

/// A running mosquitto, stopped (SIGTERM, then SIGKILL) on drop.
#[derive(Debug)]
pub struct Mosquitto {
    child: Child,
    /// TCP port on 127.0.0.1.
    pub port: u16,
    /// What it was started with.
    pub cfg: BrokerCfg,
    dir: PathBuf,
}

/// The broker configuration: loopback only, no persistence, no logging on the hot path, no
/// queue limit that would drop messages for a subscriber that falls behind, and `cfg`'s
/// in-flight window and Nagle setting (`set_tcp_nodelay` is written only when true, as a
/// stock configuration file has it).
pub fn config(port: u16, cfg: BrokerCfg) -> String {
    let nodelay = if cfg.nodelay {
        "set_tcp_nodelay true\n"
    } else {
        ""
    };
    format!(
        "listener {port} 127.0.0.1\n\
         allow_anonymous true\n\
         persistence false\n\
         log_dest stderr\n\
         log_type error\n\
         {nodelay}\
         max_connections -1\n\
         max_inflight_messages {}\n\
         max_queued_messages 0\n\
         max_queued_bytes 0\n\
         memory_limit 0\n",
        cfg.inflight
    )
}

/// A port that was free a moment ago.
pub fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

impl Mosquitto {
    /// Starts mosquitto with `cfg` and waits (at most 10 s) until it accepts connections.
    pub fn start(cfg: BrokerCfg) -> std::io::Result<Self> {
        let port = free_port()?;
        let dir = std::env::temp_dir().join(format!("tern-bench-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let conf = dir.join("mosquitto.conf");
        std::fs::File::create(&conf)?.write_all(config(port, cfg).as_bytes())?;
        let child = Command::new("mosquitto")
            .arg("-c")
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()?;
        let mut m = Self {
            child,
            port,
            cfg,
            dir,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Ok(m);
            }
            if let Some(status) = m.child.try_wait()? {
                return Err(std::io::Error::other(format!("mosquitto exited: {status}")));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        m.stop();
        Err(std::io::Error::other(
            "mosquitto did not listen within 10 s",
        ))
    }

    /// The broker's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Stops the broker: SIGTERM, up to 5 s, then SIGKILL.
    pub fn stop(&mut self) {
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            return;
        }
        // SAFETY: kill with a pid we spawned and have not reaped.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                let _ = std::fs::remove_dir_all(&self.dir);
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        self.stop();
    }
}
