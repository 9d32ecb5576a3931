//! The simulated board: what `--sim FILE` describes (a JSON file), the documented default
//! board used without one, and the changes that can happen while a script runs (scheduled in
//! the file, or typed on stdin, see `control`).
//!
//! [`Board`] is plain data, easy to build in code or feed to other parts of the runtime. An
//! example file (every key optional; see `examples/lua/board.json`):
//!
//! ```json
//! {
//!   "chipid": 12648430, "heap": 40960,
//!   "mac": "5c:cf:7f:c0:ff:ee", "ip": "127.0.0.1",
//!   "gpio": {"3": 1},
//!   "dht": {"temp": 21.5, "humi": 45.0, "status": 0},
//!   "adc": 512,
//!   "wifi": {"ssid": "home", "connect_ms": 100},
//!   "schedule": [
//!     {"at_ms": 500, "gpio": 3, "level": 0},
//!     {"at_ms": 600, "gpio": 3, "level": 1},
//!     {"at_ms": 1000, "adc": 700},
//!     {"at_ms": 1000, "dht": {"temp": 25.0, "humi": 50.0}},
//!     {"at_ms": 2000, "wifi": "drop"},
//!     {"at_ms": 4000, "wifi": "up"}
//!   ]
//! }
//! ```
//!
//! - `gpio`: input levels at boot, by pin; pins not named read 1 (idle, pulled up).
//! - `dht`: what every `dht.read*` returns until changed; `status` 0 OK, -1 checksum error,
//!   -2 timeout. `adc`: the 10-bit reading (0..1023) of `adc.read(0)`.
//! - `wifi.connect_ms`: how long the station takes to join the access point (at boot, after
//!   `wifi.sta.config`/`connect`, after the access point returns).
//! - `schedule`: changes at a time since start: an input level (which fires `gpio.trig`
//!   callbacks), a sensor value, or the access point going away (`"drop"`) and coming back
//!   (`"up"`).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

/// A DHT sensor's answer.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dht {
    /// Temperature, °C.
    pub temp: f64,
    /// Relative humidity, %.
    pub humi: f64,
    /// `dht.OK` (0), `dht.ERROR_CHECKSUM` (-1) or `dht.ERROR_TIMEOUT` (-2).
    #[serde(default)]
    pub status: i8,
}

impl Default for Dht {
    /// 21.5 °C, 45 %RH, status OK.
    fn default() -> Self {
        Self {
            temp: 21.5,
            humi: 45.0,
            status: 0,
        }
    }
}

/// A change to the board while the script runs.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// An input pin goes to `level` (0 or 1).
    Input {
        /// The pin (NodeMCU index).
        pin: u8,
        /// The new level.
        level: u8,
    },
    /// The access point goes away: the station loses its link and MQTT connections are cut.
    WifiDrop,
    /// The access point is back: the station joins it again.
    WifiUp,
    /// The ADC reads this (10-bit) value from now on.
    Adc(u16),
    /// The DHT sensor answers this from now on.
    Dht(Dht),
}

