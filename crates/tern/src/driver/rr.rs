//! MQTT 5 request/response ([`Client::request`](crate::Client::request) and
//! [`CallbackClient::request`](crate::callback::CallbackClient::request)): one response topic
//! per client, subscribed before the first request, and the requests awaiting a response by
//! their Correlation Data. The driver alone decides how a request ends (response, failure,
//! or the callback API's timeout), so each ends once.

use std::collections::HashMap;

use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use tern_proto::session::AckToken;
use tern_proto::{ApiMisuse, QoS, SubscriptionOptions, TopicFilter, TopicName};

use super::Driver;
use super::requests::Waiter;
use crate::client::{Event, Message, Outcome, Reply, Ticket};
use crate::error::ClientError;
use crate::v5::Publish;

/// Where a request's response goes: to an awaiting [`Client::request`](crate::Client::request),
/// or onto the event stream for a ticket.
type ResponseReply = Reply<Message>;

fn response(msg: Message) -> Outcome {
    Outcome::Response(Box::new(msg))
}

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
            Waiter::Resubscribe(
                vec![(filter, SubscriptionOptions::qos(QoS::AtLeastOnce))],
                None,
            ),
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
        if !self.session.config().level.is_v5() {
            // Nothing subscribed or sent: the response topic and correlation data are
            // properties.
            let e = ApiMisuse::NeedsV5("request/response").into();
            self.complete(reply, Err(e), response);
            return;
        }
        if self.v5.as_deref().is_none_or(|v| v.rr.is_none()) {
            let topic = self.response_topic();
            if let Err(e) = self.rr_subscribe(&topic, now) {
                self.complete(reply, Err(e), response);
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
        rr.waiting.retain(|_, reply| match reply {
            Reply::Await(tx) => !tx.is_closed(),
            Reply::Event(_) => true,
        });
        rr.next += 1;
        let mut corr = BytesMut::with_capacity(16);
        corr.put_u64(rr.nonce);
        corr.put_u64(rr.next);
        let corr = corr.freeze();
        let publish = publish
            .response_topic(rr.topic.as_str())
            .correlation_data(corr.clone());
        let sent = publish
            .into_message()
            .and_then(|msg| Ok(self.session.publish(now, msg)?));
        match sent {
            Ok(id) => {
                if let Some(rr) = self.v5.as_deref_mut().and_then(|v| v.rr.as_mut()) {
                    rr.waiting.insert(corr.clone(), reply);
                }
                self.waiters.insert(id, Waiter::Request(corr));
            }
            Err(e) => self.complete(reply, Err(e), response),
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
            self.complete(tx, Err(error), response);
        }
    }

    /// The callback API's request of `ticket` timed out: it ends with
    /// [`ClientError::NoResponse`], unless it already ended (its response or failure came
    /// first). A response arriving later is an ordinary message.
    pub(super) fn rr_give_up(&mut self, ticket: Ticket, after: Duration) {
        let Some(rr) = self.v5.as_deref_mut().and_then(|v| v.rr.as_mut()) else {
            return;
        };
        let Some(corr) = rr
            .waiting
            .iter()
            .find(|(_, r)| matches!(r, Reply::Event(t) if *t == ticket))
            .map(|(c, _)| c.clone())
        else {
            return;
        };
        if let Some(reply) = rr.waiting.remove(&corr) {
            self.complete(reply, Err(ClientError::NoResponse(after)), response);
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
    /// request gave up). `ack`: the message's acknowledgement, sent once the request has it —
    /// at once for an awaiting caller, once taken from the event stream (after its callback
    /// returned) for the callback API.
    pub(super) fn rr_deliver(
        &mut self,
        msg: Message,
        ack: Option<AckToken>,
    ) -> Result<(), Message> {
        let Some(rr) = self.v5.as_deref_mut().and_then(|v| v.rr.as_mut()) else {
            return Err(msg);
        };
        if msg.topic.as_str() != rr.topic.as_str() {
            return Err(msg);
        }
        let Some(reply) = msg.correlation_data().and_then(|c| rr.waiting.remove(c)) else {
            return Err(msg);
        };
        match reply {
            Reply::Await(tx) => match tx.send(Ok(msg)) {
                Ok(()) | Err(Err(_)) => {
                    self.woke_app = true;
                    if let Some(token) = ack {
                        self.session.ack(token);
                    }
                    Ok(())
                }
                Err(Ok(msg)) => Err(msg),
            },
            Reply::Event(ticket) => {
                // The request owns its response: nothing for the application to ack.
                let msg = Message { ack: None, ..msg };
                let kept = self.emit(Event::Completed {
                    ticket,
                    result: Ok(response(msg)),
                });
                if let Some(token) = ack
                    && kept
                {
                    let position = self.events.sent() + self.pending.len() as u64;
                    self.unacked
                        .get_or_insert_default()
                        .push_back((position, token));
                }
                Ok(())
            }
        }
    }
}
