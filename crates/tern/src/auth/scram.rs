//! SCRAM-SHA-256 (RFC 5802, RFC 7677) over MQTT 5 enhanced authentication.
//!
//! The exchange maps onto the AUTH flow as brokers that speak SCRAM (EMQX, HiveMQ's
//! extensions, VerneMQ plugins) run it:
//!
//! | MQTT packet | SCRAM message | [`Authenticator`] call |
//! |---|---|---|
//! | CONNECT (or AUTH 0x19), Authentication Data | client-first `n,,n=user,r=cnonce` | [`start`](Authenticator::start) |
//! | broker's AUTH 0x18 | server-first `r=cnonce snonce,s=salt,i=count` | [`step`](Authenticator::step) |
//! | our AUTH 0x18 | client-final `c=biws,r=…,p=proof` | (its answer) |
//! | CONNACK 0x00 (or AUTH 0x00) | server-final `v=signature` | [`finish`](Authenticator::finish) |
//!
//! Authentication is mutual: the broker proves it knows the password too, and a missing or
//! wrong server signature ends the connection. A broker that sends the server-final message
//! in one more AUTH 0x18 (answered with empty data) is accepted as well.
//!
//! Channel binding is not used (GS2 header `n,,`), nor an authorization identity. User name
//! and password are prepared with SASLprep (RFC 4013), the user name then escaped (`=` as
//! `=3D`, `,` as `=2C`). The salted password is kept for re-authentication with the same salt
//! and iteration count, so a re-authentication costs no PBKDF2 run.

use std::fmt;
use std::num::NonZeroU32;
use std::ops::RangeInclusive;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use ring::rand::SecureRandom as _;
use ring::{digest, hmac, pbkdf2};

use super::{AuthError, Authenticator};

/// The Authentication Method of SCRAM-SHA-256.
pub const METHOD: &str = "SCRAM-SHA-256";

/// The GS2 header: no channel binding, no authorization identity.
const GS2_HEADER: &str = "n,,";
/// `base64(GS2_HEADER)`, the `c=` attribute of client-final.
const CHANNEL_BINDING: &str = "biws";
/// Random bytes in a generated client nonce (32 base64 characters).
const NONCE_BYTES: usize = 24;
/// SHA-256 output length.
const KEY_LEN: usize = 32;

/// Iteration counts accepted by default: RFC 7677's minimum (4096) up to a million, which
/// bounds the PBKDF2 work a broker can make the client do.
pub const DEFAULT_ITERATIONS: RangeInclusive<u32> = 4096..=1_000_000;

/// Why a [`Scram`] could not be built from its credentials.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ScramError {
    /// The user name is empty or not allowed by SASLprep (RFC 4013).
    #[error("SCRAM user name {name:?} is not valid: {why}")]
    InvalidUsername {
        /// The user name as given.
        name: String,
        /// Why it is refused.
        why: String,
    },
    /// The password is empty or not allowed by SASLprep (RFC 4013).
    #[error("SCRAM password is not valid: {0}")]
    InvalidPassword(String),
    /// An injected client nonce is empty or holds a character outside `%x21-7E` or a `,`.
    #[error("SCRAM client nonce {0:?} is not printable ASCII without ','")]
    InvalidNonce(String),
    /// The iteration bounds are empty or start at 0.
    #[error("SCRAM iteration bounds {0:?} are empty or include 0")]
    InvalidIterations(RangeInclusive<u32>),
}

/// A SCRAM-SHA-256 client: the [`Authenticator`] for Authentication Method
/// `"SCRAM-SHA-256"`.
///
/// ```
/// use tern::auth::Scram;
/// let scram = Scram::new("alice", "correct horse battery staple")?;
/// // ConnectOptions::new("id").authenticator(scram) …
/// # Ok::<(), tern::auth::ScramError>(())
/// ```
pub struct Scram {
    /// SASLprepped and escaped (`=3D`, `=2C`).
    username: String,
    /// SASLprepped.
    password: String,
    iterations: RangeInclusive<u32>,
    /// For the next [`start`](Authenticator::start) only (tests, reproducible transcripts).
    next_nonce: Option<String>,
    /// The salted password of the last exchange, reused while salt and count stay the same.
    salted: Option<Salted>,
    state: State,
}

/// The SaltedPassword of one salt and iteration count.
struct Salted {
    salt: Vec<u8>,
    iterations: u32,
    key: [u8; KEY_LEN],
}

