//! The public API as an application sees it: everything here is reached through `tern::`
//! only (this file never names `tern_proto`), so an application needs no `tern-proto`
//! dependency to name the types in `tern`'s signatures.

use tern::{
    ApiMisuse, ClientError, ConnectError, ConnectReturnCode, ConnectionError, Initiator, Message,
    PacketId, PacketType, ProtocolError, QoS, RequestError, SubscribeReturnCode, TopicError,
    TopicFilter, TopicName,
};

/// Every protocol type in a public signature can be named, built and matched via `tern::`.
#[test]
fn protocol_types_are_reachable_from_tern() {
    let name = TopicName::new("a/b").expect("a valid topic name");
    assert_eq!(name.as_str(), "a/b");
    let filter = TopicFilter::new("a/+").expect("a valid filter");
    assert!(filter.matches(&name));
    let err: TopicError = TopicName::new("a/+").expect_err("wildcards are not allowed in names");
    let client_err = ClientError::Topic {
        topic: "a/+".into(),
        source: err,
    };
    assert!(client_err.to_string().contains("a/+"));
    assert_eq!(QoS::AtLeastOnce as u8, 1);
    let _: Option<PacketId> = PacketId::new(1);
    let _ = SubscribeReturnCode::Failure;
    let _ = ConnectReturnCode::NotAuthorized;
    let _ = PacketType::Publish;
    let _: fn(&ProtocolError) = |_| {};
    let _: fn(&RequestError) = |_| {};
    let _: fn(&ApiMisuse) = |_| {};
    let _: fn(&Message) -> bool = Message::needs_ack;
    let _: fn(&ConnectError) -> i32 = ConnectError::code;
    let _ = (Initiator::Local, Initiator::Remote, Initiator::Library);
    let _: fn(&ConnectionError) = |_| {};
}
