//! TLS material generated at test time: a CA, server and client certificates it signed, and an
//! unrelated "wrong" CA, as PEM strings, DER bytes and files.

use std::fs;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};

/// One certificate with its private key, in every form a test may want.
#[derive(Debug, Clone)]
pub struct CertKey {
    /// The certificate, PEM.
    pub cert_pem: String,
    /// The private key (PKCS#8), PEM.
    pub key_pem: String,
    /// The certificate, DER (for rustls without a PEM parser).
    pub cert_der: Vec<u8>,
    /// The private key, PKCS#8 DER.
    pub key_der: Vec<u8>,
    /// Where `cert_pem` was written.
    pub cert_path: PathBuf,
    /// Where `key_pem` was written.
    pub key_path: PathBuf,
}

/// A throwaway PKI for one test: everything signed by `ca` except `wrong_ca` and `wrong_client`.
///
/// Files live in a temporary directory owned by this value and removed when it drops (or in the
/// directory given to [`TlsMaterial::generate_in`], which the caller owns).
#[derive(Debug)]
pub struct TlsMaterial {
    /// The test CA (self-signed). Trust this to accept `server` and `client`.
    pub ca: CertKey,
    /// Server certificate for DNS `localhost`, IP `127.0.0.1` and IP `::1`, signed by `ca`.
    pub server: CertKey,
    /// Client certificate (CN `tern-test-client`, client-auth usage), signed by `ca`.
    pub client: CertKey,
    /// A second self-signed CA that signed nothing the broker uses: trusting it instead of
    /// `ca` must make the server certificate fail verification.
    pub wrong_ca: CertKey,
    /// A client certificate signed by `wrong_ca`: a broker requiring certificates from `ca`
    /// must reject it.
    pub wrong_client: CertKey,
    dir: PathBuf,
    _temp: Option<tempfile::TempDir>,
}

impl TlsMaterial {
    /// Generates fresh material in a new temporary directory.
    pub fn generate() -> Self {
        let temp = tempfile::Builder::new()
            .prefix("tern-tls-")
            .tempdir()
            .unwrap_or_else(|e| panic!("cannot create a temporary directory for TLS files: {e}"));
        let mut material = Self::generate_in(temp.path());
        material._temp = Some(temp);
        material
    }

    /// Generates fresh material, writing the files into `dir` (which must exist).
    ///
    /// File names: `ca.pem`/`ca.key`, `server.pem`/`server.key`, `client.pem`/`client.key`,
    /// `wrong-ca.pem`/`wrong-ca.key`, `wrong-client.pem`/`wrong-client.key`.
    pub fn generate_in(dir: &Path) -> Self {
        let (ca, ca_params, ca_key) = make_ca(dir, "ca", "tern test CA");
        let (wrong_ca, wrong_params, wrong_key) = make_ca(dir, "wrong-ca", "tern wrong CA");
        let ca_issuer = Issuer::new(ca_params, ca_key);
        let wrong_issuer = Issuer::new(wrong_params, wrong_key);

        let server = make_leaf(
            dir,
            "server",
            "localhost",
            &["localhost", "127.0.0.1", "::1"],
            ExtendedKeyUsagePurpose::ServerAuth,
            &ca_issuer,
        );
        let client = make_leaf(
            dir,
            "client",
            "tern-test-client",
            &[],
            ExtendedKeyUsagePurpose::ClientAuth,
            &ca_issuer,
        );
        let wrong_client = make_leaf(
            dir,
            "wrong-client",
            "tern-wrong-client",
            &[],
            ExtendedKeyUsagePurpose::ClientAuth,
            &wrong_issuer,
        );
        Self {
            ca,
            server,
            client,
            wrong_ca,
            wrong_client,
            dir: dir.to_path_buf(),
            _temp: None,
        }
    }

    /// The directory holding the files.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

fn write_pair(dir: &Path, name: &str, cert_pem: &str, key_pem: &str) -> (PathBuf, PathBuf) {
    let cert_path = dir.join(format!("{name}.pem"));
    let key_path = dir.join(format!("{name}.key"));
    fs::write(&cert_path, cert_pem)
        .unwrap_or_else(|e| panic!("cannot write {}: {e}", cert_path.display()));
    fs::write(&key_path, key_pem)
        .unwrap_or_else(|e| panic!("cannot write {}: {e}", key_path.display()));
    (cert_path, key_path)
}

fn dn(common_name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "tern tests");
    dn.push(DnType::CommonName, common_name);
    dn
}

fn new_key() -> KeyPair {
    KeyPair::generate().unwrap_or_else(|e| panic!("rcgen cannot generate a key pair: {e}"))
}

fn make_ca(dir: &Path, name: &str, common_name: &str) -> (CertKey, CertificateParams, KeyPair) {
    let key = new_key();
    let mut params = CertificateParams::new(Vec::<String>::new())
        .unwrap_or_else(|e| panic!("rcgen rejected empty CA names: {e}"));
    params.distinguished_name = dn(common_name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let cert = params
        .self_signed(&key)
        .unwrap_or_else(|e| panic!("rcgen cannot self-sign {name}: {e}"));
    let cert_pem = cert.pem();
    let key_pem = key.serialize_pem();
    let (cert_path, key_path) = write_pair(dir, name, &cert_pem, &key_pem);
    let ck = CertKey {
        cert_pem,
        key_pem,
        cert_der: cert.der().to_vec(),
        key_der: key.serialize_der(),
        cert_path,
        key_path,
    };
    (ck, params, key)
}

fn make_leaf(
    dir: &Path,
    name: &str,
    common_name: &str,
    sans: &[&str],
    usage: ExtendedKeyUsagePurpose,
    issuer: &Issuer<'_, KeyPair>,
) -> CertKey {
    let key = new_key();
    let sans: Vec<String> = sans.iter().map(|s| (*s).to_owned()).collect();
    let mut params = CertificateParams::new(sans)
        .unwrap_or_else(|e| panic!("rcgen rejected the names for {name}: {e}"));
    params.distinguished_name = dn(common_name);
    params.is_ca = IsCa::NoCa;
    // ECDSA keys sign; KeyEncipherment would be wrong for them.
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![usage];
    params.use_authority_key_identifier_extension = true;
    let cert = params
        .signed_by(&key, issuer)
        .unwrap_or_else(|e| panic!("rcgen cannot sign {name}: {e}"));
    let cert_pem = cert.pem();
    let key_pem = key.serialize_pem();
    let (cert_path, key_path) = write_pair(dir, name, &cert_pem, &key_pem);
    CertKey {
        cert_pem,
        key_pem,
        cert_der: cert.der().to_vec(),
        key_der: key.serialize_der(),
        cert_path,
        key_path,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn material_is_written_to_files() {
        let m = TlsMaterial::generate();
        for ck in [&m.ca, &m.server, &m.client, &m.wrong_ca, &m.wrong_client] {
            assert!(ck.cert_pem.starts_with("-----BEGIN CERTIFICATE-----"));
            assert!(ck.key_pem.contains("PRIVATE KEY-----"));
            assert_eq!(fs::read_to_string(&ck.cert_path).unwrap(), ck.cert_pem);
            assert_eq!(fs::read_to_string(&ck.key_path).unwrap(), ck.key_pem);
        }
        assert_ne!(m.ca.cert_pem, m.wrong_ca.cert_pem);
    }
}
