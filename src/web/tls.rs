//! HTTPS for the page and API: the certificate chain and key from one PEM file (the
//! operator's, or one `snakkaz-pay tls generate` made), and its SHA-256 fingerprint, which
//! the operator compares with what the browser shows (a self-signed certificate has no CA
//! to vouch for it, so the fingerprint is the proof).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;
use zeroize::Zeroizing;

/// Largest certificate file read.
const MAX_PEM_BYTES: u64 = 256 * 1024;

/// Why the HTTPS certificate could not be used.
#[derive(Debug, thiserror::Error)]
#[error("SNAKKAZ_PAY_TLS_CERT_FILE: {}: {detail}", path.display())]
pub struct TlsFileError {
    /// The PEM file.
    pub path: PathBuf,
    /// What is wrong, and what to do.
    pub detail: String,
}

/// A loaded certificate: the acceptor for the server and the fingerprint for people.
pub struct TlsServer {
    /// Accepts TLS connections with the certificate.
    pub acceptor: TlsAcceptor,
    /// SHA-256 of the end-entity certificate (`AB:CD:...`).
    pub fingerprint: String,
}

/// SHA-256 of a DER certificate as colon-separated upper-case hex (as `openssl x509
/// -fingerprint -sha256` and browsers show it).
pub fn fingerprint(der: &[u8]) -> String {
    use bdk_wallet::bitcoin::hashes::{Hash, sha256};
    let digest = sha256::Hash::hash(der);
    let bytes: &[u8] = digest.as_ref();
    bytes
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Reads the PEM file (certificate chain, then or before the private key).
pub fn load(path: &Path) -> Result<TlsServer, TlsFileError> {
    use std::io::Read as _;
    use std::os::unix::fs::PermissionsExt;
    let err = |detail: String| TlsFileError {
        path: path.to_owned(),
        detail,
    };
    let file = std::fs::File::open(path).map_err(|e| err(format!("cannot read: {e}")))?;
    let meta = file
        .metadata()
        .map_err(|e| err(format!("cannot read: {e}")))?;
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o027 != 0 {
        return Err(err(format!(
            "mode {mode:04o} lets others read or change its private key; run `chmod 600`"
        )));
    }
    let mut pem = Zeroizing::new(Vec::new());
    file.take(MAX_PEM_BYTES)
        .read_to_end(&mut pem)
        .map_err(|e| err(format!("cannot read: {e}")))?;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<_, _>>()
        .map_err(|e| err(format!("not a PEM certificate: {e}")))?;
    let Some(leaf) = certs.first() else {
        return Err(err(
            "no certificate in it; create one with `snakkaz-pay tls generate`".into(),
        ));
    };
    let fingerprint = fingerprint(leaf);
    let key = PrivateKeyDer::from_pem_slice(&pem)
        .map_err(|e| err(format!("no usable private key in it: {e}")))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| err(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| {
            err(format!(
                "certificate and key do not match or are unusable: {e}"
            ))
        })?;
    Ok(TlsServer {
        acceptor: TlsAcceptor::from(Arc::new(config)),
        fingerprint,
    })
}

/// A new self-signed certificate for `names` (host names or IP addresses), with its key,
/// as one PEM text, and its fingerprint.
pub fn generate(names: &[String]) -> Result<(Zeroizing<String>, String), String> {
    let key = rcgen::KeyPair::generate().map_err(|e| e.to_string())?;
    let mut params = rcgen::CertificateParams::new(names.to_vec()).map_err(|e| e.to_string())?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "snakkaz-pay");
    let cert = params.self_signed(&key).map_err(|e| e.to_string())?;
    let fp = fingerprint(cert.der());
    let pem = Zeroizing::new(format!("{}{}", cert.pem(), key.serialize_pem()));
    Ok((pem, fp))
}

/// A client configuration that trusts exactly the certificate with this fingerprint (the
/// CLI talking to its own daemon: it reads the certificate file, so it can pin it).
pub fn pinned_client_config(fingerprint: &str) -> rustls::ClientConfig {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .expect("ring supports the default protocol versions")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(Pinned {
            fingerprint: fingerprint.to_owned(),
            provider,
        }))
        .with_no_client_auth()
}

#[derive(Debug)]
struct Pinned {
    fingerprint: String,
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl rustls::client::danger::ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        if fingerprint(end_entity) == self.fingerprint {
            Ok(rustls::client::danger::ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::ApplicationVerificationFailure,
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_certificate_loads_with_the_same_fingerprint() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let (pem, fp) = generate(&["localhost".into(), "127.0.0.1".into()]).unwrap();
        assert_eq!(fp.len(), 32 * 3 - 1);
        let path = dir.path().join("https.pem");
        crate::secret::write_secret_file(&path, pem.as_bytes()).unwrap();
        assert_eq!(load(&path).unwrap().fingerprint, fp);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(load(&path).err().unwrap().detail.contains("chmod 600"));
    }

    #[test]
    fn fingerprints_are_sha256_in_colon_hex() {
        assert_eq!(
            fingerprint(b"abc"),
            "BA:78:16:BF:8F:01:CF:EA:41:41:40:DE:5D:AE:22:23:B0:03:61:A3:96:17:7A:9C:B4:10:FF:61:F2:00:15:AD"
        );
    }
}
