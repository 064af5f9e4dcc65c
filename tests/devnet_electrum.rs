//! The devnet seen through a real ElectrumX with the Electrum client the appliance
//! uses: payments, confirmations, merkle proofs, reorgs, replacements, fee estimates,
//! TLS with the generated CA, and script verification of submitted transactions.

mod common;

use std::net::TcpStream;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use common::devnet::Devnet;
use common::wait_until;
use electrum_client::bitcoin::key::{CompressedPublicKey, Keypair, Secp256k1, TapTweak};
use electrum_client::bitcoin::secp256k1::{Message, SecretKey};
use electrum_client::bitcoin::sighash::{EcdsaSighashType, Prevouts, SighashCache, TapSighashType};
use electrum_client::bitcoin::{
    Address, Amount, Network, OutPoint, ScriptBuf, Sequence, Transaction, TxIn, TxOut, Txid,
    Witness, absolute, consensus, ecdsa, taproot, transaction,
};
use electrum_client::raw_client::RawClient;
use electrum_client::{Client, ElectrumApi, GetHistoryRes, Param};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};

/// A BIP173 test-vector address: valid on regtest, owned by nobody here.
const SOMEONE: &str = "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080";
/// How long ElectrumX may take to show a mempool change (it polls every 100 ms).
const SEEN: Duration = Duration::from_secs(20);

/// A taproot address of a key of ours (the appliance uses `tr` and `wpkh`).
fn elsewhere() -> String {
    let secp = Secp256k1::new();
    let (xonly, _) = SecretKey::from_slice(&[0x07; 32])
        .unwrap()
        .public_key(&secp)
        .x_only_public_key();
    Address::p2tr(&secp, xonly, None, Network::Regtest).to_string()
}

fn client(devnet: &Devnet) -> Client {
    Client::new(&devnet.electrum_tcp_url()).expect("connect to ElectrumX over TCP")
}

fn script(address: &str) -> ScriptBuf {
    Address::from_str(address)
        .unwrap()
        .require_network(Network::Regtest)
        .unwrap()
        .script_pubkey()
}

fn history(client: &Client, address: &str) -> Vec<GetHistoryRes> {
    client
        .script_get_history(&script(address))
        .expect("get_history")
}

/// Waits until `address`'s history is exactly `expected` (txid, height) pairs.
fn wait_history(client: &Client, address: &str, expected: &[(Txid, i32)]) {
    wait_until(
        SEEN,
        &format!("history of {address} to be {expected:?}"),
        || {
            let got: Vec<(Txid, i32)> = history(client, address)
                .iter()
                .map(|h| (h.tx_hash, h.height))
                .collect();
            (got == expected).then_some(())
        },
    );
}

