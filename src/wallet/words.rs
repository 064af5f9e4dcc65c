//! BDK's wallet terms in the operator's words, for log lines.

use std::collections::BTreeMap;

use bdk_wallet::KeychainKind;

/// `receive` for the external keychain, `change` for the internal one.
pub fn keychain(k: KeychainKind) -> &'static str {
    match k {
        KeychainKind::External => "receive",
        KeychainKind::Internal => "change",
    }
}

/// Last used index per keychain: `receive 4, change 1`, or `none`.
pub fn last_used(indices: &BTreeMap<KeychainKind, u32>) -> String {
    if indices.is_empty() {
        return "none".into();
    }
    indices
        .iter()
        .map(|(k, i)| format!("{} {i}", keychain(*k)))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keychains_read_as_receive_and_change() {
        let mut m = BTreeMap::new();
        assert_eq!(last_used(&m), "none");
        m.insert(KeychainKind::External, 4);
        m.insert(KeychainKind::Internal, 1);
        assert_eq!(last_used(&m), "receive 4, change 1");
    }
}
