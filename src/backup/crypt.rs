//! age encryption of snapshots (files readable by the standard `age`/`rage` tools).

use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use age::secrecy::SecretString;

use crate::config::BackupConfig;

/// Why encryption could not be set up or run.
#[derive(Debug, thiserror::Error)]
pub enum CryptError {
    /// Neither recipients nor a passphrase file are configured.
    #[error(
        "SNAKKAZ_PAY_BACKUP_RECIPIENTS: not set; give the age public key(s) to encrypt backups to (`age-keygen` on another machine; keep the identity there), or SNAKKAZ_PAY_BACKUP_PASSPHRASE_FILE"
    )]
    NoRecipients,
    /// A recipient did not parse (the config check should have caught it).
    #[error("SNAKKAZ_PAY_BACKUP_RECIPIENTS: {0}")]
    BadRecipient(String),
    /// The passphrase file could not be read.
    #[error("SNAKKAZ_PAY_BACKUP_PASSPHRASE_FILE: {0}")]
    Passphrase(#[from] crate::secret::SecretError),
    /// The identity file could not be read or holds no usable identity.
    #[error(
        "identity file {path}: {detail} (give an age identity file with --identity or SNAKKAZ_PAY_BACKUP_IDENTITY_FILE)"
    )]
    Identity {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// No identity was given for decryption.
    #[error(
        "no key to decrypt with: give the age identity file with --identity or SNAKKAZ_PAY_BACKUP_IDENTITY_FILE (or set SNAKKAZ_PAY_BACKUP_PASSPHRASE_FILE for passphrase backups)"
    )]
    NoIdentity,
    /// Reading or writing failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was done.
        op: &'static str,
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// age refused to encrypt.
    #[error("age encryption failed: {0}")]
    Encrypt(String),
}

/// Why a backup could not be decrypted, in the operator's words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecryptProblem {
    /// Encrypted to recipients none of the given identities match.
    #[error(
        "encrypted to another key: none of the given identities can decrypt it (use the identity whose public key is in SNAKKAZ_PAY_BACKUP_RECIPIENTS when it was made)"
    )]
    OtherKey,
    /// The file ends early or its contents were altered.
    #[error("truncated or corrupt: the encrypted data is incomplete or altered ({0})")]
    Truncated(String),
    /// Not an age file at all.
    #[error("not an age-encrypted file ({0})")]
    NotAge(String),
    /// A passphrase backup without the passphrase, or the wrong one.
    #[error("wrong passphrase or not a passphrase backup ({0})")]
    Passphrase(String),
}

/// How new backups are encrypted.
pub enum Encryption {
    /// To age X25519 public keys.
    Recipients(Vec<age::x25519::Recipient>),
    /// With a passphrase (scrypt).
    Passphrase(SecretString),
}

impl Encryption {
    /// The manifest's name of the scheme.
    pub fn scheme(&self) -> &'static str {
        match self {
            Encryption::Recipients(_) => "age-x25519",
            Encryption::Passphrase(_) => "age-scrypt",
        }
    }

    /// From the configuration: recipients first, else the passphrase file.
    pub fn from_config(b: &BackupConfig) -> Result<Encryption, CryptError> {
        if !b.recipients.is_empty() {
            let r = b
                .recipients
                .iter()
                .map(|s| {
                    age::x25519::Recipient::from_str(s)
                        .map_err(|e| CryptError::BadRecipient(e.to_string()))
                })
                .collect::<Result<_, _>>()?;
            return Ok(Encryption::Recipients(r));
        }
        match &b.passphrase_file {
            Some(p) => Ok(Encryption::Passphrase(passphrase(p)?)),
            None => Err(CryptError::NoRecipients),
        }
    }
}

fn passphrase(path: &Path) -> Result<SecretString, CryptError> {
    let s = crate::secret::read_token_file(path)?;
    Ok(SecretString::from(s.expose().to_owned()))
}

/// Keys to decrypt with.
pub struct Identities(Vec<Box<dyn age::Identity + Send + Sync>>);

impl Identities {
    /// From an age identity file (`AGE-SECRET-KEY-…` lines).
    pub fn from_file(path: &Path) -> Result<Identities, CryptError> {
        let err = |detail: String| CryptError::Identity {
            path: path.to_owned(),
            detail,
        };
        let f = age::IdentityFile::from_file(path.to_string_lossy().into_owned())
            .map_err(|e| err(e.to_string()))?;
        let ids = f.into_identities().map_err(|e| err(e.to_string()))?;
        if ids.is_empty() {
            return Err(err("no identity in it".into()));
        }
        Ok(Identities(ids))
    }

    /// The configured way: `--identity`, else the identity file key, else the passphrase file.
    pub fn resolve(given: Option<&Path>, b: &BackupConfig) -> Result<Identities, CryptError> {
        if let Some(p) = given.or(b.identity_file.as_deref()) {
            return Identities::from_file(p);
        }
        if let Some(p) = &b.passphrase_file {
            return Ok(Identities(vec![Box::new(age::scrypt::Identity::new(
                passphrase(p)?,
            ))]));
        }
        Err(CryptError::NoIdentity)
    }
}

