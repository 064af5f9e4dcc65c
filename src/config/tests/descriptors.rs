//! Descriptors: public keys only, ranged, on the configured network, never echoed.

use super::*;

#[test]
fn descriptor_required_and_canonical() {
    let (r, _) = load_with("", keys::DESCRIPTOR, &[]);
    assert_eq!(
        r.unwrap_err().to_string(),
        "SNAKKAZ_PAY_DESCRIPTOR: required: the receive descriptor of the wallet, public keys only (xpub/tpub)"
    );
    let c = load("", &[]).unwrap();
    assert!(c.descriptor.starts_with("wpkh(tpub") && c.descriptor.contains('#'));
    // A descriptor with its checksum is accepted as is.
    assert_eq!(
        load("", &[(keys::DESCRIPTOR, &c.descriptor)])
            .unwrap()
            .descriptor,
        c.descriptor
    );
    // From the file, under the TOML key `descriptor`.
    let (r, _) = load_with(
        &format!("descriptor = \"{}\"\n", tpub_desc()),
        keys::DESCRIPTOR,
        &[],
    );
    assert_eq!(r.unwrap().descriptor, c.descriptor);
}

#[test]
fn mainnet_descriptor_on_bitcoin() {
    let desc = format!("tr([d34db33f/86h/0h/0h]{}/0/*)", xpub(NetworkKind::Main));
    let c = load("", &[(keys::NETWORK, "bitcoin"), (keys::DESCRIPTOR, &desc)]).unwrap();
    assert_eq!(c.descriptor, canonical(&desc));
    let e = err("", &[(keys::NETWORK, "signet"), (keys::DESCRIPTOR, &desc)]);
    assert_eq!(
        e,
        "SNAKKAZ_PAY_DESCRIPTOR: the descriptor has mainnet (xpub) keys but the network is signet; use test-network (tpub) keys"
    );
}

#[test]
fn private_keys_are_refused_without_echo() {
    let secret = xprv(NetworkKind::Test).to_string();
    let e = err("", &[(keys::DESCRIPTOR, &format!("wpkh({secret}/0/*)"))]);
    assert_eq!(
        e,
        "SNAKKAZ_PAY_DESCRIPTOR: the descriptor contains a private key; this appliance is watch-only: use the public form (xpub/tpub) and keep private keys off it"
    );
    let wif = "cVt4o7BGAig1UXywgGSmARhxMdzP5qvQsxKkSsc1XEkw3tDTQFpy";
    let e = err("", &[(keys::CHANGE_DESCRIPTOR, &format!("wpkh({wif})"))]);
    assert!(
        e.starts_with("SNAKKAZ_PAY_CHANGE_DESCRIPTOR: the descriptor contains a private key"),
        "{e}"
    );
    // Even a malformed descriptor with key material does not echo it.
    let e = err("", &[(keys::DESCRIPTOR, &format!("wpkh({secret}/0/*"))]);
    assert!(
        e.starts_with("SNAKKAZ_PAY_DESCRIPTOR: the descriptor is not a valid output descriptor: "),
        "{e}"
    );
    assert!(!e.contains(&secret[..20]), "{e}");
    let tpub = xpub(NetworkKind::Test);
    let e = err("", &[(keys::DESCRIPTOR, &format!("wsh(frob({tpub}/0/*))"))]);
    assert!(!e.contains(&tpub[..20]), "{e}");
}

#[test]
fn descriptor_shape_errors() {
    let tpub = xpub(NetworkKind::Test);
    let cases = [
        (
            format!("wpkh({tpub}/0/0)"),
            "is not ranged; end the key path with /* so every payment gets its own address",
        ),
        (
            format!("wpkh({tpub}/<0;1;2>/*)"),
            "has 3 derivation paths; only two (<0;1>: receive;change) are supported",
        ),
        (
            format!("wpkh({tpub}/0/*h)"),
            "has a hardened step (h or ') after the xpub/tpub",
        ),
        (format!("wpkh({tpub}/0h/*)"), "has a hardened step"),
        (format!("wpkh({tpub}/<0h;1h>/*)"), "has a hardened step"),
        (
            "not a descriptor".to_owned(),
            "is not a valid output descriptor: ",
        ),
    ];
    for (desc, message) in cases {
        let e = err("", &[(keys::DESCRIPTOR, &desc)]);
        assert!(
            e.starts_with(&format!("SNAKKAZ_PAY_DESCRIPTOR: the descriptor {message}")),
            "{desc}: {e}"
        );
    }
}

#[test]
fn change_descriptor() {
    let tpub = xpub(NetworkKind::Test);
    let change = format!("wpkh({tpub}/1/*)");
    let c = load("", &[(keys::CHANGE_DESCRIPTOR, &change)]).unwrap();
    assert_eq!(c.change_descriptor, Some(canonical(&change)));

    let e = err("", &[(keys::CHANGE_DESCRIPTOR, &tpub_desc())]);
    assert_eq!(
        e,
        "SNAKKAZ_PAY_CHANGE_DESCRIPTOR: the descriptor is the same as SNAKKAZ_PAY_DESCRIPTOR; change needs its own keychain"
    );
    let e = err("", &[(keys::CHANGE_DESCRIPTOR, &format!("wpkh({tpub}/1)"))]);
    assert!(
        e.starts_with("SNAKKAZ_PAY_CHANGE_DESCRIPTOR: the descriptor is not ranged"),
        "{e}"
    );
    let e = err(
        "",
        &[(
            keys::CHANGE_DESCRIPTOR,
            &format!("wpkh({}/1/*)", xpub(NetworkKind::Main)),
        )],
    );
    assert!(
        e.starts_with("SNAKKAZ_PAY_CHANGE_DESCRIPTOR: the descriptor has mainnet (xpub) keys"),
        "{e}"
    );
}

#[test]
fn multipath_descriptor_splits_into_receive_and_change() {
    let tpub = xpub(NetworkKind::Test);
    let c = load("", &[(keys::DESCRIPTOR, &format!("wpkh({tpub}/<0;1>/*)"))]).unwrap();
    assert_eq!(c.descriptor, canonical(&format!("wpkh({tpub}/0/*)")));
    assert_eq!(
        c.change_descriptor,
        Some(canonical(&format!("wpkh({tpub}/1/*)")))
    );

    let e = err(
        "",
        &[
            (keys::DESCRIPTOR, &format!("wpkh({tpub}/<0;1>/*)")),
            (keys::CHANGE_DESCRIPTOR, &format!("wpkh({tpub}/2/*)")),
        ],
    );
    assert_eq!(
        e,
        "SNAKKAZ_PAY_CHANGE_DESCRIPTOR: the descriptor is not allowed when SNAKKAZ_PAY_DESCRIPTOR already has a change path (<0;1>)"
    );
    let e = err(
        "",
        &[(keys::CHANGE_DESCRIPTOR, &format!("wpkh({tpub}/<1;2>/*)"))],
    );
    assert!(
        e.starts_with("SNAKKAZ_PAY_CHANGE_DESCRIPTOR: the descriptor has 2 derivation paths"),
        "{e}"
    );
}
