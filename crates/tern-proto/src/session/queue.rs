//! Commands waiting to be sent: offline, before CONNACK, or behind the in-flight window.

use std::collections::VecDeque;

use crate::packet::{QoS, SubscribeProperties, SubscriptionOptions};
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
    /// MQTT 5 SUBSCRIBE with options or properties.
    SubscribeV5(Box<(Vec<(TopicFilter, SubscriptionOptions)>, SubscribeProperties)>),
    Unsubscribe(Vec<TopicFilter>),
}

/// A queued SUBSCRIBE or UNSUBSCRIBE with its request id.
#[derive(Debug, Clone)]
pub(super) struct QueuedControl {
    pub(super) req: RequestId,
    pub(super) control: Control,
}

/// One command waiting in the queue.
#[derive(Debug, Clone)]
pub(super) enum Queued {
    /// A publish (any QoS).
    Publish(QueuedPublish),
    /// A SUBSCRIBE or UNSUBSCRIBE.
    Control(QueuedControl),
}

/// The command queue, bounded by `max_queued` commands and `max_queued_bytes` of publishes.
///
/// Design: one FIFO for every kind of command, so the wire order is the order the
/// application made its calls (as NodeMCU's single queue and Paho do): a SUBSCRIBE issued
/// after a publish that waits for the in-flight window waits behind it, and a QoS 0 publish
/// waits behind a QoS 1/2 one. `subscribe(t)`, `publish(t)`, `unsubscribe(t)` then reaches
/// the broker in that order, and the publish is delivered back.
#[derive(Debug, Default)]
pub(super) struct CommandQueue {
    commands: VecDeque<Queued>,
    /// Payload and topic bytes of the waiting publishes, for `max_queued_bytes`.
    publish_bytes: usize,
}

/// What a queued publish costs against `max_queued_bytes`.
pub(super) fn weight(msg: &Message) -> usize {
    msg.payload.len().saturating_add(msg.topic.as_str().len())
}

impl CommandQueue {
    /// Appends a command.
    pub(super) fn push(&mut self, command: Queued) {
        if let Queued::Publish(p) = &command {
            self.publish_bytes = self.publish_bytes.saturating_add(weight(&p.msg));
        }
        self.commands.push_back(command);
    }

    /// Takes the oldest waiting command.
    pub(super) fn pop(&mut self) -> Option<Queued> {
        let command = self.commands.pop_front()?;
        if let Queued::Publish(p) = &command {
            self.publish_bytes = self.publish_bytes.saturating_sub(weight(&p.msg));
        }
        // Every command passes through here: keep room for a stream, not for a backlog.
        super::release_if_drained(&mut self.commands, false);
        Some(command)
    }

    /// Frees the buffer if nothing waits.
    pub(super) fn release_if_drained(&mut self) {
        super::release_if_drained(&mut self.commands, true);
    }

    /// The oldest waiting command.
    pub(super) fn front(&self) -> Option<&Queued> {
        self.commands.front()
    }

    /// True when no command waits.
    pub(super) fn is_empty(&self) -> bool {
        self.commands.is_empty()
    }

    /// Topic and payload bytes of the waiting publishes.
    pub(super) fn publish_bytes(&self) -> usize {
        self.publish_bytes
    }

    /// Commands waiting.
    pub(super) fn len(&self) -> usize {
        self.commands.len()
    }

    /// Puts commands that were on their way out back at the front, in their original order
    /// (`commands` is oldest first).
    pub(super) fn requeue_front(&mut self, commands: Vec<Queued>) {
        for c in commands.into_iter().rev() {
            if let Queued::Publish(p) = &c {
                self.publish_bytes = self.publish_bytes.saturating_add(weight(&p.msg));
            }
            self.commands.push_front(c);
        }
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::topic::TopicName;

    fn publish(n: u64, payload: usize) -> Queued {
        Queued::Publish(QueuedPublish {
            req: RequestId(n),
            msg: Message {
                topic: TopicName::new("t/1").unwrap(),
                payload: Bytes::from(vec![0; payload]),
                qos: QoS::AtLeastOnce,
                retain: false,
                properties: None,
            },
        })
    }

    fn control(n: u64) -> Queued {
        Queued::Control(QueuedControl {
            req: RequestId(n),
            control: Control::Unsubscribe(vec![TopicFilter::new("t/#").unwrap()]),
        })
    }

    fn req(q: &Queued) -> RequestId {
        match q {
            Queued::Publish(p) => p.req,
            Queued::Control(c) => c.req,
        }
    }

    #[test]
    fn queued_bytes_follow_pushes_pops_and_requeues() {
        let mut q = CommandQueue::default();
        q.push(publish(1, 10));
        q.push(control(2));
        q.push(publish(3, 20));
        assert_eq!(q.publish_bytes(), 13 + 23);
        let first = q.pop().unwrap();
        assert_eq!(req(&first), RequestId(1));
        assert_eq!(q.publish_bytes(), 23);
        q.requeue_front(vec![first]);
        assert_eq!(q.publish_bytes(), 13 + 23);
        assert_eq!(q.front().map(req), Some(RequestId(1)));
        assert_eq!(q.len(), 3);
        while q.pop().is_some() {}
        assert_eq!(q.publish_bytes(), 0);
        assert!(q.is_empty());
    }

    #[test]
    fn every_kind_of_command_keeps_call_order() {
        let mut q = CommandQueue::default();
        q.push(control(1));
        q.push(publish(2, 1));
        q.push(control(3));
        q.push(publish(4, 1));
        let order: Vec<u64> = std::iter::from_fn(|| q.pop()).map(|c| req(&c).0).collect();
        assert_eq!(order, [1, 2, 3, 4]);
        // Requeued commands go back ahead of later ones, in their own order.
        q.push(publish(7, 1));
        q.requeue_front(vec![control(5), publish(6, 1)]);
        let order: Vec<u64> = std::iter::from_fn(|| q.pop()).map(|c| req(&c).0).collect();
        assert_eq!(order, [5, 6, 7]);
    }
}
