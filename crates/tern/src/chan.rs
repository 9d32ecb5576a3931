//! The bounded queues between handles and the driver (commands) and between the driver and
//! the application (events).
//!
//! tokio's `mpsc` allocates a block of 32 slots per channel up front (6.4 KiB for a client's
//! two channels, most of an idle connection's memory); this queue allocates only for what
//! it holds, and frees it once drained. Everything shared sits behind one mutex: the items,
//! the room left, and the wakers of whoever waits; receiving an item takes the lock once,
//! and gives its room back under it.
//!
//! The receiver counts the items it has taken ([`Sender::poll_taken`]): the driver
//! acknowledges a message to the broker only once the application has taken it, and learns
//! that from the count (one integer under the lock it already takes, and a wake-up only
//! while the driver waits for one), not from a message per item.
//!
//! Room is counted here rather than with a `tokio::sync::Semaphore`: the driver keeps a
//! [`Sender::reserve`] future in its `select!` for as long as a connection lives, and
//! tokio's acquire future is 88 bytes where [`Reserve`] is 16. Senders waiting for room are
//! all woken when room is made and race for it; a channel has few senders, and none is
//! promised an order against the others.

use std::collections::VecDeque;
use std::future::{Future, poll_fn};
use std::mem;
use std::pin::Pin;
use std::task::{Context, Poll, Wake, Waker};

// Under `--cfg tern_loom` the queue's lock and shared pointer are loom's, so that the model
// checker explores every interleaving of senders and receiver (see `loom_tests`).
#[cfg(tern_loom)]
use loom::sync::{Arc, Mutex, MutexGuard};
#[cfg(not(tern_loom))]
use std::sync::{Arc, Mutex, MutexGuard};

/// Wakers of senders waiting for room. Boxed on purpose: 8 bytes in every channel's shared
/// state instead of 24, for a list that is almost always absent.
#[allow(clippy::box_collection)]
type Waiters = Option<Box<Vec<Waker>>>;

struct Chan<T> {
    state: Mutex<State<T>>,
}

struct State<T> {
    items: VecDeque<T>,
    /// Items that may still be queued before senders must wait (`u32`, as is `senders`, to
    /// keep the shared allocation small).
    room: u32,
    senders: u32,
    /// The receiver is gone: sending fails and nothing is kept.
    closed: bool,
    /// Items the sender dropped instead of queueing (its policy, see
    /// [`Sender::note_dropped`]); `u32`, saturating, to fit beside `closed`.
    dropped: u32,
    /// The receiver found the queue empty and waits: woken by the next item, or when the
    /// last sender leaves. Registered under the same lock that saw the queue empty, so no
    /// wake-up is lost.
    waiting: Option<Waker>,
    /// Items queued, ever.
    sent: u64,
    /// Items the receiver has taken (and, in deferred mode, finished with), ever.
    taken: u64,
    /// A sender waiting for `taken` to grow (see [`Sender::poll_taken`]).
    taken_waiting: Option<Waker>,
    /// Senders that found no room: all woken when room is made or the receiver leaves.
    /// Registered under the same lock that saw no room; allocated only while someone waits
    /// (boxed: most channels never fill up, and the field lives in every one).
    waiting_senders: Waiters,
}

impl<T> Chan<T> {
    fn lock(&self) -> MutexGuard<'_, State<T>> {
        // A panic while holding the lock leaves the queue consistent (every operation on it
        // is a few field updates that cannot panic midway), so a poisoned lock is still
        // usable.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Gives back one item's worth of room and wakes the senders waiting for it.
    fn add_room(&self) {
        let waiters = {
            let mut state = self.lock();
            state.room += 1;
            state.waiting_senders.take()
        };
        wake_all(waiters);
    }
}

/// Wakes every sender of a taken `waiting_senders` list.
fn wake_all(waiters: Waiters) {
    for w in waiters.into_iter().flat_map(|list| *list) {
        w.wake();
    }
}

