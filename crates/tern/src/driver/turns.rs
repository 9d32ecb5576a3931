//! Taking turns: the application, and other clients on the same thread, run between the
//! driver's reads, so a reply leaves with the acknowledgement it follows and no client
//! monopolises a shared runtime.

use std::future::poll_fn;
use std::task::Poll;

use super::{Driver, Link};
use crate::chan;
use crate::client::Command;

/// Events (messages, completions) a driver hands the application in one turn before it
/// yields, so that clients sharing a thread take turns: tokio's cooperative budget per task
/// poll is 128 as well, which is also how many events an application's `recv` loop takes
/// per turn. One read may overshoot it (a 64 KiB read of small messages).
pub(super) const TURN_EVENTS: u16 = 128;

/// Whether [`requeue`] lets the tasks this one woke run first: on a current-thread runtime
/// (see [`Driver::app_turn`]). On a multi-thread runtime a task that wakes itself takes the
/// worker's next-task slot, ahead of what it woke.
pub(super) fn requeue_is_a_turn() -> bool {
    tokio::runtime::Handle::try_current()
        .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::CurrentThread)
}

/// Returns `Pending` once after waking this task: the scheduler queues it again at once.
async fn requeue() {
    let mut woken = false;
    poll_fn(|cx| {
        if woken {
            Poll::Ready(())
        } else {
            woken = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    })
    .await;
}

impl Driver {
    /// Lets the tasks that what was just read woke run, then takes the commands they sent.
    ///
    /// `tokio::task::yield_now` runs this task again only after the scheduler has polled
    /// the I/O driver: one more `epoll_wait` per read, which on a stream of acknowledged
    /// messages is as many as the reads themselves. On a current-thread runtime a task that
    /// wakes itself goes to the back of the run queue, behind the tasks it woke, and nothing
    /// else happens in between ([`requeue`]); that is enough when the application is a
    /// spawned task. When the application is the runtime's `block_on` future, it is polled
    /// only after the queue empties, so if it has not taken its events yet, the deferred
    /// yield still follows.
    pub(super) async fn app_turn(
        &mut self,
        requeue_is_a_turn: bool,
        commands: &mut chan::Receiver<Command>,
        link: &mut Link<'_>,
    ) {
        self.turn_events = 0;
        if requeue_is_a_turn {
            requeue().await;
            if self.take_commands(commands, link, None) > 0 || self.events.is_empty() {
                return;
            }
        }
        tokio::task::yield_now().await;
        self.take_commands(commands, link, None);
    }
}
