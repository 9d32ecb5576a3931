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
}

/// A reboot the script asked for (`node.restart()`, `node.dsleep()`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reboot {
    /// Start the script again from a fresh Lua state after this long.
    After(Duration),
    /// `node.dsleep(0)`: the board sleeps until it is reset, which nothing here does.
    SleepForever,
}
