//! The bounded queues between handles and the driver (commands) and between the driver and
//! the application (events).
//!
//! tokio's `mpsc` allocates a block of 32 slots per channel up front (6.4 KiB for a client's
//! two channels, most of an idle connection's memory); this queue allocates only for what
//! it holds, and frees it once drained. Capacity is a semaphore's permits; items wait in a
//! `VecDeque` behind a mutex, and the receiver takes them all at once into its own buffer,
//! so one lock (and one permit release) covers a whole burst. Items taken but not yet
//! received do not count against the capacity: at most twice the capacity is buffered.

use std::collections::VecDeque;
use std::future::{Future, poll_fn};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Wake, Waker};

use tokio::sync::{Semaphore, SemaphorePermit, TryAcquireError};

struct Chan<T> {
    state: Mutex<State<T>>,
    space: Semaphore,
}

struct State<T> {
    items: VecDeque<T>,
    senders: usize,
    /// The receiver is gone: sending fails and nothing is kept.
    closed: bool,
    /// The receiver found the queue empty and waits: woken by the next item, or when the
    /// last sender leaves. Registered under the same lock that saw the queue empty, so no
    /// wake-up is lost.
    waiting: Option<Waker>,
}

impl<T> Chan<T> {
    fn lock(&self) -> MutexGuard<'_, State<T>> {
        // A panic while holding the lock leaves the queue consistent (every operation on it
        // is a single VecDeque call), so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A bounded queue of at most `capacity` items (at least 1) not yet taken by the receiver.
pub(crate) fn channel<T>(capacity: usize) -> (Sender<T>, Receiver<T>) {
    let chan = Arc::new(Chan {
        state: Mutex::new(State {
            items: VecDeque::new(),
            senders: 1,
            closed: false,
            waiting: None,
        }),
        space: Semaphore::new(capacity.max(1)),
    });
    (
        Sender { chan: chan.clone() },
        Receiver {
            chan,
            buf: VecDeque::new(),
        },
    )
}

/// Why [`Sender::try_send`] gave the item back.
#[derive(Debug)]
pub(crate) enum TrySendError<T> {
    /// The queue is at capacity.
    Full(T),
    /// The receiver is gone.
    Closed(T),
}

/// The sending side; clones share the queue.
pub(crate) struct Sender<T> {
    chan: Arc<Chan<T>>,
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        self.chan.lock().senders += 1;
        Self {
            chan: self.chan.clone(),
        }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        let waiting = {
            let mut state = self.chan.lock();
            state.senders -= 1;
            if state.senders == 0 {
                state.waiting.take()
            } else {
                None
            }
        };
        if let Some(w) = waiting {
            w.wake();
        }
    }
}

impl<T> Sender<T> {
    /// Waits for room, then queues `item`; gives it back if the receiver is gone.
    pub(crate) async fn send(&self, item: T) -> Result<(), T> {
        match self.chan.space.acquire().await {
            Ok(permit) => {
                permit.forget();
                self.push(item)
            }
            Err(_) => Err(item),
        }
    }

    /// Queues `item` if there is room now.
    pub(crate) fn try_send(&self, item: T) -> Result<(), TrySendError<T>> {
        match self.chan.space.try_acquire() {
            Ok(permit) => {
                permit.forget();
                self.push(item).map_err(TrySendError::Closed)
            }
            Err(TryAcquireError::NoPermits) => Err(TrySendError::Full(item)),
            Err(TryAcquireError::Closed) => Err(TrySendError::Closed(item)),
        }
    }

    /// Waits for room for one item; `Err` once the receiver is gone. Cancel-safe.
    pub(crate) async fn reserve(&self) -> Result<Permit<'_, T>, Closed> {
        let permit = self.chan.space.acquire().await.map_err(|_| Closed)?;
        Ok(Permit {
            sender: self,
            permit,
        })
    }

    fn push(&self, item: T) -> Result<(), T> {
        let waiting = {
            let mut state = self.chan.lock();
            if state.closed {
                return Err(item);
            }
            if state.items.capacity() == 0 {
                // One item is the common case between wake-ups (VecDeque would make room
                // for four); bursts grow it as usual.
                state.items.reserve_exact(1);
            }
            state.items.push_back(item);
            state.waiting.take()
        };
        if let Some(w) = waiting {
            w.wake();
        }
        Ok(())
    }
}

/// The receiver is gone.
#[derive(Debug)]
pub(crate) struct Closed;

/// Room for one item, from [`Sender::reserve`]; dropping it gives the room back.
pub(crate) struct Permit<'a, T> {
    sender: &'a Sender<T>,
    permit: SemaphorePermit<'a>,
}

impl<T> Permit<'_, T> {
    /// Queues `item` in the reserved room (dropped if the receiver left meanwhile).
    pub(crate) fn send(self, item: T) {
        self.permit.forget();
        let _ = self.sender.push(item);
    }
}

/// The receiving side.
pub(crate) struct Receiver<T> {
    chan: Arc<Chan<T>>,
    /// Items taken from the queue, in order, not yet returned.
    buf: VecDeque<T>,
}

impl<T> std::fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Receiver")
            .field("buffered", &self.buf.len())
            .finish_non_exhaustive()
    }
}

/// Why [`Receiver::try_recv`] returned nothing.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum TryRecvError {
    /// Nothing queued now.
    Empty,
    /// Nothing queued, and every sender is gone.
    Disconnected,
}

