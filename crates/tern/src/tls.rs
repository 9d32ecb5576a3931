//! TLS settings ([`TlsOptions`]) and their translation into a rustls client configuration,
//! and TLS failures explained in words.

pub(crate) mod x509;

use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// Which certificate authorities verify the broker.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Roots {
    /// The operating system's root store. The default.
    #[default]
    Native,
    /// These PEM certificates only (the seed's `ca_cert`).
    Pem(String),
}

/// TLS options, mirroring the seed's `secure` table: `ca_cert`, `client_cert`, `client_key`.
///
/// ```no_run
/// use tern::{Broker, Client, ConnectOptions, TlsOptions};
///
/// #[tokio::main(flavor = "current_thread")]
/// async fn main() -> Result<(), Box<dyn std::error::Error>> {
///     // Trust a private CA and present a client certificate (mutual TLS).
///     let tls = TlsOptions::ca_pem(std::fs::read_to_string("ca.crt")?).client_auth(
///         std::fs::read_to_string("client.crt")?,
///         std::fs::read_to_string("client.key")?,
///     );
///     let (client, _events) = Client::new(ConnectOptions::new("secure-sensor").tls(tls));
///     // `TlsOptions::default()` trusts the operating system's CA store instead.
///     client.connect(Broker::parse("mqtts://broker.example:8883")?).await?;
///     client.close().await?;
///     Ok(())
/// }
/// ```
#[non_exhaustive]
#[derive(Clone, PartialEq, Eq, Default)]
pub struct TlsOptions {
    /// Trust anchors.
    pub roots: Roots,
    /// Client certificate chain (PEM) for mutual TLS; needs `client_key`.
    pub client_cert: Option<String>,
    /// Client private key (PEM) for mutual TLS; needs `client_cert`.
    pub client_key: Option<String>,
    /// Name to verify the certificate against, instead of the host connected to.
    pub server_name: Option<String>,
    /// Accept any certificate and name. Loudly named because it removes all protection
    /// against an active attacker; for tests against self-signed brokers only.
    pub danger_insecure: bool,
    /// Verify the certificate chain against the roots but not that it names the host
    /// (mosquitto's `--insecure`). Weaker than the default: any certificate the roots signed
    /// is accepted for any host.
    pub danger_skip_hostname_check: bool,
    /// Speak only this TLS version; `None` (the default) offers TLS 1.3 and 1.2.
    pub version: Option<TlsVersion>,
    /// ALPN protocols to offer, in order of preference (e.g. `b"mqtt"` for AWS IoT on port
    /// 443); empty (the default) offers none.
    pub alpn: Vec<Vec<u8>>,
}

/// A TLS protocol version rustls speaks.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsVersion {
    /// TLS 1.2.
    Tls12,
    /// TLS 1.3.
    Tls13,
}

/// TLS configuration that cannot be used.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TlsConfigError {
    /// `client_cert` without `client_key` or the reverse (the seed: both are needed).
    #[error("mutual TLS needs both client_cert and client_key; only {given} was given")]
    HalfClientAuth {
        /// Which of the two was given.
        given: &'static str,
    },
    /// A PEM input held no usable item.
    #[error("{what}: no PEM {expected} found")]
    NoPem {
        /// Which input.
        what: &'static str,
        /// What was looked for.
        expected: &'static str,
    },
    /// A PEM input could not be parsed.
    #[error("{what}: invalid PEM: {reason}")]
    BadPem {
        /// Which input.
        what: &'static str,
        /// The parser's message.
        reason: String,
    },
    /// No trust anchor could be loaded.
    #[error("no usable root certificates: {0}")]
    NoRoots(String),
    /// Our client certificate is X.509 version 1 (no extensions), which rustls cannot use.
    #[error(
        "our client certificate (client_cert, subject {subject}) is X.509 version 1, made \
         without extensions (as `openssl x509 -req` does without -extfile); rustls needs \
         version 3. Re-issue it with extensions: openssl x509 -req -in client.csr -CA ca.crt \
         -CAkey ca.key -CAcreateserial -days 365 -out client.crt -extfile <(printf \
         'basicConstraints=CA:FALSE\\nkeyUsage=digitalSignature\\nextendedKeyUsage=clientAuth')"
    )]
    ClientCertVersion1 {
        /// The certificate's subject, e.g. `CN=sensor-1`.
        subject: String,
    },
    /// rustls refused the configuration (e.g. the key does not match the certificate).
    #[error("TLS configuration rejected: {0}")]
    Rustls(String),
}

impl std::fmt::Debug for TlsOptions {
    /// Everything but the private key, which shows as `(hidden)`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsOptions")
            .field("roots", &self.roots)
            .field("client_cert", &self.client_cert)
            .field("client_key", &self.client_key.as_ref().map(|_| "(hidden)"))
            .field("server_name", &self.server_name)
            .field("danger_insecure", &self.danger_insecure)
            .field(
                "danger_skip_hostname_check",
                &self.danger_skip_hostname_check,
            )
            .field("version", &self.version)
            .field("alpn", &self.alpn)
            .finish()
    }
}

