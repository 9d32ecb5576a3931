//! TLS settings ([`TlsOptions`]) and their translation into a rustls client configuration.

use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// Which certificate authorities verify the broker.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Roots {
    /// The operating system's root store. The default.
    #[default]
    Native,
    /// These PEM certificates only (the seed's `ca_cert`).
    Pem(String),
}

/// TLS options, mirroring the seed's `secure` table: `ca_cert`, `client_cert`, `client_key`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
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
    /// rustls refused the configuration (e.g. the key does not match the certificate).
    #[error("TLS configuration rejected: {0}")]
    Rustls(String),
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
        let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
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
