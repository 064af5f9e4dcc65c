//! Signed A/B updates of the appliance: check a bundle (`bundle`, `signature`, `sums`,
//! `version`), choose the slot and boot entries (`slot`), write and activate it
//! (`install`). `apply` runs the steps in their safe order; everything before the root
//! slot is touched only reads.

pub mod bundle;
pub mod install;
pub mod publish;
pub mod signature;
pub mod slot;
pub mod state;
pub mod sums;
pub mod version;

use std::path::{Path, PathBuf};

use semver::Version;
use serde::Serialize;

use bundle::BundleError;
use install::InstallError;
use slot::{Slot, SlotError};
use version::{Direction, VersionRefusal};

/// Where the public key that update bundles must be signed with is baked into the image.
pub const PUBLIC_KEY: &str = "usr/share/snakkaz-pay/update.pub";
/// The running image's os-release (its `IMAGE_VERSION`).
pub const OS_RELEASE: &str = "etc/os-release";
/// Where the ESP is mounted (its `EFI/Linux` holds the boot entries).
pub const ESP_ENTRIES: &str = "efi/EFI/Linux";
/// Where partitions are found by label.
pub const BY_PARTLABEL: &str = "dev/disk/by-partlabel";

/// The files of a system, under a root directory (`/` on the box; another directory to
/// update a mounted copy, and in tests).
#[derive(Debug, Clone)]
pub struct System {
    root: PathBuf,
}

impl System {
    /// The system under `root`.
    pub fn new(root: impl Into<PathBuf>) -> System {
        System { root: root.into() }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    /// The partition of `slot`.
    pub fn slot_device(&self, slot: Slot) -> PathBuf {
        self.path(BY_PARTLABEL).join(slot.partlabel())
    }

    /// The ESP's directory of boot entries.
    pub fn esp_entries(&self) -> PathBuf {
        self.path(ESP_ENTRIES)
    }
}

/// Why an update was not applied. Every variant but `Install` and `Snapshot` means
/// nothing was written.
#[derive(Debug, thiserror::Error)]
pub enum UpdateError {
    /// A file of the running system cannot be read.
    #[error("{}: {source}", path.display())]
    System {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The running image does not say its version.
    #[error(
        "{}: no IMAGE_VERSION; this system was not built by image/build with versions (flash the layout-2 image once)", path.display()
    )]
    NoRunningVersion {
        /// The os-release file.
        path: PathBuf,
    },
    /// The bundle was refused.
    #[error(transparent)]
    Bundle(#[from] BundleError),
    /// Its version was refused.
    #[error(transparent)]
    Version(#[from] VersionRefusal),
    /// The slots do not allow it now.
    #[error(transparent)]
    Slot(#[from] SlotError),
    /// This version already failed its boot checks on this box.
    #[error(
        "version {version} was installed before and failed its boot checks (the box fell back); pass --force to try it again"
    )]
    FailedBefore {
        /// The version.
        version: Version,
    },
    /// The update record cannot be written.
    #[error("writing the update record {}: {source}", path.display())]
    Record {
        /// The record file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Writing failed; the running system is untouched and still the default.
    #[error("{0}")]
    Install(#[from] InstallError),
    /// The pre-update database snapshot failed; the new slot is written but not
    /// activated.
    #[error(
        "taking the pre-update snapshot of the database failed: {0:#}; the update was not activated"
    )]
    Snapshot(anyhow::Error),
}

/// What `apply` did (or, with `dry_run`, would do).
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The running version.
    pub from: Version,
    /// The bundle's version.
    pub to: Version,
    /// Upgrade, reinstall or downgrade.
    pub direction: Direction,
    /// The running slot.
    pub running_slot: Slot,
    /// The slot written.
    pub target_slot: Slot,
    /// Bytes written to the slot.
    pub root_bytes: u64,
    /// Boot entries of the target slot removed.
    pub removed_entries: Vec<String>,
    /// The new boot entry (with its boot counter).
    pub installed_entry: String,
    /// The database snapshot taken before activation, if any.
    pub snapshot: Option<PathBuf>,
    /// The signature's trusted comment.
    pub signed_comment: String,
}

/// `IMAGE_VERSION` from os-release text.
pub fn image_version(os_release: &str) -> Option<String> {
    os_release.lines().find_map(|l| {
        let v = l.trim().strip_prefix("IMAGE_VERSION=")?;
        Some(v.trim_matches(['"', '\'']).to_owned())
    })
}

fn read(path: PathBuf) -> Result<String, UpdateError> {
    std::fs::read_to_string(&path).map_err(|source| UpdateError::System { path, source })
}

/// The running version and slot of `sys` (`cmdline` is the kernel command line).
pub fn running(sys: &System, cmdline: &str) -> Result<(Version, Slot), UpdateError> {
    let os = sys.path(OS_RELEASE);
    let text = read(os.clone())?;
    let v = image_version(&text)
        .and_then(|v| version::parse(&v).ok())
        .ok_or(UpdateError::NoRunningVersion { path: os })?;
    Ok((v, slot::running_slot(cmdline)?))
}

