//! Descriptor checks: public keys only, ranged, on the configured network.
//!
//! Error messages never include the descriptor: an operator who pasted an xprv by mistake
//! must not find it in a log or on the status page.

use std::str::FromStr;

use bdk_wallet::bitcoin::{Network, NetworkKind, secp256k1::Secp256k1};
use bdk_wallet::miniscript::descriptor::Wildcard;
use bdk_wallet::miniscript::{Descriptor, DescriptorPublicKey, ForEachKey};

use super::error::ConfigError;
use super::source::Raw;
use crate::electrum_compat::slip132::{self, AccountKey, Slip132Error};

/// What is wrong with a descriptor.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DescriptorProblem {
    /// Holds a private key; the appliance is watch-only.
    #[error(
        "contains a private key; this appliance is watch-only: use the public form (xpub/tpub) and keep private keys off it"
    )]
    PrivateKey,
    /// Does not parse (the parser's message with long key-like strings removed).
    #[error("is not a valid output descriptor: {reason}")]
    Invalid {
        /// The parser's message, redacted.
        reason: String,
    },
    /// No `/*` step: it would give one address for every payment.
    #[error("is not ranged; end the key path with /* so every payment gets its own address")]
    NotRanged,
    /// A multipath descriptor other than `<0;1>`-style receive;change.
    #[error("has {count} derivation paths; only two (<0;1>: receive;change) are supported")]
    Multipath {
        /// Number of paths.
        count: usize,
    },
    /// A multipath receive descriptor and a separate change descriptor.
    #[error("is not allowed when SNAKKAZ_PAY_DESCRIPTOR already has a change path (<0;1>)")]
    ChangeTwice,
    /// The same descriptor for receive and change.
    #[error("is the same as SNAKKAZ_PAY_DESCRIPTOR; change needs its own keychain")]
    SameAsReceive,
    /// Keys of the other network kind.
    #[error("has {found} keys but the network is {network}; use {expected} keys")]
    WrongNetwork {
        /// The configured network.
        network: Network,
        /// "mainnet (xpub)" or "test-network (tpub)".
        found: &'static str,
        /// The kind the network needs.
        expected: &'static str,
    },
    /// A hardened step after an xpub: public keys cannot derive it.
    #[error(
        "has a hardened step (h or ') after the xpub/tpub, which public keys cannot derive; hardened steps belong in the key origin [fingerprint/84h/0h/0h]"
    )]
    HardenedStep,
    /// A bare account key (xpub/ypub/zpub, tpub/upub/vpub) that cannot be used.
    #[error("{0}")]
    AccountKey(Slip132Error),
    /// A change descriptor next to a bare account key, which already gives change (`/1/*`).
    #[error(
        "is set, but SNAKKAZ_PAY_DESCRIPTOR is a bare account key that already gives the change addresses (/1/*); remove the change descriptor"
    )]
    ChangeWithAccountKey,
    /// A bare account key given as the change descriptor.
    #[error(
        "is a bare account key; give it as the receive descriptor (SNAKKAZ_PAY_DESCRIPTOR or init --descriptor) alone: receive and change are derived from it"
    )]
    AccountKeyAsChange,
    /// A SLIP-132 key (ypub/zpub/upub/vpub) inside a descriptor.
    #[error(
        "holds a {prefix} key inside a descriptor; descriptors take xpub/tpub keys: give the {prefix} key alone and snakkaz-pay writes the matching descriptors"
    )]
    Slip132InDescriptor {
        /// The key's prefix.
        prefix: &'static str,
    },
    /// Parses but cannot derive addresses.
    #[error("cannot derive addresses: {reason}")]
    CannotDerive {
        /// The deriver's message, redacted.
        reason: String,
    },
}

