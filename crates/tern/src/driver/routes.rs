//! Per-subscription message streams ([`Client::subscribe_stream`](crate::Client::subscribe_stream)):
//! an incoming message goes to the stream of the subscription it matched — by Subscription
//! Identifier at MQTT 5, by matching the plain filter otherwise (a shared subscription's
//! `$share/group/` or EMQX's `$queue/` prefix removed: its messages carry the plain topic) —
//! and to [`Events`](crate::Events) when it matched none.

use tern_proto::session::AckToken;
use tern_proto::{SubscriptionId, TopicFilter};
use tokio::sync::mpsc;

use super::Driver;
use crate::client::Message;

/// A message for a stream, with what acknowledges it once taken (`None` at QoS 0 or with
/// manual acknowledgement, where the message carries it).
pub(crate) type Routed = (Message, Option<AckToken>);

/// One stream's subscription.
pub(crate) struct Route {
    /// The filter messages match, without a `$share/group/` or `$queue/` prefix.
    pub(crate) filter: TopicFilter,
    /// MQTT 5: the Subscription Identifier the subscription was made with.
    pub(crate) id: Option<SubscriptionId>,
    pub(crate) tx: mpsc::UnboundedSender<Routed>,
}

/// The filter a shared (`$share/group/f`) or queue (`$queue/f`) subscription's messages
/// match: `f`; any other filter as it is.
pub(crate) fn plain_filter(filter: &TopicFilter) -> TopicFilter {
    let s = filter.as_str();
    let inner = if let Some(rest) = s.strip_prefix("$share/") {
        rest.split_once('/').map(|(_, f)| f)
    } else {
        s.strip_prefix("$queue/")
    };
    inner
        .and_then(|f| TopicFilter::new(f).ok())
        .unwrap_or_else(|| filter.clone())
}

impl Driver {
    /// A new route; at MQTT 5 the Subscription Identifier it is made with.
    pub(super) fn add_route(
        &mut self,
        filter: &TopicFilter,
        tx: mpsc::UnboundedSender<Routed>,
        v5: bool,
    ) -> Option<SubscriptionId> {
        let state = self.v5.get_or_insert_default();
        // Routes whose stream is gone: their messages go to `Events` from now on.
        state.routes.retain(|r| !r.tx.is_closed());
        let id = if v5 {
            // Identifiers above those an application is likely to pick by hand.
            state.next_route_id = state.next_route_id.max(1_000_000) + 1;
            SubscriptionId::new(state.next_route_id)
        } else {
            None
        };
        state.routes.push(Route {
            filter: plain_filter(filter),
            id,
            tx,
        });
        id
    }

    /// The subscription of a route was refused: its stream ends.
    pub(super) fn remove_route(&mut self, id: Option<SubscriptionId>, filter: &TopicFilter) {
        let plain = plain_filter(filter);
        if let Some(state) = self.v5.as_deref_mut() {
            state.routes.retain(|r| !(r.id == id && r.filter == plain));
        }
    }

    /// Hands `msg` to the streams whose subscription it matched (the first of them gets
    /// `ack`); gives it back when it matched none.
    pub(super) fn route(&mut self, msg: Message, ack: Option<AckToken>) -> Result<(), Message> {
        let Some(state) = self.v5.as_deref_mut().filter(|s| !s.routes.is_empty()) else {
            return Err(msg);
        };
        let ids: Vec<u32> = msg.subscription_ids().collect();
        let matched: Vec<usize> = state
            .routes
            .iter()
            .enumerate()
            .filter(|(_, r)| !r.tx.is_closed())
            .filter(|(_, r)| match r.id {
                Some(id) if !ids.is_empty() => ids.contains(&id.get()),
                _ => r.filter.matches(&msg.topic),
            })
            .map(|(i, _)| i)
            .collect();
        let Some((&first, rest)) = matched.split_first() else {
            return Err(msg);
        };
        for &i in rest {
            let _ = state.routes[i].tx.send((msg.clone(), None));
        }
        match state.routes[first].tx.send((msg, ack)) {
            Ok(()) => Ok(()),
            // Closed meanwhile: to `Events`, nothing lost.
            Err(mpsc::error::SendError((msg, _))) => Err(msg),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::plain_filter;
    use tern_proto::TopicFilter;

    #[test]
    fn shared_and_queue_prefixes_are_removed() {
        let f = |s: &str| TopicFilter::new(s).unwrap();
        assert_eq!(plain_filter(&f("$share/g/a/+")), f("a/+"));
        assert_eq!(plain_filter(&f("$queue/a/#")), f("a/#"));
        assert_eq!(plain_filter(&f("a/b")), f("a/b"));
        assert_eq!(plain_filter(&f("$SYS/#")), f("$SYS/#"));
    }
}
