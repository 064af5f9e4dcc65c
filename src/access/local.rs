//! Local requests: files next to the database through which the CLI, run on the box as
//! root (or as the service user), asks the running daemon to lock down, unlock or take
//! new tokens. Only someone who can write the database's directory can make them, so
//! they prove local access, which the network API cannot.
//!
//! The CLI gives each file to the owner of the database (the daemon's user), because a
//! sandboxed daemon (systemd `PrivateUsers=`) sees root-owned files as owned by nobody.

use std::io;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use zeroize::Zeroizing;

use super::lockdown::{DEFAULT_REASON, clean_reason, lock_batch, unlock_batch};
use super::tokens::{LiveTokens, MAX_GRACE, Tokens};
use crate::secret::{MIN_TOKEN_LEN, Secret};
use crate::store::{Store, StoreError, WriteBatch};

/// Largest request file read.
const MAX_REQUEST_BYTES: u64 = 4096;

/// Which local request a file next to the database carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestKind {
    /// Lift the lock-down.
    Unlock,
    /// Lock down (for when the API is unreachable); the file holds the reason.
    Lockdown,
    /// Take new bearer tokens; the file (mode 0600) holds them.
    Tokens,
}

impl RequestKind {
    fn suffix(self) -> &'static str {
        match self {
            RequestKind::Unlock => "unlock-request",
            RequestKind::Lockdown => "lockdown-request",
            RequestKind::Tokens => "tokens-request",
        }
    }

    /// Mode bits the file must not have: secrets may be read by nobody else.
    fn forbidden_mode(self) -> u32 {
        match self {
            RequestKind::Tokens => 0o077,
            _ => 0o022,
        }
    }

    fn mode(self) -> u32 {
        match self {
            RequestKind::Tokens => 0o600,
            _ => 0o644,
        }
    }
}

/// The request file of `kind` for the database at `db_path` (`<db>.unlock-request`, ...).
pub fn request_path(db_path: &Path, kind: RequestKind) -> PathBuf {
    let mut name = db_path.as_os_str().to_owned();
    name.push(".");
    name.push(kind.suffix());
    PathBuf::from(name)
}

/// Why a request file was not honoured.
#[derive(Debug, thiserror::Error)]
pub enum RequestFileError {
    /// It could not be read, written or removed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The request file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// Someone other than root or the database's owner made it, or others may change it.
    #[error(
        "{}: ignored and removed: it must be a regular file owned by root or by the owner of the database, not writable (for tokens: not readable) by group or others",
        path.display()
    )]
    Untrusted {
        /// The request file.
        path: PathBuf,
    },
    /// Its contents are not a valid request.
    #[error("{}: {problem}", path.display())]
    Invalid {
        /// The request file.
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },
}

/// Reads a pending request of `kind`: `Ok(None)` when there is none, `Ok(Some(text))`
/// with the file's contents when it is trustworthy (the caller removes it with
/// [`finish_request`] once the request is durable, so the CLI waiting for the file to go
/// knows it took effect). An untrusted file is removed at once.
pub fn take_request(
    db_path: &Path,
    kind: RequestKind,
) -> Result<Option<Zeroizing<String>>, RequestFileError> {
    let path = request_path(db_path, kind);
    let io_err = |source| RequestFileError::Io {
        path: path.clone(),
        source,
    };
    let meta = match std::fs::symlink_metadata(&path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err(e)),
    };
    let db_owner = std::fs::metadata(db_path).map_err(io_err)?.uid();
    let trusted = meta.file_type().is_file()
        && (meta.uid() == 0 || meta.uid() == db_owner)
        && meta.mode() & kind.forbidden_mode() == 0
        && meta.len() <= MAX_REQUEST_BYTES;
    // A lock-down or unlock file is no secret and its existence is the request; an
    // unreadable one still counts. A tokens file must be read.
    if !trusted {
        std::fs::remove_file(&path).map_err(io_err)?;
        return Err(RequestFileError::Untrusted { path });
    }
    Ok(Some(Zeroizing::new(
        std::fs::read_to_string(&path).unwrap_or_default(),
    )))
}

