//! The flag table of `tern pub` and `tern sub`: every flag, its spellings, its value and its
//! help. The parser ([`super::args`]) accepts exactly what this table lists, and `--help`,
//! shell completions and man pages are generated from it, so they cannot drift apart.

/// Which command a flag belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cmd {
    /// `tern pub`.
    Pub,
    /// `tern sub`.
    Sub,
    /// `tern rr`: mosquitto_rr's flags, the listed subset of pub's and sub's plus `-e`.
    Rr,
}

impl Cmd {
    /// Every command with a flag table, in help order.
    pub(crate) const ALL: [Self; 3] = [Self::Pub, Self::Sub, Self::Rr];
}

/// The flags (by canonical spelling) `tern rr` takes, as mosquitto_rr.
const RR: &[&str] = &[
    "-m",
    "-f",
    "-s",
    "-l",
    "-n",
    "-t",
    "-e",
    "-q",
    "-W",
    "-R",
    "-v",
    "-N",
    "-F",
    "--pretty",
    "-h",
    "-p",
    "-L",
    "--unix",
    "--proxy",
    "-A",
    "--connect-timeout",
    "--nodelay",
    "-i",
    "-I",
    "-k",
    "-u",
    "-P",
    "-c",
    "-V",
    "-D",
    "-x",
    "-M",
    "-d",
    "--quiet",
    "-o",
    "--will-topic",
    "--will-payload",
    "--will-qos",
    "--will-retain",
    "--help",
    "--version",
    "--cafile",
    "--capath",
    "--tls-use-os-certs",
    "--cert",
    "--key",
    "--insecure",
    "--tls-version",
    "--tls-alpn",
    "--psk",
    "--psk-identity",
    "--ciphers",
    "--keyform",
    "-S",
];

/// Where a flag is listed in `--help`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Group {
    Message,
    Publishing,
    Subscribing,
    Output,
    Connection,
    Tls,
    Unsupported,
}

impl Group {
    const ORDER: [Self; 7] = [
        Self::Message,
        Self::Publishing,
        Self::Subscribing,
        Self::Output,
        Self::Connection,
        Self::Tls,
        Self::Unsupported,
    ];

    fn title(self) -> &'static str {
        match self {
            Self::Message => "Message (exactly one)",
            Self::Publishing => "Publishing",
            Self::Subscribing => "Subscribing",
            Self::Output => "Output",
            Self::Connection => "Connection",
            Self::Tls => {
                "TLS (enabled by --cafile, --capath, --tls-use-os-certs, or an mqtts:// / wss:// -L)"
            }
            Self::Unsupported => "Refused, with the reason (mosquitto flags tern cannot honour)",
        }
    }
}

/// What a flag's value is, for shell completion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Value {
    /// No value.
    None,
    /// Free text.
    Text(&'static str),
    /// A file path.
    File(&'static str),
    /// A directory path.
    Dir(&'static str),
    /// One of these words.
    Choice(&'static str, &'static [&'static str]),
}

impl Value {
    /// Whether the flag takes the next argument.
    pub(crate) fn takes_value(self) -> bool {
        !matches!(self, Self::None)
    }

    fn name(self) -> Option<&'static str> {
        match self {
            Self::None => None,
            Self::Text(n) | Self::File(n) | Self::Dir(n) | Self::Choice(n, _) => Some(n),
        }
    }
}

/// One flag.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Flag {
    /// Spellings; the first is the canonical one the parser matches on.
    pub(crate) names: &'static [&'static str],
    pub(crate) value: Value,
    pub(crate) pub_: bool,
    pub(crate) sub: bool,
    pub(crate) group: Group,
    pub(crate) help: &'static str,
}

impl Flag {
    /// The canonical spelling.
    pub(crate) fn id(&self) -> &'static str {
        self.names[0]
    }

    /// Whether `cmd` has this flag.
    pub(crate) fn is_for(&self, cmd: Cmd) -> bool {
        match cmd {
            Cmd::Pub => self.pub_,
            Cmd::Sub => self.sub,
            Cmd::Rr => RR.contains(&self.id()),
        }
    }
}

