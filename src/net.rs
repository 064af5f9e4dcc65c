//! Small pieces shared by the outbound connections (Electrum and Postgres): TLS trust
//! anchors and randomised retry delays.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rustls::RootCertStore;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

/// A CA file that could not be used as trust anchors.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{path}: {detail}")]
pub struct CaFileError {
    /// The file.
    pub path: PathBuf,
    /// What is wrong with it.
    pub detail: String,
}

/// Trust anchors: every certificate of the operator's PEM file, or the system's roots.
pub fn trust_anchors(ca_file: Option<&Path>) -> Result<RootCertStore, CaFileError> {
    let mut roots = RootCertStore::empty();
    let Some(path) = ca_file else {
        for cert in rustls_native_certs::load_native_certs().certs {
            // One unparsable system certificate must not disable all the others.
            let _skipped_if_unparsable = roots.add(cert);
        }
        return Ok(roots);
    };
    let err = |detail: String| CaFileError {
        path: path.to_owned(),
        detail,
    };
    let pem = std::fs::read(path).map_err(|e| err(e.to_string()))?;
    for cert in CertificateDer::pem_slice_iter(&pem) {
        roots
            .add(cert.map_err(|e| err(e.to_string()))?)
            .map_err(|e| err(e.to_string()))?;
    }
    if roots.is_empty() {
        return Err(err("no PEM certificate found".into()));
    }
    Ok(roots)
}

/// `d` scaled by a random factor in `[lo_permille, hi_permille]` / 1000, so that many
/// clients retrying after the same outage do not come back in step.
pub fn jitter(d: Duration, lo_permille: u64, hi_permille: u64) -> Duration {
    let mut b = [0u8; 4];
    let r = if getrandom::fill(&mut b).is_ok() {
        u64::from(u32::from_le_bytes(b))
    } else {
        u64::from(u32::MAX) / 2
    };
    let permille = lo_permille + r * (hi_permille - lo_permille) / u64::from(u32::MAX);
    Duration::from_millis(d.as_millis() as u64 * permille / 1000)
}
