//! The registry every module shares with the event loop: the loop's events
//! ([`LoopEvent`]), the runtime's shared state ([`Shared`], in the Lua state's app data),
//! and the tables that find objects by id ([`track`], [`lookup`]) and keep them alive while
//! they can still produce events ([`root`], [`unroot`]).
//!
//! A leaf below the modules: `mqtt`, `tmr`, `node` and the others import it, and the loop
//! (`runtime`) imports them, so no import goes both ways.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::task::{Context, Poll};

use mlua::{AnyUserData, Lua, Table, Value};
use tokio::sync::mpsc;

use crate::config::{Config, Reboot};

/// Named registry table: id → object, weak values.
const OBJECTS: &str = "tern.objects";
/// Named registry table: id → object, strong; what keeps the loop alive.
const ROOTED: &str = "tern.rooted";

/// Something that happened, for the loop to dispatch.
#[derive(Debug)]
pub(crate) enum LoopEvent {
    /// An event of the tern client behind a Lua client object. `generation` tells events of
    /// a replaced tern client apart from the current one's.
    Client {
        id: u64,
        generation: u64,
        event: tern::Event,
    },
    /// A timer expired. `generation` is the arming it belongs to; stale ones are dropped.
    Timer { id: u64, generation: u64 },
    /// A function posted with `node.task.post` is due.
    Task { id: u64 },
    /// Something happened on the simulated board (`crate::sim`).
    Board(crate::sim::BoardEvent),
}

/// The event stream of the tern client behind a Lua client object.
#[derive(Debug)]
struct Source {
    id: u64,
    generation: u64,
    events: tern::Events,
    /// The stream ended (its driver stopped); removed at the next poll.
    ended: bool,
}

impl Source {
    /// `event` as the loop dispatches it.
    fn loop_event(&self, event: tern::Event) -> LoopEvent {
        LoopEvent::Client {
            id: self.id,
            generation: self.generation,
            event,
        }
    }
}

/// State shared by the modules and the loop, kept in the Lua state's app data.
#[derive(Debug)]
pub(crate) struct Shared {
    /// Where timers send their expiries.
    pub(crate) tx: mpsc::Sender<LoopEvent>,
    /// The clients' event streams the loop waits on. Borrowed only briefly and never across
    /// a call into Lua (whose garbage collector may drop a client, see [`Shared::forget`]).
    sources: RefCell<Vec<Source>>,
    /// Where the next poll of `sources` starts, so a busy client cannot starve the others.
    next_source: Cell<usize>,
    next_id: Cell<u64>,
    rooted: Cell<usize>,
    /// `tmr.now()` / `tmr.time()` count from here (the device counts from boot).
    pub(crate) started: tokio::time::Instant,
    /// The firmware variant, board and flash directory this runtime simulates.
    pub(crate) config: Config,
    /// Set by `node.restart()` / `node.dsleep()`: the loop stops at the next turn.
    pub(crate) reboot: Cell<Option<Reboot>>,
}

impl Shared {
    /// The state of a fresh runtime simulating `config`, whose timers send to `tx`.
    pub(crate) fn new(tx: mpsc::Sender<LoopEvent>, config: Config) -> Self {
        Self {
            tx,
            sources: RefCell::new(Vec::new()),
            next_source: Cell::new(0),
            next_id: Cell::new(1),
            rooted: Cell::new(0),
            started: tokio::time::Instant::now(),
            config,
            reboot: Cell::new(None),
        }
    }

    /// How many objects are rooted: the loop runs while any is.
    pub(crate) fn rooted(&self) -> usize {
        self.rooted.get()
    }

    pub(crate) fn next_id(&self) -> u64 {
        let id = self.next_id.get();
        self.next_id.set(id + 1);
        id
    }

    /// Makes the loop wait on `events`, the stream of the tern client `generation` behind
    /// the Lua client object `id`.
    pub(crate) fn listen(&self, id: u64, generation: u64, events: tern::Events) {
        self.sources.borrow_mut().push(Source {
            id,
            generation,
            events,
            ended: false,
        });
    }

