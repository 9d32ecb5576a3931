//! What tern's driver reports through `tracing`, captured on the test's thread: the size of
//! every write and read (`wrote` and `read` events, field `bytes`) and the messages of its
//! other events. For tests about read and write patterns and socket decisions, which a real
//! broker cannot observe.

use std::sync::{Arc, Mutex, PoisonError};

use tracing::field::{Field, Visit};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};

/// The `tracing` target of tern's driver.
const DRIVER: &str = "tern::driver";

/// One event of the driver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DriverEvent {
    /// The event's message (`wrote` for a write).
    pub message: String,
    /// Its `bytes` field, if it has one (the size of a write).
    pub bytes: Option<u64>,
}

/// Collects the driver's events while installed (see [`DriverTrace::install`]).
///
/// ```no_run
/// let trace = tern_testkit::DriverTrace::default();
/// let _guard = trace.install();
/// // ... run a tern client on this thread (a current-thread runtime) ...
/// assert_eq!(trace.writes().len(), 2);
/// ```
#[derive(Debug, Clone, Default)]
pub struct DriverTrace(Arc<Mutex<Vec<DriverEvent>>>);

impl DriverTrace {
    /// Makes this the thread's default subscriber until the guard is dropped; every task of
    /// a current-thread runtime on this thread is then traced.
    #[must_use = "tracing stops when the guard is dropped"]
    pub fn install(&self) -> tracing::subscriber::DefaultGuard {
        tracing::subscriber::set_default(tracing_subscriber::registry().with(self.clone()))
    }

    /// Every event so far.
    pub fn events(&self) -> Vec<DriverEvent> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The sizes of the writes so far, in order.
    pub fn writes(&self) -> Vec<u64> {
        self.events()
            .into_iter()
            .filter(|e| e.message == "wrote")
            .filter_map(|e| e.bytes)
            .collect()
    }

    /// The sizes of the reads so far, in order.
    pub fn reads(&self) -> Vec<u64> {
        self.events()
            .into_iter()
            .filter(|e| e.message == "read")
            .filter_map(|e| e.bytes)
            .collect()
    }

    /// The messages of the events other than writes and reads.
    pub fn messages(&self) -> Vec<String> {
        self.events()
            .into_iter()
            .filter(|e| e.message != "wrote" && e.message != "read")
            .map(|e| e.message)
            .collect()
    }
}

impl<S: tracing::Subscriber> Layer<S> for DriverTrace {
    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        if event.metadata().target() != DRIVER {
            return;
        }
        let mut v = Fields(DriverEvent {
            message: String::new(),
            bytes: None,
        });
        event.record(&mut v);
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(v.0);
    }
}

struct Fields(DriverEvent);

impl Visit for Fields {
    fn record_u64(&mut self, field: &Field, value: u64) {
        if field.name() == "bytes" {
            self.0.bytes = Some(value);
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            value.clone_into(&mut self.0.message);
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.0.message = format!("{value:?}");
        }
    }
}
