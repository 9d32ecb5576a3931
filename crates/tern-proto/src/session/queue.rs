//! Commands waiting to be sent: offline, before CONNACK, or behind the in-flight window.

use std::collections::VecDeque;

use crate::packet::QoS;
use crate::topic::TopicFilter;

use super::{Message, RequestId};

/// A publish that has not left the queue yet (it has no packet id: ids are allocated when a
/// command goes on the wire, so a long queue does not exhaust the id space).
#[derive(Debug, Clone)]
pub(super) struct QueuedPublish {
    pub(super) req: RequestId,
    pub(super) msg: Message,
}

/// A SUBSCRIBE or UNSUBSCRIBE that has not left the queue yet.
#[derive(Debug, Clone)]
pub(super) enum Control {
    Subscribe(Vec<(TopicFilter, QoS)>),
    Unsubscribe(Vec<TopicFilter>),
}

/// A queued SUBSCRIBE or UNSUBSCRIBE with its request id.
#[derive(Debug, Clone)]
pub(super) struct QueuedControl {
    pub(super) req: RequestId,
    pub(super) control: Control,
}

/// The command queue, bounded by `max_queued` as a whole.
///
/// Design: two FIFOs. Publishes keep their relative order across QoS levels, and a QoS 0
/// publish waits behind a QoS 1/2 one that waits for the window, so the application's
/// publish order is the wire order. SUBSCRIBE/UNSUBSCRIBE are not held by the publish window
/// and go out ahead of waiting publishes.
#[derive(Debug, Default)]
pub(super) struct CommandQueue {
    pub(super) publishes: VecDeque<QueuedPublish>,
    pub(super) controls: VecDeque<QueuedControl>,
}

impl CommandQueue {
    /// Commands waiting.
    pub(super) fn len(&self) -> usize {
        self.publishes.len() + self.controls.len()
    }

    /// Puts commands that were on their way out back at the front, in their original order
    /// (`publishes` and `controls` are each oldest first).
    pub(super) fn requeue_front(
        &mut self,
        publishes: Vec<QueuedPublish>,
        controls: Vec<QueuedControl>,
    ) {
        for p in publishes.into_iter().rev() {
            self.publishes.push_front(p);
        }
        for c in controls.into_iter().rev() {
            self.controls.push_front(c);
        }
    }
}