/// A flag of the commands `pub_` and `sub` say.
const fn flag(
    names: &'static [&'static str],
    value: Value,
    (pub_, sub): (bool, bool),
    group: Group,
    help: &'static str,
) -> Flag {
    Flag {
        names,
        value,
        pub_,
        sub,
        group,
        help,
    }
}

const fn both(
    names: &'static [&'static str],
    value: Value,
    group: Group,
    help: &'static str,
) -> Flag {
    flag(names, value, (true, true), group, help)
}

const fn pub_only(
    names: &'static [&'static str],
    value: Value,
    group: Group,
    help: &'static str,
) -> Flag {
    flag(names, value, (true, false), group, help)
}

const fn sub_only(
    names: &'static [&'static str],
    value: Value,
    group: Group,
    help: &'static str,
) -> Flag {
    flag(names, value, (false, true), group, help)
}

const QOS: Value = Value::Choice("qos", &["0", "1", "2"]);

use Group::{Connection, Message, Output, Publishing, Subscribing, Tls, Unsupported};

/// Every flag of both commands.
pub(crate) const FLAGS: &[Flag] = &[
    // Message sources.
    pub_only(
        &["-m", "--message"],
        Value::Text("message"),
        Message,
        "this argument, bytes as given",
    ),
    pub_only(
        &["-f", "--file"],
        Value::File("file"),
        Message,
        "the file's exact bytes",
    ),
    pub_only(
        &["-s", "--stdin-file"],
        Value::None,
        Message,
        "all of standard input as one message",
    ),
    pub_only(
        &["-l", "--stdin-line"],
        Value::None,
        Message,
        "one message per line of standard input (newline removed, CR kept; a last line \
         without newline is sent too; empty lines are empty messages)",
    ),
    pub_only(
        &["-n", "--null-message"],
        Value::None,
        Message,
        "an empty (zero-length) message",
    ),
    pub_only(
        &["--payload-size"],
        Value::Text("bytes"),
        Message,
        "a random payload of this many bytes (a new one per --repeat), for testing",
    ),
    // Publishing.
    both(
        &["-t", "--topic"],
        Value::Text("topic"),
        Publishing,
        "pub: the topic to publish to; sub: a filter to subscribe to (repeatable); rr: the \
         request topic",
    ),
    both(
        &["-q", "--qos"],
        QOS,
        Publishing,
        "QoS: 0 (default), 1 or 2; for sub the QoS requested",
    ),
    flag(
        &["-e"],
        Value::Text("topic"),
        (false, false),
        Publishing,
        "rr: the response topic, subscribed to before the request is sent and named in it \
         (MQTT v5 Response Topic, with Correlation Data)",
    ),
    pub_only(
        &["-r", "--retain"],
        Value::None,
        Publishing,
        "retain the message",
    ),
    pub_only(
        &["--repeat"],
        Value::Text("count"),
        Publishing,
        "publish the message this many times (not with -l)",
    ),
    pub_only(
        &["--repeat-delay"],
        Value::Text("secs"),
        Publishing,
        "wait this long between repeats (fractions allowed)",
    ),
    // Subscribing.
    sub_only(
        &["-T", "--filter-out"],
        Value::Text("filter"),
        Subscribing,
        "do not print messages whose topic matches; repeatable",
    ),
    sub_only(
        &["-U", "--unsubscribe"],
        Value::Text("filter"),
        Subscribing,
        "unsubscribe from this filter after subscribing (with -c: drop an old one)",
    ),
    sub_only(
        &["-E"],
        Value::None,
        Subscribing,
        "exit once the subscriptions are acknowledged",
    ),
    sub_only(
        &["-C"],
        Value::Text("count"),
        Subscribing,
        "exit after printing count messages; later ones are not acknowledged",
    ),
    sub_only(
        &["-W"],
        Value::Text("secs"),
        Subscribing,
        "exit with status 27 if still running after secs (fractions allowed); the clock \
         starts before connecting (rr: no response in time)",
    ),
    sub_only(
        &["-R"],
        Value::None,
        Subscribing,
        "do not print retained (stale) messages",
    ),
    sub_only(
        &["--retain-as-published"],
        Value::None,
        Subscribing,
        "MQTT v5: ask the broker to keep the retain flag of messages as published (instead \
         of clearing it on live ones); at -V 5 -R also asks it not to send retained messages",
    ),
    sub_only(
        &["--retained-only"],
        Value::None,
        Subscribing,
        "print retained messages only; exit at the first live one",
    ),
    sub_only(
        &["--remove-retained"],
        Value::None,
        Subscribing,
        "clear each retained message received by publishing an empty retained message to \
         its topic (e.g. -t 'sensors/#' --remove-retained -W 1 clears a tree)",
    ),
    sub_only(
        &["--random-filter"],
        Value::Text("percent"),
        Subscribing,
        "print each message with this likelihood, 0.1 to 100",
    ),
    // Output.
    sub_only(
        &["-v", "--verbose"],
        Value::None,
        Output,
        "topic, a space, the payload (\"(null)\" when empty)",
    ),
    sub_only(
        &["-N"],
        Value::None,
        Output,
        "no newline after each message",
    ),
    sub_only(
        &["-F"],
        Value::Text("format"),
        Output,
        "%t topic  %p payload  %q QoS  %r retain flag  %l payload length  %m message id \
         (0 at QoS 0)  %x / %X payload as lower / upper-case hex  %j JSON with the payload \
         escaped  %J JSON with the payload inlined (must be JSON)  %I ISO 8601 time  %U \
         Unix time.nanoseconds  MQTT v5: %C content type  %D correlation data  %E message \
         expiry interval  %F payload format indicator  %P user properties (name:value, space \
         separated)  %R response topic  %S subscription identifier  %A topic alias (empty: the \
         client resolves aliases before a message is printed)  %% a \
         percent sign; flags - and 0, width and .max as \
         mosquitto_sub: %-10t, %05l, %10.10t.  @X strftime's %X (@Y year, @H hour, ...), \
         @N nanoseconds, @@ an @.  \\n \\t \\r \\0 \\a \\e \\v \\\\ escapes",
    ),
    sub_only(
        &["--pretty"],
        Value::None,
        Output,
        "print %j / %J JSON indented, one key per line",
    ),
    // Connection.
    both(
        &["-h", "--host"],
        Value::Text("host"),
        Connection,
        "broker host (default localhost)",
    ),
    both(
        &["-p", "--port"],
        Value::Text("port"),
        Connection,
        "broker port (default 1883, 8883 with TLS)",
    ),
    both(
        &["-L", "--url"],
        Value::Text("url"),
        Connection,
        "mqtt|mqtts|ws|wss://[user[:password]@]host[:port]/topic",
    ),
    both(
        &["--unix"],
        Value::File("socket"),
        Connection,
        "connect to the broker's Unix domain socket at this path",
    ),
    both(
        &["--proxy"],
        Value::Text("url"),
        Connection,
        "through a SOCKS5 proxy: socks5h://[user[:password]@]host[:port] (the proxy resolves \
         the broker's name) or socks5://... (tern resolves it)",
    ),
    both(
        &["-A"],
        Value::Text("address"),
        Connection,
        "connect from this local address",
    ),
    both(
        &["--connect-timeout"],
        Value::Text("secs"),
        Connection,
        "give up connecting (DNS, TCP, TLS, CONNACK) after secs (default 30)",
    ),
    both(
        &["--nodelay"],
        Value::None,
        Connection,
        "accepted for mosquitto compatibility: tern always disables Nagle's algorithm",
    ),
    both(
        &["-i", "--id"],
        Value::Text("id"),
        Connection,
        "client id (default tern-pub-/tern-sub- + process id + random)",
    ),
    both(
        &["-I", "--id-prefix"],
        Value::Text("prefix"),
        Connection,
        "client id = prefix + process id",
    ),
    both(
        &["-k", "--keepalive"],
        Value::Text("secs"),
        Connection,
        "keepalive, 0 = off (default 60)",
    ),
    both(
        &["-u", "--username"],
        Value::Text("user"),
        Connection,
        "user name",
    ),
    both(
        &["-P", "--pw"],
        Value::Text("password"),
        Connection,
        "password",
    ),
    both(
        &["-c", "--disable-clean-session"],
        Value::None,
        Connection,
        "persistent session (clean session off; needs a non-empty -i or -I)",
    ),
    both(
        &["-V", "--protocol-version"],
        Value::Choice(
            "version",
            &["31", "mqttv31", "311", "mqttv311", "5", "mqttv5"],
        ),
        Connection,
        "31 / mqttv31, 311 / mqttv311 (default of pub and sub) or 5 / mqttv5",
    ),
    both(
        &["-D", "--property"],
        Value::Text("command property value"),
        Connection,
        "an MQTT v5 property (selects -V 5), as mosquitto's -D: command is connect, publish, \
         subscribe, unsubscribe, disconnect or will; property is payload-format-indicator, \
         message-expiry-interval, content-type, response-topic, correlation-data, \
         subscription-identifier (subscribe), session-expiry-interval, receive-maximum, \
         maximum-packet-size, topic-alias-maximum, topic-alias (publish), \
         request-response-information, request-problem-information, authentication-method, \
         authentication-data, will-delay-interval (will), or user-property NAME VALUE \
         (repeatable, order kept). E.g. -D publish content-type text/plain -D publish \
         user-property unit celsius. tern picks topic aliases itself (a given topic-alias is \
         checked, not sent); properties tern cannot send yet (subscribe user-property, \
         unsubscribe, disconnect other than session-expiry-interval) are refused, not \
         dropped",
    ),
    both(
        &["-x"],
        Value::Text("secs"),
        Connection,
        "MQTT v5 session expiry interval: seconds the broker keeps the session after \
         disconnecting; -1, 4294967295 or ∞ for never (the default with -c at -V 5)",
    ),
    both(
        &["-M"],
        Value::Text("count"),
        Connection,
        "outgoing QoS 1/2 messages in flight at once (default 100)",
    ),
    both(
        &["-d", "--debug"],
        Value::None,
        Connection,
        "trace each connection step and every packet both ways on stderr",
    ),
    both(
        &["--quiet"],
        Value::None,
        Connection,
        "print no error messages",
    ),
    both(
        &["-o"],
        Value::File("file"),
        Connection,
        "read options from this file, one per line (\"-h host\"), # comments",
    ),
    both(
        &["--will-topic"],
        Value::Text("topic"),
        Connection,
        "last will: published by the broker if this client vanishes",
    ),
    both(
        &["--will-payload"],
        Value::Text("payload"),
        Connection,
        "the will's payload",
    ),
    both(&["--will-qos"], QOS, Connection, "the will's QoS"),
    both(
        &["--will-retain"],
        Value::None,
        Connection,
        "retain the will",
    ),
    both(&["--help"], Value::None, Connection, "this text"),
    both(&["--version"], Value::None, Connection, "tern's version"),
    // TLS.
    both(
        &["--cafile"],
        Value::File("file"),
        Tls,
        "trust these PEM CA certificates",
    ),
    both(
        &["--capath"],
        Value::Dir("dir"),
        Tls,
        "trust every PEM certificate (*.pem, *.crt) in dir",
    ),
    both(
        &["--tls-use-os-certs"],
        Value::None,
        Tls,
        "trust the operating system's CA store",
    ),
    both(
        &["--cert"],
        Value::File("file"),
        Tls,
        "client certificate (PEM) for mutual TLS; needs --key",
    ),
    both(
        &["--key"],
        Value::File("file"),
        Tls,
        "client private key (PEM)",
    ),
    both(
        &["--insecure"],
        Value::None,
        Tls,
        "do not check that the server certificate names the host (the chain is still \
         verified against the CA), as mosquitto's --insecure",
    ),
    both(
        &["--tls-version"],
        Value::Choice("version", &["tlsv1.3", "tlsv1.2"]),
        Tls,
        "use only this TLS version (tlsv1.1 and older are refused: rustls does not speak them)",
    ),
    both(
        &["--tls-alpn"],
        Value::Text("protocol"),
        Tls,
        "offer this ALPN protocol (e.g. mqtt for AWS IoT on 443)",
    ),
    // Refused.
    both(
        &["--psk"],
        Value::Text("hex-key"),
        Unsupported,
        "refused: TLS-PSK needs pre-shared key support, which rustls (tern's TLS) does not have",
    ),
    both(
        &["--psk-identity"],
        Value::Text("identity"),
        Unsupported,
        "refused: TLS-PSK, as --psk",
    ),
    both(
        &["--ciphers"],
        Value::Text("list"),
        Unsupported,
        "refused: OpenSSL cipher lists do not apply to rustls, which offers only its safe suites",
    ),
    both(
        &["--keyform", "--tls-engine", "--tls-engine-kpass-sha1"],
        Value::Text("value"),
        Unsupported,
        "refused: OpenSSL engines do not exist in rustls",
    ),
    both(
        &["-S"],
        Value::None,
        Unsupported,
        "refused: DNS SRV lookup is not implemented",
    ),
];

