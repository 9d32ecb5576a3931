//! Just enough X.509 DER reading to explain certificate problems in words: the version and
//! the subject's distinguished name. Verification is rustls's business, not this module's.

/// One DER element: its tag, its contents, and what follows it.
fn element(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        (len, &rest[n..])
    };
    (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
}

/// The `TBSCertificate` contents.
fn tbs(der: &[u8]) -> Option<&[u8]> {
    let (0x30, cert, _) = element(der)? else {
        return None;
    };
    let (0x30, tbs, _) = element(cert)? else {
        return None;
    };
    Some(tbs)
}

/// The certificate's X.509 version (1, 2 or 3); `None` when it cannot be read.
pub(crate) fn version(der: &[u8]) -> Option<u8> {
    let (tag, content, _) = element(tbs(der)?)?;
    if tag != 0xa0 {
        // The version field is absent: version 1 (its DEFAULT).
        return Some(1);
    }
    let (0x02, v, _) = element(content)? else {
        return None;
    };
    match v {
        [n @ 0..=2] => Some(n + 1),
        _ => None,
    }
}

/// The subject as `CN=host, O=org`; `None` when it cannot be read.
pub(crate) fn subject(der: &[u8]) -> Option<String> {
    let mut rest = tbs(der)?;
    let (tag, _, after) = element(rest)?;
    if tag == 0xa0 {
        rest = after;
    }
    // serialNumber, signature, issuer, validity, then subject.
    for _ in 0..4 {
        rest = element(rest)?.2;
    }
    let (0x30, mut rdns, _) = element(rest)? else {
        return None;
    };
    let mut parts = Vec::new();
    while !rdns.is_empty() {
        let (_, set, next) = element(rdns)?;
        rdns = next;
        let mut attrs = set;
        while !attrs.is_empty() {
            let (_, attr, next) = element(attrs)?;
            attrs = next;
            let (0x06, oid, value) = element(attr)? else {
                return None;
            };
            let (_, value, _) = element(value)?;
            let name = match oid {
                [0x55, 0x04, 0x03] => "CN",
                [0x55, 0x04, 0x06] => "C",
                [0x55, 0x04, 0x07] => "L",
                [0x55, 0x04, 0x08] => "ST",
                [0x55, 0x04, 0x0a] => "O",
                [0x55, 0x04, 0x0b] => "OU",
                _ => continue,
            };
            parts.push(format!("{name}={}", String::from_utf8_lossy(value)));
        }
    }
    Some(if parts.is_empty() {
        "(empty)".to_owned()
    } else {
        parts.join(", ")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rcgen_certificates_are_v3_with_their_subject() {
        let mut params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "broker.test");
        params
            .distinguished_name
            .push(rcgen::DnType::OrganizationName, "tern");
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        assert_eq!(version(cert.der()), Some(3));
        let s = subject(cert.der()).unwrap();
        assert!(s.contains("CN=broker.test") && s.contains("O=tern"), "{s}");
    }

    #[test]
    fn garbage_is_not_a_certificate() {
        assert_eq!(version(b"\x30\x03\x02\x01"), None);
        assert_eq!(subject(&[]), None);
    }
}
