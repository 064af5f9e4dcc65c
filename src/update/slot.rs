//! A/B root slots and the boot loader's entries for them: which slot runs, which one an
//! update writes, and what the ESP holds before and after. Pure; the ESP is read and
//! written in `install`.
//!
//! Each unified kernel image (UKI) names its own root slot on its command line and is
//! installed on the ESP as `EFI/Linux/snakkaz-pay-<version>-<slot>+<tries>.efi`;
//! systemd-boot counts boot attempts down in the name and systemd-bless-boot drops the
//! counter once the boot was assessed good (`snakkaz-pay-<version>-<slot>.efi`).

use semver::Version;
use serde::{Deserialize, Serialize};

/// Boot attempts a new version gets before the loader falls back.
pub const BOOT_TRIES: u32 = 3;

/// A root slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Slot {
    /// Partition `snakkaz-root-a`.
    A,
    /// Partition `snakkaz-root-b`.
    B,
}

impl Slot {
    /// The slot an update writes while this one runs.
    pub fn other(self) -> Slot {
        match self {
            Slot::A => Slot::B,
            Slot::B => Slot::A,
        }
    }

    /// `a` or `b`.
    pub fn letter(self) -> &'static str {
        match self {
            Slot::A => "a",
            Slot::B => "b",
        }
    }

    /// The GPT partition label.
    pub fn partlabel(self) -> String {
        format!("snakkaz-root-{}", self.letter())
    }

    /// The bundle's UKI for this slot (its command line names this slot's root).
    pub fn bundle_uki(self) -> String {
        format!("snakkaz-pay-{}.efi", self.letter())
    }
}

impl std::fmt::Display for Slot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.letter())
    }
}

/// Why the running slot or the ESP does not allow an update now.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SlotError {
    /// The kernel command line names no A/B root slot.
    #[error(
        "the running system was not booted from an A/B root slot (kernel command line: {cmdline:?}); this box has the one-root layout: flash the layout-2 image once (see the image README's Updating section)"
    )]
    NoSlot {
        /// `/proc/cmdline`.
        cmdline: String,
    },
    /// The running version has not been assessed yet.
    #[error(
        "the running system ({entry}) is still on trial: its boot has not been assessed good yet; wait until the boot completes (or reboot) before installing another update"
    )]
    NotBlessed {
        /// The running slot's entry on the ESP.
        entry: String,
    },
}

/// The running slot, from the kernel command line's `root=PARTLABEL=snakkaz-root-X`.
pub fn running_slot(cmdline: &str) -> Result<Slot, SlotError> {
    let mut found = None;
    for arg in cmdline.split_whitespace() {
        if let Some(label) = arg.strip_prefix("root=PARTLABEL=") {
            found = match label {
                "snakkaz-root-a" => Some(Slot::A),
                "snakkaz-root-b" => Some(Slot::B),
                _ => None,
            };
        }
    }
    found.ok_or_else(|| SlotError::NoSlot {
        cmdline: cmdline.trim().to_owned(),
    })
}

/// systemd-boot's boot counter in an entry's name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counter {
    /// Tries left.
    pub left: u32,
    /// Tries made.
    pub done: u32,
}

/// One of our UKIs on the ESP.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// The file name in `EFI/Linux`.
    pub name: String,
    /// The version it boots.
    pub version: Version,
    /// The root slot it boots.
    pub slot: Slot,
    /// Its boot counter; `None` once blessed.
    pub counter: Option<Counter>,
}

impl Entry {
    /// Whether systemd-boot has given up on it (no tries left).
    pub fn is_bad(&self) -> bool {
        matches!(self.counter, Some(Counter { left: 0, .. }))
    }
}

/// The file name of a new entry, with all its tries left.
pub fn entry_name(version: &Version, slot: Slot) -> String {
    format!("snakkaz-pay-{version}-{slot}+{BOOT_TRIES}.efi")
}

/// Reads one of our entry names; `None` for any other file.
pub fn parse_entry(name: &str) -> Option<Entry> {
    let stem = name.strip_prefix("snakkaz-pay-")?.strip_suffix(".efi")?;
    let (stem, counter) = match stem.rsplit_once('+') {
        Some((s, c)) => {
            let (left, done) = match c.split_once('-') {
                Some((l, d)) => (l.parse().ok()?, d.parse().ok()?),
                None => (c.parse().ok()?, 0),
            };
            (s, Some(Counter { left, done }))
        }
        None => (stem, None),
    };
    let (version, slot) = stem.rsplit_once('-')?;
    let slot = match slot {
        "a" => Slot::A,
        "b" => Slot::B,
        _ => return None,
    };
    Some(Entry {
        name: name.to_owned(),
        version: Version::parse(version).ok()?,
        slot,
        counter,
    })
}

