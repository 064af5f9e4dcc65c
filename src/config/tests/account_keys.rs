//! Bare account keys as `electrum getmpk` prints them (SLIP-132), and errors naming the
//! flag or key the value came from.

use super::*;
use bdk_wallet::bitcoin::base58;

/// The test key re-encoded with SLIP-132 version bytes `v`.
fn slip(kind: NetworkKind, v: u32) -> String {
    let mut data = base58::decode_check(&xpub(kind)).unwrap();
    data[..4].copy_from_slice(&v.to_be_bytes());
    base58::encode_check(&data)
}

const VPUB: u32 = 0x045f_1cf6;
const UPUB: u32 = 0x044a_5262;
const YPUB: u32 = 0x049d_7cb2;
const VPUB_MULTISIG: u32 = 0x0257_5483;

#[test]
fn a_bare_account_key_becomes_receive_and_change_descriptors() {
    let tpub = xpub(NetworkKind::Test);
    let fp = Xpub::from_str(&tpub).unwrap().fingerprint();
    for (v, script) in [(VPUB, "wpkh("), (UPUB, "sh(wpkh("), (0x0435_87cf, "pkh(")] {
        let key = slip(NetworkKind::Test, v);
        let c = load("", &[(keys::DESCRIPTOR, &key)]).unwrap();
        let close = if script == "sh(wpkh(" { "))" } else { ")" };
        assert_eq!(
            c.descriptor,
            canonical(&format!("{script}[{fp}]{tpub}/0/*{close}"))
        );
        assert_eq!(
            c.change_descriptor.as_deref(),
            Some(canonical(&format!("{script}[{fp}]{tpub}/1/*{close}")).as_str())
        );
    }
    // From the TOML file as well, with surrounding whitespace.
    let key = slip(NetworkKind::Test, VPUB);
    let (r, _) = load_with(
        &format!("descriptor = \" {key}\\n\"\n"),
        keys::DESCRIPTOR,
        &[],
    );
    assert!(r.unwrap().descriptor.starts_with("wpkh(["));
}

#[test]
fn account_key_errors_name_where_the_value_came_from() {
    let ypub = slip(NetworkKind::Main, YPUB);
    let e = err("", &[(keys::DESCRIPTOR, &ypub)]);
    assert_eq!(
        e,
        "SNAKKAZ_PAY_DESCRIPTOR: the descriptor has mainnet (xpub) keys but the network is regtest; use test-network (tpub) keys"
    );
    assert!(!e.contains(&ypub[..20]));

    let e = err(
        "",
        &[(keys::DESCRIPTOR, &slip(NetworkKind::Test, VPUB_MULTISIG))],
    );
    assert!(
        e.starts_with("SNAKKAZ_PAY_DESCRIPTOR: the descriptor is a Vpub key of a multisig wallet"),
        "{e}"
    );

    let vpub = slip(NetworkKind::Test, VPUB);
    let e = err(
        "",
        &[
            (keys::DESCRIPTOR, &vpub),
            (keys::CHANGE_DESCRIPTOR, &tpub_desc()),
        ],
    );
    assert!(
        e.starts_with("SNAKKAZ_PAY_CHANGE_DESCRIPTOR: the descriptor is set, but SNAKKAZ_PAY_DESCRIPTOR is a bare account key"),
        "{e}"
    );
    let e = err("", &[(keys::CHANGE_DESCRIPTOR, &vpub)]);
    assert!(
        e.starts_with("SNAKKAZ_PAY_CHANGE_DESCRIPTOR: the descriptor is a bare account key"),
        "{e}"
    );

    // The second attempt: a SLIP-132 key inside a descriptor.
    let e = err("", &[(keys::DESCRIPTOR, &format!("wpkh({vpub}/0/*)"))]);
    assert_eq!(
        e,
        "SNAKKAZ_PAY_DESCRIPTOR: the descriptor holds a vpub key inside a descriptor; descriptors take xpub/tpub keys: give the vpub key alone and snakkaz-pay writes the matching descriptors"
    );
}

#[test]
fn flags_override_the_environment_and_are_named_in_errors() {
    let f = file("");
    let e: HashMap<String, String> = base().into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
    let flag = |value: &str| Flag {
        key: keys::DESCRIPTOR,
        flag: "--descriptor",
        value: value.to_owned(),
    };
    let err = Config::load_with_flags(Some(&f.path), &e, &[flag("zpub-nonsense")])
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("--descriptor: the descriptor "), "{err}");
    let vpub = slip(NetworkKind::Test, VPUB);
    let c = Config::load_with_flags(Some(&f.path), &e, &[flag(&vpub)]).unwrap();
    assert!(c.descriptor.starts_with("wpkh(["), "{}", c.descriptor);
}