impl TlsOptions {
    /// Verify the broker against these PEM CA certificates.
    pub fn ca_pem(pem: impl Into<String>) -> Self {
        Self {
            roots: Roots::Pem(pem.into()),
            ..Self::default()
        }
    }

    /// Adds a client certificate and key (PEM) for mutual TLS.
    pub fn client_auth(mut self, cert_pem: impl Into<String>, key_pem: impl Into<String>) -> Self {
        self.client_cert = Some(cert_pem.into());
        self.client_key = Some(key_pem.into());
        self
    }

    /// Builds the rustls configuration.
    pub fn build(&self) -> Result<Arc<rustls::ClientConfig>, TlsConfigError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let versions: &[&rustls::SupportedProtocolVersion] = match self.version {
            None => rustls::DEFAULT_VERSIONS,
            Some(TlsVersion::Tls12) => &[&rustls::version::TLS12],
            Some(TlsVersion::Tls13) => &[&rustls::version::TLS13],
        };
        let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(versions)
            .map_err(|e| TlsConfigError::Rustls(e.to_string()))?;
        let builder = if self.danger_insecure || self.danger_skip_hostname_check {
            let chain = if self.danger_insecure {
                None
            } else {
                let roots = Arc::new(self.root_store()?);
                let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(
                    roots,
                    provider.clone(),
                )
                .build()
                .map_err(|e| TlsConfigError::Rustls(e.to_string()))?;
                Some(verifier)
            };
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(danger::Relaxed { chain, provider }))
        } else {
            builder.with_root_certificates(self.root_store()?)
        };
        let config = match (&self.client_cert, &self.client_key) {
            (None, None) => builder.with_no_client_auth(),
            (Some(_), None) => {
                return Err(TlsConfigError::HalfClientAuth {
                    given: "client_cert",
                });
            }
            (None, Some(_)) => {
                return Err(TlsConfigError::HalfClientAuth {
                    given: "client_key",
                });
            }
            (Some(cert), Some(key)) => {
                let chain = parse_certs("client_cert", cert)?;
                if let Some(leaf) = chain.first()
                    && x509::version(leaf) == Some(1)
                {
                    return Err(TlsConfigError::ClientCertVersion1 {
                        subject: x509::subject(leaf).unwrap_or_else(|| "unreadable".into()),
                    });
                }
                let key = PrivateKeyDer::from_pem_slice(key.as_bytes()).map_err(|e| {
                    TlsConfigError::BadPem {
                        what: "client_key",
                        reason: e.to_string(),
                    }
                })?;
                builder
                    .with_client_auth_cert(chain, key)
                    .map_err(|e| TlsConfigError::Rustls(e.to_string()))?
            }
        };
        let mut config = config;
        config.alpn_protocols.clone_from(&self.alpn);
        Ok(Arc::new(config))
    }

    fn root_store(&self) -> Result<rustls::RootCertStore, TlsConfigError> {
        let mut store = rustls::RootCertStore::empty();
        match &self.roots {
            Roots::Pem(pem) => {
                for cert in parse_certs("ca_cert", pem)? {
                    store.add(cert).map_err(|e| TlsConfigError::BadPem {
                        what: "ca_cert",
                        reason: e.to_string(),
                    })?;
                }
            }
            Roots::Native => {
                let found = rustls_native_certs::load_native_certs();
                let (added, _ignored) = store.add_parsable_certificates(found.certs);
                if added == 0 {
                    let why = found
                        .errors
                        .first()
                        .map_or_else(|| "the system store is empty".to_owned(), |e| e.to_string());
                    return Err(TlsConfigError::NoRoots(why));
                }
            }
        }
        Ok(store)
    }
}

/// Why a TLS handshake with the broker (verified as `name`) failed, for a person: which
/// certificate, what is wrong with it, and the usual fix. Never a Rust debug format.
pub(crate) fn explain_handshake_error(e: &std::io::Error, name: &str, _ws: bool) -> String {
    let Some(err) = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    else {
        return match e.kind() {
            std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::UnexpectedEof => format!(
                "the broker closed the connection during the TLS handshake ({e}); is this a \
                 TLS port? Plain MQTT is usually 1883, MQTT over TLS 8883"
            ),
            _ => e.to_string(),
        };
    };
    explain_rustls(err, name)
}