/// Where the exchange stands.
enum State {
    /// Nothing sent yet (or the last exchange ended).
    Idle,
    /// client-first sent; awaiting server-first.
    ClientFirstSent {
        client_nonce: String,
        /// client-first without the GS2 header: `n=user,r=cnonce`.
        client_first_bare: String,
    },
    /// client-final sent; awaiting server-final, which must carry this signature's proof.
    ClientFinalSent {
        /// `ServerKey`, to check the broker's `ServerSignature` in constant time.
        server_key: hmac::Key,
        auth_message: String,
    },
    /// The server signature was verified (in an AUTH 0x18); only the final packet remains.
    Verified,
    /// A step failed; the exchange cannot go on (a new `start` begins afresh).
    Failed,
}

impl Scram {
    /// A SCRAM-SHA-256 client for `username` and `password`, both prepared with SASLprep.
    pub fn new(username: &str, password: &str) -> Result<Self, ScramError> {
        let prepared = stringprep::saslprep(username).map_err(|e| ScramError::InvalidUsername {
            name: username.to_owned(),
            why: e.to_string(),
        })?;
        if prepared.is_empty() {
            return Err(ScramError::InvalidUsername {
                name: username.to_owned(),
                why: "empty".to_owned(),
            });
        }
        let password = stringprep::saslprep(password)
            .map_err(|e| ScramError::InvalidPassword(e.to_string()))?;
        if password.is_empty() {
            return Err(ScramError::InvalidPassword("empty".to_owned()));
        }
        Ok(Self {
            username: escape_username(&prepared),
            password: password.into_owned(),
            iterations: DEFAULT_ITERATIONS,
            next_nonce: None,
            salted: None,
            state: State::Idle,
        })
    }

    /// The iteration counts accepted from the broker (default [`DEFAULT_ITERATIONS`]): fewer
    /// weakens the stored keys, more costs the client CPU time at each new salt.
    pub fn iterations(mut self, accepted: RangeInclusive<u32>) -> Result<Self, ScramError> {
        if accepted.is_empty() || *accepted.start() == 0 {
            return Err(ScramError::InvalidIterations(accepted));
        }
        self.iterations = accepted;
        Ok(self)
    }

    /// Uses `nonce` as the client nonce of the next exchange instead of a random one. For
    /// tests and reproducible transcripts only: a nonce must never repeat in production.
    pub fn with_client_nonce(mut self, nonce: &str) -> Result<Self, ScramError> {
        if nonce.is_empty()
            || !nonce
                .bytes()
                .all(|b| (0x21..=0x7E).contains(&b) && b != b',')
        {
            return Err(ScramError::InvalidNonce(nonce.to_owned()));
        }
        self.next_nonce = Some(nonce.to_owned());
        Ok(self)
    }

    /// The salted password for `salt` and `iterations`, from the cache or PBKDF2.
    fn salted_password(&mut self, salt: &[u8], iterations: NonZeroU32) -> [u8; KEY_LEN] {
        if let Some(s) = &self.salted
            && s.salt == salt
            && s.iterations == iterations.get()
        {
            return s.key;
        }
        let mut key = [0u8; KEY_LEN];
        pbkdf2::derive(
            pbkdf2::PBKDF2_HMAC_SHA256,
            iterations,
            salt,
            self.password.as_bytes(),
            &mut key,
        );
        self.salted = Some(Salted {
            salt: salt.to_vec(),
            iterations: iterations.get(),
            key,
        });
        key
    }

