//! Driving the simulated board from outside while the script runs: one command per line on
//! standard input (under `tern run --sim`), read on a thread of its own so the Lua loop never
//! waits for it.
//!
//! | command | effect |
//! |---|---|
//! | `gpio PIN LEVEL` | input `PIN` goes to `LEVEL` (0/1, `low`/`high`); fires `gpio.trig` callbacks |
//! | `wifi drop` | the access point goes away: `STA_DISCONNECTED`, MQTT connections cut |
//! | `wifi up` | the access point returns: the station joins again |
//! | `adc VALUE` | `adc.read(0)` gives `VALUE` (0..1023) from now on |
//! | `dht TEMP HUMI [STATUS]` | `dht.read*` give these from now on |
//!
//! Blank lines and lines starting with `#` are ignored; a wrong command is reported on stderr
//! (`tern: stdin: ...`) and skipped. While stdin is open, a script with a board callback
//! (`gpio.trig`, a Wi-Fi event) keeps running, waiting for commands; at end of input it ends
//! as usual once nothing else is pending. The reader outlives a reboot (`node.restart`,
//! `node.dsleep`): commands go to the runtime of the current boot; ones typed while the board
//! reboots change the board the next boot starts on (an input read then reads the new level;
//! no interrupt fires for a change while the board was off).

use std::io::BufRead;
use std::sync::{Mutex, MutexGuard, PoisonError};

use tokio::sync::mpsc;

use crate::registry::LoopEvent;
use crate::sim::{Action, BoardEvent};

/// Where the reader delivers: the current runtime's queue. A reboot (`node.restart`) makes a
/// new runtime, which [`attach`]es itself; the reader thread and its stdin stay.
#[derive(Default)]
struct Target {
    /// The reader thread runs.
    started: bool,
    /// Standard input ended.
    closed: bool,
    /// The queue of the runtime commands go to.
    tx: Option<mpsc::Sender<LoopEvent>>,
    /// Commands that came while no runtime took them (the board rebooting), in order.
    pending: Vec<Action>,
}

static TARGET: Mutex<Target> = Mutex::new(Target {
    started: false,
    closed: false,
    tx: None,
    pending: Vec::new(),
});

fn target() -> MutexGuard<'static, Target> {
    TARGET.lock().unwrap_or_else(PoisonError::into_inner)
}

fn event(action: Action) -> LoopEvent {
    LoopEvent::Board(BoardEvent::Action {
        action,
        scheduled: false,
    })
}

/// Makes `tx` the queue stdin commands go to (starting the reader on first use). Returns
/// whether standard input is still open, and the commands that came while no runtime took
/// them (the board rebooting), in order.
pub(crate) fn attach(tx: mpsc::Sender<LoopEvent>) -> (bool, Vec<Action>) {
    let mut t = target();
    let missed = std::mem::take(&mut t.pending);
    t.tx = Some(tx);
    if !t.started {
        t.started = true;
        drop(t);
        start();
        return (true, missed);
    }
    (!t.closed, missed)
}

/// Stops delivering to `tx` (its runtime is ending): commands wait for the next [`attach`].
pub(crate) fn detach(tx: &mpsc::Sender<LoopEvent>) {
    let mut t = target();
    if t.tx.as_ref().is_some_and(|now| now.same_channel(tx)) {
        t.tx = None;
    }
}

/// Hands `action` to the current runtime, or keeps it for the next one.
fn deliver(action: Action) {
    let mut action = action;
    loop {
        let tx = target().tx.clone();
        let Some(tx) = tx else {
            target().pending.push(action);
            return;
        };
        // Not under the lock: a full queue waits here, never the runtime's `attach`.
        match tx.blocking_send(event(action)) {
            Ok(()) => return,
            Err(mpsc::error::SendError(ev)) => {
                let LoopEvent::Board(BoardEvent::Action { action: a, .. }) = ev else {
                    return;
                };
                action = a;
                let mut t = target();
                // Attached anew meanwhile: try the new runtime; otherwise wait for one.
                if t.tx.as_ref().is_some_and(|now| now.same_channel(&tx)) {
                    t.tx = None;
                    t.pending.push(action);
                    return;
                }
            }
        }
    }
}

/// Starts reading commands from stdin on a thread of its own.
fn start() {
    let spawned = std::thread::Builder::new()
        .name("tern-stdin".into())
        .spawn(|| {
            // Ends at end of input or on a read error.
            for line in std::io::stdin().lock().lines() {
                let Ok(line) = line else { break };
                match Action::parse_command(&line) {
                    Ok(Some(action)) => deliver(action),
                    Ok(None) => {}
                    Err(e) => eprintln!("tern: stdin: {e}"),
                }
            }
            let tx = {
                let mut t = target();
                t.closed = true;
                t.tx.clone()
            };
            if let Some(tx) = tx {
                let _ = tx.blocking_send(LoopEvent::Board(BoardEvent::StdinClosed));
            }
        });
    if let Err(e) = spawned {
        eprintln!("tern: cannot read commands from stdin: {e}");
        target().closed = true;
    }
}
