//! The event loop: one Lua state on one thread waiting on everything that can happen (each
//! client's event stream, one queue of timer expiries), callbacks run one at a time.
//!
//! The loop takes client events straight from the clients' own streams, with no task in
//! between: a client's driver lets the application run before it writes the acknowledgement
//! of what it read, so a reply sent from a `message` callback leaves in the same write as the
//! PUBACK. A forwarding task would take the event in that turn instead of the script.
//!
//! Objects that produce events (clients, timers) are found by id in a weak registry table, so
//! a script that drops a client lets it be collected; an object is also held in a strong
//! table ("rooted") exactly while it can still produce events of its own accord (a client
//! connecting or connected, an armed timer). The loop ends when nothing is rooted.

use std::ffi::OsString;
use std::path::Path;
use std::rc::Rc;
use std::task::{Context, Poll};

use mlua::{Lua, Value};
use tokio::sync::mpsc;

use crate::config::{Config, Reboot};
use crate::registry::{self, LoopEvent, Shared, lookup};

/// Capacity of the timer queue. Timers await space, so a slow script cannot make it grow.
/// (Clients' streams are bounded by the clients: a slow script slows their reading, which is
/// TCP backpressure.)
const QUEUE_CAPACITY: usize = 1024;

/// Why a script stopped with an error.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The script file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The path given.
        path: String,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// A Lua error in the main chunk or in a callback, uncaught. Its text carries the Lua
    /// traceback.
    #[error("{0}")]
    Lua(#[from] mlua::Error),
}

/// A Lua state with `mqtt` and `tmr` installed, and the loop that runs their callbacks.
///
/// Lua is single-threaded: create and drive it on one thread, inside a tokio runtime (clients
/// and timers spawn tasks on it; a current-thread runtime keeps everything on that thread).
///
/// ```no_run
/// # fn main() -> Result<(), tern_lua::RunError> {
/// let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
/// rt.block_on(async {
///     let mut lua = tern_lua::Runtime::new()?;
///     lua.exec("tmr.create():alarm(10, tmr.ALARM_SINGLE, function() print('tick') end)", "demo")?;
///     lua.run().await
/// })
/// # }
/// ```
#[derive(Debug)]
pub struct Runtime {
    lua: Lua,
    rx: mpsc::Receiver<LoopEvent>,
    shared: Rc<Shared>,
}

impl Runtime {
    /// A fresh Lua 5.1 state with the standard libraries, `mqtt`, `tmr`, and a `print` that
    /// flushes stdout after every line (so a reader on a pipe sees each line at once).
    /// ESP32 firmware, the default board, no flash file system.
    pub fn new() -> mlua::Result<Self> {
        Self::with_config(Config::default())
    }

    /// Like [`new`](Self::new), for the firmware variant, board and flash directory of
    /// `config`.
    pub fn with_config(config: Config) -> mlua::Result<Self> {
        let lua = Lua::new();
        let (tx, rx) = mpsc::channel(QUEUE_CAPACITY);
        let shared = Rc::new(Shared::new(tx, config));
        registry::install(&lua, &shared)?;
        crate::register(&lua)?;
        install_print(&lua)?;
        Ok(Self { lua, rx, shared })
    }

    /// The Lua state, e.g. to add globals.
    pub fn lua(&self) -> &Lua {
        &self.lua
    }

    /// Sets the global `arg` as the standalone `lua` interpreter does: `arg[0]` the script,
    /// `arg[1..]` its arguments.
    pub fn set_args(&self, script: &str, args: &[OsString]) -> mlua::Result<()> {
        let t = self.lua.create_table()?;
        t.raw_set(0, script)?;
        for (i, a) in args.iter().enumerate() {
            t.raw_set(i + 1, self.lua.create_string(a.as_encoded_bytes())?)?;
        }
        self.lua.globals().raw_set("arg", t)
    }

