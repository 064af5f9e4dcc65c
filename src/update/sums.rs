//! `SHA256SUMS` of an update bundle: the file the signature covers, naming every other
//! file of the bundle with its SHA-256. Pure parsing; the hashing is in `bundle`.

use std::collections::BTreeMap;

/// A SHA-256 digest.
pub type Digest = [u8; 32];

/// The parsed `SHA256SUMS`: file name → digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sums {
    entries: BTreeMap<String, Digest>,
}

/// Why `SHA256SUMS` cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SumsError {
    /// A line is not `<64 hex digits>  <file name>`.
    #[error("SHA256SUMS line {line}: {detail}; the bundle is damaged, download it again")]
    Line {
        /// 1-based line number.
        line: usize,
        /// What is wrong with it.
        detail: String,
    },
    /// A file is listed twice.
    #[error("SHA256SUMS lists {name} twice; the bundle is damaged, download it again")]
    Duplicate {
        /// The file name.
        name: String,
    },
    /// Nothing is listed.
    #[error("SHA256SUMS is empty; the bundle is damaged, download it again")]
    Empty,
}

impl Sums {
    /// The digest listed for `name`.
    pub fn get(&self, name: &str) -> Option<&Digest> {
        self.entries.get(name)
    }

    /// Every listed file, by name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Digest)> {
        self.entries.iter().map(|(n, d)| (n.as_str(), d))
    }
}

/// Parses the output of `sha256sum` (text `"  "` or binary `" *"` separator). File names
/// must be plain names in the bundle's directory: no path separators, no `..`.
pub fn parse(text: &str) -> Result<Sums, SumsError> {
    let mut entries = BTreeMap::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let err = |detail: &str| SumsError::Line {
            line,
            detail: detail.into(),
        };
        let l = raw.strip_suffix('\r').unwrap_or(raw);
        if l.trim().is_empty() {
            continue;
        }
        let (hex_part, rest) = l
            .split_at_checked(64)
            .ok_or_else(|| err("shorter than a SHA-256 and a name"))?;
        let mut digest = [0u8; 32];
        hex::decode_to_slice(hex_part, &mut digest)
            .map_err(|_| err("does not start with 64 hexadecimal digits"))?;
        let name = rest
            .strip_prefix("  ")
            .or_else(|| rest.strip_prefix(" *"))
            .ok_or_else(|| err("the digest is not followed by two spaces and a name"))?;
        if name.is_empty()
            || name == "."
            || name == ".."
            || name.contains(['/', '\\', '\0'])
            || name.chars().any(char::is_control)
        {
            return Err(err(&format!(
                "{name:?} is not a plain file name in the bundle"
            )));
        }
        if entries.insert(name.to_owned(), digest).is_some() {
            return Err(SumsError::Duplicate { name: name.into() });
        }
    }
    if entries.is_empty() {
        return Err(SumsError::Empty);
    }
    Ok(Sums { entries })
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
    const B: &str = "60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c752";

    #[test]
    fn reads_text_and_binary_lines() {
        let s = parse(&format!("{A}  root.img\n{B} *VERSION\r\n\n")).unwrap();
        assert_eq!(s.get("root.img").unwrap()[0], 0x9f);
        assert_eq!(s.get("VERSION").unwrap()[31], 0x52);
        assert_eq!(s.iter().count(), 2);
        assert!(s.get("other").is_none());
    }

    #[test]
    fn refuses_paths_and_damage() {
        for bad in [
            format!("{A}  ../etc/passwd"),
            format!("{A}  sub/root.img"),
            format!("{A}  .."),
            format!("{A} root.img"),
            format!("{}  root.img", &A[..63]),
            format!("{}x  root.img", &A[..63]),
            "not a line".to_string(),
        ] {
            assert!(
                matches!(parse(&bad), Err(SumsError::Line { line: 1, .. })),
                "{bad}"
            );
        }
        assert_eq!(
            parse(&format!("{A}  x\n{B}  x\n")),
            Err(SumsError::Duplicate { name: "x".into() })
        );
        assert_eq!(parse("\n\n"), Err(SumsError::Empty));
    }
}