    /// server-first → client-final.
    fn client_final(
        &mut self,
        client_nonce: &str,
        client_first_bare: &str,
        server_first: &[u8],
    ) -> Result<(Bytes, State), AuthError> {
        let server_first = std::str::from_utf8(server_first)
            .map_err(|_| fail("server-first message is not UTF-8"))?;
        let attrs = Attributes::parse(server_first)?;
        if attrs.get('m').is_some() {
            return Err(fail(
                "the broker requires a SCRAM extension (m=) we do not know",
            ));
        }
        let nonce = attrs.require('r', "server-first", "nonce")?;
        if !nonce.starts_with(client_nonce) || nonce.len() == client_nonce.len() {
            return Err(fail(
                "server-first nonce does not extend ours (possible replay or man in the middle)",
            ));
        }
        if !nonce.bytes().all(|b| (0x21..=0x7E).contains(&b)) {
            return Err(fail("server-first nonce holds non-printable characters"));
        }
        let salt = BASE64
            .decode(attrs.require('s', "server-first", "salt")?)
            .map_err(|e| fail(format!("server-first salt is not base64: {e}")))?;
        if salt.is_empty() {
            return Err(fail("server-first salt is empty"));
        }
        let count = attrs.require('i', "server-first", "iteration count")?;
        let iterations = count
            .parse::<u32>()
            .ok()
            .and_then(NonZeroU32::new)
            .ok_or_else(|| {
                fail(format!(
                    "server-first iteration count {count:?} is not a positive number"
                ))
            })?;
        if !self.iterations.contains(&iterations.get()) {
            return Err(fail(format!(
                "the broker asks for {iterations} PBKDF2 iterations, outside the accepted {:?}",
                self.iterations
            )));
        }

        let salted = self.salted_password(&salt, iterations);
        let salted_key = hmac::Key::new(hmac::HMAC_SHA256, &salted);
        let client_key = hmac::sign(&salted_key, b"Client Key");
        let stored_key = digest::digest(&digest::SHA256, client_key.as_ref());
        let server_key = hmac::Key::new(
            hmac::HMAC_SHA256,
            hmac::sign(&salted_key, b"Server Key").as_ref(),
        );

        let without_proof = format!("c={CHANNEL_BINDING},r={nonce}");
        let auth_message = format!("{client_first_bare},{server_first},{without_proof}");
        let client_signature = hmac::sign(
            &hmac::Key::new(hmac::HMAC_SHA256, stored_key.as_ref()),
            auth_message.as_bytes(),
        );
        let proof: Vec<u8> = client_key
            .as_ref()
            .iter()
            .zip(client_signature.as_ref())
            .map(|(k, s)| k ^ s)
            .collect();
        let client_final = format!("{without_proof},p={}", BASE64.encode(proof));
        Ok((
            Bytes::from(client_final),
            State::ClientFinalSent {
                server_key,
                auth_message,
            },
        ))
    }
}

impl fmt::Debug for Scram {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the password nor keys.
        f.debug_struct("Scram")
            .field("username", &self.username)
            .field("iterations", &self.iterations)
            .field("state", &self.state.name())
            .finish_non_exhaustive()
    }
}

impl State {
    fn name(&self) -> &'static str {
        match self {
            Self::Idle => "idle",
            Self::ClientFirstSent { .. } => "client-first sent",
            Self::ClientFinalSent { .. } => "client-final sent",
            Self::Verified => "server verified",
            Self::Failed => "failed",
        }
    }
}

impl Authenticator for Scram {
    fn method(&self) -> &str {
        METHOD
    }

    fn start(&mut self) -> Result<Option<Bytes>, AuthError> {
        let client_nonce = match self.next_nonce.take() {
            Some(n) => n,
            None => random_nonce()?,
        };
        let client_first_bare = format!("n={},r={client_nonce}", self.username);
        let client_first = format!("{GS2_HEADER}{client_first_bare}");
        self.state = State::ClientFirstSent {
            client_nonce,
            client_first_bare,
        };
        Ok(Some(Bytes::from(client_first)))
    }

    fn step(&mut self, data: Option<&[u8]>) -> Result<Option<Bytes>, AuthError> {
        let state = std::mem::replace(&mut self.state, State::Failed);
        match state {
            State::ClientFirstSent {
                client_nonce,
                client_first_bare,
            } => {
                let server_first = data.ok_or_else(|| {
                    fail("the broker's challenge carries no server-first message")
                })?;
                let (answer, next) =
                    self.client_final(&client_nonce, &client_first_bare, server_first)?;
                self.state = next;
                Ok(Some(answer))
            }
            State::ClientFinalSent {
                server_key,
                auth_message,
            } => {
                // server-final in an AUTH 0x18: verify it now, answer with no data.
                let data =
                    data.ok_or_else(|| fail("the broker's AUTH carries no server-final message"))?;
                verify_server_final(&server_key, &auth_message, data)?;
                self.state = State::Verified;
                Ok(None)
            }
            other => Err(fail(format!(
                "unexpected AUTH Continue from the broker (exchange {})",
                other.name()
            ))),
        }
    }

