//! The `tls` module's global certificate settings (ESP8266): `tls.cert.verify(...)` and
//! `tls.cert.auth(...)`. They feed every `connect()` whose `secure` is 1/true (a `secure`
//! table carries its own), as the ESP8266 shares one mbedTLS configuration.
//!
//! Each takes `true` (use what was stored before), `false` (off), PEM string(s) (stored and
//! used), or a function called at each connection: `verify`'s with k = 1, 2, … for the k-th
//! CA certificate, `auth`'s with k = 0 for the key and k ≥ 1 for the certificate chain, until
//! it returns nil.

use mlua::{Function, Lua, Table, Value, Variadic};
use tern::TlsOptions;
use tern::tls::Roots;

use crate::args::{bad_arg, lua_error, type_name};

/// Registry slot of `tls.cert.verify`'s setting.
const VERIFY: &str = "tern.tls.verify";
/// Registry slot of the CA PEM stored by `tls.cert.verify(pem)`.
const VERIFY_PEM: &str = "tern.tls.verify_pem";
/// Registry slot of `tls.cert.auth`'s setting.
const AUTH: &str = "tern.tls.auth";
/// Registry slot of the key and certificate PEM stored by `tls.cert.auth(pem)`.
const AUTH_PEM: &str = "tern.tls.auth_pem";

/// Most PEM items a certificate callback is asked for (a bound on a callback that never
/// returns nil).
const MAX_CALLBACK_ITEMS: i64 = 16;

/// The TLS options for a `secure = 1/true` connection, from `tls.cert.*`.
///
/// Never called `verify`: the system's roots (the ESP8266 verifies nothing by default; tern
/// does not connect unverified unless told to with `tls.cert.verify(false)`).
pub(crate) fn options(lua: &Lua) -> mlua::Result<TlsOptions> {
    let mut tls = TlsOptions::default();
    match lua.named_registry_value::<Value>(VERIFY)? {
        Value::Boolean(false) => tls.danger_insecure = true,
        Value::Function(f) => {
            let pem = collect(&f, 1, "tls.cert.verify")?;
            if pem.is_empty() {
                return Err(lua_error(
                    "tls.cert.verify: the callback returned no CA certificate",
                ));
            }
            tls.roots = Roots::Pem(pem);
        }
        _ => {
            if let Some(pem) = lua.named_registry_value::<Option<String>>(VERIFY_PEM)? {
                tls.roots = Roots::Pem(pem);
            }
        }
    }
    let auth_pem = match lua.named_registry_value::<Value>(AUTH)? {
        Value::Function(f) => {
            let key = collect_one(&f, 0, "tls.cert.auth")?.unwrap_or_default();
            let chain = collect(&f, 1, "tls.cert.auth")?;
            Some(format!("{key}\n{chain}"))
        }
        Value::Boolean(true) | Value::String(_) => {
            lua.named_registry_value::<Option<String>>(AUTH_PEM)?
        }
        _ => None,
    };
    if let Some(pem) = auth_pem {
        let (key, cert) = split_key_and_certs(&pem);
        if key.is_empty() || cert.is_empty() {
            return Err(lua_error(
                "tls.cert.auth: need a private key and a certificate in PEM",
            ));
        }
        tls.client_key = Some(key);
        tls.client_cert = Some(cert);
    }
    Ok(tls)
}

/// `f(k)` for k = `from`.. until nil, concatenated.
fn collect(f: &Function, from: i64, what: &str) -> mlua::Result<String> {
    let mut all = String::new();
    for k in from..from + MAX_CALLBACK_ITEMS {
        match collect_one(f, k, what)? {
            Some(pem) => {
                all.push_str(&pem);
                all.push('\n');
            }
            None => break,
        }
    }
    Ok(all)
}

fn collect_one(f: &Function, k: i64, what: &str) -> mlua::Result<Option<String>> {
    match f.call::<Value>(k)? {
        Value::Nil | Value::Boolean(false) => Ok(None),
        Value::String(s) => Ok(Some(s.to_str()?.to_owned())),
        v => Err(lua_error(format!(
            "{what}: the callback returned a {} for item {k}, expected a PEM string or nil",
            type_name(&v)
        ))),
    }
}

