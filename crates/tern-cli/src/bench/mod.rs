//! `tern bench`: an MQTT load generator with emqtt-bench's flags. `pub` and `sub` measure
//! end-to-end latency, loss and duplicates from a header in every payload; `conn` opens,
//! holds and churns connections; `report` merges the outputs of many runs and draws them.

mod args;
mod header;
mod load;
mod pace;
mod report;
mod stats;
mod streams;
mod target;
mod topic;

use std::process::ExitCode;

use args::{Parsed, Role};

use crate::mosq::{self, exit};

const HELP: &str = "\
tern bench: an MQTT load generator (emqtt-bench's flags)

usage:
  tern bench pub  -t topic [options]    publishers, paced (-I per publisher or --rate in all)
  tern bench sub  -t filter [options]   subscribers: latency, loss, duplicates
  tern bench conn [options]             open, hold and churn connections
  tern bench report FILES... [--svg OUT]  merge --json and --hdr outputs of runs; draw them

connections:
  -h HOSTS          comma-separated hosts (or mqtt://, mqtts://, ws://, wss:// URIs); client
                    index i connects to HOSTS[i mod n] (default localhost)
  -p PORT           port (default: the transport's, 1883/8883/80/443)
  -V 3|4|5          MQTT 3.1, 3.1.1 or 5 (also mqttv31, mqttv311, mqttv5; default 4)
  -c COUNT          connections (default 200)
  -n START          first client index (default 0): several processes never share ids
  -R RATE           connections opened per second
  -i MS             or: milliseconds between two connections (default 10; 0 all at once)
  -u USER -P PASS   credentials
  -k SECS           keep alive (default 300)
  -C true|false     clean session (default true); at -V 5 clean start, and with false
                    the session never expires unless -x says otherwise
  -x SECS           MQTT 5 session expiry interval (never: u32::MAX; default 0 with
                    -C true, never with -C false, so a subscriber away keeps its messages)
  --no-topic-alias  MQTT 5: no topic aliases (default: used, within the broker's maximum)
  --prefix P        client id prefix (default: the host name); ids are P_bench_ROLE_INDEX
  --shortids        ids are P INDEX (P defaults to the host name)
  --reconnect N     reconnect after a lost connection, giving up after N failed attempts
                    in a row (forever: never give up; default 0: no reconnection)
  --ifaddr A,B,...  local source addresses, client index i binds to A[i mod n]
  -S, --ssl         TLS;  --cacertfile F  --certfile F --keyfile F  --insecure
  --ws              WebSocket; --ws-path P (default /mqtt)

messages:
  -t TOPIC          topic; %i client index, %c client id, %u user, %rand_N 1..=N (per
                    message), %% a percent sign
  -q 0|1|2          QoS (default 0)
  -r                retain (pub)
  --prop NAME=VALUE MQTT 5 user property on every publish (pub; repeatable, in order)
  -s BYTES          payload size, at least the 40-byte header (default 256)
  --payload-file F  payload: the header, then this file's bytes
  -I MS             milliseconds between two messages of one publisher (default 1000;
                    0: as fast as the broker takes, like --rate max)
  --rate N|max      or: messages per second over all publishers; max: each publisher as
                    fast as its window takes (waits for its acknowledgements)
  -L N              pub: messages in all; sub: stop after N received
  --inflight N      QoS 1/2 messages awaiting acknowledgement per connection (default 100;
                    0 the protocol's maximum)

run:
  --duration D      pub: send rate x D messages (--rate max: send for D); sub, conn: stop
                    after D (30, 30s, 500ms, 5m)
  --start-at T      pub starts publishing, conn connecting, at this wall-clock instant:
                    Unix seconds or 2026-12-05T16:00:00Z (many machines start together)
  --churn RATE      conn: close and reopen this many connections per second
  --state FILE      sub: keep the loss accounting across runs (a restarted subscriber
                    reports exactly what it missed)
  --until-last      sub: stop once every publisher heard from has sent its last message
                    (pub marks it when its count is known: -L or --duration)
  --json FILE       JSON lines: each counter each second, then the summary (- for stdout)
  --hdr FILE        latency histogram (conn: connect latency) as an HdrHistogram interval log
  --quiet           no per-second lines, only the summary

Counters: connect_succ, connect_fail, disconnect, reconnect, sub, sub_fail, pub
(completed: QoS 0 written, 1 PUBACK, 2 PUBCOMP), pub_fail, pub_overrun (due while its
publisher held 10,000 queued: the asked rate outran the broker; not sent), pub_unfinished
(queued, never completed), recv, dup;
the summary adds lost, and failures by reason code: connect (3.1.1: the seed's -5..5;
MQTT 5: the CONNACK's, e.g. 0x87), publish (PUBACK/PUBREC >= 0x80), subscribe (per filter)
and, at MQTT 5, the broker's DISCONNECT.

Every payload starts with a header (send time, publisher, sequence number): subscribers
measure end-to-end latency from the instant each message was scheduled, and losses and
duplicates per publisher. Output: one line per counter per second
(`3s recv total=6000 rate=2000/sec`), then a summary.

Exit status: 0 done; 1 error (files, runtime); 2 bad command line; 3 no connection at all
(the reason code is in the message, e.g. -5 nothing listening); 5 refused by the broker
(CONNACK 1..5, or an MQTT 5 reason code such as 0x87).
";

/// `tern bench ...`.
pub(crate) fn main(args: Vec<std::ffi::OsString>) -> ExitCode {
    let args: Vec<String> = match args.into_iter().map(|a| a.into_string()).collect() {
        Ok(a) => a,
        Err(bad) => return usage_error(&format!("{bad:?} is not valid UTF-8")),
    };
    let role = match args.first().map(String::as_str) {
        Some("pub") => Role::Pub,
        Some("sub") => Role::Sub,
        Some("conn") => Role::Conn,
        Some("report") => return report::main(&args[1..]),
        Some("--help" | "help") => {
            mosq::out(HELP);
            return ExitCode::SUCCESS;
        }
        Some(other) => return usage_error(&format!("unknown bench command {other:?}")),
        None => return usage_error("tern bench needs pub, sub, conn or report"),
    };
    match args::parse(role, &args[1..]) {
        Ok(Parsed::Help) => {
            mosq::out(HELP);
            ExitCode::SUCCESS
        }
        Ok(Parsed::Run(o)) => match load::run(*o) {
            Ok(()) => ExitCode::from(exit::OK),
            Err(f) => f.report(false),
        },
        Err(e) => usage_error(&e.0),
    }
}

/// Prints a usage error and returns exit 2.
pub(crate) fn usage_error(msg: &str) -> ExitCode {
    mosq::err_line(format_args!(
        "Error: {msg}\n\nUse 'tern bench --help' to see usage."
    ));
    ExitCode::from(exit::USAGE)
}