/// A bounded queue of at most `capacity` items (at least 1) not yet taken by the receiver.
pub(crate) fn channel<T>(capacity: usize) -> (Sender<T>, Receiver<T>) {
    let chan = Arc::new(Chan {
        state: Mutex::new(State {
            items: VecDeque::new(),
            room: u32::try_from(capacity).unwrap_or(u32::MAX).max(1),
            senders: 1,
            closed: false,
            dropped: 0,
            waiting: None,
            sent: 0,
            taken: 0,
            taken_waiting: None,
            waiting_senders: None,
        }),
    });
    (
        Sender { chan: chan.clone() },
        Receiver {
            chan,
            deferred: false,
            unfinished: false,
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
    /// The receiver has taken everything queued so far.
    pub(crate) fn is_empty(&self) -> bool {
        self.chan.lock().items.is_empty()
    }

    /// Counts one item the sender dropped instead of sending, for
    /// [`Receiver::dropped`].
    pub(crate) fn note_dropped(&self) {
        let mut state = self.chan.lock();
        state.dropped = state.dropped.saturating_add(1);
    }

    /// Items queued so far.
    pub(crate) fn sent(&self) -> u64 {
        self.chan.lock().sent
    }

    /// Items the receiver has taken so far (see [`Receiver::set_deferred`]).
    pub(crate) fn taken(&self) -> u64 {
        self.chan.lock().taken
    }

    /// Ready with the count of items taken once it is at least `count`; otherwise registers
    /// `cx` to be woken when the receiver takes the next item. One waiter (the driver).
    pub(crate) fn poll_taken(&self, cx: &mut Context<'_>, count: u64) -> Poll<u64> {
        let mut state = self.chan.lock();
        if state.taken >= count {
            return Poll::Ready(state.taken);
        }
        match &mut state.taken_waiting {
            Some(old) if old.will_wake(cx.waker()) => {}
            slot => *slot = Some(cx.waker().clone()),
        }
        Poll::Pending
    }

    /// Waits for room, then queues `item`; gives it back if the receiver is gone.
    pub(crate) async fn send(&self, item: T) -> Result<(), T> {
        match self.reserve().await {
            Ok(permit) => {
                mem::forget(permit);
                self.push(item)
            }
            Err(Closed) => Err(item),
        }
    }

    /// Queues `item` if there is room now.
    pub(crate) fn try_send(&self, item: T) -> Result<(), TrySendError<T>> {
        let waiting = {
            let mut state = self.chan.lock();
            if state.closed {
                return Err(TrySendError::Closed(item));
            }
            if state.room == 0 {
                return Err(TrySendError::Full(item));
            }
            state.room -= 1;
            Self::push_locked(&mut state, item)
        };
        if let Some(w) = waiting {
            w.wake();
        }
        Ok(())
    }

    /// Waits for room for one item; `Err` once the receiver is gone. Cancel-safe: room is
    /// only taken in the poll that returns it.
    pub(crate) fn reserve(&self) -> Reserve<'_, T> {
        Reserve { sender: self }
    }

    /// Queues `item` in room already taken.
    fn push(&self, item: T) -> Result<(), T> {
        let waiting = {
            let mut state = self.chan.lock();
            if state.closed {
                return Err(item);
            }
            Self::push_locked(&mut state, item)
        };
        if let Some(w) = waiting {
            w.wake();
        }
        Ok(())
    }

    /// Appends `item`; returns the receiver's waker, to be woken once the lock is released.
    fn push_locked(state: &mut State<T>, item: T) -> Option<Waker> {
        if state.items.capacity() == 0 {
            // One item is the common case between wake-ups (VecDeque would make room for
            // four); bursts grow it as usual.
            state.items.reserve_exact(1);
        }
        state.items.push_back(item);
        state.sent += 1;
        state.waiting.take()
    }
}

/// The receiver is gone.
#[derive(Debug)]
pub(crate) struct Closed;

/// The future of [`Sender::reserve`].
pub(crate) struct Reserve<'a, T> {
    sender: &'a Sender<T>,
}

impl<'a, T> Future for Reserve<'a, T> {
    type Output = Result<Permit<'a, T>, Closed>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let sender = self.sender;
        let mut state = sender.chan.lock();
        if state.closed {
            return Poll::Ready(Err(Closed));
        }
        if state.room > 0 {
            state.room -= 1;
            return Poll::Ready(Ok(Permit { sender }));
        }
        let waiting = state.waiting_senders.get_or_insert_default();
        if !waiting.iter().any(|w| w.will_wake(cx.waker())) {
            waiting.push(cx.waker().clone());
        }
        Poll::Pending
    }
}

/// Room for one item, from [`Sender::reserve`]; dropping it gives the room back.
pub(crate) struct Permit<'a, T> {
    sender: &'a Sender<T>,
}

impl<T> Permit<'_, T> {
    /// Queues `item` in the reserved room (dropped if the receiver left meanwhile).
    pub(crate) fn send(self, item: T) {
        let sender = self.sender;
        mem::forget(self);
        let _ = sender.push(item);
    }
}