/// Splits PEM text into its private-key blocks and its certificate blocks.
fn split_key_and_certs(pem: &str) -> (String, String) {
    let (mut key, mut cert) = (String::new(), String::new());
    let mut rest = pem;
    // Bounded: each turn consumes one block.
    while let Some(start) = rest.find("-----BEGIN ") {
        let block = &rest[start..];
        let Some(label_end) = block[11..].find("-----") else {
            break;
        };
        let label = &block[11..11 + label_end];
        let end_marker = format!("-----END {label}-----");
        let Some(end) = block.find(&end_marker) else {
            break;
        };
        let text = &block[..end + end_marker.len()];
        if label.contains("PRIVATE KEY") {
            key.push_str(text);
            key.push('\n');
        } else if label.contains("CERTIFICATE") {
            cert.push_str(text);
            cert.push('\n');
        }
        rest = &block[end + end_marker.len()..];
    }
    (key, cert)
}

/// `verify(...)` / `auth(...)`: stores the setting; returns true.
fn setter(
    lua: &Lua,
    func: &'static str,
    slot: &'static str,
    pem_slot: &'static str,
) -> mlua::Result<Function> {
    lua.create_function(move |lua, args: Variadic<Value>| {
        match args.first() {
            Some(Value::Boolean(b)) => lua.set_named_registry_value(slot, *b)?,
            Some(Value::Function(f)) => lua.set_named_registry_value(slot, f.clone())?,
            Some(Value::String(_)) => {
                let mut pem = String::new();
                for (i, v) in args.iter().enumerate() {
                    match v {
                        Value::String(s) => {
                            let text = s.to_str().map_err(|_| {
                                bad_arg(func, i + 1, "PEM text expected, got binary data")
                            })?;
                            if !text.contains("-----BEGIN ") {
                                return Err(bad_arg(func, i + 1, "no PEM block found"));
                            }
                            pem.push_str(&text);
                            pem.push('\n');
                        }
                        other => {
                            return Err(bad_arg(
                                func,
                                i + 1,
                                format!("string expected, got {}", type_name(other)),
                            ));
                        }
                    }
                }
                lua.set_named_registry_value(pem_slot, pem.clone())?;
                lua.set_named_registry_value(slot, pem)?;
            }
            other => {
                let got = other.map_or("no value", type_name);
                return Err(bad_arg(
                    func,
                    1,
                    format!("boolean, string or function expected, got {got}"),
                ));
            }
        }
        Ok(true)
    })
}

/// Installs the `tls` global with its `cert` table.
pub(crate) fn register_module(lua: &Lua) -> mlua::Result<()> {
    let cert: Table = lua.create_table()?;
    cert.raw_set("verify", setter(lua, "verify", VERIFY, VERIFY_PEM)?)?;
    cert.raw_set("auth", setter(lua, "auth", AUTH, AUTH_PEM)?)?;
    let m = lua.create_table()?;
    m.raw_set("cert", cert)?;
    lua.globals().raw_set("tls", m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_and_certificates_are_told_apart() {
        let pem = "-----BEGIN CERTIFICATE-----\nAAA\n-----END CERTIFICATE-----\n\
                   -----BEGIN PRIVATE KEY-----\nBBB\n-----END PRIVATE KEY-----\n\
                   -----BEGIN CERTIFICATE-----\nCCC\n-----END CERTIFICATE-----\n";
        let (key, cert) = split_key_and_certs(pem);
        assert!(key.contains("BBB") && !key.contains("AAA"));
        assert!(cert.contains("AAA") && cert.contains("CCC") && !cert.contains("BBB"));
    }

    #[test]
    fn settings_feed_the_options() {
        let lua = Lua::new();
        register_module(&lua).unwrap();
        assert_eq!(options(&lua).unwrap(), TlsOptions::default());
        lua.load("tls.cert.verify(false)").exec().unwrap();
        assert!(options(&lua).unwrap().danger_insecure);
        lua.load("tls.cert.verify('-----BEGIN CERTIFICATE-----\\nX\\n-----END CERTIFICATE-----')")
            .exec()
            .unwrap();
        let o = options(&lua).unwrap();
        assert!(!o.danger_insecure && matches!(o.roots, Roots::Pem(ref p) if p.contains('X')));
        lua.load(
            "tls.cert.auth(function(k) if k == 0 then return '-----BEGIN EC PRIVATE KEY-----\\nK\\n-----END EC PRIVATE KEY-----' elseif k == 1 then return '-----BEGIN CERTIFICATE-----\\nC\\n-----END CERTIFICATE-----' end end)",
        )
        .exec()
        .unwrap();
        let o = options(&lua).unwrap();
        assert!(o.client_key.unwrap().contains('K'));
        assert!(o.client_cert.unwrap().contains('C'));
        let e = lua.load("tls.cert.verify(42)").exec().unwrap_err();
        assert!(e.to_string().contains("bad argument #1 to 'verify'"));
    }
}