/// The flag `arg` names for `cmd`.
pub(crate) fn lookup(cmd: Cmd, arg: &str) -> Option<&'static Flag> {
    FLAGS
        .iter()
        .find(|f| f.is_for(cmd) && f.names.contains(&arg))
}

fn cmd_name(cmd: Cmd) -> &'static str {
    match cmd {
        Cmd::Pub => "pub",
        Cmd::Sub => "sub",
        Cmd::Rr => "rr",
    }
}

/// Wraps `text` to `width` columns, every line after the first indented by `indent`.
fn wrap(text: &str, first: usize, indent: usize, width: usize, out: &mut String) {
    let mut col = first;
    let mut line_start = true;
    for word in text.split(' ').filter(|w| !w.is_empty()) {
        if !line_start && col + 1 + word.len() > width {
            out.push('\n');
            out.push_str(&" ".repeat(indent));
            col = indent;
            line_start = true;
        }
        if !line_start {
            out.push(' ');
            col += 1;
        }
        out.push_str(word);
        col += word.len();
        line_start = false;
    }
    out.push('\n');
}

/// The flag sections of `--help`.
pub(crate) fn help(cmd: Cmd) -> String {
    const COL: usize = 24;
    let mut out = String::new();
    for group in Group::ORDER {
        let flags: Vec<&Flag> = FLAGS
            .iter()
            .filter(|f| f.is_for(cmd) && f.group == group)
            .collect();
        if flags.is_empty() {
            continue;
        }
        out.push_str(group.title());
        out.push_str(":\n");
        for f in flags {
            let mut left = format!("  {}", f.names.join(", "));
            if let Some(v) = f.value.name() {
                left.push(' ');
                left.push_str(v);
            }
            if left.len() + 1 >= COL {
                out.push_str(&left);
                out.push('\n');
                out.push_str(&" ".repeat(COL));
            } else {
                out.push_str(&format!("{left:COL$}"));
            }
            wrap(f.help, COL, COL, 92, &mut out);
        }
    }
    out
}