/// Validate the receive and optional change descriptor; returns their canonical strings.
///
/// A `<0;1>` multipath receive descriptor is split into receive and change.
pub(super) fn validate_pair(
    receive: &Raw,
    change: Option<&Raw>,
    network: Network,
) -> Result<(String, Option<String>), ConfigError> {
    let fail = |raw: &Raw, problem| ConfigError::Descriptor {
        origin: raw.origin.clone(),
        problem,
    };
    if let Some(c) = change.filter(|c| slip132::looks_like_bare_key(&c.text)) {
        return Err(fail(c, DescriptorProblem::AccountKeyAsChange));
    }
    if slip132::looks_like_bare_key(&receive.text) {
        if let Some(c) = change {
            return Err(fail(c, DescriptorProblem::ChangeWithAccountKey));
        }
        let (r, c) =
            account_key_descriptors(&receive.text, network).map_err(|p| fail(receive, p))?;
        let as_raw = |text: String| Raw {
            text,
            origin: receive.origin.clone(),
        };
        return validate_pair(&as_raw(r), Some(&as_raw(c)), network);
    }
    let desc = parse(&receive.text).map_err(|p| fail(receive, p))?;
    let (receive_desc, split_change) = if desc.is_multipath() {
        let parts = desc.into_single_descriptors().map_err(|e| {
            fail(
                receive,
                DescriptorProblem::Invalid {
                    reason: redact(&e.to_string()),
                },
            )
        })?;
        match <[_; 2]>::try_from(parts) {
            Ok([r, c]) => (r, Some(c)),
            Err(parts) => {
                return Err(fail(
                    receive,
                    DescriptorProblem::Multipath { count: parts.len() },
                ));
            }
        }
    } else {
        (desc, None)
    };
    check(&receive_desc, network).map_err(|p| fail(receive, p))?;

    let change_desc = match (change, split_change) {
        (Some(raw), Some(_)) => return Err(fail(raw, DescriptorProblem::ChangeTwice)),
        (None, split) => split,
        (Some(raw), None) => {
            let d = parse(&raw.text).map_err(|p| fail(raw, p))?;
            if d.is_multipath() {
                let count = d.clone().into_single_descriptors().map_or(0, |v| v.len());
                return Err(fail(raw, DescriptorProblem::Multipath { count }));
            }
            Some(d)
        }
    };
    if let Some(c) = &change_desc {
        let origin_raw = change.unwrap_or(receive);
        check(c, network).map_err(|p| fail(origin_raw, p))?;
        if c == &receive_desc {
            return Err(fail(origin_raw, DescriptorProblem::SameAsReceive));
        }
    }
    Ok((receive_desc.to_string(), change_desc.map(|d| d.to_string())))
}

/// Receive and change descriptors of a bare SLIP-132 account key, checked against the network.
///
/// The master key is unknown, so the origin is the key's own fingerprint, as Electrum does.
fn account_key_descriptors(
    text: &str,
    network: Network,
) -> Result<(String, String), DescriptorProblem> {
    let key: AccountKey = text.parse().map_err(DescriptorProblem::AccountKey)?;
    let expected = NetworkKind::from(network);
    if key.network_kind() != expected {
        return Err(DescriptorProblem::WrongNetwork {
            network,
            found: kind_name(key.network_kind()),
            expected: kind_name(expected),
        });
    }
    Ok(key.descriptors(&key.own_origin()))
}

/// The prefix of a SLIP-132 (non-xpub/tpub) key inside a descriptor, if there is one.
fn slip132_inside(text: &str) -> Option<&'static str> {
    text.split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| w.len() > 100)
        .find_map(|w| {
            let prefix = [
                "ypub", "zpub", "upub", "vpub", "Ypub", "Zpub", "Upub", "Vpub",
            ]
            .into_iter()
            .find(|p| w.starts_with(p))?;
            match w.parse::<AccountKey>() {
                Ok(_) | Err(Slip132Error::Multisig { .. }) => Some(prefix),
                Err(_) => None,
            }
        })
}

/// Parse a public descriptor, telling a private one apart from a malformed one.
fn parse(text: &str) -> Result<Descriptor<DescriptorPublicKey>, DescriptorProblem> {
    let text = text.trim();
    match Descriptor::<DescriptorPublicKey>::from_str(text) {
        Ok(d) => Ok(d),
        Err(e) => {
            let secp = Secp256k1::signing_only();
            match Descriptor::parse_descriptor(&secp, text) {
                Ok((_, keymap)) if !keymap.is_empty() => Err(DescriptorProblem::PrivateKey),
                _ => match slip132_inside(text) {
                    Some(prefix) => Err(DescriptorProblem::Slip132InDescriptor { prefix }),
                    None => Err(DescriptorProblem::Invalid {
                        reason: redact(&e.to_string()),
                    }),
                },
            }
        }
    }
}