/// Checks the bundle in `dir` and, unless `dry_run`, installs it on the inactive slot:
/// entries of that slot removed, root image written and read back, `snapshot` run (the
/// database), the new UKI installed with its boot counter. The caller reboots.
pub fn apply(
    sys: &System,
    cmdline: &str,
    dir: &Path,
    force: bool,
    dry_run: bool,
    snapshot: impl FnOnce() -> anyhow::Result<Option<PathBuf>>,
) -> Result<Report, UpdateError> {
    let (from, running_slot) = running(sys, cmdline)?;
    let key = read(sys.path(PUBLIC_KEY))?;
    // Cheap refusals first (signature, version), then every file hashed.
    let mut verified = bundle::verify_signed(dir, &key)?;
    let direction = version::check(&from, &verified.version, force)?;
    let esp = sys.esp_entries();
    let entries = read_entries(&esp)?;
    let plan = slot::plan(&entries, running_slot, &verified.version)?;
    let last = read_record(sys)?;
    if let Some(r) = &last
        && r.to == verified.version
        && !force
        && matches!(
            state::outcome(Some(r), &from, running_slot, &entries),
            state::Outcome::FailedFellBack { .. }
        )
    {
        return Err(UpdateError::FailedBefore {
            version: r.to.clone(),
        });
    }
    bundle::hash_files(&mut verified)?;
    let mut report = Report {
        from,
        to: verified.version.clone(),
        direction,
        running_slot,
        target_slot: plan.target,
        root_bytes: verified.root_bytes,
        removed_entries: plan.remove.clone(),
        installed_entry: plan.install.clone(),
        snapshot: None,
        signed_comment: verified.signed_comment.clone(),
    };
    if dry_run {
        return Ok(report);
    }
    // From here on the inactive slot is written: first nothing may boot it any more.
    for name in &plan.remove {
        install::remove_file(&esp, name)?;
    }
    install::write_verified(
        &dir.join(bundle::ROOT),
        &sys.slot_device(plan.target),
        &verified.digest(bundle::ROOT),
    )?;
    report.snapshot = snapshot().map_err(UpdateError::Snapshot)?;
    let uki = plan.target.bundle_uki();
    install::install_file(&dir.join(&uki), &esp, &plan.install, &verified.digest(&uki))?;
    write_record(
        sys,
        &state::Record {
            from: report.from.clone(),
            to: report.to.clone(),
            slot: plan.target,
            at: crate::backup::manifest::rfc3339(crate::backup::manifest::now_ms()),
        },
    )?;
    Ok(report)
}

/// The running version, slot, boot entries and the last update's outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Status {
    /// The running version.
    pub version: Version,
    /// The running slot.
    pub slot: Slot,
    /// Our boot entries on the ESP.
    pub entries: Vec<slot::Entry>,
    /// The last update installed, if any.
    pub last_update: Option<state::Record>,
    /// What became of it.
    pub last_update_outcome: state::Outcome,
    /// The same in one line.
    pub summary: String,
}

/// Reads the update status of `sys`.
pub fn status(sys: &System, cmdline: &str) -> Result<Status, UpdateError> {
    let (version, slot) = running(sys, cmdline)?;
    let entries = read_entries(&sys.esp_entries())?;
    let last_update = read_record(sys)?;
    let last_update_outcome = state::outcome(last_update.as_ref(), &version, slot, &entries);
    let summary = last_update_outcome.describe(last_update.as_ref());
    Ok(Status {
        version,
        slot,
        entries,
        last_update,
        last_update_outcome,
        summary,
    })
}

fn read_record(sys: &System) -> Result<Option<state::Record>, UpdateError> {
    let path = sys.path(state::RECORD);
    match std::fs::read(&path) {
        // A damaged record is not worth refusing an update over: it is rewritten below.
        Ok(bytes) => Ok(serde_json::from_slice(&bytes).ok()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(UpdateError::System { path, source }),
    }
}

fn write_record(sys: &System, rec: &state::Record) -> Result<(), UpdateError> {
    write_json(&sys.path(state::RECORD), rec, None)
}

/// Writes `value` as JSON to `path`, complete or not at all (a synced temporary file
/// renamed, its directory created and synced); `mode` sets its permissions (unix).
fn write_json(path: &Path, value: &impl Serialize, mode: Option<u32>) -> Result<(), UpdateError> {
    let err = |source| UpdateError::Record {
        path: path.to_owned(),
        source,
    };
    let dir = path.parent().expect("a file under a directory");
    std::fs::create_dir_all(dir).map_err(err)?;
    let tmp = path.with_extension("json.tmp");
    let bytes = serde_json::to_vec_pretty(value).expect("plain data serialises");
    std::fs::write(&tmp, bytes).map_err(err)?;
    #[cfg(unix)]
    if let Some(mode) = mode {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(mode)).map_err(err)?;
    }
    #[cfg(not(unix))]
    let _ = mode;
    std::fs::File::open(&tmp)
        .and_then(|f| f.sync_all())
        .map_err(err)?;
    std::fs::rename(&tmp, path).map_err(err)?;
    install::sync_dir(dir)?;
    Ok(())
}

/// Our boot entries on the ESP; leftovers of an interrupted install (`*.tmp`) removed.
fn read_entries(esp: &Path) -> Result<Vec<slot::Entry>, UpdateError> {
    let err = |source| UpdateError::System {
        path: esp.to_owned(),
        source,
    };
    let mut entries = Vec::new();
    for e in std::fs::read_dir(esp).map_err(err)? {
        let name = e.map_err(err)?.file_name().to_string_lossy().into_owned();
        if let Some(entry) = slot::parse_entry(&name) {
            entries.push(entry);
        } else if name.starts_with("snakkaz-pay-") && name.ends_with(".efi.tmp") {
            install::remove_file(esp, &name)?;
        }
    }
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_image_version() {
        let os = "NAME=\"Debian GNU/Linux\"\nIMAGE_ID=snakkaz-pay\nIMAGE_VERSION=\"0.2.0\"\n";
        assert_eq!(image_version(os).as_deref(), Some("0.2.0"));
        assert_eq!(image_version("NAME=x\n"), None);
    }
}
