//! Writing a verified bundle: the root image onto the inactive slot (hashed while
//! written, then read back and hashed again), and the slot's UKI onto the ESP under a
//! temporary name, renamed once complete. Every step re-checks against the signed
//! digests, so a bundle file changed after `verify` is caught.

use std::fs::{File, OpenOptions};
use std::io::{Read as _, Seek as _, SeekFrom, Write as _};
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

use super::bundle::CHUNK;
use super::sums::Digest;

/// Why writing the update failed.
#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    /// An I/O step failed.
    #[error("{what} {}: {source}", path.display())]
    Io {
        /// What was being done.
        what: &'static str,
        /// The file or device.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The image does not fit the slot.
    #[error(
        "the root image ({image} bytes) is larger than the slot {} ({slot} bytes); this bundle needs a newer disk layout: flash it instead", path.display()
    )]
    TooLarge {
        /// The slot device.
        path: PathBuf,
        /// Image size.
        image: u64,
        /// Slot size.
        slot: u64,
    },
    /// What was read from the source while writing is not what was signed.
    #[error(
        "{} changed while it was being written (its SHA-256 no longer matches SHA256SUMS); the slot is not used, nothing boots from it", path.display()
    )]
    SourceChanged {
        /// The bundle file.
        path: PathBuf,
    },
    /// What was read back from the target is not what was written.
    #[error(
        "reading {} back gave other data than was written: the disk may be failing; the update was not activated, the running system stays", path.display()
    )]
    ReadBack {
        /// The slot device or ESP file.
        path: PathBuf,
    },
}

fn io<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> InstallError + 'a {
    move |source| InstallError::Io {
        what,
        path: path.to_owned(),
        source,
    }
}

/// Copies `src` over the start of `dest` (a partition or file), hashing what is
/// written; syncs; then reads the same length back and hashes it again. Both must equal
/// `want`. Returns the bytes written.
pub fn write_verified(src: &Path, dest: &Path, want: &Digest) -> Result<u64, InstallError> {
    let mut input = File::open(src).map_err(io("opening", src))?;
    let len = input.metadata().map_err(io("reading", src))?.len();
    let mut out = OpenOptions::new()
        .write(true)
        .read(true)
        .open(dest)
        .map_err(io("opening", dest))?;
    // A block device's size is where its end is, not its metadata length.
    let capacity = out.seek(SeekFrom::End(0)).map_err(io("sizing", dest))?;
    if capacity < len && !is_regular(&out) {
        return Err(InstallError::TooLarge {
            path: dest.to_owned(),
            image: len,
            slot: capacity,
        });
    }
    out.seek(SeekFrom::Start(0)).map_err(io("seeking", dest))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; CHUNK];
    let mut written = 0u64;
    loop {
        let n = input.read(&mut buf).map_err(io("reading", src))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        out.write_all(&buf[..n]).map_err(io("writing", dest))?;
        written += n as u64;
    }
    out.sync_all().map_err(io("syncing", dest))?;
    if <[u8; 32]>::from(h.finalize()) != *want {
        return Err(InstallError::SourceChanged {
            path: src.to_owned(),
        });
    }
    drop(out);
    // Read back through a fresh handle, after the sync: what the next boot will see.
    let mut back = File::open(dest).map_err(io("opening", dest))?;
    let mut h = Sha256::new();
    let mut left = written;
    while left > 0 {
        let n = back
            .read(&mut buf[..CHUNK.min(left as usize)])
            .map_err(io("reading back", dest))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        left -= n as u64;
    }
    if left != 0 || <[u8; 32]>::from(h.finalize()) != *want {
        return Err(InstallError::ReadBack {
            path: dest.to_owned(),
        });
    }
    Ok(written)
}

fn is_regular(f: &File) -> bool {
    f.metadata().map(|m| m.is_file()).unwrap_or(false)
}

/// Installs `src` as `dir/name`: written and read back under `name.tmp`, then renamed,
/// so the loader sees either no new entry or a complete one.
pub fn install_file(src: &Path, dir: &Path, name: &str, want: &Digest) -> Result<(), InstallError> {
    let tmp = dir.join(format!("{name}.tmp"));
    let fin = dir.join(name);
    File::create(&tmp).map_err(io("creating", &tmp))?;
    write_verified(src, &tmp, want)?;
    std::fs::rename(&tmp, &fin).map_err(io("renaming to its final name", &tmp))?;
    sync_dir(dir)
}

/// Removes `dir/name` (an entry of the slot about to be overwritten).
pub fn remove_file(dir: &Path, name: &str) -> Result<(), InstallError> {
    let p = dir.join(name);
    match std::fs::remove_file(&p) {
        Ok(()) => sync_dir(dir),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io("removing", &p)(e)),
    }
}

/// Makes renames and removals in `dir` durable.
pub fn sync_dir(dir: &Path) -> Result<(), InstallError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io("syncing", dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(b: &[u8]) -> Digest {
        Sha256::digest(b).into()
    }

    #[test]
    fn writes_over_a_larger_target_and_reads_back() {
        let d = tempfile::tempdir().unwrap();
        let (src, dest) = (d.path().join("src"), d.path().join("dest"));
        std::fs::write(&src, b"new root").unwrap();
        std::fs::write(&dest, vec![0xAA; 64]).unwrap();
        assert_eq!(
            write_verified(&src, &dest, &digest(b"new root")).unwrap(),
            8
        );
        let got = std::fs::read(&dest).unwrap();
        assert_eq!(&got[..8], b"new root");
        assert_eq!(got.len(), 64, "the rest of the slot is left as it was");
    }

    #[test]
    fn a_source_that_is_not_the_signed_one_is_caught() {
        let d = tempfile::tempdir().unwrap();
        let (src, dest) = (d.path().join("src"), d.path().join("dest"));
        std::fs::write(&src, b"changed").unwrap();
        std::fs::write(&dest, b"").unwrap();
        assert!(matches!(
            write_verified(&src, &dest, &digest(b"signed")),
            Err(InstallError::SourceChanged { .. })
        ));
    }

    #[test]
    fn installs_under_a_temporary_name_then_renames() {
        let d = tempfile::tempdir().unwrap();
        let src = d.path().join("uki");
        std::fs::write(&src, b"uki").unwrap();
        let esp = d.path().join("esp");
        std::fs::create_dir(&esp).unwrap();
        install_file(&src, &esp, "x+3.efi", &digest(b"uki")).unwrap();
        assert_eq!(std::fs::read(esp.join("x+3.efi")).unwrap(), b"uki");
        assert!(!esp.join("x+3.efi.tmp").exists());
        remove_file(&esp, "x+3.efi").unwrap();
        remove_file(&esp, "x+3.efi").unwrap();
        assert!(!esp.join("x+3.efi").exists());
    }
}