impl Action {
    /// Parses a stdin command: `gpio PIN LEVEL`, `wifi drop`, `wifi up`, `adc VALUE`,
    /// `dht TEMP HUMI [STATUS]`. `Ok(None)` for a blank line or a `#` comment.
    pub fn parse_command(line: &str) -> Result<Option<Self>, String> {
        let words: Vec<&str> = line.split_whitespace().collect();
        let num = |i: usize, what: &str| -> Result<f64, String> {
            let w = words.get(i).ok_or_else(|| format!("missing {what}"))?;
            w.parse::<f64>()
                .map_err(|_| format!("{what}: {w:?} is not a number"))
        };
        let action = match words.as_slice() {
            [] => return Ok(None),
            [first, ..] if first.starts_with('#') => return Ok(None),
            ["gpio", pin, level] => Self::Input {
                pin: pin
                    .parse()
                    .ok()
                    .filter(|p| *p <= MAX_PIN)
                    .ok_or_else(|| format!("gpio: {pin:?} is not a pin number (0..39)"))?,
                level: parse_level(level)?,
            },
            ["wifi", "drop" | "down"] => Self::WifiDrop,
            ["wifi", "up"] => Self::WifiUp,
            ["adc", value] => Self::Adc(parse_adc(value)?),
            ["dht", _, _] | ["dht", _, _, _] => Self::Dht(Dht {
                temp: num(1, "temperature")?,
                humi: num(2, "humidity")?,
                status: match words.get(3) {
                    Some(s) => s
                        .parse()
                        .map_err(|_| format!("dht status {s:?} is not -2, -1 or 0"))?,
                    None => 0,
                },
            }),
            _ => {
                return Err(format!(
                    "unknown command {:?} (expected gpio PIN LEVEL, wifi drop, wifi up, adc VALUE \
                     or dht TEMP HUMI [STATUS])",
                    line.trim()
                ));
            }
        };
        Ok(Some(action))
    }
}

fn parse_level(s: &str) -> Result<u8, String> {
    match s {
        "0" | "low" => Ok(0),
        "1" | "high" => Ok(1),
        _ => Err(format!("level {s:?} must be 0 or 1")),
    }
}

fn parse_adc(s: &str) -> Result<u16, String> {
    s.parse::<u16>()
        .ok()
        .filter(|v| *v <= 1023)
        .ok_or_else(|| format!("adc value {s:?} must be 0..1023"))
}

/// A change and when it happens.
#[derive(Debug, Clone, PartialEq)]
pub struct Scheduled {
    /// Time since the script started.
    pub at: Duration,
    /// What happens.
    pub action: Action,
}

/// The simulated board: fixed facts, initial inputs and sensor values, and the schedule.
#[derive(Debug, Clone, PartialEq)]
pub struct Board {
    /// `node.chipid()`, when the file sets it (otherwise the node module's default).
    pub chip_id: Option<u32>,
    /// `node.heap()`, when the file sets it.
    pub heap: Option<u32>,
    /// The station's MAC address (`wifi.sta.getmac()`).
    pub mac: String,
    /// The station's address once it has joined (`wifi.sta.getip()`): a loopback address,
    /// so that servers the script starts are reachable.
    pub ip: String,
    /// Input levels at boot; pins not listed read 1.
    pub inputs: BTreeMap<u8, u8>,
    /// The DHT sensor's answer at boot.
    pub dht: Dht,
    /// The ADC's 10-bit reading at boot.
    pub adc: u16,
    /// The access point's name reported before the script configures one.
    pub ssid: String,
    /// How long the station takes to join the access point.
    pub connect_time: Duration,
    /// The access point is there (false after a `wifi drop` not yet followed by `wifi up`,
    /// e.g. when the board reboots in between).
    pub ap_up: bool,
    /// Changes while running, in time order.
    pub schedule: Vec<Scheduled>,
}

impl Default for Board {
    /// The board used without `--sim`: a DHT at 21.5 °C / 45 %RH (status OK), the ADC at
    /// mid-scale (512), every input at 1, the station joining its access point 100 ms after
    /// boot, nothing scheduled.
    fn default() -> Self {
        Self {
            chip_id: None,
            heap: None,
            mac: "5c:cf:7f:c0:ff:ee".to_owned(),
            ip: "127.0.0.1".to_owned(),
            inputs: BTreeMap::new(),
            dht: Dht::default(),
            adc: 512,
            ssid: "tern".to_owned(),
            connect_time: Duration::from_millis(100),
            ap_up: true,
            schedule: Vec::new(),
        }
    }
}

impl Board {
    /// Sets what `node` reports (chip id, heap) from this board, where it says.
    pub fn apply_to(&self, node: &mut crate::Board) {
        if let Some(id) = self.chip_id {
            node.chip_id = id;
        }
        if let Some(heap) = self.heap {
            node.heap = heap;
        }
    }