/// Ranged, keys of the right network kind, and addresses derivable.
fn check(
    desc: &Descriptor<DescriptorPublicKey>,
    network: Network,
) -> Result<(), DescriptorProblem> {
    if !desc.has_wildcard() {
        return Err(DescriptorProblem::NotRanged);
    }
    let expected = NetworkKind::from(network);
    let mut wrong = None;
    desc.for_each_key(|key| {
        let kind = match key {
            DescriptorPublicKey::XPub(x) => Some(x.xkey.network),
            DescriptorPublicKey::MultiXPub(x) => Some(x.xkey.network),
            // Single keys carry no network.
            DescriptorPublicKey::Single(_) => None,
        };
        if let Some(kind) = kind.filter(|k| *k != expected) {
            wrong = Some(kind);
        }
        true
    });
    if let Some(found) = wrong {
        return Err(DescriptorProblem::WrongNetwork {
            network,
            found: kind_name(found),
            expected: kind_name(expected),
        });
    }
    // Checked before deriving: miniscript 12 panics deriving a hardened step from an xpub.
    if desc.for_any_key(has_hardened_step) {
        return Err(DescriptorProblem::HardenedStep);
    }
    let derived = desc
        .at_derivation_index(0)
        .map_err(|e| DescriptorProblem::CannotDerive {
            reason: redact(&e.to_string()),
        })?;
    derived
        .address(network)
        .map_err(|e| DescriptorProblem::CannotDerive {
            reason: redact(&e.to_string()),
        })?;
    Ok(())
}

fn has_hardened_step(key: &DescriptorPublicKey) -> bool {
    match key {
        DescriptorPublicKey::Single(_) => false,
        DescriptorPublicKey::XPub(x) => {
            x.wildcard == Wildcard::Hardened
                || x.derivation_path.into_iter().any(|c| c.is_hardened())
        }
        DescriptorPublicKey::MultiXPub(x) => {
            x.wildcard == Wildcard::Hardened
                || x.derivation_paths
                    .paths()
                    .iter()
                    .any(|p| p.into_iter().any(|c| c.is_hardened()))
        }
    }
}

fn kind_name(kind: NetworkKind) -> &'static str {
    match kind {
        NetworkKind::Main => "mainnet (xpub)",
        NetworkKind::Test => "test-network (tpub)",
    }
}

/// Replace long alphanumeric runs (keys, WIF, hex secrets) in a parser message with "…".
///
/// Parser messages quote the offending token, which may be key material; checksums and
/// fingerprints (8 characters) survive.
fn redact(message: &str) -> String {
    const MAX_RUN: usize = 16;
    let mut out = String::with_capacity(message.len());
    let mut run = String::new();
    let flush = |run: &mut String, out: &mut String| {
        if run.chars().count() > MAX_RUN {
            out.push('…');
        } else {
            out.push_str(run);
        }
        run.clear();
    };
    for c in message.chars() {
        if c.is_ascii_alphanumeric() {
            run.push(c);
        } else {
            flush(&mut run, &mut out);
            out.push(c);
        }
    }
    flush(&mut run, &mut out);
    out.replace('\n', " ")
}

/// Network name as the configuration spells it.
pub(super) fn network_name(network: Network) -> &'static str {
    match network {
        Network::Bitcoin => "bitcoin",
        Network::Testnet => "testnet",
        Network::Testnet4 => "testnet4",
        Network::Signet => "signet",
        Network::Regtest => "regtest",
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    #[test]
    fn redact_removes_key_like_runs_only() {
        assert_eq!(
            redact(
                "bad key tprv8ZgxMBicQKsPd7Uf69XL1XwhmjHopUGep8GuEiJDZmbQz6o58LninorQAfcKZWARbtRtfnLcJ5MQ2AtHcQJCCRUcMRvmDUjyEmNUWwx8UbK'"
            ),
            "bad key …'"
        );
        assert_eq!(
            redact("invalid checksum 'abcd1234'; expected 'wxyz5678'"),
            "invalid checksum 'abcd1234'; expected 'wxyz5678'"
        );
    }

    #[test]
    fn network_names_parse_back() {
        for n in [
            Network::Bitcoin,
            Network::Testnet,
            Network::Testnet4,
            Network::Signet,
            Network::Regtest,
        ] {
            assert_eq!(network_name(n), n.to_string());
        }
    }
}