/// A completion script for `shell` (bash, zsh or fish).
pub(crate) fn completions(shell: &str) -> Option<String> {
    let mut out = String::new();
    match shell {
        "bash" => {
            out.push_str("# bash completion for tern (generated by `tern completions bash`)\n");
            out.push_str("_tern() {\n  local cur prev words cword\n  cur=\"${COMP_WORDS[COMP_CWORD]}\"\n  prev=\"${COMP_WORDS[COMP_CWORD-1]}\"\n");
            out.push_str("  if [ \"$COMP_CWORD\" -eq 1 ]; then\n    COMPREPLY=($(compgen -W \"run pub sub rr help completions man\" -- \"$cur\"))\n    return\n  fi\n");
            out.push_str("  case \"${COMP_WORDS[1]}\" in\n");
            for cmd in Cmd::ALL {
                out.push_str(&format!("  {})\n    case \"$prev\" in\n", cmd_name(cmd)));
                for f in FLAGS.iter().filter(|f| f.is_for(cmd)) {
                    let action = match f.value {
                        Value::None => continue,
                        Value::File(_) => {
                            "COMPREPLY=($(compgen -f -- \"$cur\")); return;;".to_owned()
                        }
                        Value::Dir(_) => {
                            "COMPREPLY=($(compgen -d -- \"$cur\")); return;;".to_owned()
                        }
                        Value::Choice(_, words) => format!(
                            "COMPREPLY=($(compgen -W \"{}\" -- \"$cur\")); return;;",
                            words.join(" ")
                        ),
                        Value::Text(_) => "return;;".to_owned(),
                    };
                    out.push_str(&format!("      {}) {action}\n", f.names.join("|")));
                }
                let all: Vec<&str> = FLAGS
                    .iter()
                    .filter(|f| f.is_for(cmd))
                    .flat_map(|f| f.names.iter().copied())
                    .collect();
                out.push_str(&format!(
                    "    esac\n    COMPREPLY=($(compgen -W \"{}\" -- \"$cur\"));;\n",
                    all.join(" ")
                ));
            }
            out.push_str(
                "  completions) COMPREPLY=($(compgen -W \"bash zsh fish\" -- \"$cur\"));;\n",
            );
            out.push_str("  run) COMPREPLY=($(compgen -f -- \"$cur\"));;\n  esac\n}\ncomplete -F _tern tern\n");
        }
        "zsh" => {
            out.push_str(
                "#compdef tern\n# zsh completion for tern (generated by `tern completions zsh`)\n",
            );
            for cmd in Cmd::ALL {
                out.push_str(&format!("_tern_{}() {{\n  _arguments \\\n", cmd_name(cmd)));
                for f in FLAGS.iter().filter(|f| f.is_for(cmd)) {
                    let help = f.help.split([';', '(', ':']).next().unwrap_or("").trim();
                    let help = help.replace(['\'', '[', ']'], "");
                    let action = match f.value {
                        Value::None => String::new(),
                        Value::File(n) => format!(":{n}:_files"),
                        Value::Dir(n) => format!(":{n}:_files -/"),
                        Value::Choice(n, words) => format!(":{n}:({})", words.join(" ")),
                        Value::Text(n) => format!(":{n}:"),
                    };
                    for name in f.names {
                        out.push_str(&format!("    '*{name}[{help}]{action}' \\\n"));
                    }
                }
                out.push_str("    && return 0\n}\n");
            }
            out.push_str(
                "_tern() {\n  if (( CURRENT == 2 )); then\n    _values command run pub sub rr help completions man\n    return\n  fi\n  case $words[2] in\n    pub) shift words; (( CURRENT-- )); _tern_pub;;\n    sub) shift words; (( CURRENT-- )); _tern_sub;;\n    rr) shift words; (( CURRENT-- )); _tern_rr;;\n    completions) _values shell bash zsh fish;;\n    run) _files;;\n  esac\n}\n_tern \"$@\"\n",
            );
        }
        "fish" => {
            out.push_str("# fish completion for tern (generated by `tern completions fish`)\n");
            out.push_str("complete -c tern -f -n __fish_use_subcommand -a 'run pub sub rr help completions man'\n");
            out.push_str("complete -c tern -f -n '__fish_seen_subcommand_from completions' -a 'bash zsh fish'\n");
            for cmd in Cmd::ALL {
                for f in FLAGS.iter().filter(|f| f.is_for(cmd)) {
                    let mut line = format!(
                        "complete -c tern -n '__fish_seen_subcommand_from {}'",
                        cmd_name(cmd)
                    );
                    for name in f.names {
                        match name.strip_prefix("--") {
                            Some(long) => line.push_str(&format!(" -l {long}")),
                            None => line.push_str(&format!(" -o {}", &name[1..])),
                        }
                    }
                    match f.value {
                        Value::None => line.push_str(" -f"),
                        Value::File(_) | Value::Dir(_) => line.push_str(" -r -F"),
                        Value::Choice(_, words) => {
                            line.push_str(&format!(" -x -a '{}'", words.join(" ")));
                        }
                        Value::Text(_) => line.push_str(" -x"),
                    }
                    let help = f.help.split([';', '(']).next().unwrap_or("").trim();
                    line.push_str(&format!(" -d '{}'", help.replace('\'', "\\'")));
                    out.push_str(&line);
                    out.push('\n');
                }
            }
        }
        _ => return None,
    }
    Some(out)
}