/// Removes a request file that has been carried out (or refused for its contents).
pub fn finish_request(db_path: &Path, kind: RequestKind) -> Result<(), RequestFileError> {
    let path = request_path(db_path, kind);
    match std::fs::remove_file(&path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(RequestFileError::Io { path, source }),
    }
}

/// Writes a request file of `kind` for the daemon, owned by the database's owner;
/// atomically, so the daemon never sees half a file.
pub fn write_request(
    db_path: &Path,
    kind: RequestKind,
    text: &str,
) -> Result<PathBuf, RequestFileError> {
    use std::io::Write as _;
    let path = request_path(db_path, kind);
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".{}.tmp", std::process::id()));
    let tmp = PathBuf::from(tmp);
    let written = (|| {
        let owner = std::fs::metadata(db_path)?;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(kind.mode())
            .open(&tmp)?;
        // Root hands the file to the daemon's user; anyone else already is that user.
        std::os::unix::fs::fchown(&f, Some(owner.uid()), Some(owner.gid()))?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, &path)
    })();
    if let Err(source) = written {
        // Best effort: the temp file is ours and useless now.
        let _ = std::fs::remove_file(&tmp);
        return Err(RequestFileError::Io { path, source });
    }
    Ok(path)
}

/// The text of a tokens request: `api TOKEN`, `admin TOKEN`, `grace SECONDS` lines.
pub fn tokens_request(
    api: Option<&Secret>,
    admin: Option<&Secret>,
    grace: Duration,
) -> Zeroizing<String> {
    let mut t = Zeroizing::new(String::new());
    if let Some(a) = api {
        t.push_str(&format!("api {}\n", a.expose()));
    }
    if let Some(a) = admin {
        t.push_str(&format!("admin {}\n", a.expose()));
    }
    t.push_str(&format!("grace {}\n", grace.as_secs()));
    t
}

/// Parses a tokens request onto `current`: the new token set and the grace period.
pub fn parse_tokens_request(text: &str, current: &Tokens) -> Result<(Tokens, Duration), String> {
    let mut new = current.clone();
    let mut grace = Duration::ZERO;
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let (key, value) = line
            .trim()
            .split_once(' ')
            .ok_or("a line is not `key value`")?;
        let token = || -> Result<Secret, String> {
            if value.chars().count() < MIN_TOKEN_LEN
                || value.chars().any(|c| c.is_whitespace() || c.is_control())
            {
                return Err(format!(
                    "{key}: a token needs {MIN_TOKEN_LEN} or more printable characters"
                ));
            }
            Ok(Secret::new(value))
        };
        match key {
            "api" => new.api = Some(token()?),
            "admin" => new.admin = Some(token()?),
            "grace" => {
                let secs: u64 = value
                    .parse()
                    .map_err(|_| "grace: not a number of seconds")?;
                grace = Duration::from_secs(secs).min(MAX_GRACE);
            }
            _ => return Err(format!("unknown key {key:?}")),
        }
    }
    Ok((new, grace))
}

