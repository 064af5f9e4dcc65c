//! TOTP (RFC 6238: HMAC-SHA1, 6 digits, 30 s steps) confirming every broadcast: one step
//! of clock skew either way, and a code is never accepted twice (the last accepted step is
//! stored, and only later steps pass).

use totp_rs::{Algorithm, TOTP};
use zeroize::Zeroizing;

/// Seconds per time step.
pub const STEP_SECS: u64 = 30;
/// Digits of a code.
pub const DIGITS: usize = 6;
/// Bytes of a new secret (160 bits, RFC 4226's recommendation).
pub const SECRET_BYTES: usize = 20;
/// Issuer shown by authenticator apps.
pub const ISSUER: &str = "snakkaz-pay";

/// Why a code was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TotpError {
    /// Not six digits.
    #[error("the TOTP code must be {DIGITS} digits")]
    Malformed,
    /// No step within the skew window gives this code.
    #[error("wrong TOTP code; check the authenticator app and the appliance's clock")]
    Wrong,
    /// The code's step was already used (or an earlier one was used after it).
    #[error("this TOTP code was already used; wait for the next code")]
    Replayed,
}

fn totp(secret: &[u8]) -> TOTP {
    // Secret length is checked where the secret is read; codes for any length are defined.
    TOTP::new_unchecked(Algorithm::SHA1, DIGITS, 1, STEP_SECS, secret.to_vec())
}

/// The code of time step `step`.
pub fn code_at(secret: &[u8], step: u64) -> String {
    totp(secret).generate(step * STEP_SECS)
}

/// Checks `code` at unix time `now` against the last accepted step; returns the step it
/// matched, which the caller stores before acting.
pub fn verify(
    secret: &[u8],
    code: &str,
    now: u64,
    last_step: Option<u64>,
) -> Result<u64, TotpError> {
    let code = code.trim();
    if code.len() != DIGITS || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Err(TotpError::Malformed);
    }
    let current = now / STEP_SECS;
    let t = totp(secret);
    let matched = [current.saturating_sub(1), current, current + 1]
        .into_iter()
        .find(|&step| {
            let expected = Zeroizing::new(t.generate(step * STEP_SECS));
            subtle::ConstantTimeEq::ct_eq(expected.as_bytes(), code.as_bytes()).into()
        })
        .ok_or(TotpError::Wrong)?;
    if last_step.is_some_and(|last| matched <= last) {
        return Err(TotpError::Replayed);
    }
    Ok(matched)
}

/// Base32 (RFC 4648, no padding) of a secret, as authenticator apps take it.
pub fn encode_secret(secret: &[u8]) -> Zeroizing<String> {
    Zeroizing::new(
        totp_rs::Secret::Raw(secret.to_vec())
            .to_encoded()
            .to_string(),
    )
}

/// The secret from its base32 text.
pub fn decode_secret(text: &str) -> Option<Zeroizing<Vec<u8>>> {
    totp_rs::Secret::Encoded(text.trim().to_ascii_uppercase())
        .to_bytes()
        .ok()
        .filter(|b| b.len() >= 16)
        .map(Zeroizing::new)
}

/// The `otpauth://` URI an authenticator app scans.
pub fn otpauth_uri(secret_b32: &str, label: &str) -> Zeroizing<String> {
    let enc = |s: &str| -> String { form_urlencoded::byte_serialize(s.as_bytes()).collect() };
    Zeroizing::new(format!(
        "otpauth://totp/{}:{}?secret={secret_b32}&issuer={}&algorithm=SHA1&digits={DIGITS}&period={STEP_SECS}",
        enc(ISSUER),
        enc(label),
        enc(ISSUER)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 appendix B, SHA1 secret "12345678901234567890" (8-digit vectors; the
    /// 6-digit code is their last six digits).
    #[test]
    fn rfc_6238_vectors() {
        let secret = b"12345678901234567890";
        for (time, eight) in [
            (59u64, "94287082"),
            (1_111_111_109, "07081804"),
            (1_234_567_890, "89005924"),
            (2_000_000_000, "69279037"),
        ] {
            assert_eq!(code_at(secret, time / STEP_SECS), eight[2..], "t={time}");
        }
    }

    #[test]
    fn one_step_of_skew_either_way_and_no_more() {
        let s = b"12345678901234567890";
        let now = 1_000_000_020; // step 33_333_334
        let step = now / STEP_SECS;
        for d in [-1i64, 0, 1] {
            let st = (step as i64 + d) as u64;
            assert_eq!(verify(s, &code_at(s, st), now, None), Ok(st));
        }
        for d in [-2i64, 2] {
            let st = (step as i64 + d) as u64;
            let code = code_at(s, st);
            // A code two steps away is wrong unless it happens to equal a nearby code.
            if ![step - 1, step, step + 1]
                .iter()
                .any(|&n| code_at(s, n) == code)
            {
                assert_eq!(verify(s, &code, now, None), Err(TotpError::Wrong));
            }
        }
    }

    #[test]
    fn a_used_step_or_an_earlier_one_is_a_replay() {
        let s = b"12345678901234567890";
        let now = 1_000_000_020;
        let step = now / STEP_SECS;
        let code = code_at(s, step);
        assert_eq!(verify(s, &code, now, Some(step)), Err(TotpError::Replayed));
        assert_eq!(
            verify(s, &code, now, Some(step + 1)),
            Err(TotpError::Replayed)
        );
        assert_eq!(verify(s, &code, now, Some(step - 1)), Ok(step));
    }

    #[test]
    fn malformed_codes_are_refused_before_any_comparison() {
        let s = b"12345678901234567890";
        for bad in ["", "12345", "1234567", "12a456", "١٢٣٤٥٦"] {
            assert_eq!(verify(s, bad, 59, None), Err(TotpError::Malformed), "{bad}");
        }
    }

    #[test]
    fn secrets_round_trip_through_base32_and_the_uri_names_the_parameters() {
        let s = [7u8; SECRET_BYTES];
        let b32 = encode_secret(&s);
        assert_eq!(b32.len(), 32);
        assert_eq!(decode_secret(&b32).unwrap().as_slice(), &s);
        assert_eq!(decode_secret(&b32.to_lowercase()).unwrap().as_slice(), &s);
        assert!(decode_secret("AAAA").is_none(), "too short a secret");
        let uri = otpauth_uri(&b32, "box 1");
        assert!(uri.starts_with("otpauth://totp/snakkaz-pay:box+1?secret="));
        assert!(uri.contains("digits=6") && uri.contains("period=30"));
    }
}