#[test]
fn payment_is_notified_unconfirmed_then_confirms_with_a_valid_merkle_proof() {
    let devnet = Devnet::start();
    let electrum = client(&devnet);
    let spk = script(SOMEONE);
    assert_eq!(
        electrum.script_subscribe(&spk).unwrap(),
        None,
        "fresh address has no status"
    );

    let txid = Txid::from_str(&devnet.pay(SOMEONE, 50_000)).unwrap();
    // The status notification arrives on its own; `ping` just reads the socket.
    let status = wait_until(SEEN, "a scripthash notification", || {
        electrum.ping().unwrap();
        electrum.script_pop(&spk).unwrap()
    });
    wait_history(&electrum, SOMEONE, &[(txid, 0)]);
    // The appliance's safety net recomputes statuses from histories: it must agree with
    // the server's own, or every check would look like a change.
    assert_eq!(
        snakkaz_pay::chain::status_of_history(&history(&electrum, SOMEONE)),
        Some(hex::encode(*status)),
        "status computed from the history equals ElectrumX's"
    );
    let tx = electrum.transaction_get(&txid).unwrap();
    assert!(
        tx.output
            .iter()
            .any(|o| o.script_pubkey == spk && o.value == Amount::from_sat(50_000))
    );

    let height = devnet.mine(1);
    wait_history(&electrum, SOMEONE, &[(txid, height as i32)]);
    let second = Txid::from_str(&devnet.pay(SOMEONE, 1_000)).unwrap();
    wait_history(&electrum, SOMEONE, &[(txid, height as i32), (second, 0)]);
    let status = wait_until(SEEN, "the status after two transactions", || {
        electrum.ping().unwrap();
        let mut last = None;
        while let Some(s) = electrum.script_pop(&spk).unwrap() {
            last = Some(s);
        }
        last.filter(|s| {
            snakkaz_pay::chain::status_of_history(&history(&electrum, SOMEONE))
                == Some(hex::encode(**s))
        })
    });
    assert_eq!(hex::encode(*status).len(), 64);
    let proof = electrum
        .transaction_get_merkle(&txid, height as usize)
        .unwrap();
    let header = electrum.block_header(height as usize).unwrap();
    assert!(electrum_client::utils::validate_merkle_proof(
        &txid,
        &header.merkle_root,
        &proof
    ));
    assert_eq!(proof.block_height, height as usize);

    // The verbose form comes from the devnet's verbose getrawtransaction.
    let verbose = electrum
        .raw_call(
            "blockchain.transaction.get",
            [Param::String(txid.to_string()), Param::Bool(true)],
        )
        .unwrap();
    assert_eq!(verbose["confirmations"], 1);
    assert_eq!(verbose["blockhash"], header.block_hash().to_string());
}

#[test]
fn reorg_puts_transactions_back_in_the_mempool() {
    let devnet = Devnet::start();
    let electrum = client(&devnet);
    let txid = Txid::from_str(&devnet.pay(SOMEONE, 30_000)).unwrap();
    let mined_at = devnet.mine(1);
    wait_history(&electrum, SOMEONE, &[(txid, mined_at as i32)]);
    let old_tip = electrum
        .block_header(mined_at as usize)
        .unwrap()
        .block_hash();

    let height = devnet.reorg(1, &[]);
    assert_eq!(
        height,
        mined_at + 1,
        "reorg of depth 1 makes the chain one block longer"
    );
    wait_history(&electrum, SOMEONE, &[(txid, 0)]);
    let new_block = electrum
        .block_header(mined_at as usize)
        .unwrap()
        .block_hash();
    assert_ne!(new_block, old_tip, "the block at that height was replaced");

    let height = devnet.mine(1);
    wait_history(&electrum, SOMEONE, &[(txid, height as i32)]);
}

#[test]
fn reorg_with_drop_removes_the_transaction() {
    let devnet = Devnet::start();
    let electrum = client(&devnet);
    let elsewhere = elsewhere();
    let kept = Txid::from_str(&devnet.pay(&elsewhere, 20_000)).unwrap();
    let dropped = devnet.pay(SOMEONE, 40_000);
    devnet.mine(2);
    wait_history(
        &electrum,
        SOMEONE,
        &[(
            Txid::from_str(&dropped).unwrap(),
            devnet.tip_height() as i32 - 1,
        )],
    );

    devnet.reorg(2, &[dropped.as_str()]);
    wait_history(&electrum, SOMEONE, &[]);
    wait_history(&electrum, &elsewhere, &[(kept, 0)]);
    assert!(
        electrum
            .transaction_get(&Txid::from_str(&dropped).unwrap())
            .is_err(),
        "dropped tx is gone"
    );
}

#[test]
fn replace_removes_the_original() {
    let devnet = Devnet::start();
    let electrum = client(&devnet);
    let original = Txid::from_str(&devnet.pay(SOMEONE, 25_000)).unwrap();
    wait_history(&electrum, SOMEONE, &[(original, 0)]);

    let elsewhere = elsewhere();
    let replacement =
        Txid::from_str(&devnet.replace(&original.to_string(), Some(&elsewhere))).unwrap();
    assert_ne!(replacement, original);
    wait_history(&electrum, SOMEONE, &[]);
    wait_history(&electrum, &elsewhere, &[(replacement, 0)]);
    assert!(
        electrum.transaction_get(&original).is_err(),
        "original is gone"
    );

    let height = devnet.mine(1);
    wait_history(&electrum, &elsewhere, &[(replacement, height as i32)]);
}

