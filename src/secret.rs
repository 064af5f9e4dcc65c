//! Secrets by type: tokens and passwords that zeroize on drop and never print.
//!
//! Token files are refused, not merely warned about, when others may read or change them
//! (ssh does the same for private keys): a warning in a log nobody reads protects nothing.
//! Group *read* is allowed so a root-owned `0640` file with the service's group works;
//! group *write* is not, since it lets the group replace the token.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

/// Shortest token accepted from a token file, in characters.
pub const MIN_TOKEN_LEN: usize = 16;
/// Largest token file read; anything bigger is the wrong file.
pub const MAX_TOKEN_FILE_BYTES: u64 = 4096;
/// Permission bits a token file must not have: group write and anything for others.
#[cfg(unix)]
const FORBIDDEN_MODE_BITS: u32 = 0o027;

/// A secret string, zeroized on drop, printed as `<redacted>`.
#[derive(Clone)]
pub struct Secret(Zeroizing<String>);

impl Secret {
    /// Wrap a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(Zeroizing::new(value.into()))
    }

    /// The secret itself, for the one place that must use it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Compare with `other` in time independent of the contents (only the length leaks).
    pub fn constant_time_eq(&self, other: &[u8]) -> bool {
        self.0.as_bytes().ct_eq(other).into()
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Secret::new(value)
    }
}

// Equality in constant time, so comparing configurations cannot leak a password by timing.
impl PartialEq for Secret {
    fn eq(&self, other: &Self) -> bool {
        self.constant_time_eq(other.expose().as_bytes())
    }
}