impl<T> Drop for Permit<'_, T> {
    fn drop(&mut self) {
        self.sender.chan.add_room();
    }
}

/// The receiving side: just the shared queue, so that the driver's task, which holds one
/// for as long as the client lives, stays small.
pub(crate) struct Receiver<T> {
    chan: Arc<Chan<T>>,
    /// An item counts as taken only when the receiver comes back for the next one (the
    /// callback dispatcher: its handler has returned by then).
    deferred: bool,
    /// Deferred mode: the last item taken is not counted yet.
    unfinished: bool,
}

impl<T> std::fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Receiver")
            .field("queued", &self.chan.lock().items.len())
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

    /// Items the sender dropped instead of sending ([`Sender::note_dropped`]), ever.
    pub(crate) fn dropped(&self) -> u32 {
        self.chan.lock().dropped
    }

    /// The next item if one is queued.
    pub(crate) fn try_recv(&mut self) -> Result<T, TryRecvError> {
        self.take(None)
    }

    /// Counts an item as taken only when the next one is asked for (or none is): for a
    /// receiver that hands each item to code that must finish with it first.
    pub(crate) fn set_deferred(&mut self) {
        self.deferred = true;
    }

    /// Takes the next item; when there is none and `waker` is given, registers it. One lock
    /// per item, which also gives its room back and counts it taken.
    fn take(&mut self, waker: Option<&Waker>) -> Result<T, TryRecvError> {
        let mut taken_waiting = None;
        let result = self.take_locked(waker, &mut taken_waiting);
        if let Some(w) = taken_waiting {
            w.wake();
        }
        result
    }

    fn take_locked(
        &mut self,
        waker: Option<&Waker>,
        taken_waiting: &mut Option<Waker>,
    ) -> Result<T, TryRecvError> {
        let (item, waiters) = {
            let mut state = self.chan.lock();
            if mem::take(&mut self.unfinished) {
                // The previous item's handler is done.
                state.taken += 1;
                *taken_waiting = state.taken_waiting.take();
            }
            let Some(item) = state.items.pop_front() else {
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
            };
            if state.items.is_empty() {
                // Drained: hold no memory between bursts (an idle client holds none).
                state.items = VecDeque::new();
            }
            state.room += 1;
            if self.deferred {
                self.unfinished = true;
            } else {
                state.taken += 1;
                *taken_waiting = state.taken_waiting.take();
            }
            (item, state.waiting_senders.take())
        };
        wake_all(waiters);
        Ok(item)
    }

    /// The next item, blocking the thread; for synchronous code, not inside a runtime.
    pub(crate) fn blocking_recv(&mut self) -> Option<T> {
        block_on(self.recv())
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        let (items, waiters) = {
            let mut state = self.chan.lock();
            state.closed = true;
            (mem::take(&mut state.items), state.waiting_senders.take())
        };
        // Dropped and woken outside the lock: an item's drop may wake or drop other things.
        drop(items);
        wake_all(waiters);
    }
}