impl<T> Receiver<T> {
    /// The next item; `None` once every sender is gone and the queue is drained.
    /// Cancel-safe: an item is only taken in the poll that returns it. Takes part in
    /// tokio's cooperative budget, as `mpsc` does, so a busy queue cannot starve the task's
    /// other work.
    pub(crate) async fn recv(&mut self) -> Option<T> {
        poll_fn(|cx| self.poll_recv(cx)).await
    }

    /// Polls for the next item, registering `cx`'s waker when there is none.
    pub(crate) fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<T>> {
        let coop = std::task::ready!(tokio::task::coop::poll_proceed(cx));
        let item = match self.take(Some(cx.waker())) {
            Ok(item) => Some(item),
            Err(TryRecvError::Disconnected) => None,
            Err(TryRecvError::Empty) => return Poll::Pending,
        };
        coop.made_progress();
        Poll::Ready(item)
    }

    /// The next item if one is queued.
    pub(crate) fn try_recv(&mut self) -> Result<T, TryRecvError> {
        self.take(None)
    }

    /// Takes the next item; when there is none and `waker` is given, registers it.
    fn take(&mut self, waker: Option<&Waker>) -> Result<T, TryRecvError> {
        if self.buf.is_empty() {
            let taken = {
                let mut state = self.chan.lock();
                if state.items.is_empty() {
                    if state.senders == 0 {
                        return Err(TryRecvError::Disconnected);
                    }
                    if let Some(w) = waker {
                        match &mut state.waiting {
                            Some(old) if old.will_wake(w) => {}
                            slot => *slot = Some(w.clone()),
                        }
                    }
                    return Err(TryRecvError::Empty);
                }
                // The whole burst at once; the queue starts again unallocated.
                self.buf = std::mem::take(&mut state.items);
                self.buf.len()
            };
            self.chan.space.add_permits(taken);
        }
        let item = self.buf.pop_front().ok_or(TryRecvError::Empty);
        if self.buf.is_empty() {
            // Drained: hold no memory between bursts (an idle client holds none).
            self.buf = VecDeque::new();
        }
        item
    }

    /// The next item, blocking the thread; for synchronous code, not inside a runtime.
    pub(crate) fn blocking_recv(&mut self) -> Option<T> {
        block_on(self.recv())
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        let items = {
            let mut state = self.chan.lock();
            state.closed = true;
            std::mem::take(&mut state.items)
        };
        self.chan.space.close();
        // Dropped outside the lock: an item's drop may wake or drop other things.
        drop(items);
    }
}

/// Runs `fut` to completion on this thread, parking while it is pending.
fn block_on<F: Future>(fut: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
        fn wake_by_ref(self: &Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut fut = std::pin::pin!(fut);
    loop {
        if let Poll::Ready(out) = fut.as_mut().poll(&mut cx) {
            return out;
        }
        std::thread::park();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn items_arrive_in_order_and_capacity_is_enforced() {
        let (tx, mut rx) = channel(2);
        tx.try_send(1).unwrap();
        tx.send(2).await.unwrap();
        assert!(matches!(tx.try_send(3), Err(TrySendError::Full(3))));
        assert_eq!(rx.recv().await, Some(1));
        // Taking the burst freed its room.
        tx.try_send(3).unwrap();
        assert_eq!(rx.try_recv(), Ok(2));
        assert_eq!(rx.recv().await, Some(3));
        assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    }

    #[tokio::test]
    async fn a_waiting_sender_proceeds_when_room_is_made() {
        let (tx, mut rx) = channel(1);
        tx.send(1).await.unwrap();
        let waiting = tokio::spawn(async move {
            tx.send(2).await.unwrap();
            tx
        });
        assert_eq!(rx.recv().await, Some(1));
        let tx = waiting.await.unwrap();
        assert_eq!(rx.recv().await, Some(2));
        drop(tx);
        assert_eq!(rx.recv().await, None);
    }

    #[tokio::test]
    async fn the_receiver_ends_when_every_sender_is_gone() {
        let (tx, mut rx) = channel::<u8>(4);
        let tx2 = tx.clone();
        tx2.try_send(7).unwrap();
        drop(tx);
        drop(tx2);
        assert_eq!(rx.recv().await, Some(7));
        assert_eq!(rx.recv().await, None);
        assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
    }

    #[tokio::test]
    async fn senders_fail_once_the_receiver_is_gone_and_queued_items_are_dropped() {
        let (tx, rx) = channel(4);
        let item = Arc::new(());
        tx.try_send(item.clone()).unwrap();
        let (tx_full, rx_full) = channel(1);
        tx_full.try_send(0).unwrap();
        let blocked = tokio::spawn(async move { tx_full.send(1).await });
        tokio::task::yield_now().await;
        drop(rx);
        drop(rx_full);
        assert_eq!(Arc::strong_count(&item), 1, "the queued item was dropped");
        assert!(matches!(tx.try_send(item), Err(TrySendError::Closed(_))));
        assert!(tx.reserve().await.is_err());
        assert_eq!(blocked.await.unwrap(), Err(1));
    }

    #[tokio::test]
    async fn a_permit_holds_room_until_used_or_dropped() {
        let (tx, mut rx) = channel(1);
        let permit = tx.reserve().await.unwrap();
        assert!(matches!(tx.try_send(1), Err(TrySendError::Full(1))));
        drop(permit);
        tx.reserve().await.unwrap().send(2);
        assert_eq!(rx.recv().await, Some(2));
    }

    #[test]
    fn blocking_recv_waits_for_another_thread() {
        let (tx, mut rx) = channel(1);
        let t = std::thread::spawn(move || block_on(tx.send(5)).unwrap());
        assert_eq!(rx.blocking_recv(), Some(5));
        t.join().unwrap();
        assert_eq!(rx.blocking_recv(), None);
    }
}
