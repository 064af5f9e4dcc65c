//! Which way an update goes: the bundle's version against the running one.

use semver::Version;

/// Why an update is refused by its version.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VersionRefusal {
    /// The bundle is older than the running system.
    #[error(
        "the bundle holds version {candidate}, older than the running {running}; a downgrade needs --force (and may need the database restored: see the README's Updating section)"
    )]
    Downgrade {
        /// The running version.
        running: Version,
        /// The bundle's version.
        candidate: Version,
    },
    /// The bundle is the running version.
    #[error("version {running} is already running; pass --force to install it again")]
    Same {
        /// The running version.
        running: Version,
    },
}

/// What an accepted update is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// A newer version.
    Upgrade,
    /// The same version again (forced).
    Reinstall,
    /// An older version (forced).
    Downgrade,
}

/// Parses a version as the image's `IMAGE_VERSION` and a bundle's `VERSION` write it
/// (semantic versioning, e.g. `0.2.0` or `0.2.0-rc.1`; surrounding white space ignored).
pub fn parse(text: &str) -> Result<Version, semver::Error> {
    Version::parse(text.trim())
}

/// Accepts an upgrade; a reinstall or a downgrade only when forced.
pub fn check(
    running: &Version,
    candidate: &Version,
    force: bool,
) -> Result<Direction, VersionRefusal> {
    // Precedence as semver defines it: build metadata does not order versions.
    match candidate.cmp_precedence(running) {
        std::cmp::Ordering::Greater => Ok(Direction::Upgrade),
        std::cmp::Ordering::Equal if force => Ok(Direction::Reinstall),
        std::cmp::Ordering::Equal => Err(VersionRefusal::Same {
            running: running.clone(),
        }),
        std::cmp::Ordering::Less if force => Ok(Direction::Downgrade),
        std::cmp::Ordering::Less => Err(VersionRefusal::Downgrade {
            running: running.clone(),
            candidate: candidate.clone(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Version {
        parse(s).unwrap()
    }

    #[test]
    fn upgrades_pass_and_downgrades_need_force() {
        assert_eq!(
            check(&v("0.1.0"), &v("0.2.0"), false),
            Ok(Direction::Upgrade)
        );
        assert_eq!(
            check(&v("0.9.0"), &v("0.10.0"), false),
            Ok(Direction::Upgrade)
        );
        assert_eq!(
            check(&v("0.2.0-rc.1"), &v("0.2.0"), false),
            Ok(Direction::Upgrade)
        );
        assert!(matches!(
            check(&v("0.2.0"), &v("0.1.9"), false),
            Err(VersionRefusal::Downgrade { .. })
        ));
        assert_eq!(
            check(&v("0.2.0"), &v("0.1.9"), true),
            Ok(Direction::Downgrade)
        );
        assert!(matches!(
            check(&v("0.2.0"), &v("0.2.0+other-build"), false),
            Err(VersionRefusal::Same { .. })
        ));
        assert_eq!(
            check(&v("0.2.0"), &v("0.2.0"), true),
            Ok(Direction::Reinstall)
        );
    }

    #[test]
    fn reads_version_files() {
        assert_eq!(v(" 1.2.3\n"), Version::new(1, 2, 3));
        assert!(parse("1.2").is_err());
        assert!(parse("v1.2.3").is_err());
    }
}