    fn finish(&mut self, data: Option<&[u8]>) -> Result<(), AuthError> {
        let state = std::mem::replace(&mut self.state, State::Failed);
        match (state, data) {
            (
                State::ClientFinalSent {
                    server_key,
                    auth_message,
                },
                Some(data),
            ) => {
                verify_server_final(&server_key, &auth_message, data)?;
                self.state = State::Idle;
                Ok(())
            }
            (State::ClientFinalSent { .. }, None) => Err(fail(
                "the broker accepted us without a server signature: it did not prove it knows \
                 the password",
            )),
            (State::Verified, None) => {
                self.state = State::Idle;
                Ok(())
            }
            (State::Verified, Some(_)) => {
                Err(fail("the broker sent data after its server-final message"))
            }
            (other, _) => Err(fail(format!(
                "the broker ended the exchange before it was complete (exchange {}): it did not \
                 prove it knows the password",
                other.name()
            ))),
        }
    }
}

/// Checks a server-final message: `e=` is the broker's refusal, `v=` must equal the
/// `ServerSignature` (compared in constant time).
fn verify_server_final(
    server_key: &hmac::Key,
    auth_message: &str,
    data: &[u8],
) -> Result<(), AuthError> {
    let text = std::str::from_utf8(data).map_err(|_| fail("server-final message is not UTF-8"))?;
    let attrs = Attributes::parse(text)?;
    if let Some(e) = attrs.get('e') {
        return Err(fail(format!("the broker refused: {e}")));
    }
    let signature = BASE64
        .decode(attrs.require('v', "server-final", "verifier")?)
        .map_err(|e| fail(format!("server-final signature is not base64: {e}")))?;
    hmac::verify(server_key, auth_message.as_bytes(), &signature).map_err(|_| {
        fail(
            "the broker's server signature is wrong: it does not know the password \
             (refusing the broker)",
        )
    })
}

/// A fresh random client nonce: 24 bytes from the OS, base64 (never a `,`).
fn random_nonce() -> Result<String, AuthError> {
    let mut bytes = [0u8; NONCE_BYTES];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| fail("the system random number generator failed"))?;
    Ok(BASE64.encode(bytes))
}

/// `saslname`: `=` as `=3D`, `,` as `=2C` (RFC 5802 §5.1).
fn escape_username(name: &str) -> String {
    name.replace('=', "=3D").replace(',', "=2C")
}

fn fail(why: impl Into<String>) -> AuthError {
    AuthError::Failed(format!("SCRAM-SHA-256: {}", why.into()))
}

/// The `a=value` attributes of one SCRAM message, in order.
struct Attributes<'a>(Vec<(char, &'a str)>);

impl<'a> Attributes<'a> {
    fn parse(msg: &'a str) -> Result<Self, AuthError> {
        msg.split(',')
            .map(|part| {
                let mut chars = part.chars();
                match (chars.next(), chars.next()) {
                    (Some(name), Some('=')) if name.is_ascii_alphabetic() => Ok((name, &part[2..])),
                    _ => Err(fail(format!("malformed attribute {part:?} in {msg:?}"))),
                }
            })
            .collect::<Result<_, _>>()
            .map(Self)
    }

    fn get(&self, name: char) -> Option<&'a str> {
        self.0.iter().find(|(n, _)| *n == name).map(|(_, v)| *v)
    }

    fn require(&self, name: char, msg: &str, what: &str) -> Result<&'a str, AuthError> {
        self.get(name)
            .ok_or_else(|| fail(format!("{msg} message has no {what} ({name}=)")))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test
mod tests {
    use super::*;

    /// RFC 7677 §3.
    const CLIENT_NONCE: &str = "rOprNGfwEbeRWgbNEkqO";
    const SERVER_FIRST: &str = "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
                                s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
    const CLIENT_FINAL: &str = "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
                                p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
    const SERVER_FINAL: &str = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";

    fn rfc_client() -> Scram {
        Scram::new("user", "pencil")
            .and_then(|s| s.with_client_nonce(CLIENT_NONCE))
            .expect("valid credentials")
    }

    fn text(b: Option<Bytes>) -> String {
        String::from_utf8(b.expect("data").to_vec()).expect("utf-8")
    }