fn explain_rustls(err: &rustls::Error, name: &str) -> String {
    use rustls::{AlertDescription as A, CertificateError as C};
    let broker_cert = |what: &str| format!("the broker's certificate {what}");
    match err {
        rustls::Error::InvalidCertificate(ce) => match ce {
            C::UnknownIssuer => broker_cert(
                "was not issued by a CA we trust (unknown issuer): give the CA certificate \
                 that signed it \
                 (tern pub/sub --cafile; TlsOptions::ca_pem), or trust the system store \
                 (--tls-use-os-certs) if a public CA issued it",
            ),
            C::NotValidForName | C::NotValidForNameContext { .. } => broker_cert(&format!(
                "is not valid for name {name:?}: connect by a name listed in its \
                 subjectAltName, re-issue it with subjectAltName={}, or skip only the name \
                 check (--insecure; TlsOptions::danger_skip_hostname_check)",
                san_for(name)
            )),
            C::Expired | C::ExpiredContext { .. } => broker_cert("has expired"),
            C::NotValidYet | C::NotValidYetContext { .. } => {
                broker_cert("is not valid yet (is this machine's clock right?)")
            }
            C::Revoked => broker_cert("has been revoked"),
            C::BadSignature => broker_cert("has an invalid signature"),
            C::BadEncoding => broker_cert("cannot be parsed (bad DER encoding)"),
            C::Other(other) if other.0.to_string().contains("UnsupportedCertVersion") => {
                let san = san_for(name);
                broker_cert(&format!(
                    "(or a CA certificate in its chain) is X.509 version 1, made without \
                     extensions (as `openssl x509 -req` does without -extfile); rustls \
                     accepts only version 3, --insecure included. Re-issue it with \
                     extensions: openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key \
                     -CAcreateserial -days 365 -out server.crt -extfile <(printf \
                     'subjectAltName={san}\\nbasicConstraints=CA:FALSE\\nkeyUsage=digitalSignature,keyEncipherment\\nextendedKeyUsage=serverAuth')"
                ))
            }
            C::InvalidPurpose | C::InvalidPurposeContext { .. } => broker_cert(
                "is not meant for TLS servers: re-issue it with \
                 extendedKeyUsage=serverAuth",
            ),
            C::UnhandledCriticalExtension => {
                broker_cert("has a critical extension rustls does not understand")
            }
            C::Other(other) => {
                let why = other.0.to_string();
                match why.as_str() {
                    "CaUsedAsEndEntity" => broker_cert(
                        "is a CA certificate (basicConstraints CA:TRUE) used as the \
                         broker's own, as a self-signed `openssl req -x509` certificate is; \
                         rustls needs a CA and a server certificate it signed: openssl req \
                         -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -subj \
                         /CN=my-ca, then sign the server's with -extfile as for any server \
                         certificate, and pass ca.crt as the CA",
                    ),
                    "EndEntityUsedAsCa" => broker_cert(
                        "was signed by a certificate that is not a CA (no \
                         basicConstraints CA:TRUE): is the CA file the server's own \
                         certificate instead of its CA?",
                    ),
                    "RequiredEkuNotFound" | "RequiredEkuNotFoundContext" => broker_cert(
                        "is not meant for TLS servers: re-issue it with \
                         extendedKeyUsage=serverAuth",
                    ),
                    _ => broker_cert(&format!("was refused: {}", words(&why))),
                }
            }
            other => format!(
                "the broker's certificate was refused: {}",
                rustls::Error::InvalidCertificate(other.clone())
            ),
        },
        rustls::Error::AlertReceived(alert) => {
            let words = alert
                .as_str()
                .map_or_else(|| "an unknown".to_owned(), words);
            match alert {
                A::BadCertificate
                | A::CertificateRequired
                | A::UnknownCA
                | A::CertificateUnknown
                | A::UnsupportedCertificate
                | A::CertificateExpired
                | A::AccessDenied => format!(
                    "the broker refused our client certificate ({words} alert): it wants a \
                     certificate signed by a CA it trusts (tern pub/sub --cert and --key; \
                     TlsOptions::client_auth)"
                ),
                A::HandshakeFailure | A::ProtocolVersion | A::InsufficientSecurity => format!(
                    "the broker and tern share no TLS version or cipher suite ({words} \
                     alert); tern speaks TLS 1.2 and 1.3"
                ),
                _ => format!("the broker ended the handshake with a {words} alert"),
            }
        }
        other => other.to_string(),
    }
}

/// The subjectAltName entry that names `name`: `IP:...` or `DNS:...`.
fn san_for(name: &str) -> String {
    if name.parse::<std::net::IpAddr>().is_ok() {
        format!("IP:{name}")
    } else {
        format!("DNS:{name}")
    }
}

/// `BadCertificate` → `bad certificate`.
fn words(camel: &str) -> String {
    let mut out = String::new();
    for (i, c) in camel.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push(' ');
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

fn parse_certs(
    what: &'static str,
    pem: &str,
) -> Result<Vec<CertificateDer<'static>>, TlsConfigError> {
    let certs = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsConfigError::BadPem {
            what,
            reason: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsConfigError::NoPem {
            what,
            expected: "CERTIFICATE",
        });
    }
    Ok(certs)
}