/// Runs `fut` to completion on this thread, parking while it is pending.
fn block_on<F: Future>(fut: F) -> F::Output {
    // `Wake` takes std's `Arc`, whichever one the queue uses.
    use std::sync::Arc as StdArc;
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: StdArc<Self>) {
            self.0.unpark();
        }
        fn wake_by_ref(self: &StdArc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(StdArc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut fut = std::pin::pin!(fut);
    loop {
        if let Poll::Ready(out) = fut.as_mut().poll(&mut cx) {
            return out;
        }
        std::thread::park();
    }
}

#[cfg(all(test, not(tern_loom)))]
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

    #[tokio::test]
    async fn the_sender_learns_how_many_items_were_taken() {
        let (tx, mut rx) = channel(4);
        tx.try_send(1).unwrap();
        tx.try_send(2).unwrap();
        let cx = &mut Context::from_waker(Waker::noop());
        assert_eq!(tx.poll_taken(cx, 1), Poll::Pending);
        let waiter = tokio::spawn({
            let tx = tx.clone();
            async move { poll_fn(|cx| tx.poll_taken(cx, 2)).await }
        });
        assert_eq!(rx.recv().await, Some(1));
        assert_eq!(tx.taken(), 1);
        assert_eq!(rx.try_recv(), Ok(2));
        assert_eq!(waiter.await.unwrap(), 2, "woken when the count was reached");
        // Dropping the receiver with items queued counts none of them.
        tx.try_send(3).unwrap();
        drop(rx);
        assert_eq!(tx.taken(), 2);
    }

    #[tokio::test]
    async fn a_deferred_receiver_counts_an_item_when_it_asks_for_the_next() {
        let (tx, mut rx) = channel(4);
        rx.set_deferred();
        tx.try_send(1).unwrap();
        tx.try_send(2).unwrap();
        assert_eq!(rx.recv().await, Some(1));
        assert_eq!(tx.taken(), 0, "item 1 is still being handled");
        assert_eq!(rx.try_recv(), Ok(2));
        assert_eq!(tx.taken(), 1);
        assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
        assert_eq!(tx.taken(), 2, "asking again finishes item 2");
        tx.try_send(3).unwrap();
        assert_eq!(rx.try_recv(), Ok(3));
        drop(rx);
        assert_eq!(
            tx.taken(),
            2,
            "an item taken but never finished is not counted"
        );
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

/// Model checks of the queue's lock-and-wake protocol: every interleaving of a sender and
/// the receiver (loom bounds the search), so that no item is lost or duplicated, no wake-up
/// is lost (a lost one shows as a deadlock), and room is never exceeded.
///
/// `RUSTFLAGS="--cfg tern_loom" CARGO_TARGET_DIR=target/loom cargo test -p tern --lib chan::`
/// (its own target directory: the flag rebuilds every dependency). Not `--cfg loom`: tokio
/// reads that cfg too and leaves out its `net` module, which this crate needs.
#[cfg(all(test, tern_loom))]
mod loom_tests {
    use loom::future::block_on;
    use loom::thread;

    use super::*;

    /// A sender that waits for room (capacity 1) and a receiver that waits for items: both
    /// items arrive, in order, then the end. Exhaustive (no preemption bound): ~8 s; a
    /// third item makes it minutes.
    #[test]
    fn waiting_sender_and_waiting_receiver_lose_nothing() {
        loom::model(|| {
            let (tx, mut rx) = channel::<u8>(1);
            let sender = thread::spawn(move || {
                block_on(async {
                    for i in 0..2 {
                        tx.send(i).await.expect("the receiver is alive");
                    }
                });
            });
            let got: Vec<u8> = block_on(async {
                let mut got = Vec::new();
                while let Some(i) = rx.recv().await {
                    got.push(i);
                }
                got
            });
            sender.join().expect("sender thread");
            assert_eq!(got, [0, 1]);
        });
    }

    /// Two senders racing `try_send` into one slot: the queue never holds more than its
    /// capacity, and each item accepted is received exactly once.
    #[test]
    fn racing_try_sends_respect_capacity() {
        loom::model(|| {
            let (tx, mut rx) = channel::<u8>(1);
            let tx2 = tx.clone();
            let other = thread::spawn(move || tx2.try_send(2).is_ok());
            let mine = tx.try_send(1).is_ok();
            let theirs = other.join().expect("sender thread");
            // One slot: exactly one of the two got in (nothing was taken meanwhile).
            assert!(mine ^ theirs, "mine {mine}, theirs {theirs}");
            let first = rx.try_recv().expect("the accepted item");
            assert_eq!(first, if mine { 1 } else { 2 });
            drop(tx);
            assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
        });
    }

    /// The receiver leaving while a sender waits for room wakes the sender with an error
    /// (it does not wait forever).
    #[test]
    fn dropping_the_receiver_releases_a_waiting_sender() {
        loom::model(|| {
            let (tx, rx) = channel::<u8>(1);
            tx.try_send(0).expect("room for one");
            let sender = thread::spawn(move || block_on(tx.send(1)));
            drop(rx);
            assert_eq!(sender.join().expect("sender thread"), Err(1));
        });
    }

    /// The driver's wait for the application to take items (`poll_taken`) is woken by the
    /// take: the count it sees is never behind what was taken.
    #[test]
    fn a_take_wakes_the_wait_for_it() {
        loom::model(|| {
            let (tx, mut rx) = channel::<u8>(2);
            tx.try_send(1).expect("room");
            let receiver = thread::spawn(move || {
                assert_eq!(rx.try_recv(), Ok(1));
                rx
            });
            let taken = block_on(poll_fn(|cx| tx.poll_taken(cx, 1)));
            assert_eq!(taken, 1);
            drop(receiver.join().expect("receiver thread"));
        });
    }
}