    /// Runs a script file's main chunk (callbacks run later, in [`run`](Self::run)), passing
    /// it the arguments set with [`set_args`](Self::set_args) as `...`.
    pub fn exec_file(&self, path: &Path) -> Result<(), RunError> {
        let src = std::fs::read(path).map_err(|source| RunError::Read {
            path: path.display().to_string(),
            source,
        })?;
        // A leading `#!` line is skipped, as the `lua` interpreter does.
        let src = if src.starts_with(b"#") {
            let end = src.iter().position(|&b| b == b'\n').unwrap_or(src.len());
            // Keep the newline so line numbers stay right.
            src[end..].to_vec()
        } else {
            src
        };
        // The main chunk gets `arg[1..]` as `...`, as with the `lua` interpreter.
        let varargs = match self.lua.globals().raw_get::<Value>("arg")? {
            Value::Table(t) => t
                .sequence_values::<Value>()
                .collect::<mlua::Result<Vec<_>>>()?,
            _ => Vec::new(),
        };
        self.lua
            .load(src)
            .set_name(format!("@{}", path.display()))
            .call::<()>(mlua::Variadic::from_iter(varargs))?;
        Ok(())
    }

    /// Runs a chunk of source; `name` appears in error messages.
    pub fn exec(&self, src: &str, name: &str) -> Result<(), RunError> {
        self.lua.load(src).set_name(format!("={name}")).exec()?;
        Ok(())
    }

    /// True when no client is connecting or connected and no timer is armed.
    pub fn is_idle(&self) -> bool {
        self.shared.rooted() == 0
    }

    /// What the script asked for with `node.restart()` or `node.dsleep()`, if it did:
    /// [`run`](Self::run) then returned early, and the caller starts the script again in a
    /// fresh runtime (after the delay), as the board reboots.
    pub fn reboot_requested(&self) -> Option<Reboot> {
        self.shared.reboot.get()
    }

    /// Dispatches events until [`is_idle`](Self::is_idle), running callbacks one at a time:
    /// each client's events in the order they happened, ready timers before client events,
    /// and clients with events ready in turn. An error a callback does not catch ends the
    /// loop.
    pub async fn run(&mut self) -> Result<(), RunError> {
        loop {
            if self.shared.reboot.get().is_some() {
                return Ok(());
            }
            if self.is_idle() {
                // Deliver what already arrived (e.g. completions racing an `offline`), then
                // stop if that did not start anything.
                while let Some(ev) = self.try_next() {
                    self.dispatch(ev)?;
                }
                if self.is_idle() {
                    return Ok(());
                }
            }
            let ev = std::future::poll_fn(|cx| self.poll_next(cx)).await;
            self.dispatch(ev)?;
        }
    }

    /// The next event: timers first (their queue is short-lived and bounded), then the
    /// clients in turn.
    fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<LoopEvent> {
        // The runtime holds a sender, so the timer queue never closes.
        if let Poll::Ready(Some(ev)) = self.rx.poll_recv(cx) {
            return Poll::Ready(ev);
        }
        self.shared.poll_sources(cx)
    }

    /// Closes the loop's queue (a boot ending: nothing can be queued any more) and takes
    /// what it holds, undispatched.
    pub(crate) fn close_queue(&mut self) -> Vec<LoopEvent> {
        self.rx.close();
        std::iter::from_fn(|| self.rx.try_recv().ok()).collect()
    }

    fn try_next(&mut self) -> Option<LoopEvent> {
        self.rx
            .try_recv()
            .ok()
            .or_else(|| self.shared.try_sources())
    }

    fn dispatch(&self, ev: LoopEvent) -> mlua::Result<()> {
        match ev {
            LoopEvent::Client {
                id,
                generation,
                event,
            } => match lookup(&self.lua, id)? {
                Some(ud) => crate::mqtt::client::dispatch(&self.lua, &ud, generation, event),
                None => Ok(()),
            },
            LoopEvent::Timer { id, generation } => match lookup(&self.lua, id)? {
                Some(ud) => crate::tmr::fire(&self.lua, &ud, generation),
                None => Ok(()),
            },
            LoopEvent::Task { id } => crate::node::run_task(&self.lua, id),
            LoopEvent::Board(ev) => crate::sim::dispatch(&self.lua, ev),
        }
    }
}

/// `print` writing through C stdio (as `io.write` does, so the two interleave correctly) and
/// flushing after each line.
fn install_print(lua: &Lua) -> mlua::Result<()> {
    let print: mlua::Function = lua
        .load(
            r##"
            local tostring, select, concat, stdout = tostring, select, table.concat, io.stdout
            return function(...)
                local n = select("#", ...)
                local parts = {...}
                for i = 1, n do parts[i] = tostring(parts[i]) end
                stdout:write(concat(parts, "\t", 1, n), "\n")
                stdout:flush()
            end
            "##,
        )
        .set_name("=print")
        .eval()?;
    lua.globals().raw_set("print", print)
}
