//! The simulated board's fixed facts (chip id, flash, heap, firmware version) that `node`
//! reports and the ESP8266's default `mqtt` client id is made from.
//!
//! A plain struct with documented defaults, so a board description (e.g. a `--sim` file)
//! can override any of them: `Board { chip_id: 0xc0ffee, ..Board::default() }`.

use std::time::Duration;

/// What `node.*` reports about the board.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Board {
    /// `node.chipid()`; the ESP8266's default client id is `"NodeMCU_" .. hex(chip_id)`.
    pub chip_id: u32,
    /// `node.flashid()`.
    pub flash_id: u32,
    /// Flash size in bytes (`node.info()`).
    pub flash_size: u32,
    /// Free heap in bytes (`node.heap()`).
    pub heap: u32,
    /// Firmware version `(major, minor, dev)` (`node.info()`).
    pub version: (u8, u8, u8),
    /// Time a restart takes (`node.restart()`, the end of `node.dsleep()`), as the boot.
    pub boot_time: Duration,
}

impl Default for Board {
    /// An ESP8266 module with 4 MiB flash and 40 KiB free heap, booting in 100 ms.
    fn default() -> Self {
        Self {
            chip_id: 0x00c0_ffee,
            flash_id: 0x0016_40ef,
            flash_size: 4 * 1024 * 1024,
            heap: 40 * 1024,
            version: (3, 0, 0),
            boot_time: Duration::from_millis(100),
        }
    }
}

impl Board {
    /// The ESP8266's default MQTT client id: `NodeMCU_` and the chip id in lower-case hex.
    pub fn default_client_id(&self) -> String {
        format!("NodeMCU_{:x}", self.chip_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_client_id_is_nodemcu_and_hex_chip_id() {
        let b = Board {
            chip_id: 0xab12,
            ..Board::default()
        };
        assert_eq!(b.default_client_id(), "NodeMCU_ab12");
    }
}
