//! Test support for tern: a real mosquitto per test, TLS material, a scripted broker for
//! misbehaviour mosquitto never shows, and a fault proxy.
//!
//! Everything listens on 127.0.0.1 only, every wait is bounded and panics with what it was
//! waiting for, and a missing mosquitto fails the test (never skips it). Typical use:
//!
//! ```no_run
//! # async fn demo() {
//! use tern_testkit::{FaultProxy, MosquittoConfig};
//! let broker = MosquittoConfig::new().persistence(true).tls().start();
//! let proxy = FaultProxy::start(broker.addr()).await;
//! // ... connect tern to proxy.port(), publish, then:
//! proxy.cut_now();
//! # }
//! ```
#![warn(missing_docs)]

mod mosquitto;
mod proxy;
pub mod raw;
mod scram;
mod scripted;
mod socks;
mod tls;
mod tools;
mod trace;
mod util;

pub use mosquitto::{Mosquitto, MosquittoConfig, require_mosquitto, require_mosquitto_tool};
pub use proxy::{Direction, FaultProxy};
pub use scram::{
    AuthOutcome, AuthRecord, ConnectionEnd, SCRAM_SHA_256, ScramBroker, ScramBrokerConfig,
    ScramUser,
};
pub use scripted::{Connection, Responder, Script, ScriptStatus, ScriptedBroker, Step};
pub use socks::{SocksProxy, SocksRequest};
pub use tls::{CertKey, TlsMaterial};
pub use tools::{RunningTool, ToolCommand, ToolOutput};
pub use trace::{DriverEvent, DriverTrace};
pub use util::{DEFAULT_WAIT, LOCALHOST, closed_port, free_port, timeout, wait_until_accepting};
