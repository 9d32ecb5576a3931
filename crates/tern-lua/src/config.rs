//! What a [`Runtime`](crate::Runtime) simulates: the firmware variant, the board, the flash
//! file system's directory; and how a script asks for a reboot.

use std::path::PathBuf;
use std::time::Duration;

use crate::board::Board;
use crate::firmware::Firmware;

/// The simulated device.
#[derive(Debug, Clone, Default)]
pub struct Config {
    /// Which firmware's behaviour to follow where the variants differ.
    pub firmware: Firmware,
    /// Chip id, heap, flash: what `node` reports.
    pub board: Board,
    /// The directory that is the flash file system (`file`, `require`, `dofile`). `None`:
    /// the `file` module raises "no flash file system".
    pub fs: Option<PathBuf>,
    /// Why the board (re)started: what `node.bootreason()` reports.
    pub boot_reason: BootReason,
}

/// Why the board started (`node.bootreason()`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BootReason {
    /// Power on: the first boot of a run.
    #[default]
    PowerOn,
    /// `node.restart()`.
    Restart,
    /// The software watchdog (`tmr.softwd`) expired.
    Watchdog,
    /// Woken from `node.dsleep()`.
    DeepSleepWake,
}

impl BootReason {
    /// `node.bootreason()`'s two values: the raw code (1 power on, 2 reset) and the
    /// extended reason (0 power on, 3 software watchdog, 4 software restart, 5 deep sleep
    /// wake), as the ESP8266 reports them.
    pub const fn codes(self) -> (i64, i64) {
        match self {
            Self::PowerOn => (1, 0),
            Self::Watchdog => (2, 3),
            Self::Restart => (2, 4),
            Self::DeepSleepWake => (2, 5),
        }
    }
}

/// A reboot the script asked for (`node.restart()`, `node.dsleep()`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reboot {
    /// Start the script again from a fresh Lua state after this long, for this reason.
    After(Duration, BootReason),
    /// `node.dsleep(0)`: the board sleeps until it is reset, which nothing here does.
    SleepForever,
}