#[test]
fn fee_is_reported_by_estimatefee_after_the_next_block() {
    let devnet = Devnet::start();
    let electrum = client(&devnet);
    // 1 sat/vB is the default: 0.00001 BTC/kvB.
    assert_eq!(electrum.estimate_fee(2, None).unwrap(), 0.00001);
    devnet.fee(25);
    devnet.mine(1);
    assert_eq!(electrum.estimate_fee(2, None).unwrap(), 0.00025);

    let info = electrum.mempool_get_info().unwrap();
    assert_eq!(
        (info.minrelaytxfee, info.incrementalrelayfee),
        (0.00001, 0.00001)
    );
}

fn tls_config(ca: Option<&std::path::Path>) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    if let Some(ca) = ca {
        roots
            .add(CertificateDer::from_pem_file(ca).expect("read CA PEM"))
            .expect("add CA");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    Arc::new(config)
}

type TlsStream = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

fn tls_connect(devnet: &Devnet, host: &str, ca: Option<&std::path::Path>) -> TlsStream {
    let name = ServerName::try_from(host.to_string()).unwrap();
    let conn = rustls::ClientConnection::new(tls_config(ca), name).unwrap();
    let tcp = TcpStream::connect(("127.0.0.1", devnet.electrum_tls_port())).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    rustls::StreamOwned::new(conn, tcp)
}

#[test]
fn tls_verifies_the_generated_ca_and_refuses_without_it() {
    let devnet = Devnet::start();
    for host in ["localhost", "127.0.0.1"] {
        let electrum = RawClient::from(tls_connect(&devnet, host, Some(devnet.ca_file())));
        // `RawClient::from` does not negotiate: do it as the appliance does.
        electrum
            .protocol_version()
            .expect("server.version over TLS");
        let tip = electrum
            .block_headers_subscribe()
            .expect("headers over TLS");
        assert_eq!(tip.height as u32, devnet.tip_height(), "via {host}");
    }

    let untrusted = RawClient::from(tls_connect(&devnet, "localhost", None));
    let err = untrusted
        .protocol_version()
        .expect_err("handshake must fail without the CA");
    let text = format!("{err:?}");
    assert!(
        text.contains("UnknownIssuer") || text.contains("certificate"),
        "unexpected error: {text}"
    );
}

/// A key of the test's own, to build and sign transactions by hand.
struct Wallet {
    secret: SecretKey,
    taproot: bool,
}

impl Wallet {
    fn new(taproot: bool) -> Self {
        Wallet {
            secret: SecretKey::from_slice(&[0x42; 32]).unwrap(),
            taproot,
        }
    }

    fn address(&self) -> String {
        let secp = Secp256k1::new();
        let pubkey = self.secret.public_key(&secp);
        if self.taproot {
            Address::p2tr(&secp, pubkey.x_only_public_key().0, None, Network::Regtest).to_string()
        } else {
            Address::p2wpkh(&CompressedPublicKey(pubkey), Network::Regtest).to_string()
        }
    }

