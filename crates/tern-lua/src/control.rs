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
//! as usual once nothing else is pending.

use std::io::BufRead;

use tokio::sync::mpsc;

use crate::runtime::LoopEvent;
use crate::sim::{Action, BoardEvent};

/// Starts reading commands from stdin into the loop's queue.
pub(crate) fn start(tx: mpsc::Sender<LoopEvent>) {
    let spawned = std::thread::Builder::new()
        .name("tern-stdin".into())
        .spawn(move || {
            // Ends at end of input, on a read error, or when the runtime is gone.
            for line in std::io::stdin().lock().lines() {
                let Ok(line) = line else { break };
                match Action::parse_command(&line) {
                    Ok(Some(action)) => {
                        let ev = BoardEvent::Action {
                            action,
                            scheduled: false,
                        };
                        if tx.blocking_send(LoopEvent::Board(ev)).is_err() {
                            break;
                        }
                    }
                    Ok(None) => {}
                    Err(e) => eprintln!("tern: stdin: {e}"),
                }
            }
            let _ = tx.blocking_send(LoopEvent::Board(BoardEvent::StdinClosed));
        });
    if let Err(e) = spawned {
        eprintln!("tern: cannot read commands from stdin: {e}");
    }
}
