//! Reading and checking an update bundle (a directory): signature over `SHA256SUMS`,
//! then every listed file hashed, before anything on the box is written.
//!
//! A bundle holds `SHA256SUMS`, `SHA256SUMS.minisig`, `VERSION`, `root.img` (the root
//! file system) and one UKI per slot, `snakkaz-pay-a.efi` and `snakkaz-pay-b.efi` (each
//! names its own root slot on its command line, which is part of what is signed).

use std::io::Read as _;
use std::path::{Path, PathBuf};

use semver::Version;
use sha2::{Digest as _, Sha256};

use super::signature::{self, SignatureError};
use super::slot::Slot;
use super::sums::{self, Digest, Sums, SumsError};
use super::version;

/// The signed list of files.
pub const SUMS: &str = "SHA256SUMS";
/// Its detached minisign signature.
pub const SIGNATURE: &str = "SHA256SUMS.minisig";
/// The version the bundle installs (one line).
pub const VERSION: &str = "VERSION";
/// The root file system image written to the inactive slot.
pub const ROOT: &str = "root.img";
/// Largest `SHA256SUMS`, `.minisig` or `VERSION` read.
const MAX_SMALL_FILE: u64 = 64 * 1024;
/// Read and write size for the large files.
pub const CHUNK: usize = 4 * 1024 * 1024;

/// Why a bundle is refused. Nothing on the box has been written when one is returned.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    /// A file of the bundle cannot be read.
    #[error("{}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A small file is larger than any real one.
    #[error("{}: larger than {MAX_SMALL_FILE} bytes; not an update bundle", path.display())]
    TooLarge {
        /// The file.
        path: PathBuf,
    },
    /// The signature check failed.
    #[error(transparent)]
    Signature(#[from] SignatureError),
    /// `SHA256SUMS` cannot be parsed.
    #[error(transparent)]
    Sums(#[from] SumsError),
    /// A file the bundle needs is not listed in `SHA256SUMS`.
    #[error("SHA256SUMS does not list {name}: not a complete snakkaz-pay update bundle")]
    Unlisted {
        /// The missing name.
        name: String,
    },
    /// A file does not have its listed digest.
    #[error(
        "{name} does not match SHA256SUMS (it was changed or damaged after signing); download the bundle again, do not install it"
    )]
    Mismatch {
        /// The file name.
        name: String,
    },
    /// `VERSION` is not a version.
    #[error("VERSION: {text:?} is not a version like 1.2.3 without build metadata ({detail})")]
    Version {
        /// What it holds.
        text: String,
        /// The parser's complaint.
        detail: String,
    },
}

/// A bundle whose signature and hashes were checked.
#[derive(Debug, Clone)]
pub struct Verified {
    /// The bundle directory.
    pub dir: PathBuf,
    /// The version it installs.
    pub version: Version,
    /// Size of `root.img`.
    pub root_bytes: u64,
    /// The signed digests.
    pub sums: Sums,
    /// The signature's trusted comment (who built it, when).
    pub signed_comment: String,
}

impl Verified {
    /// The signed digest of `name` (every name used was checked to be listed).
    pub fn digest(&self, name: &str) -> Digest {
        *self.sums.get(name).expect("checked in verify")
    }
}

/// SHA-256 of a whole file, read in large chunks.
pub fn hash_file(path: &Path) -> Result<(Digest, u64), std::io::Error> {
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; CHUNK];
    let mut total = 0u64;
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        total += n as u64;
    }
    Ok((h.finalize().into(), total))
}

fn read_small(path: &Path) -> Result<Vec<u8>, BundleError> {
    let read = |source| BundleError::Read {
        path: path.to_owned(),
        source,
    };
    let f = std::fs::File::open(path).map_err(read)?;
    let mut bytes = Vec::new();
    f.take(MAX_SMALL_FILE + 1)
        .read_to_end(&mut bytes)
        .map_err(read)?;
    if bytes.len() as u64 > MAX_SMALL_FILE {
        return Err(BundleError::TooLarge {
            path: path.to_owned(),
        });
    }
    Ok(bytes)
}

/// Checks the bundle in `dir` against `public_key` (minisign public key text): the
/// signature, the list and `VERSION` (cheap; `hash_files` then reads the large files).
/// Reads only; `root_bytes` is 0 until `hash_files`.
pub fn verify_signed(dir: &Path, public_key: &str) -> Result<Verified, BundleError> {
    let signed = read_small(&dir.join(SUMS))?;
    let sig = read_small(&dir.join(SIGNATURE))?;
    let sig = String::from_utf8_lossy(&sig);
    signature::verify(public_key, &signed, &sig)?;
    let signed_comment = minisign_verify::Signature::decode(&sig)
        .map(|s| s.trusted_comment().to_owned())
        .unwrap_or_default();
    // Signed bytes are trusted from here on; a name that is not UTF-8 is still refused.
    let sums = sums::parse(&String::from_utf8_lossy(&signed))?;
    for name in [VERSION, ROOT, &Slot::A.bundle_uki(), &Slot::B.bundle_uki()] {
        if sums.get(name).is_none() {
            return Err(BundleError::Unlisted { name: name.into() });
        }
    }
    let text = String::from_utf8_lossy(&read_small(&dir.join(VERSION))?).into_owned();
    let version = match version::parse(&text) {
        Ok(v) if v.build.is_empty() => v,
        Ok(_) => {
            return Err(BundleError::Version {
                text,
                detail: "build metadata (+…) cannot be part of a boot entry name".into(),
            });
        }
        Err(e) => {
            return Err(BundleError::Version {
                text,
                detail: e.to_string(),
            });
        }
    };
    // VERSION was hashed above, but read again here: refuse if it changed in between.
    if Sha256::digest(text.as_bytes()).as_slice() != sums.get(VERSION).expect("listed") {
        return Err(BundleError::Mismatch {
            name: VERSION.into(),
        });
    }
    Ok(Verified {
        dir: dir.to_owned(),
        version,
        root_bytes: 0,
        sums,
        signed_comment,
    })
}

/// Hashes every listed file of a signed bundle and compares with the signed digests.
pub fn hash_files(v: &mut Verified) -> Result<(), BundleError> {
    for (name, want) in v.sums.iter() {
        let path = v.dir.join(name);
        let (got, len) = hash_file(&path).map_err(|source| BundleError::Read {
            path: path.clone(),
            source,
        })?;
        if &got != want {
            return Err(BundleError::Mismatch { name: name.into() });
        }
        if name == ROOT {
            v.root_bytes = len;
        }
    }
    Ok(())
}