    /// Spends `prev` (an output to this wallet) to `to`, paying a 1,000 sat fee.
    fn spend(&self, prev: OutPoint, prev_out: &TxOut, to: &str) -> Transaction {
        let secp = Secp256k1::new();
        let mut tx = Transaction {
            version: transaction::Version::TWO,
            lock_time: absolute::LockTime::ZERO,
            input: vec![TxIn {
                previous_output: prev,
                script_sig: ScriptBuf::new(),
                sequence: Sequence::ENABLE_RBF_NO_LOCKTIME,
                witness: Witness::new(),
            }],
            output: vec![TxOut {
                value: prev_out.value - Amount::from_sat(1_000),
                script_pubkey: script(to),
            }],
        };
        let mut cache = SighashCache::new(&mut tx);
        let witness = if self.taproot {
            let prevouts = [prev_out.clone()];
            let sighash = cache
                .taproot_key_spend_signature_hash(
                    0,
                    &Prevouts::All(&prevouts),
                    TapSighashType::Default,
                )
                .unwrap();
            let tweaked = Keypair::from_secret_key(&secp, &self.secret).tap_tweak(&secp, None);
            let signature =
                secp.sign_schnorr_no_aux_rand(&Message::from(sighash), &tweaked.to_keypair());
            Witness::p2tr_key_spend(&taproot::Signature {
                signature,
                sighash_type: TapSighashType::Default,
            })
        } else {
            let sighash = cache
                .p2wpkh_signature_hash(
                    0,
                    &prev_out.script_pubkey,
                    prev_out.value,
                    EcdsaSighashType::All,
                )
                .unwrap();
            let signature = ecdsa::Signature {
                signature: secp.sign_ecdsa(&Message::from(sighash), &self.secret),
                sighash_type: EcdsaSighashType::All,
            };
            Witness::p2wpkh(&signature, &self.secret.public_key(&secp))
        };
        *cache.witness_mut(0).unwrap() = witness;
        tx
    }
}

/// Funds a wallet of the given kind, then shows a spend with a flipped signature bit
/// is refused (through ElectrumX and by the devnet itself) and the good one accepted.
fn broken_signature_is_refused(taproot: bool) {
    let devnet = Devnet::start();
    let electrum = client(&devnet);
    let wallet = Wallet::new(taproot);
    let funding = Txid::from_str(&devnet.pay(&wallet.address(), 100_000)).unwrap();
    devnet.mine(1);
    let funding_tx = electrum.transaction_get(&funding).unwrap();
    let vout = funding_tx
        .output
        .iter()
        .position(|o| o.script_pubkey == script(&wallet.address()))
        .unwrap();
    let prev = OutPoint::new(funding, vout as u32);
    let good = wallet.spend(prev, &funding_tx.output[vout], SOMEONE);

    // Flip a bit inside the signature: well-formed, but it signs nothing.
    let mut bad = good.clone();
    let mut items: Vec<Vec<u8>> = bad.input[0].witness.iter().map(<[u8]>::to_vec).collect();
    items[0][10] ^= 0x01;
    bad.input[0].witness = Witness::from_slice(&items);

    let err = electrum
        .transaction_broadcast(&bad)
        .expect_err("broken signature must be refused");
    let text = format!("{err:?}");
    assert!(
        text.contains("mandatory-script-verify-flag-failed"),
        "unexpected error: {text}"
    );
    let err = devnet
        .send_raw(&consensus::encode::serialize_hex(&bad))
        .expect_err("refused by the devnet too");
    assert!(
        err.to_string().contains("bad signature"),
        "unclear message: {err}"
    );

    let txid = electrum
        .transaction_broadcast(&good)
        .expect("the correctly signed transaction is accepted");
    assert_eq!(txid, good.compute_txid());
    wait_history(&electrum, SOMEONE, &[(txid, 0)]);
}

#[test]
fn a_wpkh_spend_with_a_broken_signature_is_refused() {
    broken_signature_is_refused(false);
}

#[test]
fn a_taproot_spend_with_a_broken_signature_is_refused() {
    broken_signature_is_refused(true);
}

#[test]
fn electrumx_restarts_on_the_same_ports_and_catches_up() {
    let mut devnet = Devnet::start();
    let (tcp, tls) = (devnet.electrum_tcp_port(), devnet.electrum_tls_port());
    devnet.stop_electrumx();
    assert!(
        Client::new(&devnet.electrum_tcp_url()).is_err(),
        "nothing listens while it is down"
    );
    let height = devnet.mine(3);
    devnet.start_electrumx();
    assert_eq!(
        (devnet.electrum_tcp_port(), devnet.electrum_tls_port()),
        (tcp, tls)
    );
    let electrum = client(&devnet);
    assert_eq!(
        electrum.block_headers_subscribe().unwrap().height as u32,
        height
    );
}
