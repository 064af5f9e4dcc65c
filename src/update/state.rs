//! The last update's record and what became of it: written by `apply`, judged at every
//! later run from the running version and the boot entries. Pure.

use semver::Version;
use serde::{Deserialize, Serialize};

use super::slot::{Entry, Slot};

/// Where the record lives (on the data partition, readable by the daemon).
pub const RECORD: &str = "var/lib/snakkaz-pay-update/last-update.json";

/// An installed update, as `apply` recorded it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// The version that was running.
    pub from: Version,
    /// The version installed.
    pub to: Version,
    /// The slot it was written to.
    pub slot: Slot,
    /// When (RFC 3339).
    pub at: String,
}

/// What became of the last update.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    /// No update was ever installed on this box.
    None,
    /// Installed, not booted yet.
    Pending,
    /// Running, boot not assessed yet.
    OnTrial,
    /// Running and blessed.
    Good,
    /// It did not pass its boot assessment; the loader fell back.
    FailedFellBack {
        /// The version running instead.
        running: Version,
    },
}

impl Outcome {
    /// One line for people.
    pub fn describe(&self, rec: Option<&Record>) -> String {
        match (self, rec) {
            (Outcome::None, _) | (_, None) => "no update installed yet".into(),
            (Outcome::Pending, Some(r)) => {
                format!(
                    "{} installed on slot {}, starts at the next boot",
                    r.to, r.slot
                )
            }
            (Outcome::OnTrial, Some(r)) => {
                format!("{} running on trial (boot not assessed yet)", r.to)
            }
            (Outcome::Good, Some(r)) => format!("{} -> {} good ({})", r.from, r.to, r.at),
            (Outcome::FailedFellBack { running }, Some(r)) => format!(
                "FAILED: {} did not pass its boot checks; fell back to {running} ({})",
                r.to, r.at
            ),
        }
    }
}

/// Judges the last update from the running version and slot and the ESP's entries.
pub fn outcome(
    rec: Option<&Record>,
    running: &Version,
    running_slot: Slot,
    entries: &[Entry],
) -> Outcome {
    let Some(r) = rec else {
        return Outcome::None;
    };
    let entry = entries
        .iter()
        .find(|e| e.slot == r.slot && e.version == r.to);
    if running_slot == r.slot && *running == r.to {
        return match entry.and_then(|e| e.counter) {
            Some(_) => Outcome::OnTrial,
            None => Outcome::Good,
        };
    }
    match entry {
        // Still counting and never tried: the box has not rebooted yet.
        Some(e) if e.counter.is_some_and(|c| c.done == 0 && c.left > 0) => Outcome::Pending,
        _ => Outcome::FailedFellBack {
            running: running.clone(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::super::slot::parse_entry;
    use super::*;

    fn v(s: &str) -> Version {
        Version::parse(s).unwrap()
    }

    fn rec() -> Record {
        Record {
            from: v("0.1.0"),
            to: v("0.2.0"),
            slot: Slot::B,
            at: "2026-11-27T08:00:00Z".into(),
        }
    }

    fn entries(names: &[&str]) -> Vec<Entry> {
        names.iter().map(|n| parse_entry(n).unwrap()).collect()
    }

    #[test]
    fn follows_an_update_from_install_to_blessing() {
        let r = rec();
        let a = "snakkaz-pay-0.1.0-a.efi";
        assert_eq!(outcome(None, &v("0.1.0"), Slot::A, &[]), Outcome::None);
        let e = entries(&[a, "snakkaz-pay-0.2.0-b+3.efi"]);
        assert_eq!(
            outcome(Some(&r), &v("0.1.0"), Slot::A, &e),
            Outcome::Pending
        );
        let e = entries(&[a, "snakkaz-pay-0.2.0-b+2-1.efi"]);
        assert_eq!(
            outcome(Some(&r), &v("0.2.0"), Slot::B, &e),
            Outcome::OnTrial
        );
        let e = entries(&[a, "snakkaz-pay-0.2.0-b.efi"]);
        assert_eq!(outcome(Some(&r), &v("0.2.0"), Slot::B, &e), Outcome::Good);
    }

    #[test]
    fn a_fallback_is_a_failure() {
        let r = rec();
        let e = entries(&["snakkaz-pay-0.1.0-a.efi", "snakkaz-pay-0.2.0-b+0-3.efi"]);
        let o = outcome(Some(&r), &v("0.1.0"), Slot::A, &e);
        assert_eq!(
            o,
            Outcome::FailedFellBack {
                running: v("0.1.0")
            }
        );
        assert!(o.describe(Some(&r)).starts_with("FAILED: 0.2.0"));
        // Tried once, and the box is back on the old slot (a failed assessment that the
        // loader then skipped, or an operator's choice): not pending any more.
        let e = entries(&["snakkaz-pay-0.1.0-a.efi", "snakkaz-pay-0.2.0-b+2-1.efi"]);
        assert!(matches!(
            outcome(Some(&r), &v("0.1.0"), Slot::A, &e),
            Outcome::FailedFellBack { .. }
        ));
    }
}