#[cfg(test)]
mod tests {
    use super::*;

    const V1_CERT: &str = include_str!("tls/testdata/v1-client.crt");
    const V1_KEY: &str = include_str!("tls/testdata/v1-client.key");

    #[test]
    fn a_version_1_client_certificate_is_named_and_explained() {
        assert_eq!(
            x509::version(&parse_certs("t", V1_CERT).unwrap()[0]),
            Some(1)
        );
        let tls = TlsOptions::ca_pem(V1_CERT).client_auth(V1_CERT, V1_KEY);
        let msg = tls.build().unwrap_err().to_string();
        for needle in [
            "our client certificate",
            "CN=tern-client",
            "version 1",
            "-extfile",
        ] {
            assert!(msg.contains(needle), "{needle:?} missing from: {msg}");
        }
        assert!(
            !msg.contains("PRIVATE KEY") && !msg.contains("Other("),
            "{msg}"
        );
    }

    #[test]
    fn handshake_errors_read_as_sentences() {
        let v1 = rustls::Error::InvalidCertificate(rustls::CertificateError::Other(
            rustls::OtherError(Arc::new(std::io::Error::other("UnsupportedCertVersion"))),
        ));
        let msg = explain_handshake_error(&std::io::Error::other(v1), "127.0.0.1", false);
        assert!(msg.starts_with("the broker's certificate"), "{msg}");
        assert!(
            msg.contains("version 1") && msg.contains("IP:127.0.0.1"),
            "{msg}"
        );
        let alert = rustls::Error::AlertReceived(rustls::AlertDescription::BadCertificate);
        let msg = explain_handshake_error(&std::io::Error::other(alert), "h", false);
        assert!(
            msg.contains("our client certificate (bad certificate alert)"),
            "{msg}"
        );
        let ca = rustls::Error::InvalidCertificate(rustls::CertificateError::Other(
            rustls::OtherError(Arc::new(std::io::Error::other("CaUsedAsEndEntity"))),
        ));
        let msg = explain_handshake_error(&std::io::Error::other(ca), "h", false);
        assert!(
            msg.contains("is a CA certificate") && !msg.contains("Other("),
            "{msg}"
        );
        let odd = rustls::Error::InvalidCertificate(rustls::CertificateError::Other(
            rustls::OtherError(Arc::new(std::io::Error::other("SomethingNewInWebpki"))),
        ));
        let msg = explain_handshake_error(&std::io::Error::other(odd), "h", false);
        assert!(
            msg.ends_with("was refused: something new in webpki"),
            "{msg}"
        );
        let reset = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
        assert!(explain_handshake_error(&reset, "h", false).contains("is this a TLS port?"));
    }
}

mod danger {
    use std::sync::Arc;

    use rustls::CertificateError;
    use rustls::client::WebPkiServerVerifier;
    use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
    use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
    use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
    use rustls::{DigitallySignedStruct, SignatureScheme};

    /// A weakened verifier, behind the `danger_*` switches of `TlsOptions` only: with
    /// `chain`, the certificate chain is verified but any host name accepted
    /// (`danger_skip_hostname_check`); without, every certificate is accepted
    /// (`danger_insecure`). Handshake signatures are always checked.
    #[derive(Debug)]
    pub(super) struct Relaxed {
        pub(super) chain: Option<Arc<WebPkiServerVerifier>>,
        pub(super) provider: Arc<CryptoProvider>,
    }

    impl ServerCertVerifier for Relaxed {
        fn verify_server_cert(
            &self,
            end_entity: &CertificateDer<'_>,
            intermediates: &[CertificateDer<'_>],
            server_name: &ServerName<'_>,
            ocsp: &[u8],
            now: UnixTime,
        ) -> Result<ServerCertVerified, rustls::Error> {
            let Some(chain) = &self.chain else {
                return Ok(ServerCertVerified::assertion());
            };
            match chain.verify_server_cert(end_entity, intermediates, server_name, ocsp, now) {
                Err(rustls::Error::InvalidCertificate(
                    CertificateError::NotValidForName
                    | CertificateError::NotValidForNameContext { .. },
                )) => Ok(ServerCertVerified::assertion()),
                other => other,
            }
        }

        fn verify_tls12_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            let algorithms = &self.provider.signature_verification_algorithms;
            verify_tls12_signature(message, cert, dss, algorithms)
        }

        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            let algorithms = &self.provider.signature_verification_algorithms;
            verify_tls13_signature(message, cert, dss, algorithms)
        }

        fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
            self.provider
                .signature_verification_algorithms
                .supported_schemes()
        }
    }
}