/// A man page (roff) for `tern pub` or `tern sub`.
pub(crate) fn man(cmd: Cmd, version: &str, summary: &str, exit_help: &str) -> String {
    let name = cmd_name(cmd);
    let esc = |s: &str| s.replace('\\', "\\e").replace('-', "\\-");
    let mut out = format!(
        ".TH TERN-{} 1 \"\" \"tern {version}\" \"User Commands\"\n.SH NAME\ntern\\-{name} \\- {}\n.SH SYNOPSIS\n.B tern {name}\n[\\fIoptions\\fR]\n.SH DESCRIPTION\n{}\n",
        name.to_uppercase(),
        esc(summary),
        esc(summary)
    );
    for group in Group::ORDER {
        let flags: Vec<&Flag> = FLAGS
            .iter()
            .filter(|f| f.is_for(cmd) && f.group == group)
            .collect();
        if flags.is_empty() {
            continue;
        }
        out.push_str(&format!(".SH \"{}\"\n", esc(group.title()).to_uppercase()));
        for f in flags {
            let names: Vec<String> = f
                .names
                .iter()
                .map(|n| format!("\\fB{}\\fR", esc(n)))
                .collect();
            let value = f
                .value
                .name()
                .map(|v| format!(" \\fI{v}\\fR"))
                .unwrap_or_default();
            out.push_str(&format!(
                ".TP\n{}{value}\n{}\n",
                names.join(", "),
                esc(f.help)
            ));
        }
    }
    out.push_str(".SH \"EXIT STATUS\"\n.nf\n");
    for line in exit_help.lines().skip(1) {
        out.push_str(&esc(line));
        out.push('\n');
    }
    out.push_str(".fi\n.SH \"SEE ALSO\"\nmosquitto_pub(1), mosquitto_sub(1)\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_spelling_is_unique_per_command() {
        for cmd in Cmd::ALL {
            let mut seen = std::collections::HashSet::new();
            for f in FLAGS.iter().filter(|f| f.is_for(cmd)) {
                for n in f.names {
                    assert!(seen.insert(*n), "{n} twice for {cmd:?}");
                }
            }
        }
    }

    #[test]
    fn completions_and_man_pages_list_every_flag() {
        for shell in ["bash", "zsh", "fish"] {
            let script = completions(shell).unwrap();
            for f in FLAGS {
                let n = f.names[0];
                let needle = match (shell, n.strip_prefix("--")) {
                    ("fish", Some(long)) => format!("-l {long}"),
                    ("fish", None) => format!("-o {}", &n[1..]),
                    _ => n.to_owned(),
                };
                assert!(script.contains(&needle), "{shell} lacks {n}");
            }
        }
        assert!(completions("tcsh").is_none());
        let page = man(Cmd::Sub, "0.1.0", "subscribe", "Exit status:\n  0 ok\n");
        assert!(page.contains("\\fB\\-\\-remove\\-retained\\fR"), "{page}");
        assert!(
            !page.contains("\\fB\\-\\-repeat\\fR"),
            "pub's flag in sub's page"
        );
    }
}
