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
    publishes: VecDeque<QueuedPublish>,
    pub(super) controls: VecDeque<QueuedControl>,
    /// Payload and topic bytes of the waiting publishes, for `max_queued_bytes`.
    publish_bytes: usize,
}

/// What a queued publish costs against `max_queued_bytes`.
pub(super) fn weight(msg: &Message) -> usize {
    msg.payload.len().saturating_add(msg.topic.as_str().len())
}

impl CommandQueue {
    /// Appends a publish.
    pub(super) fn push_publish(&mut self, p: QueuedPublish) {
        self.publish_bytes = self.publish_bytes.saturating_add(weight(&p.msg));
        self.publishes.push_back(p);
    }

    /// Takes the oldest waiting publish.
    pub(super) fn pop_publish(&mut self) -> Option<QueuedPublish> {
        let p = self.publishes.pop_front()?;
        self.publish_bytes = self.publish_bytes.saturating_sub(weight(&p.msg));
        // Every publish passes through here: keep room for a stream, not for a backlog.
        super::release_if_drained(&mut self.publishes, false);
        Some(p)
    }

    /// Frees the buffers of both FIFOs if they are empty.
    pub(super) fn release_if_drained(&mut self) {
        super::release_if_drained(&mut self.publishes, true);
        super::release_if_drained(&mut self.controls, true);
    }

    /// The oldest waiting publish.
    pub(super) fn front_publish(&self) -> Option<&QueuedPublish> {
        self.publishes.front()
    }

    /// True when no publish waits.
    pub(super) fn no_publishes(&self) -> bool {
        self.publishes.is_empty()
    }

    /// Topic and payload bytes of the waiting publishes.
    pub(super) fn publish_bytes(&self) -> usize {
        self.publish_bytes
    }

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
            self.publish_bytes = self.publish_bytes.saturating_add(weight(&p.msg));
            self.publishes.push_front(p);
        }
        for c in controls.into_iter().rev() {
            self.controls.push_front(c);
        }
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::topic::TopicName;

    fn publish(n: u64, payload: usize) -> QueuedPublish {
        QueuedPublish {
            req: RequestId(n),
            msg: Message {
                topic: TopicName::new("t/1").unwrap(),
                payload: Bytes::from(vec![0; payload]),
                qos: QoS::AtLeastOnce,
                retain: false,
            },
        }
    }

    #[test]
    fn queued_bytes_follow_pushes_pops_and_requeues() {
        let mut q = CommandQueue::default();
        q.push_publish(publish(1, 10));
        q.push_publish(publish(2, 20));
        assert_eq!(q.publish_bytes(), 13 + 23);
        let first = q.pop_publish().unwrap();
        assert_eq!(first.req, RequestId(1));
        assert_eq!(q.publish_bytes(), 23);
        q.requeue_front(vec![first], Vec::new());
        assert_eq!(q.publish_bytes(), 13 + 23);
        assert_eq!(q.front_publish().map(|p| p.req), Some(RequestId(1)));
        while q.pop_publish().is_some() {}
        assert_eq!(q.publish_bytes(), 0);
        assert!(q.no_publishes());
    }
}
