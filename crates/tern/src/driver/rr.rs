//! MQTT 5 request/response ([`Client::request`](crate::Client::request)): one response topic
//! per client, subscribed before the first request, and the requests awaiting a response by
//! their Correlation Data.

use std::collections::HashMap;

use bytes::{BufMut, Bytes, BytesMut};
use tern_proto::{QoS, SubscriptionOptions, TopicFilter, TopicName};
use tokio::sync::oneshot;

use super::Driver;
use super::requests::Waiter;
use crate::client::Message;
use crate::error::ClientError;
use crate::v5::Publish;

/// Where a request's response goes.
type ResponseReply = oneshot::Sender<Result<Message, ClientError>>;

/// The request/response state of a client.
pub(super) struct RequestResponse {
    /// The response topic (chosen at the first request).
    topic: TopicName,
    /// Requests awaiting a response, by Correlation Data.
    waiting: HashMap<Bytes, ResponseReply>,
    /// Random per client: correlation data of two clients sharing a response topic by
    /// accident never collide.
    nonce: u64,
    /// Requests made.
    next: u64,
}

impl Driver {
    /// The response topic for this client: the broker's Response Information followed by
    /// `/tern-rr`, else `tern-rr/<client id>`, else `tern-rr/<random>`.
    fn response_topic(&self) -> TopicName {
        let info = self
            .session
            .server_capabilities()
            .and_then(|c| c.response_information.as_ref())
            .map(|i| format!("{}/tern-rr", i.as_str().trim_end_matches('/')));
        let by_id = format!("tern-rr/{}", self.session.config().client_id.as_str());
        info.into_iter()
            .chain([by_id])
            .find_map(|t| TopicName::new(&t).ok().filter(|_| !t.contains(['+', '#'])))
            .or_else(|| TopicName::new(&format!("tern-rr/{:016x}", fastrand::u64(..))).ok())
            .unwrap_or_else(|| TopicName::new("tern-rr").unwrap_or_else(|_| unreachable!()))
    }

    /// Subscribes to the response topic (QoS 1).
    fn rr_subscribe(
        &mut self,
        topic: &TopicName,
        now: std::time::Instant,
    ) -> Result<(), ClientError> {
        let filter = TopicFilter::new(topic.as_str()).map_err(|source| ClientError::Topic {
            topic: topic.as_str().to_owned(),
            source,
        })?;
        let id = self
            .session
            .subscribe(now, vec![(filter.clone(), QoS::AtLeastOnce)])?;
        self.waiters.insert(
            id,
            Waiter::Resubscribe(vec![(filter, SubscriptionOptions::qos(QoS::AtLeastOnce))]),
        );
        Ok(())
    }

    /// `Client::request`: subscribe first if needed, then publish with the response topic
    /// and fresh Correlation Data.
    pub(super) fn rr_request(
        &mut self,
        publish: Publish,
        reply: ResponseReply,
        now: std::time::Instant,
    ) {
        if self.v5.as_deref().is_none_or(|v| v.rr.is_none()) {
            let topic = self.response_topic();
            if let Err(e) = self.rr_subscribe(&topic, now) {
                let _ = reply.send(Err(e));
                return;
            }
            self.v5.get_or_insert_default().rr = Some(RequestResponse {
                topic,
                waiting: HashMap::new(),
                nonce: fastrand::u64(..),
                next: 0,
            });
        }
        let Some(rr) = self.v5.as_deref_mut().and_then(|v| v.rr.as_mut()) else {
            return;
        };
        // Requests that gave up (timed out, dropped) are forgotten.
        rr.waiting.retain(|_, tx| !tx.is_closed());
        rr.next += 1;
        let mut corr = BytesMut::with_capacity(16);
        corr.put_u64(rr.nonce);
        corr.put_u64(rr.next);
        let corr = corr.freeze();
        let publish = publish
            .response_topic(rr.topic.as_str())
            .correlation_data(corr.clone());
        let msg = match publish.into_message() {
            Ok(msg) => msg,
            Err(e) => {
                let _ = reply.send(Err(e));
                return;
            }
        };
        match self.session.publish(now, msg) {
            Ok(id) => {
                rr.waiting.insert(corr.clone(), reply);
                self.waiters.insert(id, Waiter::Request(corr));
            }
            Err(e) => {
                let _ = reply.send(Err(e.into()));
            }
        }
    }

    /// The request's publish failed: so did the request.
    pub(super) fn rr_failed(&mut self, corr: &Bytes, error: ClientError) {
        if let Some(tx) = self
            .v5
            .as_deref_mut()
            .and_then(|v| v.rr.as_mut())
            .and_then(|rr| rr.waiting.remove(corr))
        {
            let _ = tx.send(Err(error));
        }
    }

    /// A new connection without the broker's session: the response topic is subscribed
    /// again (re-subscribing an existing subscription changes nothing).
    pub(super) fn rr_connected(&mut self, session_present: bool, reconnected: bool) {
        if session_present || !reconnected {
            return;
        }
        if let Some(topic) = self
            .v5
            .as_deref()
            .and_then(|v| v.rr.as_ref())
            .map(|rr| rr.topic.clone())
        {
            let _ = self.rr_subscribe(&topic, super::now());
        }
    }

    /// Hands `msg` to the request it answers; gives it back when it answers none (or its
    /// request gave up).
    pub(super) fn rr_deliver(&mut self, msg: Message) -> Result<(), Message> {
        let Some(rr) = self.v5.as_deref_mut().and_then(|v| v.rr.as_mut()) else {
            return Err(msg);
        };
        if msg.topic.as_str() != rr.topic.as_str() {
            return Err(msg);
        }
        let Some(tx) = msg.correlation_data().and_then(|c| rr.waiting.remove(c)) else {
            return Err(msg);
        };
        match tx.send(Ok(msg)) {
            Ok(()) => Ok(()),
            Err(Ok(msg)) => Err(msg),
            Err(Err(_)) => Ok(()),
        }
    }
}