fn io(op: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> CryptError + use<> {
    let path = path.to_owned();
    move |source| CryptError::Io { op, path, source }
}

/// Encrypts `src` into the new file `dest` (owner-only), fsynced.
pub fn encrypt_file(src: &Path, dest: &Path, enc: &Encryption) -> Result<(), CryptError> {
    let encryptor = match enc {
        Encryption::Recipients(rs) => {
            age::Encryptor::with_recipients(rs.iter().map(|r| r as &dyn age::Recipient))
                .map_err(|e| CryptError::Encrypt(e.to_string()))?
        }
        Encryption::Passphrase(p) => age::Encryptor::with_user_passphrase(p.clone()),
    };
    let mut input = BufReader::new(File::open(src).map_err(io("open", src))?);
    let out = create_private(dest).map_err(io("create", dest))?;
    let mut w = encryptor
        .wrap_output(BufWriter::new(out))
        .map_err(io("write", dest))?;
    std::io::copy(&mut input, &mut w).map_err(io("encrypt into", dest))?;
    let buf = w.finish().map_err(io("finish", dest))?;
    let file = buf.into_inner().map_err(|e| CryptError::Io {
        op: "flush",
        path: dest.to_owned(),
        source: e.into_error(),
    })?;
    file.sync_all().map_err(io("fsync", dest))
}

/// Decrypts `src` into the new file `dest` (owner-only).
pub fn decrypt_file(src: &Path, dest: &Path, ids: &Identities) -> Result<(), DecryptOutcome> {
    let input =
        BufReader::new(File::open(src).map_err(|e| DecryptOutcome::Io(io("open", src)(e)))?);
    let d =
        age::Decryptor::new_buffered(input).map_err(|e| DecryptOutcome::Problem(classify(e)))?;
    let mut r = d
        .decrypt(ids.0.iter().map(|i| i.as_ref() as &dyn age::Identity))
        .map_err(|e| DecryptOutcome::Problem(classify(e)))?;
    let mut out = create_private(dest).map_err(|e| DecryptOutcome::Io(io("create", dest)(e)))?;
    // A truncated or altered payload fails here, when its last chunk does not authenticate.
    std::io::copy(&mut r, &mut out)
        .map_err(|e| DecryptOutcome::Problem(DecryptProblem::Truncated(e.to_string())))?;
    out.flush()
        .and_then(|()| out.sync_all())
        .map_err(|e| DecryptOutcome::Io(io("fsync", dest)(e)))
}

/// Decryption failed: a problem with the backup, or a local I/O error.
#[derive(Debug, thiserror::Error)]
pub enum DecryptOutcome {
    /// The backup (or the key) is the problem.
    #[error(transparent)]
    Problem(DecryptProblem),
    /// The local disk is.
    #[error(transparent)]
    Io(CryptError),
}

fn classify(e: age::DecryptError) -> DecryptProblem {
    use age::DecryptError as E;
    match e {
        E::NoMatchingKeys => DecryptProblem::OtherKey,
        E::InvalidHeader | E::UnknownFormat => DecryptProblem::NotAge(e.to_string()),
        E::KeyDecryptionFailed | E::ExcessiveWork { .. } => {
            DecryptProblem::Passphrase(e.to_string())
        }
        E::Io(ref io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
            DecryptProblem::Truncated(e.to_string())
        }
        other => DecryptProblem::Truncated(other.to_string()),
    }
}

/// Creates a new owner-only file; refuses an existing one.
pub(crate) fn create_private(path: &Path) -> std::io::Result<File> {
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
    o.open(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use age::secrecy::ExposeSecret;

    #[test]
    fn round_trip_and_named_failures() {
        let dir = tempfile::tempdir().unwrap();
        let plain = dir.path().join("plain");
        std::fs::write(&plain, vec![7u8; 200_000]).unwrap();
        let key = age::x25519::Identity::generate();
        let other = age::x25519::Identity::generate();
        let enc = Encryption::Recipients(vec![key.to_public()]);
        let sealed = dir.path().join("sealed.age");
        encrypt_file(&plain, &sealed, &enc).unwrap();

        let ids = |k: &age::x25519::Identity| {
            let f = dir.path().join(format!("id-{}", rand_suffix()));
            std::fs::write(&f, k.to_string().expose_secret()).unwrap();
            Identities::from_file(&f).unwrap()
        };
        let out = dir.path().join("out");
        decrypt_file(&sealed, &out, &ids(&key)).unwrap();
        assert_eq!(std::fs::read(&out).unwrap(), std::fs::read(&plain).unwrap());

        let r = decrypt_file(&sealed, &dir.path().join("o2"), &ids(&other));
        assert!(matches!(
            r,
            Err(DecryptOutcome::Problem(DecryptProblem::OtherKey))
        ));

        let cut = dir.path().join("cut.age");
        let bytes = std::fs::read(&sealed).unwrap();
        std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
        let r = decrypt_file(&cut, &dir.path().join("o3"), &ids(&key));
        assert!(
            matches!(
                r,
                Err(DecryptOutcome::Problem(DecryptProblem::Truncated(_)))
            ),
            "{r:?}"
        );

        let r = decrypt_file(&plain, &dir.path().join("o4"), &ids(&key));
        assert!(
            matches!(r, Err(DecryptOutcome::Problem(DecryptProblem::NotAge(_)))),
            "{r:?}"
        );
    }

    fn rand_suffix() -> String {
        let mut b = [0u8; 4];
        getrandom::fill(&mut b).unwrap();
        hex::encode(b)
    }
}
