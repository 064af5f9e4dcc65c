//! The bundle's signature: minisign (Ed25519) over `SHA256SUMS`, checked against the
//! public key baked into the image. Pure: bytes in, verdict out.

use minisign_verify::{PublicKey, Signature};

/// Why a signature is not accepted.
#[derive(Debug, thiserror::Error)]
pub enum SignatureError {
    /// The public key file cannot be read as a minisign public key.
    #[error("the update public key is not a minisign public key: {0}")]
    Key(#[source] minisign_verify::Error),
    /// The signature file cannot be read as a minisign signature.
    #[error("SHA256SUMS.minisig is not a minisign signature ({0}); the bundle is damaged")]
    Malformed(#[source] minisign_verify::Error),
    /// Signed by another key.
    #[error(
        "SHA256SUMS was signed with another key than this appliance trusts; install only bundles built for this appliance"
    )]
    OtherKey,
    /// The signature does not match.
    #[error(
        "the signature of SHA256SUMS is not valid: the bundle was changed after it was signed; do not install it"
    )]
    Invalid(#[source] minisign_verify::Error),
}

/// Checks `sig` (a `.minisig` file's text) over `signed` with `public_key` (a
/// `minisign.pub` file's text, or its base64 line). Legacy (non-prehashed) signatures
/// are accepted too: `minisign -S` without `-H` on older versions makes them.
pub fn verify(public_key: &str, signed: &[u8], sig: &str) -> Result<(), SignatureError> {
    let key = match public_key
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .as_slice()
    {
        [one] => PublicKey::from_base64(one),
        _ => PublicKey::decode(public_key),
    }
    .map_err(SignatureError::Key)?;
    let sig = Signature::decode(sig).map_err(SignatureError::Malformed)?;
    key.verify(signed, &sig, true).map_err(|e| match e {
        minisign_verify::Error::UnexpectedKeyId => SignatureError::OtherKey,
        e => SignatureError::Invalid(e),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    // Made with `minisign -G -W` and `minisign -S -m` (the real tool) for this test.
    const PUBLIC: &str = include_str!("testdata/test.pub");
    const OTHER_PUBLIC: &str = include_str!("testdata/other.pub");
    const SIGNED: &[u8] = include_bytes!("testdata/SHA256SUMS");
    const SIG: &str = include_str!("testdata/SHA256SUMS.minisig");

    #[test]
    fn accepts_the_signed_file() {
        verify(PUBLIC, SIGNED, SIG).unwrap();
        let base64_line = PUBLIC.lines().nth(1).unwrap();
        verify(base64_line, SIGNED, SIG).unwrap();
    }

    #[test]
    fn refuses_a_changed_file_another_key_and_garbage() {
        let mut changed = SIGNED.to_vec();
        changed[0] ^= 1;
        assert!(matches!(
            verify(PUBLIC, &changed, SIG),
            Err(SignatureError::Invalid(_))
        ));
        assert!(matches!(
            verify(OTHER_PUBLIC, SIGNED, SIG),
            Err(SignatureError::OtherKey)
        ));
        assert!(matches!(
            verify(PUBLIC, SIGNED, "untrusted comment: x\nnot base64\n"),
            Err(SignatureError::Malformed(_))
        ));
        assert!(matches!(
            verify("nonsense", SIGNED, SIG),
            Err(SignatureError::Key(_))
        ));
    }
}
