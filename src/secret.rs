//! TEMP STUB (replaced by helper)
use std::path::Path;
pub struct Secret(zeroize::Zeroizing<String>);
impl std::fmt::Debug for Secret { fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { f.write_str("<redacted>") } }
impl Secret {
    pub fn new(s: String) -> Self { Secret(zeroize::Zeroizing::new(s)) }
    pub fn expose(&self) -> &str { &self.0 }
    pub fn constant_time_eq(&self, other: &[u8]) -> bool { use subtle::ConstantTimeEq; self.0.as_bytes().ct_eq(other).into() }
}
#[derive(Debug, thiserror::Error)]
#[error("token file {path}: {detail}")]
pub struct SecretError { path: String, detail: String }
pub fn read_token_file(path: &Path) -> Result<Secret, SecretError> {
    let s = std::fs::read_to_string(path).map_err(|e| SecretError { path: path.display().to_string(), detail: e.to_string() })?;
    Ok(Secret::new(s.trim().to_owned()))
}
pub fn write_secret_file(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::io::Write; use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)?;
    f.write_all(contents)
}
