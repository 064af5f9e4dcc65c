//! Configuration errors: each displays as one line that names the key.
//!
//! An I/O cause is kept as `source()` and not repeated in `Display`: the CLI prints the
//! chain with `{:#}`, which would show it twice.

use std::fmt;
use std::path::PathBuf;

use super::descriptor::DescriptorProblem;

/// Where a configuration value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A command-line flag (e.g. `--descriptor` of `init`).
    Flag(&'static str),
    /// An environment variable.
    Env(&'static str),
    /// A key of the TOML file.
    File {
        /// The TOML key.
        key: String,
        /// The file.
        path: PathBuf,
    },
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Flag(name) | Origin::Env(name) => f.write_str(name),
            Origin::File { key, path } => write!(f, "{key} (in {})", path.display()),
        }
    }
}

/// Why the configuration was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The config file exists (or was asked for) but cannot be read.
    #[error("{}: cannot read the config file", path.display())]
    ReadFile {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The config file is not valid TOML. The toml error is kept as text: its own
    /// Display spans several lines and would break the one-line contract.
    #[error("{}: invalid TOML{}: {message}", path.display(), line.map(|l| format!(" at line {l}")).unwrap_or_default())]
    ParseFile {
        /// The file.
        path: PathBuf,
        /// 1-based line of the error, when known.
        line: Option<usize>,
        /// What the TOML parser said.
        message: String,
    },
    /// A key of the file that no setting has (a typo must not be silently ignored).
    #[error("{key} (in {}): unknown key{}", path.display(), suggestion.as_ref().map(|s| format!("; did you mean {s}?")).unwrap_or_default())]
    UnknownKey {
        /// The key as written.
        key: String,
        /// The file.
        path: PathBuf,
        /// The known key it probably meant.
        suggestion: Option<String>,
    },
    /// A secret written into the file, where backups and `cat` would expose it.
    #[error("{key} (in {}): secrets are not accepted in the config file; set {env} in the environment (or a systemd credential) and remove it from the file", path.display())]
    SecretInFile {
        /// The key as written.
        key: String,
        /// The file.
        path: PathBuf,
        /// The environment variable to use instead.
        env: &'static str,
    },
    /// A required setting is absent.
    #[error("{key}: required: {hint}")]
    Missing {
        /// The environment name of the setting.
        key: &'static str,
        /// What to put there.
        hint: &'static str,
    },
    /// A value that cannot be used.
    #[error("{origin}: {problem}")]
    Invalid {
        /// Where the value came from.
        origin: Origin,
        /// What is wrong, quoting the value (never for secrets or descriptors).
        problem: String,
    },
    /// A descriptor that cannot be used; the descriptor itself is never shown (it may hold a key).
    #[error("{origin}: the descriptor {problem}")]
    Descriptor {
        /// Where the descriptor came from.
        origin: Origin,
        /// What is wrong.
        problem: DescriptorProblem,
    },
    /// An environment variable of ours that is not UTF-8.
    #[error("{name}: value is not valid UTF-8")]
    NotUnicode {
        /// The environment name.
        name: String,
    },
}