/// The daemon's periodic check for local requests.
pub async fn poll_requests(store: &Store, tokens: &LiveTokens) -> Result<(), StoreError> {
    for kind in [
        RequestKind::Lockdown,
        RequestKind::Unlock,
        RequestKind::Tokens,
    ] {
        let refused = |detail: String| WriteBatch {
            audit: vec![super::audit("local-request.refused", "local", detail)],
            ..Default::default()
        };
        let text = match take_request(store.path(), kind) {
            Ok(None) => continue,
            Ok(Some(t)) => t,
            Err(e) => {
                tracing::error!(error = %e, "local request refused");
                store.commit(refused(e.to_string())).await?;
                continue;
            }
        };
        let batch = match kind {
            RequestKind::Unlock => {
                tracing::warn!("lock-down lifted by a local request file");
                unlock_batch("local", "lifted by a request file on the box")
            }
            RequestKind::Lockdown => {
                let first = text.lines().next().unwrap_or("");
                let reason = clean_reason(Some(first)).unwrap_or_else(|_| DEFAULT_REASON.into());
                tracing::warn!(%reason, "locked down by a local request file");
                lock_batch(&reason, "local")
            }
            RequestKind::Tokens => match parse_tokens_request(&text, &tokens.current()) {
                Ok((new, grace)) => {
                    let r = tokens.replace(new, grace, Instant::now());
                    let detail = format!(
                        "new tokens from a request file on the box: api {}, admin {}, old tokens valid for {} s",
                        if r.api { "replaced" } else { "unchanged" },
                        if r.admin { "replaced" } else { "unchanged" },
                        grace.as_secs()
                    );
                    tracing::warn!(%detail, "tokens rotated");
                    WriteBatch {
                        audit: vec![super::audit("tokens.rotate", "local", detail)],
                        ..Default::default()
                    }
                }
                Err(problem) => {
                    let e = RequestFileError::Invalid {
                        path: request_path(store.path(), kind),
                        problem,
                    };
                    tracing::error!(error = %e, "tokens request refused; the tokens in force are unchanged");
                    refused(e.to_string())
                }
            },
        };
        // Durable first, then the file goes: a failed commit leaves it for the next tick.
        store.commit(batch).await?;
        if let Err(e) = finish_request(store.path(), kind) {
            tracing::error!(error = %e, "a carried-out local request could not be removed");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_files_sit_next_to_the_database() {
        let p = Path::new("/var/lib/snakkaz-pay/snakkaz-pay.redb");
        assert_eq!(
            request_path(p, RequestKind::Unlock),
            Path::new("/var/lib/snakkaz-pay/snakkaz-pay.redb.unlock-request")
        );
    }

    #[test]
    fn trusted_request_files_stay_until_carried_out_and_foreign_ones_are_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("x.redb");
        std::fs::write(&db, b"").unwrap();
        assert!(take_request(&db, RequestKind::Unlock).unwrap().is_none());
        write_request(&db, RequestKind::Lockdown, "stolen laptop").unwrap();
        assert_eq!(
            take_request(&db, RequestKind::Lockdown)
                .unwrap()
                .map(|t| t.trim().to_owned())
                .as_deref(),
            Some("stolen laptop")
        );
        // Until it is carried out the file stays (the CLI waits for it to go).
        assert!(take_request(&db, RequestKind::Lockdown).unwrap().is_some());
        finish_request(&db, RequestKind::Lockdown).unwrap();
        assert!(take_request(&db, RequestKind::Lockdown).unwrap().is_none());
        let p = write_request(&db, RequestKind::Unlock, "").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o666)).unwrap();
        assert!(matches!(
            take_request(&db, RequestKind::Unlock),
            Err(RequestFileError::Untrusted { .. })
        ));
        assert!(!p.exists(), "an untrusted request is removed");
    }

    #[test]
    fn a_tokens_request_must_be_private_and_well_formed() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("x.redb");
        std::fs::write(&db, b"").unwrap();
        let api = Secret::new("new-api-token-0123456789");
        let text = tokens_request(Some(&api), None, Duration::from_secs(30));
        let p = write_request(&db, RequestKind::Tokens, &text).unwrap();
        let mode = std::fs::metadata(&p).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let taken = take_request(&db, RequestKind::Tokens).unwrap().unwrap();
        finish_request(&db, RequestKind::Tokens).unwrap();
        let current = Tokens {
            api: Some(Secret::new("old-api-token-0123456789")),
            admin: Some(Secret::new("old-admin-token-0123456789")),
        };
        let (new, grace) = parse_tokens_request(&taken, &current).unwrap();
        assert_eq!(new.api, Some(api));
        assert_eq!(new.admin, current.admin);
        assert_eq!(grace, Duration::from_secs(30));
        assert!(parse_tokens_request("api short\n", &current).is_err());
        assert!(parse_tokens_request("root 0123456789abcdef0\n", &current).is_err());

        let p = write_request(&db, RequestKind::Tokens, &text).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o640)).unwrap();
        assert!(matches!(
            take_request(&db, RequestKind::Tokens),
            Err(RequestFileError::Untrusted { .. })
        ));
    }
}