    /// Stops waiting on that stream (the tern client was replaced, or its object collected)
    /// and drops it. Events still queued in it are stale by then.
    pub(crate) fn forget(&self, id: u64, generation: u64) {
        // Never contended (see `sources`); if it were, the stream would be removed once its
        // driver stops, and its events are dropped as stale meanwhile.
        if let Ok(mut sources) = self.sources.try_borrow_mut() {
            sources.retain(|s| s.id != id || s.generation != generation);
        }
    }

    /// The next client event, if one is ready, taking the sources in turn.
    pub(crate) fn poll_sources(&self, cx: &mut Context<'_>) -> Poll<LoopEvent> {
        let mut sources = self.sources.borrow_mut();
        let n = sources.len();
        let start = self.next_source.get();
        let mut found = None;
        let mut ended = false;
        for k in 0..n {
            let i = (start + k) % n;
            let source = &mut sources[i];
            match source.events.poll_recv(cx) {
                Poll::Ready(Some(event)) => {
                    self.next_source.set(i + 1);
                    found = Some(source.loop_event(event));
                    break;
                }
                Poll::Ready(None) => {
                    source.ended = true;
                    ended = true;
                }
                Poll::Pending => {}
            }
        }
        if ended {
            sources.retain(|s| !s.ended);
        }
        found.map_or(Poll::Pending, Poll::Ready)
    }

    /// A client event that is ready now, if any.
    pub(crate) fn try_sources(&self) -> Option<LoopEvent> {
        let mut sources = self.sources.borrow_mut();
        sources
            .iter_mut()
            .find_map(|s| s.events.try_recv().map(|event| s.loop_event(event)))
    }
}

/// The shared state of `lua`; errors if the runtime did not install it.
pub(crate) fn shared(lua: &Lua) -> mlua::Result<Rc<Shared>> {
    lua.app_data_ref::<Rc<Shared>>()
        .map(|s| Rc::clone(&s))
        .ok_or_else(|| mlua::Error::RuntimeError("tern runtime not installed".into()))
}

/// Records `ud` under `id` (weakly), so events can find it.
pub(crate) fn track(lua: &Lua, id: u64, ud: &AnyUserData) -> mlua::Result<()> {
    lua.named_registry_value::<Table>(OBJECTS)?.raw_set(id, ud)
}

/// The live object with this id, if it has not been collected.
pub(crate) fn lookup(lua: &Lua, id: u64) -> mlua::Result<Option<AnyUserData>> {
    // Rooted objects are alive, hence in the weak table too.
    match lua
        .named_registry_value::<Table>(OBJECTS)?
        .raw_get::<Value>(id)?
    {
        Value::UserData(ud) => Ok(Some(ud)),
        _ => Ok(None),
    }
}

/// Keeps `ud` alive and the loop running until [`unroot`]. Idempotent.
pub(crate) fn root(lua: &Lua, id: u64, ud: &AnyUserData) -> mlua::Result<()> {
    let rooted = lua.named_registry_value::<Table>(ROOTED)?;
    if rooted.raw_get::<Value>(id)?.is_nil() {
        rooted.raw_set(id, ud)?;
        let s = shared(lua)?;
        s.rooted.set(s.rooted.get() + 1);
    }
    Ok(())
}

/// Undoes [`root`]. Idempotent.
pub(crate) fn unroot(lua: &Lua, id: u64) -> mlua::Result<()> {
    let rooted = lua.named_registry_value::<Table>(ROOTED)?;
    if !rooted.raw_get::<Value>(id)?.is_nil() {
        rooted.raw_set(id, Value::Nil)?;
        let s = shared(lua)?;
        s.rooted.set(s.rooted.get().saturating_sub(1));
    }
    Ok(())
}

/// Creates the registry tables in `lua` and installs `shared` as its app data.
pub(crate) fn install(lua: &Lua, shared: &Rc<Shared>) -> mlua::Result<()> {
    lua.set_app_data(Rc::clone(shared));
    let objects = lua.create_table()?;
    let weak = lua.create_table()?;
    weak.raw_set("__mode", "v")?;
    objects.set_metatable(Some(weak))?;
    lua.set_named_registry_value(OBJECTS, objects)?;
    lua.set_named_registry_value(ROOTED, lua.create_table()?)
}