impl Eq for Secret {}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Why a secret file could not be read or written. Never carries the secret itself.
///
/// An I/O cause is `source()`, not part of `Display`, so `{:#}` chains show it once.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// The file could not be opened or read.
    #[error("token file {}: cannot read", path.display())]
    Read {
        /// The token file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// Others (or the group, for writing) may access the file.
    #[error(
        "token file {}: mode {mode:04o} lets others read or change it; run `chmod 600` (or 640 for a service group)",
        path.display()
    )]
    Permissions {
        /// The token file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// Larger than [`MAX_TOKEN_FILE_BYTES`].
    #[error("token file {}: larger than {max} bytes, not a token", path.display())]
    TooLarge {
        /// The token file.
        path: PathBuf,
        /// The limit.
        max: u64,
    },
    /// Not UTF-8 text.
    #[error("token file {}: not UTF-8 text", path.display())]
    NotUtf8 {
        /// The token file.
        path: PathBuf,
    },
    /// Empty after trimming the trailing newline.
    #[error("token file {}: is empty", path.display())]
    Empty {
        /// The token file.
        path: PathBuf,
    },
    /// Shorter than [`MIN_TOKEN_LEN`].
    #[error("token file {}: token has {len} characters, at least {min} are required", path.display())]
    TooShort {
        /// The token file.
        path: PathBuf,
        /// Characters found.
        len: usize,
        /// Characters required.
        min: usize,
    },
    /// Whitespace or control characters inside the token (cannot travel in a Bearer header).
    #[error("token file {}: token contains whitespace or control characters", path.display())]
    BadCharacters {
        /// The token file.
        path: PathBuf,
    },
    /// The file could not be written.
    #[error("secret file {}: cannot write", path.display())]
    Write {
        /// The file being written.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
}

/// Read a bearer token from a file (trailing newline trimmed), refusing weak or exposed ones.
pub fn read_token_file(path: &Path) -> Result<Secret, SecretError> {
    let read_err = |source| SecretError::Read {
        path: path.to_owned(),
        source,
    };
    let file = File::open(path).map_err(read_err)?;
    let meta = file.metadata().map_err(read_err)?;
    check_permissions(path, &meta)?;
    if meta.len() > MAX_TOKEN_FILE_BYTES {
        return Err(SecretError::TooLarge {
            path: path.to_owned(),
            max: MAX_TOKEN_FILE_BYTES,
        });
    }
    // Read into zeroized memory sized up front, so no reallocation leaves a copy behind.
    let mut bytes = Zeroizing::new(Vec::with_capacity(MAX_TOKEN_FILE_BYTES as usize + 1));
    file.take(MAX_TOKEN_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(read_err)?;
    if bytes.len() as u64 > MAX_TOKEN_FILE_BYTES {
        // The file grew between stat and read.
        return Err(SecretError::TooLarge {
            path: path.to_owned(),
            max: MAX_TOKEN_FILE_BYTES,
        });
    }
    let text = std::str::from_utf8(&bytes).map_err(|_| SecretError::NotUtf8 {
        path: path.to_owned(),
    })?;
    let token = text.trim_end_matches(['\n', '\r']);
    if token.is_empty() {
        return Err(SecretError::Empty {
            path: path.to_owned(),
        });
    }
    if token.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(SecretError::BadCharacters {
            path: path.to_owned(),
        });
    }
    let len = token.chars().count();
    if len < MIN_TOKEN_LEN {
        return Err(SecretError::TooShort {
            path: path.to_owned(),
            len,
            min: MIN_TOKEN_LEN,
        });
    }
    Ok(Secret::new(token))
}

#[cfg(unix)]
fn check_permissions(path: &Path, meta: &fs::Metadata) -> Result<(), SecretError> {
    use std::os::unix::fs::PermissionsExt;
    let mode = meta.permissions().mode() & 0o7777;
    if mode & FORBIDDEN_MODE_BITS != 0 {
        return Err(SecretError::Permissions {
            path: path.to_owned(),
            mode,
        });
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_permissions(_path: &Path, _meta: &fs::Metadata) -> Result<(), SecretError> {
    Ok(())
}

/// Write `contents` to `path` with mode 0600, atomically (temp file + rename; replaces `path`).
///
/// Readers see either the old file or the complete new one, never a partial token, and the
/// file is never readable by others, not even for an instant (the mode is set at creation).
pub fn write_secret_file(path: &Path, contents: &[u8]) -> Result<(), SecretError> {
    let write_err = |source| SecretError::Write {
        path: path.to_owned(),
        source,
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| write_err(io::Error::new(io::ErrorKind::InvalidInput, "no file name")))?;
    let tmp = dir.join(format!(
        ".{}.{}.{}.tmp",
        name.to_string_lossy(),
        std::process::id(),
        next_tmp_suffix()
    ));
    let result = write_new(&tmp, contents).and_then(|()| fs::rename(&tmp, path));
    if let Err(e) = result {
        // Best effort: the temp file is ours and useless now; the write error is what matters.
        let _ = fs::remove_file(&tmp);
        return Err(write_err(e));
    }
    // Make the rename itself durable.
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(write_err)
}

/// Create `path` (which must not exist) with mode 0600 and write `contents` durably.
fn write_new(path: &Path, contents: &[u8]) -> io::Result<()> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(contents)?;
    file.sync_all()
}

/// A per-process counter so concurrent writers never pick the same temp name.
fn next_tmp_suffix() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    COUNTER.fetch_add(1, Ordering::Relaxed)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "0123456789abcdef0123";

    fn write_mode(path: &Path, contents: &[u8], mode: u32) {
        fs::write(path, contents).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
        }
        #[cfg(not(unix))]
        let _ = mode;
    }

    #[test]
    fn secret_never_prints() {
        let s = Secret::new("hunter2-hunter2-hunter2");
        assert_eq!(format!("{s}"), "<redacted>");
        assert_eq!(format!("{s:?}"), "<redacted>");
        assert_eq!(format!("{:?}", Some(s.clone())), "Some(<redacted>)");
        assert_eq!(s.expose(), "hunter2-hunter2-hunter2");
    }

    #[test]
    fn constant_time_eq_compares_content_and_length() {
        let s = Secret::new(TOKEN);
        assert!(s.constant_time_eq(TOKEN.as_bytes()));
        assert!(!s.constant_time_eq(b"0123456789abcdef0124"));
        assert!(!s.constant_time_eq(&TOKEN.as_bytes()[..19]));
        assert!(!s.constant_time_eq(b""));
        assert!(Secret::new("").constant_time_eq(b""));
    }

    #[test]
    fn reads_token_and_trims_trailing_newline() {
        let dir = tempfile::tempdir().unwrap();
        for contents in [
            TOKEN.to_owned(),
            format!("{TOKEN}\n"),
            format!("{TOKEN}\r\n"),
        ] {
            let path = dir.path().join("token");
            write_mode(&path, contents.as_bytes(), 0o600);
            assert_eq!(read_token_file(&path).unwrap().expose(), TOKEN);
        }
        // A service group may read it.
        let path = dir.path().join("group");
        write_mode(&path, TOKEN.as_bytes(), 0o640);
        assert!(read_token_file(&path).is_ok());
    }

    #[test]
    fn refuses_bad_tokens_without_echoing_them() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        let cases: [(&[u8], &str); 6] = [
            (b"", "is empty"),
            (b"\n", "is empty"),
            (
                b"short-secret-15",
                "token has 15 characters, at least 16 are required",
            ),
            (b"0123456789 abcdef0123", "whitespace or control characters"),
            (b" 0123456789abcdef0123", "whitespace or control characters"),
            (b"0123456789abcdef\xff\xfe", "not UTF-8 text"),
        ];
        for (contents, expected) in cases {
            write_mode(&path, contents, 0o600);
            let err = read_token_file(&path).unwrap_err().to_string();
            assert!(err.contains(expected), "{err}");
            assert!(err.contains(&path.display().to_string()), "{err}");
            assert!(
                !err.contains("secret-15") && !err.contains("456789"),
                "{err}"
            );
        }
        write_mode(&path, &[b'a'; 5000], 0o600);
        let err = read_token_file(&path).unwrap_err();
        assert!(
            matches!(err, SecretError::TooLarge { max: 4096, .. }),
            "{err}"
        );
    }

    #[test]
    fn missing_file_names_the_path() {
        let err = read_token_file(Path::new("/nonexistent/snakkaz/token")).unwrap_err();
        assert!(matches!(err, SecretError::Read { .. }));
        assert_eq!(
            err.to_string(),
            "token file /nonexistent/snakkaz/token: cannot read"
        );
    }

    #[cfg(unix)]
    #[test]
    fn refuses_files_others_can_read_or_change() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        for mode in [0o644, 0o604, 0o602, 0o660, 0o666] {
            write_mode(&path, TOKEN.as_bytes(), mode);
            let err = read_token_file(&path).unwrap_err();
            assert!(
                matches!(err, SecretError::Permissions { mode: m, .. } if m == mode),
                "{mode:o}: {err}"
            );
            assert!(err.to_string().contains("chmod 600"));
        }
    }

    #[test]
    fn write_secret_file_is_private_and_replaces_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("admin.token");
        write_secret_file(&path, TOKEN.as_bytes()).unwrap();
        assert_eq!(read_token_file(&path).unwrap().expose(), TOKEN);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        write_secret_file(&path, b"fedcba9876543210fedcba\n").unwrap();
        assert_eq!(
            read_token_file(&path).unwrap().expose(),
            "fedcba9876543210fedcba"
        );
        // No temp files left behind.
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["admin.token"]);
    }

    #[test]
    fn write_secret_file_reports_the_path() {
        let err =
            write_secret_file(Path::new("/nonexistent/snakkaz/admin.token"), b"x").unwrap_err();
        assert!(matches!(err, SecretError::Write { .. }));
        assert_eq!(
            err.to_string(),
            "secret file /nonexistent/snakkaz/admin.token: cannot write"
        );
    }
}