/// What installing a new version does on the ESP.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Plan {
    /// The slot written (the one not running).
    pub target: Slot,
    /// Entries booting the target slot, removed before it is overwritten (so the loader
    /// never starts a half-written root).
    pub remove: Vec<String>,
    /// The new entry's file name.
    pub install: String,
}

/// Plans an update to `version` while `running` runs, given our entries on the ESP. The
/// running slot's entries are kept (the fallback until the new version is blessed); an
/// update is refused while the running entry itself is still on trial.
pub fn plan(entries: &[Entry], running: Slot, version: &Version) -> Result<Plan, SlotError> {
    if let Some(trial) = entries
        .iter()
        .find(|e| e.slot == running && e.counter.is_some() && !e.is_bad())
    {
        return Err(SlotError::NotBlessed {
            entry: trial.name.clone(),
        });
    }
    let target = running.other();
    Ok(Plan {
        target,
        remove: entries
            .iter()
            .filter(|e| e.slot == target)
            .map(|e| e.name.clone())
            .collect(),
        install: entry_name(version, target),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Version {
        Version::parse(s).unwrap()
    }

    #[test]
    fn finds_the_running_slot() {
        let cl = "root=PARTLABEL=snakkaz-root-b ro console=ttyS0";
        assert_eq!(running_slot(cl), Ok(Slot::B));
        assert_eq!(running_slot(cl).unwrap().other(), Slot::A);
        assert!(matches!(
            running_slot("root=PARTLABEL=snakkaz-root ro"),
            Err(SlotError::NoSlot { .. })
        ));
        assert_eq!(Slot::A.partlabel(), "snakkaz-root-a");
        assert_eq!(Slot::B.bundle_uki(), "snakkaz-pay-b.efi");
    }

    #[test]
    fn reads_entry_names_with_and_without_counters() {
        let e = parse_entry("snakkaz-pay-0.2.0-rc.1-b+2-1.efi").unwrap();
        assert_eq!(e.version, v("0.2.0-rc.1"));
        assert_eq!(e.slot, Slot::B);
        assert_eq!(e.counter, Some(Counter { left: 2, done: 1 }));
        let e = parse_entry("snakkaz-pay-0.1.0-a.efi").unwrap();
        assert_eq!((e.slot, e.counter), (Slot::A, None));
        assert!(parse_entry("snakkaz-pay-0.1.0-a+0-3.efi").unwrap().is_bad());
        assert_eq!(
            parse_entry(&entry_name(&v("1.0.0"), Slot::A))
                .unwrap()
                .counter,
            Some(Counter { left: 3, done: 0 })
        );
        for other in [
            "BOOTX64.EFI",
            "snakkaz-pay-0.1.0-c.efi",
            "snakkaz-pay-x-a.efi",
            "snakkaz-pay-0.1.0-a.efi.tmp",
        ] {
            assert_eq!(parse_entry(other), None, "{other}");
        }
    }

    #[test]
    fn plans_the_other_slot_and_keeps_the_running_one() {
        let entries: Vec<Entry> = [
            "snakkaz-pay-0.1.0-a.efi",
            "snakkaz-pay-0.0.9-b.efi",
            "snakkaz-pay-0.1.5-b+0-3.efi",
        ]
        .iter()
        .map(|n| parse_entry(n).unwrap())
        .collect();
        let p = plan(&entries, Slot::A, &v("0.2.0")).unwrap();
        assert_eq!(p.target, Slot::B);
        assert_eq!(
            p.remove,
            ["snakkaz-pay-0.0.9-b.efi", "snakkaz-pay-0.1.5-b+0-3.efi"]
        );
        assert_eq!(p.install, "snakkaz-pay-0.2.0-b+3.efi");
    }

    #[test]
    fn refuses_while_the_running_entry_is_on_trial() {
        let entries = [parse_entry("snakkaz-pay-0.2.0-b+2-1.efi").unwrap()];
        assert!(matches!(
            plan(&entries, Slot::B, &v("0.3.0")),
            Err(SlotError::NotBlessed { .. })
        ));
        // A bad entry of the running slot is history, not a trial.
        let entries = [
            parse_entry("snakkaz-pay-0.2.0-b+0-3.efi").unwrap(),
            parse_entry("snakkaz-pay-0.1.0-a.efi").unwrap(),
        ];
        assert_eq!(
            plan(&entries, Slot::B, &v("0.3.0")).unwrap().target,
            Slot::A
        );
    }
}
