//! `tern run --firmware esp8266|esp32`: which NodeMCU firmware a script is written for, and
//! each behaviour that depends on it (the switches `lib.rs` documents, one method each).

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// The NodeMCU firmware variant a script targets. The default is ESP32, the seed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Firmware {
    /// NodeMCU `release` for the ESP8266.
    Esp8266,
    /// NodeMCU `dev-esp32` (the seed's documentation).
    #[default]
    Esp32,
}

/// A `--firmware` value that names no variant.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown firmware {0:?}: expected esp8266 or esp32")]
pub struct UnknownFirmware(pub String);

impl FromStr for Firmware {
    type Err = UnknownFirmware;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "esp8266" | "8266" => Ok(Self::Esp8266),
            "esp32" | "32" => Ok(Self::Esp32),
            _ => Err(UnknownFirmware(s.to_owned())),
        }
    }
}

impl fmt::Display for Firmware {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Esp8266 => "esp8266",
            Self::Esp32 => "esp32",
        })
    }
}

impl Firmware {
    /// `mqtt.Client` keepalive when none or 0 is given: 60 s (ESP8266's
    /// `MQTT_DEFAULT_KEEPALIVE`), 120 s (esp-mqtt's default).
    pub const fn default_keepalive(self) -> Duration {
        match self {
            Self::Esp8266 => Duration::from_secs(60),
            Self::Esp32 => Duration::from_secs(120),
        }
    }

    /// `mqtt.Client`'s `max_message_length` when none is given: 1024 on the ESP8266 (larger
    /// messages go to `overflow`), none on ESP32 (tern delivers them whole).
    pub const fn default_max_message_length(self) -> Option<usize> {
        match self {
            Self::Esp8266 => Some(1024),
            Self::Esp32 => None,
        }
    }

    /// Whether `mqtt.Client()` without a client id uses `"NodeMCU_" .. hex(chipid)` (ESP8266)
    /// rather than a random id (ESP32 requires an id; tern makes one up).
    pub const fn chip_client_id(self) -> bool {
        matches!(self, Self::Esp8266)
    }

    /// Whether the callbacks given to `connect()` *are* the `on("connect")` / `on("connfail")`
    /// handlers (ESP8266: persistent, replacing them) rather than one-shot callbacks that
    /// fire before them (ESP32).
    pub const fn connect_callbacks_are_handlers(self) -> bool {
        matches!(self, Self::Esp8266)
    }

    /// What `connect()` returns when the attempt started: nil (ESP8266) or true (ESP32).
    pub const fn connect_returns_true(self) -> bool {
        matches!(self, Self::Esp32)
    }

    /// Whether `connect()` on a client that is connecting or connected drops that connection
    /// and starts a new one (ESP32), rather than raising "already connected" (ESP8266).
    pub const fn connect_replaces_live_connection(self) -> bool {
        matches!(self, Self::Esp32)
    }

    /// Whether `close()` before the connection is up is ignored (ESP8266, returns false) or
    /// ends the attempt (ESP32 destroys the client).
    pub const fn close_ignored_while_connecting(self) -> bool {
        matches!(self, Self::Esp8266)
    }

    /// Whether `publish`/`subscribe`/`unsubscribe` without a connection raise
    /// `"not connected"` (ESP8266) or return false (ESP32).
    pub const fn commands_raise_when_not_connected(self) -> bool {
        matches!(self, Self::Esp8266)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_names_and_defaults_to_esp32() {
        assert_eq!("esp8266".parse(), Ok(Firmware::Esp8266));
        assert_eq!("ESP32".parse(), Ok(Firmware::Esp32));
        assert_eq!(Firmware::default(), Firmware::Esp32);
        let e = "esp42".parse::<Firmware>().unwrap_err();
        assert_eq!(
            e.to_string(),
            "unknown firmware \"esp42\": expected esp8266 or esp32"
        );
    }
}