    /// This board `elapsed` later: the scheduled changes due by then applied to its state,
    /// the rest of the schedule counted from then. What a board that rebooted starts on.
    #[must_use]
    pub fn advanced(mut self, elapsed: Duration) -> Self {
        let due = self.schedule.partition_point(|s| s.at <= elapsed);
        let past: Vec<Scheduled> = self.schedule.drain(..due).collect();
        for s in &past {
            self.record(&s.action);
        }
        for s in &mut self.schedule {
            s.at -= elapsed;
        }
        self
    }

    /// Takes `action` into the board's state (inputs, sensors, access point).
    fn record(&mut self, action: &Action) {
        match *action {
            Action::Input { pin, level } => {
                self.inputs.insert(pin, level);
            }
            Action::WifiDrop => self.ap_up = false,
            Action::WifiUp => self.ap_up = true,
            Action::Adc(v) => self.adc = v,
            Action::Dht(d) => self.dht = d,
        }
    }
}

/// Why a `--sim` file was refused.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The path given.
        path: String,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// Not JSON, or not the board's shape.
    #[error("{path}: {source}")]
    Json {
        /// The path given.
        path: String,
        /// Where and what.
        source: serde_json::Error,
    },
    /// Well-formed, but a value is out of range.
    #[error("{path}: {message}")]
    Invalid {
        /// The path given.
        path: String,
        /// What is wrong.
        message: String,
    },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileBoard {
    chipid: Option<u32>,
    heap: Option<u32>,
    mac: Option<String>,
    ip: Option<String>,
    #[serde(default)]
    gpio: BTreeMap<String, u8>,
    dht: Option<Dht>,
    adc: Option<u16>,
    wifi: Option<FileWifi>,
    #[serde(default)]
    schedule: Vec<FileEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileWifi {
    ssid: Option<String>,
    connect_ms: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileEntry {
    at_ms: u64,
    gpio: Option<u8>,
    level: Option<u8>,
    wifi: Option<String>,
    adc: Option<u16>,
    dht: Option<Dht>,
}

impl FileEntry {
    fn action(&self) -> Result<Action, String> {
        let what = match (self.gpio, &self.wifi, self.adc, self.dht) {
            (Some(pin), None, None, None) => {
                if pin > MAX_PIN {
                    return Err(format!("gpio {pin}: pins are 0..39"));
                }
                let level = self
                    .level
                    .ok_or_else(|| format!("gpio {pin}: \"level\" missing"))?;
                if level > 1 {
                    return Err(format!("gpio {pin}: level {level} must be 0 or 1"));
                }
                Action::Input { pin, level }
            }
            (None, Some(w), None, None) => match w.as_str() {
                "drop" | "down" => Action::WifiDrop,
                "up" => Action::WifiUp,
                other => return Err(format!("wifi {other:?} must be \"drop\" or \"up\"")),
            },
            (None, None, Some(v), None) => Action::Adc(parse_adc(&v.to_string())?),
            (None, None, None, Some(d)) => Action::Dht(d),
            _ => {
                return Err(
                    "each entry needs exactly one of \"gpio\" (with \"level\"), \"wifi\", \"adc\", \"dht\""
                        .to_owned(),
                );
            }
        };
        if self.level.is_some() && self.gpio.is_none() {
            return Err("\"level\" without \"gpio\"".to_owned());
        }
        Ok(what)
    }
}

impl Board {
    /// Reads a `--sim` file.
    pub fn load(path: &Path) -> Result<Self, SimError> {
        let text = std::fs::read_to_string(path).map_err(|source| SimError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_json(&text, &path.display().to_string())
    }

    /// Parses a board description; `name` appears in errors.
    pub fn from_json(text: &str, name: &str) -> Result<Self, SimError> {
        let file: FileBoard = serde_json::from_str(text).map_err(|source| SimError::Json {
            path: name.to_owned(),
            source,
        })?;
        let invalid = |message: String| SimError::Invalid {
            path: name.to_owned(),
            message,
        };
        let mut board = Self {
            chip_id: file.chipid,
            heap: file.heap,
            ..Self::default()
        };
        if let Some(mac) = file.mac {
            board.mac = mac;
        }
        if let Some(ip) = file.ip {
            if ip.parse::<std::net::Ipv4Addr>().is_err() {
                return Err(invalid(format!("ip {ip:?} is not an IPv4 address")));
            }
            board.ip = ip;
        }
        for (pin, level) in file.gpio {
            let n: u8 = pin
                .parse()
                .map_err(|_| invalid(format!("gpio: {pin:?} is not a pin number")))?;
            if level > 1 {
                return Err(invalid(format!("gpio {n}: level {level} must be 0 or 1")));
            }
            board.inputs.insert(n, level);
        }
        if let Some(d) = file.dht {
            board.dht = d;
        }
        if let Some(a) = file.adc {
            board.adc = parse_adc(&a.to_string()).map_err(invalid)?;
        }
        if let Some(w) = file.wifi {
            if let Some(ssid) = w.ssid {
                board.ssid = ssid;
            }
            if let Some(ms) = w.connect_ms {
                board.connect_time = Duration::from_millis(ms);
            }
        }
        for (i, e) in file.schedule.iter().enumerate() {
            let action = e
                .action()
                .map_err(|m| invalid(format!("schedule[{i}]: {m}")))?;
            board.schedule.push(Scheduled {
                at: Duration::from_millis(e.at_ms),
                action,
            });
        }
        // Stable: entries at the same time keep the file's order.
        board.schedule.sort_by_key(|s| s.at);
        Ok(board)
    }
}

/// Highest pin number a simulated input may name.
const MAX_PIN: u8 = 39;

/// Something the loop does on the simulated board's behalf.
#[derive(Debug)]
pub(crate) enum BoardEvent {
    /// A change from the schedule (`scheduled`) or typed on stdin.
    Action {
        /// The change.
        action: Action,
        /// It came from the schedule (which keeps the run alive until its last entry).
        scheduled: bool,
    },
    /// The station's join is due (`generation` tells a stale one).
    Join {
        /// The join's generation.
        generation: u64,
    },
    /// Standard input ended: no more commands will come.
    StdinClosed,
    /// A `wifi.sta.getap` scan ended.
    ScanDone {
        /// Which scan.
        id: u64,
        /// The table format asked for.
        format: i64,
    },
    /// A background `gpio.serout` ended with `pin` at `level`.
    SeroutDone {
        /// Which serout.
        id: u64,
        /// Its pin.
        pin: u8,
        /// The pin's last level.
        level: u8,
    },
}

/// The object rooted while the board can still call the script back.
#[derive(Debug)]
struct Handle;

impl mlua::UserData for Handle {}

/// Registry key of the [`Handle`].
const HANDLE: &str = "tern.board";

#[derive(Debug, Default)]
struct Live {
    id: u64,
    /// Scheduled entries not yet applied.
    schedule_left: usize,
    /// Stops the schedule of a replaced board.
    schedule_task: Option<tokio::task::AbortHandle>,
    /// Commands may still come on stdin.
    stdin_open: bool,
    /// The board as the script sees it now (with the schedule not yet applied, counted from
    /// `started`), once [`Runtime::simulate`](crate::Runtime::simulate) ran.
    world: Option<Board>,
    /// When the schedule started.
    started: Option<tokio::time::Instant>,
}

type Shared = std::rc::Rc<std::cell::RefCell<Live>>;

fn live(lua: &mlua::Lua) -> Option<Shared> {
    lua.app_data_ref::<Shared>().map(|l| std::rc::Rc::clone(&l))
}

/// Installs the board's bookkeeping; before `gpio`, `wifi` and the sensors.
pub(crate) fn register_module(lua: &mlua::Lua) -> mlua::Result<()> {
    let id = crate::registry::shared(lua)?.next_id();
    let ud = lua.create_userdata(Handle)?;
    crate::registry::track(lua, id, &ud)?;
    lua.set_named_registry_value(HANDLE, ud)?;
    lua.set_app_data::<Shared>(std::rc::Rc::new(std::cell::RefCell::new(Live {
        id,
        ..Live::default()
    })));
    Ok(())
}

impl crate::Runtime {
    /// Runs the script on `board` (`tern run --sim`): its inputs, sensors and station, its
    /// schedule, and MQTT connections through its simulated access point. With `stdin`,
    /// commands typed on standard input change the board too (`gpio 4 0`, `wifi drop`,
    /// `wifi up`, `adc 700`, `dht 22.5 40`). Call it before running the script. The board's
    /// chip id and heap reach `node` through the runtime's [`Config`](crate::Config): set
    /// them there with [`Board::apply_to`] before [`with_config`](Self::with_config).
    pub fn simulate(&self, mut board: Board, stdin: bool) -> mlua::Result<()> {
        let lua = self.lua();
        let tx = crate::registry::shared(lua)?.tx.clone();
        // The stdin reader outlives a rebooted runtime: it delivers to this one from now on;
        // what was typed while no runtime listened is part of the board this one starts on.
        let stdin_open = if stdin {
            let (open, missed) = crate::control::attach(tx.clone());
            for action in &missed {
                board.record(action);
            }
            open
        } else {
            false
        };
        crate::gpio::configure(lua, &board)?;
        crate::sensors::configure(lua, &board)?;
        crate::wifi::configure(lua, &board, true)?;
        let Some(l) = live(lua) else {
            return Err(crate::args::lua_error("the board is not installed"));
        };
        let schedule = board.schedule.clone();
        let start = tokio::time::Instant::now();
        {
            let mut l = l.borrow_mut();
            if let Some(t) = l.schedule_task.take() {
                t.abort();
            }
            l.schedule_left = schedule.len();
            l.stdin_open = stdin_open;
            l.world = Some(board);
            l.started = Some(start);
        }
        let task = tokio::spawn(async move {
            for s in schedule {
                tokio::time::sleep_until(start + s.at).await;
                let ev = BoardEvent::Action {
                    action: s.action,
                    scheduled: true,
                };
                if tx
                    .send(crate::registry::LoopEvent::Board(ev))
                    .await
                    .is_err()
                {
                    return;
                }
            }
        });
        l.borrow_mut().schedule_task = Some(task.abort_handle());
        refresh(lua)
    }

    /// Ends this runtime's part in the simulation, after [`run`](Self::run) returned for a
    /// reboot ([`reboot_requested`](Self::reboot_requested)), and returns the board as it is
    /// now (inputs, sensors, access point, the schedule still to come counted from now) when
    /// [`simulate`](Self::simulate) ran: what the next boot simulates. The loop's queue is
    /// closed; stdin commands not yet dispatched, and those typed until the next runtime's
    /// `simulate`, change that board.
    pub fn take_board(&mut self) -> Option<Board> {
        let l = live(self.lua())?;
        let tx = crate::registry::shared(self.lua()).ok()?.tx.clone();
        crate::control::detach(&tx);
        // Commands typed but not dispatched: the board changed before the reboot all the same.
        // (Scheduled changes not dispatched are still in the world's schedule.)
        let typed: Vec<Action> = self
            .close_queue()
            .into_iter()
            .filter_map(|ev| match ev {
                crate::registry::LoopEvent::Board(BoardEvent::Action {
                    action,
                    scheduled: false,
                }) => Some(action),
                _ => None,
            })
            .collect();
        if let Some(world) = &mut l.borrow_mut().world {
            for action in &typed {
                world.record(action);
            }
        }
        let l = l.borrow();
        let world = l.world.clone()?;
        let elapsed = l.started.map_or(Duration::ZERO, |t| t.elapsed());
        Some(world.advanced(elapsed))
    }
}

/// Applies a board event (the loop calls it).
pub(crate) fn dispatch(lua: &mlua::Lua, ev: BoardEvent) -> mlua::Result<()> {
    match ev {
        BoardEvent::Action { action, scheduled } => {
            if let Some(l) = live(lua) {
                let mut l = l.borrow_mut();
                if scheduled {
                    l.schedule_left = l.schedule_left.saturating_sub(1);
                }
                if let Some(world) = &mut l.world {
                    if scheduled && !world.schedule.is_empty() {
                        world.schedule.remove(0); // delivered in order
                    }
                    world.record(&action);
                }
            }
            apply(lua, action)?;
            refresh(lua)
        }
        BoardEvent::Join { generation } => crate::wifi::join(lua, generation),
        BoardEvent::ScanDone { id, format } => crate::wifi::scan_done(lua, id, format),
        BoardEvent::StdinClosed => {
            if let Some(l) = live(lua) {
                l.borrow_mut().stdin_open = false;
            }
            refresh(lua)
        }
        BoardEvent::SeroutDone { id, pin, level } => crate::gpio::serout_done(lua, id, pin, level),
    }
}

fn apply(lua: &mlua::Lua, action: Action) -> mlua::Result<()> {
    use crate::trace::{Kind, emit};
    match action {
        Action::Input { pin, level } => crate::gpio::input(lua, pin, level),
        Action::WifiDrop => crate::wifi::drop_ap(lua),
        Action::WifiUp => crate::wifi::return_ap(lua),
        Action::Adc(v) => {
            emit(Kind::Gpio, "adc", v);
            crate::sensors::set_adc(lua, v)
        }
        Action::Dht(d) => {
            emit(
                Kind::Gpio,
                "dht",
                format_args!("{} {} {}", d.temp, d.humi, d.status),
            );
            crate::sensors::set_dht(lua, d)
        }
    }
}

/// Roots the board while it can still call the script back: a background `serout` is
/// running, or a callback listens (a `gpio.trig`, a Wi-Fi event) while a station join, a
/// scheduled change or a stdin command may still come.
pub(crate) fn refresh(lua: &mlua::Lua) -> mlua::Result<()> {
    let Some(l) = live(lua) else {
        return Ok(()); // during registration
    };
    let (id, schedule_left, stdin_open) = {
        let l = l.borrow();
        (l.id, l.schedule_left, l.stdin_open)
    };
    let listening =
        crate::gpio::watching(lua).unwrap_or(false) || crate::wifi::watching(lua).unwrap_or(false);
    let coming = schedule_left > 0 || stdin_open || crate::wifi::joining(lua).unwrap_or(false);
    let alive = crate::gpio::busy(lua).unwrap_or(false) || (listening && coming);
    if alive {
        let ud: mlua::AnyUserData = lua.named_registry_value(HANDLE)?;
        crate::registry::root(lua, id, &ud)
    } else {
        crate::registry::unroot(lua, id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_file_parses_and_the_schedule_is_in_time_order() {
        let b = Board::from_json(
            r#"{"chipid": 7, "heap": 1000, "gpio": {"3": 0}, "adc": 100,
                "dht": {"temp": 30.5, "humi": 60},
                "wifi": {"ssid": "lab", "connect_ms": 20},
                "schedule": [{"at_ms": 900, "wifi": "up"}, {"at_ms": 500, "wifi": "drop"},
                             {"at_ms": 500, "gpio": 3, "level": 1}]}"#,
            "t",
        )
        .unwrap();
        assert_eq!(b.chip_id, Some(7));
        assert_eq!(b.inputs.get(&3), Some(&0));
        assert_eq!(b.adc, 100);
        assert_eq!(b.dht.temp, 30.5);
        assert_eq!(b.connect_time, Duration::from_millis(20));
        let actions: Vec<_> = b.schedule.iter().map(|s| s.action.clone()).collect();
        assert_eq!(
            actions,
            vec![
                Action::WifiDrop,
                Action::Input { pin: 3, level: 1 },
                Action::WifiUp
            ]
        );
    }

    #[test]
    fn advancing_applies_what_is_due_and_counts_the_rest_from_then() {
        let b = Board::from_json(
            r#"{"gpio": {"3": 1}, "adc": 100,
                "schedule": [{"at_ms": 100, "gpio": 3, "level": 0},
                             {"at_ms": 200, "wifi": "drop"},
                             {"at_ms": 200, "adc": 300},
                             {"at_ms": 900, "wifi": "up"}]}"#,
            "t",
        )
        .unwrap();
        let later = b.clone().advanced(Duration::from_millis(200));
        assert_eq!(later.inputs.get(&3), Some(&0));
        assert_eq!(later.adc, 300);
        assert!(!later.ap_up);
        assert_eq!(
            later.schedule,
            vec![Scheduled {
                at: Duration::from_millis(700),
                action: Action::WifiUp
            }]
        );
        let end = later.advanced(Duration::from_secs(1));
        assert!(end.ap_up && end.schedule.is_empty());
        assert_eq!(
            b.advanced(Duration::ZERO).schedule.len(),
            4,
            "nothing due at 0"
        );
    }

    #[test]
    fn the_files_chip_id_and_heap_reach_node_and_nothing_else_does() {
        let mut node = crate::Board::default();
        Board::from_json(r#"{"heap": 1000}"#, "t")
            .unwrap()
            .apply_to(&mut node);
        assert_eq!(
            node,
            crate::Board {
                heap: 1000,
                ..crate::Board::default()
            }
        );
        Board::from_json(r#"{"chipid": 7}"#, "t")
            .unwrap()
            .apply_to(&mut node);
        assert_eq!((node.chip_id, node.heap), (7, 1000));
    }

    #[test]
    fn mistakes_are_named() {
        let err = |s: &str| Board::from_json(s, "b.json").unwrap_err().to_string();
        assert!(err(r#"{"chipId": 1}"#).contains("unknown field `chipId`"));
        assert!(err(r#"{"schedule": [{"at_ms": 1, "gpio": 2}]}"#).contains("\"level\" missing"));
        assert!(err(r#"{"schedule": [{"at_ms": 1}]}"#).contains("exactly one"));
        assert!(err(r#"{"adc": 2000}"#).contains("0..1023"));
        assert!(err(r#"{"gpio": {"x": 1}}"#).contains("not a pin number"));
        assert!(err("{").starts_with("b.json: "));
    }

    #[test]
    fn stdin_commands_parse() {
        assert_eq!(
            Action::parse_command("gpio 4 1"),
            Ok(Some(Action::Input { pin: 4, level: 1 }))
        );
        assert_eq!(
            Action::parse_command(" wifi drop "),
            Ok(Some(Action::WifiDrop))
        );
        assert_eq!(Action::parse_command("wifi up"), Ok(Some(Action::WifiUp)));
        assert_eq!(Action::parse_command("adc 300"), Ok(Some(Action::Adc(300))));
        assert_eq!(
            Action::parse_command("dht 20 40 -2"),
            Ok(Some(Action::Dht(Dht {
                temp: 20.0,
                humi: 40.0,
                status: -2
            })))
        );
        assert_eq!(Action::parse_command("# note"), Ok(None));
        assert_eq!(Action::parse_command(""), Ok(None));
        assert!(Action::parse_command("gpio 4 2").is_err());
        assert!(Action::parse_command("reboot").is_err());
    }
}
