//! Where and how each connection of a run connects: broker round-robin over `-h`, local
//! address round-robin over `--ifaddr`, both by client index, so processes started with
//! different `-n` spread the same way one big process would.

use std::sync::Arc;

use tern::tls::Roots;
use tern::{Broker, ConnectOptions, ReconnectPolicy, Scheme, TlsOptions};

use super::args::{Opts, Role};
use super::load::PUB_QUEUE;

/// The connection settings shared by a run's clients.
pub(crate) struct Target {
    o: Arc<Opts>,
    brokers: Vec<Broker>,
    tls: Arc<TlsOptions>,
}

impl Target {
    /// Resolves brokers and reads the TLS files; errors name the flag or file.
    pub(crate) fn new(o: Arc<Opts>) -> Result<Self, String> {
        let t = &o.transport;
        let scheme = match (t.tls, t.ws) {
            (true, true) => Scheme::Wss,
            (false, true) => Scheme::Ws,
            (true, false) => Scheme::Mqtts,
            (false, false) => Scheme::Mqtt,
        };
        let brokers = o
            .hosts
            .iter()
            .map(|h| {
                if h.contains("://") {
                    return Broker::parse(h).map_err(|e| format!("-h {h}: {e}"));
                }
                let mut b = Broker::new(scheme, h.clone(), o.port.unwrap_or(scheme.default_port()));
                b.path.clone_from(&t.ws_path);
                Ok(b)
            })
            .collect::<Result<Vec<_>, _>>()?;
        let read = |p: &std::path::Path| {
            std::fs::read_to_string(p).map_err(|e| format!("cannot read {}: {e}", p.display()))
        };
        let mut tls = TlsOptions::default();
        if let Some(ca) = &t.cafile {
            tls.roots = Roots::Pem(read(ca)?);
        }
        if let (Some(c), Some(k)) = (&t.certfile, &t.keyfile) {
            tls = tls.client_auth(read(c)?, read(k)?);
        }
        tls.danger_insecure = t.insecure;
        if brokers.iter().any(|b| b.scheme.is_tls()) {
            tls.build().map_err(|e| format!("TLS: {e}"))?;
        }
        Ok(Self {
            o,
            brokers,
            tls: Arc::new(tls),
        })
    }

    /// The options and broker of the connection with client index `index`.
    pub(crate) fn connection(&self, index: u64) -> (ConnectOptions, Broker) {
        let o = &self.o;
        let mut opts = ConnectOptions::new(o.client_id(index))
            .keep_alive(o.keep_alive)
            .clean_session(o.clean)
            .max_inflight(o.inflight)
            .protocol(o.protocol)
            .tls(self.tls.clone());
        if o.role == Role::Pub {
            // Every publish the run may hold queued, and its completion never dropped for
            // want of room in the event channel (which allocates only what it holds).
            opts = opts
                .max_queued(PUB_QUEUE)
                .event_capacity(PUB_QUEUE + usize::from(o.inflight) + 64);
        }
        if o.v5() {
            opts.v5.session_expiry = Some(o.session_expiry());
            opts.v5.topic_aliases = o.topic_alias;
        }
        if let Some(u) = &o.username {
            opts = opts.credentials(u.clone(), o.password.clone());
        }
        if let Some(attempts) = o.reconnect {
            opts = opts.reconnect(ReconnectPolicy::default().max_attempts(attempts));
        }
        if !o.ifaddr.is_empty() {
            opts = opts.bind_address(o.ifaddr[pick(index, o.ifaddr.len())]);
        }
        let broker = self.brokers[pick(index, self.brokers.len())].clone();
        (opts, broker)
    }
}

/// `index mod len`.
fn pick(index: u64, len: usize) -> usize {
    (index % len as u64) as usize
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::args::{Parsed, Role, parse};

    #[test]
    fn hosts_and_source_addresses_go_round_robin_by_client_index() {
        let args: Vec<String> = "-h a,b,c -p 1999 --ifaddr 127.0.0.2,127.0.0.3 -n 10 --prefix x"
            .split(' ')
            .map(str::to_owned)
            .collect();
        let Ok(Parsed::Run(o)) = parse(Role::Conn, &args) else {
            panic!("parse");
        };
        let t = Target::new(Arc::new(*o)).expect("target");
        let picks: Vec<(String, String, Option<std::net::IpAddr>)> = (10..15)
            .map(|i| {
                let (opts, b) = t.connection(i);
                (b.host, opts.client_id, opts.bind_address)
            })
            .collect();
        let ip = |s: &str| s.parse().ok();
        assert_eq!(
            picks,
            [
                ("b".into(), "x_bench_conn_10".into(), ip("127.0.0.2")),
                ("c".into(), "x_bench_conn_11".into(), ip("127.0.0.3")),
                ("a".into(), "x_bench_conn_12".into(), ip("127.0.0.2")),
                ("b".into(), "x_bench_conn_13".into(), ip("127.0.0.3")),
                ("c".into(), "x_bench_conn_14".into(), ip("127.0.0.2")),
            ]
        );
        assert_eq!(t.connection(0).1.port, 1999);
    }

    #[test]
    fn mqtt5_connections_carry_the_session_expiry_and_alias_choice() {
        let target = |line: &str| {
            let args: Vec<String> = line.split(' ').map(str::to_owned).collect();
            let Ok(Parsed::Run(o)) = parse(Role::Conn, &args) else {
                panic!("parse {line}");
            };
            Target::new(Arc::new(*o)).expect("target").connection(0).0
        };
        let kept = target("-V 5 -C false");
        assert_eq!(kept.protocol, tern::Protocol::V5);
        assert!(!kept.clean_session);
        assert_eq!(kept.v5.session_expiry, Some(u32::MAX));
        assert!(kept.v5.topic_aliases);
        let bounded = target("-V 5 -C false -x 90 --no-topic-alias");
        assert_eq!(bounded.v5.session_expiry, Some(90));
        assert!(!bounded.v5.topic_aliases);
        assert_eq!(target("-V 5").v5.session_expiry, Some(0));
        assert_eq!(target("-V 4").protocol, tern::Protocol::V3_1_1);
        assert_eq!(target("-V 4 -C false").v5.session_expiry, None);
    }
}
