//! The two layers, TOML file < environment, and where each raw value came from.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::error::{ConfigError, Origin};
use super::{DEFAULT_CONFIG_PATH, keys};
use crate::secret::Secret;

/// A value as written, with its origin for error messages.
#[derive(Debug, Clone)]
pub(super) struct Raw {
    /// The value as text (TOML numbers and booleans are rendered back to text).
    pub text: String,
    /// Where it came from.
    pub origin: Origin,
}

impl Raw {
    /// An error about this value.
    pub fn invalid(&self, problem: String) -> ConfigError {
        ConfigError::Invalid {
            origin: self.origin.clone(),
            problem,
        }
    }
}

/// A list value: a TOML array of strings, or a comma-separated string.
pub(super) struct RawList {
    /// The entries, trimmed, empty ones dropped.
    pub items: Vec<String>,
    /// The whole value, for errors.
    pub raw: Raw,
}

/// The TOML file (if any) under the environment.
pub(super) struct Layers<'a> {
    file: Option<(PathBuf, toml::Table)>,
    env: &'a HashMap<String, String>,
    flags: &'a [Flag],
}

/// A value given by a command-line flag, above the environment.
#[derive(Debug, Clone)]
pub struct Flag {
    /// The key it sets (its environment name).
    pub key: &'static str,
    /// The flag as the operator typed it, for errors (e.g. `--descriptor`).
    pub flag: &'static str,
    /// The value.
    pub value: String,
}

impl<'a> Layers<'a> {
    /// Read and check the file (unknown and secret keys are errors) and take the environment.
    pub fn new(file: Option<&Path>, env: &'a HashMap<String, String>) -> Result<Self, ConfigError> {
        let default = Path::new(DEFAULT_CONFIG_PATH);
        let path = file.unwrap_or(default);
        let text = match std::fs::read_to_string(path) {
            Ok(text) => Some(text),
            // Running from the environment alone is supported: only the default may be absent.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && path == default => None,
            Err(source) => {
                return Err(ConfigError::ReadFile {
                    path: path.to_owned(),
                    source,
                });
            }
        };
        let file = match text {
            None => None,
            Some(text) => {
                let table = parse_table(path, &text)?;
                check_keys(path, &table)?;
                Some((path.to_owned(), table))
            }
        };
        Ok(Layers {
            file,
            env,
            flags: &[],
        })
    }

    /// Put command-line flags above the environment; errors then name the flag.
    pub fn with_flags(self, flags: &'a [Flag]) -> Self {
        Layers { flags, ..self }
    }

    /// The value of `env_name`: the environment if set and non-empty, else the file.
    pub fn get(&self, env_name: &'static str) -> Result<Option<Raw>, ConfigError> {
        if let Some(f) = self
            .flags
            .iter()
            .find(|f| f.key == env_name && !f.value.is_empty())
        {
            return Ok(Some(Raw {
                text: f.value.clone(),
                origin: Origin::Flag(f.flag),
            }));
        }
        if let Some(v) = self.env.get(env_name).filter(|v| !v.is_empty()) {
            return Ok(Some(Raw {
                text: v.clone(),
                origin: Origin::Env(env_name),
            }));
        }
        let Some((path, table)) = &self.file else {
            return Ok(None);
        };
        let key = keys::toml_key(env_name);
        let Some(value) = table.get(&key) else {
            return Ok(None);
        };
        let origin = Origin::File {
            key,
            path: path.clone(),
        };
        let text = match value {
            toml::Value::String(s) => s.clone(),
            toml::Value::Integer(i) => i.to_string(),
            toml::Value::Boolean(b) => b.to_string(),
            other => {
                return Err(ConfigError::Invalid {
                    origin,
                    problem: format!(
                        "expected a string, whole number or boolean, found a TOML {}",
                        other.type_str()
                    ),
                });
            }
        };
        Ok((!text.is_empty()).then_some(Raw { text, origin }))
    }

    /// [`Layers::get`] then `parse`.
    pub fn parse<T>(
        &self,
        env_name: &'static str,
        parse: impl FnOnce(&Raw) -> Result<T, ConfigError>,
    ) -> Result<Option<T>, ConfigError> {
        self.get(env_name)?.as_ref().map(parse).transpose()
    }

    /// A list: comma-separated in the environment, an array (or a comma-separated string) in TOML.
    pub fn get_list(&self, env_name: &'static str) -> Result<Option<RawList>, ConfigError> {
        let env_set = self.env.get(env_name).is_some_and(|v| !v.is_empty())
            || self.flags.iter().any(|f| f.key == env_name);
        if !env_set
            && let Some((path, table)) = &self.file
            && let Some(toml::Value::Array(items)) = table.get(&keys::toml_key(env_name))
        {
            let origin = Origin::File {
                key: keys::toml_key(env_name),
                path: path.clone(),
            };
            let mut out = Vec::with_capacity(items.len());
            for item in items {
                match item {
                    toml::Value::String(s) if !s.trim().is_empty() => out.push(s.trim().to_owned()),
                    toml::Value::String(_) => {}
                    other => {
                        return Err(ConfigError::Invalid {
                            origin,
                            problem: format!(
                                "expected an array of strings, found a TOML {} in it",
                                other.type_str()
                            ),
                        });
                    }
                }
            }
            let text = out.join(",");
            return Ok(Some(RawList {
                items: out,
                raw: Raw { text, origin },
            }));
        }
        Ok(self.get(env_name)?.map(|raw| RawList {
            items: raw
                .text
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
            raw,
        }))
    }

    /// A secret from the environment only (the file was checked not to hold it).
    pub fn env_secret(&self, env_name: &'static str) -> Option<Secret> {
        self.env
            .get(env_name)
            .filter(|v| !v.is_empty())
            .map(|v| Secret::new(v.as_str()))
    }
}

/// Parse TOML, keeping the error to one line (the toml crate's own Display spans several).
fn parse_table(path: &Path, text: &str) -> Result<toml::Table, ConfigError> {
    text.parse::<toml::Table>().map_err(|e| {
        let line = e
            .span()
            .map(|span| text[..span.start.min(text.len())].matches('\n').count() + 1);
        ConfigError::ParseFile {
            path: path.to_owned(),
            line,
            message: e.message().trim().replace('\n', " "),
        }
    })
}

/// Unknown keys are typos that must not be ignored; secrets do not belong in a file.
fn check_keys(path: &Path, table: &toml::Table) -> Result<(), ConfigError> {
    for key in table.keys() {
        if let Some(env) = keys::ENV_ONLY
            .iter()
            .find(|env| keys::toml_key(env) == *key)
        {
            return Err(ConfigError::SecretInFile {
                key: key.clone(),
                path: path.to_owned(),
                env,
            });
        }
        if !keys::ALL.iter().any(|env| keys::toml_key(env) == *key) {
            return Err(ConfigError::UnknownKey {
                key: key.clone(),
                path: path.to_owned(),
                suggestion: suggest(key),
            });
        }
    }
    Ok(())
}

/// The known TOML key closest to `key`, if close enough to be the intended one.
fn suggest(key: &str) -> Option<String> {
    // Someone pasting the environment name into the file.
    let lowered = keys::toml_key(&key.to_ascii_uppercase());
    let known = keys::ALL
        .iter()
        .filter(|env| !keys::ENV_ONLY.contains(env))
        .map(|env| keys::toml_key(env));
    known
        .map(|k| (edit_distance(&lowered, &k), k))
        .filter(|(d, _)| *d <= 2)
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

/// Levenshtein distance, small strings only.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur.push((prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}