    #[test]
    fn rfc_7677_test_vector() {
        let mut c = rfc_client();
        assert_eq!(c.method(), "SCRAM-SHA-256");
        assert_eq!(text(c.start().unwrap()), "n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
        assert_eq!(
            text(c.step(Some(SERVER_FIRST.as_bytes())).unwrap()),
            CLIENT_FINAL
        );
        c.finish(Some(SERVER_FINAL.as_bytes())).unwrap();
    }

    #[test]
    fn a_wrong_server_signature_is_refused() {
        let mut c = rfc_client();
        c.start().unwrap();
        c.step(Some(SERVER_FIRST.as_bytes())).unwrap();
        let forged = format!("v={}", BASE64.encode([7u8; 32]));
        let err = c.finish(Some(forged.as_bytes())).unwrap_err().to_string();
        assert!(err.contains("server signature is wrong"), "{err}");
    }

    #[test]
    fn a_missing_server_signature_is_refused() {
        let mut c = rfc_client();
        c.start().unwrap();
        c.step(Some(SERVER_FIRST.as_bytes())).unwrap();
        let err = c.finish(None).unwrap_err().to_string();
        assert!(err.contains("without a server signature"), "{err}");
        // Accepted before any challenge: the broker proved nothing.
        let mut c = rfc_client();
        c.start().unwrap();
        let err = c.finish(None).unwrap_err().to_string();
        assert!(err.contains("before it was complete"), "{err}");
    }

    #[test]
    fn server_final_in_an_auth_continue_is_verified_there() {
        let mut c = rfc_client();
        c.start().unwrap();
        c.step(Some(SERVER_FIRST.as_bytes())).unwrap();
        assert_eq!(c.step(Some(SERVER_FINAL.as_bytes())).unwrap(), None);
        c.finish(None).unwrap();
    }

    #[test]
    fn the_broker_s_error_attribute_is_reported() {
        let mut c = rfc_client();
        c.start().unwrap();
        c.step(Some(SERVER_FIRST.as_bytes())).unwrap();
        let err = c.finish(Some(b"e=invalid-proof")).unwrap_err().to_string();
        assert!(err.contains("refused: invalid-proof"), "{err}");
    }

    #[test]
    fn server_first_is_checked() {
        let cases: &[(&str, &str)] = &[
            (
                "r=someoneelse,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
                "does not extend ours",
            ),
            (
                "r=rOprNGfwEbeRWgbNEkqO,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
                "does not extend ours",
            ),
            ("r=rOprNGfwEbeRWgbNEkqOx,i=4096", "no salt"),
            ("r=rOprNGfwEbeRWgbNEkqOx,s=!!,i=4096", "not base64"),
            (
                "r=rOprNGfwEbeRWgbNEkqOx,s=W22ZaJ0SNY7soEsUEjb6gQ==",
                "no iteration count",
            ),
            (
                "r=rOprNGfwEbeRWgbNEkqOx,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=0",
                "not a positive",
            ),
            (
                "r=rOprNGfwEbeRWgbNEkqOx,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=-1",
                "not a positive",
            ),
            (
                "r=rOprNGfwEbeRWgbNEkqOx,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=1",
                "outside the accepted",
            ),
            (
                "r=rOprNGfwEbeRWgbNEkqOx,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4000000000",
                "outside the accepted",
            ),
            (
                "m=ext,r=rOprNGfwEbeRWgbNEkqOx,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
                "extension",
            ),
            ("garbage", "malformed attribute"),
            ("", "malformed attribute"),
        ];
        for (server_first, expected) in cases {
            let mut c = rfc_client();
            c.start().unwrap();
            let err = c
                .step(Some(server_first.as_bytes()))
                .unwrap_err()
                .to_string();
            assert!(err.contains(expected), "{server_first:?}: {err}");
            // A failed exchange goes no further.
            assert!(c.finish(Some(SERVER_FINAL.as_bytes())).is_err());
        }
        let mut c = rfc_client();
        c.start().unwrap();
        assert!(
            c.step(Some(&[0xff, 0xfe]))
                .unwrap_err()
                .to_string()
                .contains("not UTF-8")
        );
        let mut c = rfc_client();
        c.start().unwrap();
        assert!(
            c.step(None)
                .unwrap_err()
                .to_string()
                .contains("no server-first")
        );
    }

    #[test]
    fn a_step_out_of_order_is_refused() {
        let mut c = rfc_client();
        let err = c
            .step(Some(SERVER_FIRST.as_bytes()))
            .unwrap_err()
            .to_string();
        assert!(err.contains("unexpected AUTH Continue"), "{err}");
    }

    #[test]
    fn user_names_are_prepared_and_escaped() {
        let mut c = Scram::new("a=b,c", "pw")
            .unwrap()
            .with_client_nonce("N")
            .unwrap();
        assert_eq!(text(c.start().unwrap()), "n,,n=a=3Db=2Cc,r=N");
        // SASLprep maps U+00AD (soft hyphen) to nothing and U+00A0 to a space.
        let mut c = Scram::new("us\u{AD}er\u{A0}x", "pw")
            .unwrap()
            .with_client_nonce("N")
            .unwrap();
        assert_eq!(text(c.start().unwrap()), "n,,n=user x,r=N");
        // Prohibited characters (controls) and empty credentials are refused up front.
        assert!(matches!(
            Scram::new("a\u{7}", "pw"),
            Err(ScramError::InvalidUsername { .. })
        ));
        assert!(matches!(
            Scram::new("", "pw"),
            Err(ScramError::InvalidUsername { .. })
        ));
        assert!(matches!(
            Scram::new("u", ""),
            Err(ScramError::InvalidPassword(_))
        ));
        assert!(matches!(
            Scram::new("u", "\u{0}"),
            Err(ScramError::InvalidPassword(_))
        ));
        // A non-ASCII password is prepared (NFKC): U+2168 ROMAN NUMERAL NINE is "IX".
        let mut a = Scram::new("user", "\u{2168}")
            .unwrap()
            .with_client_nonce(CLIENT_NONCE)
            .unwrap();
        let mut b = Scram::new("user", "IX")
            .unwrap()
            .with_client_nonce(CLIENT_NONCE)
            .unwrap();
        a.start().unwrap();
        b.start().unwrap();
        assert_eq!(
            a.step(Some(SERVER_FIRST.as_bytes())).unwrap(),
            b.step(Some(SERVER_FIRST.as_bytes())).unwrap()
        );
    }

    #[test]
    fn injected_nonces_and_iteration_bounds_are_checked() {
        let s = || Scram::new("u", "p").unwrap();
        assert!(matches!(
            s().with_client_nonce(""),
            Err(ScramError::InvalidNonce(_))
        ));
        assert!(matches!(
            s().with_client_nonce("a,b"),
            Err(ScramError::InvalidNonce(_))
        ));
        assert!(matches!(
            s().with_client_nonce("a b"),
            Err(ScramError::InvalidNonce(_))
        ));
        assert!(matches!(
            s().iterations(0..=10),
            Err(ScramError::InvalidIterations(_))
        ));
        #[allow(clippy::reversed_empty_ranges)]
        let empty = 10..=1;
        assert!(matches!(
            s().iterations(empty),
            Err(ScramError::InvalidIterations(_))
        ));
        // Lower bounds are the caller's to choose.
        let mut c = s()
            .iterations(1..=4096)
            .unwrap()
            .with_client_nonce("N")
            .unwrap();
        c.start().unwrap();
        c.step(Some(b"r=NS,s=c2FsdA==,i=1")).unwrap();
    }

    #[test]
    fn random_nonces_differ_and_an_injected_one_is_used_once() {
        let mut c = rfc_client();
        let first = text(c.start().unwrap());
        let second = text(c.start().unwrap());
        let third = text(c.start().unwrap());
        assert_eq!(first, "n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
        assert_ne!(second, third);
        assert!(second.starts_with("n,,n=user,r=") && second.len() == "n,,n=user,r=".len() + 32);
    }

    #[test]
    fn re_authentication_runs_a_fresh_exchange() {
        let mut c = rfc_client();
        c.start().unwrap();
        c.step(Some(SERVER_FIRST.as_bytes())).unwrap();
        c.finish(Some(SERVER_FINAL.as_bytes())).unwrap();
        // Same transcript again (nonce injected again): same result, salted password cached.
        let mut c = c.with_client_nonce(CLIENT_NONCE).unwrap();
        c.start().unwrap();
        assert_eq!(
            text(c.step(Some(SERVER_FIRST.as_bytes())).unwrap()),
            CLIENT_FINAL
        );
        c.finish(Some(SERVER_FINAL.as_bytes())).unwrap();
    }

    #[test]
    fn debug_shows_no_secrets() {
        let c = rfc_client();
        let shown = format!("{c:?}");
        assert!(
            shown.contains("user") && !shown.contains("pencil"),
            "{shown}"
        );
    }
}
