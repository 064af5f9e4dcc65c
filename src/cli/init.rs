//! `snakkaz-pay init`: turn an operator's descriptor into a checked configuration.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use clap::Args;

use super::Cli;
use crate::config::{Config, Flag, keys};

/// Receive addresses printed for the operator to compare with their own wallet.
const ADDRESSES_SHOWN: u32 = 5;

/// Arguments of `init`.
#[derive(Debug, Args)]
pub struct InitArgs {
    /// Receive descriptor with an xpub/tpub (never a private key), e.g. `wpkh(xpub.../0/*)`,
    /// or an account key as `electrum getmpk` prints it (xpub/ypub/zpub, tpub/upub/vpub).
    #[arg(long)]
    pub descriptor: String,
    /// Change descriptor.
    #[arg(long)]
    pub change_descriptor: Option<String>,
    /// Network: bitcoin (also accepted as mainnet), testnet, testnet4, signet or regtest.
    #[arg(long, default_value = "bitcoin")]
    pub network: String,
    /// Electrum server host.
    #[arg(long)]
    pub electrum_host: Option<String>,
    /// Electrum server port.
    #[arg(long)]
    pub electrum_port: Option<u16>,
    /// Electrum protocol: tcp or tls.
    #[arg(long)]
    pub electrum_protocol: Option<String>,
    /// Database file.
    #[arg(long)]
    pub wallet_path: Option<PathBuf>,
    /// Address to serve the page and API on.
    #[arg(long)]
    pub listen: Option<String>,
    /// Overwrite an existing configuration file.
    #[arg(long)]
    pub force: bool,
}

pub(super) fn run(cli: &Cli, a: &InitArgs) -> anyhow::Result<ExitCode> {
    let out = &cli.config;
    if out.exists() && !a.force {
        bail!(
            "{} exists; pass --force to overwrite it or --config to write elsewhere",
            out.display()
        );
    }
    let dir = out
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."));
    let mut env = HashMap::new();
    // Flags, not environment entries: an error must name the flag the operator typed.
    let mut flags = vec![
        Flag {
            key: keys::DESCRIPTOR,
            flag: "--descriptor",
            value: a.descriptor.clone(),
        },
        Flag {
            key: keys::NETWORK,
            flag: "--network",
            value: a.network.clone(),
        },
    ];
    if let Some(c) = &a.change_descriptor {
        flags.push(Flag {
            key: keys::CHANGE_DESCRIPTOR,
            flag: "--change-descriptor",
            value: c.clone(),
        });
    }
    let host = a
        .electrum_host
        .clone()
        .unwrap_or_else(|| "127.0.0.1".to_owned());
    env.insert("ELECTRUM_HOST".to_owned(), host);
    if let Some(p) = a.electrum_port {
        env.insert("ELECTRUM_PORT".to_owned(), p.to_string());
    }
    if let Some(p) = &a.electrum_protocol {
        env.insert("ELECTRUM_PROTOCOL".to_owned(), p.clone());
    }
    if let Some(p) = &a.wallet_path {
        env.insert("ELECTRUM_WALLET_PATH".to_owned(), p.display().to_string());
    }
    if let Some(l) = &a.listen {
        env.insert("SNAKKAZ_PAY_LISTEN".to_owned(), l.clone());
    }
    let api_token = dir.join("api-token");
    let admin_token = dir.join("admin-token");
    env.insert(
        "SNAKKAZ_PAY_API_TOKEN_FILE".to_owned(),
        api_token.display().to_string(),
    );
    env.insert(
        "SNAKKAZ_PAY_ADMIN_TOKEN_FILE".to_owned(),
        admin_token.display().to_string(),
    );
    // An empty file layer: `init` checks exactly the values given on its command line,
    // not whatever an existing /etc/snakkaz-pay/config.toml says.
    let cfg = Config::load_with_flags(Some(std::path::Path::new("/dev/null")), &env, &flags)?;

    let wallet = match &cfg.change_descriptor {
        Some(c) => bdk_wallet::Wallet::create(cfg.descriptor.clone(), c.clone())
            .network(cfg.network)
            .create_wallet_no_persist(),
        None => bdk_wallet::Wallet::create_single(cfg.descriptor.clone())
            .network(cfg.network)
            .create_wallet_no_persist(),
    }
    .context("the descriptor cannot derive addresses")?;

    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut created = Vec::new();
    for path in [&api_token, &admin_token] {
        if !path.exists() {
            let token = new_token();
            crate::secret::write_secret_file(path, token.as_bytes())
                .with_context(|| format!("writing {}", path.display()))?;
            created.push(path.display().to_string());
        }
    }
    std::fs::write(out, cfg.to_toml()).with_context(|| format!("writing {}", out.display()))?;
    let addresses: Vec<String> = crate::wallet::peek_addresses(&wallet, ADDRESSES_SHOWN)
        .into_iter()
        .map(|a| a.to_string())
        .collect();
    let scan = scan(&cfg, &wallet);
    if cli.json {
        println!(
            "{}",
            serde_json::json!({
                "config": out.display().to_string(),
                "token_files_created": created,
                "descriptor": cfg.descriptor,
                "change_descriptor": cfg.change_descriptor,
                "first_addresses": addresses,
                "scan": scan,
            })
        );
    } else {
        println!("wrote {}", out.display());
        println!("receive descriptor: {}", cfg.descriptor);
        if let Some(c) = &cfg.change_descriptor {
            println!("change descriptor:  {c}");
        }
        for c in &created {
            println!("created token file {c} (mode 0600)");
        }
        println!("first receive addresses; check that your wallet shows the same:");
        for (i, a) in addresses.iter().enumerate() {
            println!("  {i}: {a}");
        }
        println!("scan: {}", scan["summary"].as_str().unwrap_or(""));
    }
    Ok(ExitCode::SUCCESS)
}

/// Looks for addresses of this key used before, on the configured server, so the operator
/// learns at once that an xpub has history (the daemon scans again at its first start
/// and starts handing out after the last used address).
fn scan(cfg: &Config, wallet: &bdk_wallet::Wallet) -> serde_json::Value {
    use bdk_wallet::KeychainKind;
    let Some(s) = cfg.servers.first().filter(|_| cfg.enabled) else {
        return serde_json::json!({"summary": "skipped: no Electrum server configured"});
    };
    if cfg.scan_stop_gap == 0 {
        return serde_json::json!({"summary": "skipped: SNAKKAZ_PAY_SCAN_STOP_GAP=0 (a key never used before)"});
    }
    let server = crate::chain::Server {
        host: s.host.clone(),
        port: s.port,
        tls: s.tls,
    };
    match crate::chain::scan_used(
        &server,
        cfg.ca_file.as_deref(),
        cfg.electrum_timeout,
        wallet,
        cfg.scan_stop_gap,
    ) {
        Ok(f) => {
            let receive = f.last_used.get(&KeychainKind::External).copied();
            let change = f.last_used.get(&KeychainKind::Internal).copied();
            let summary = match (receive, change) {
                (None, None) => format!(
                    "no address of this key was used before (stop gap {}); payments start at receive index 0",
                    cfg.scan_stop_gap
                ),
                _ => format!(
                    "this key was used before: receive addresses up to index {}, change up to {}, {} transaction(s); payments will start at receive index {}",
                    receive.map_or("none".into(), |i| i.to_string()),
                    change.map_or("none".into(), |i| i.to_string()),
                    f.txs,
                    receive.map_or(0, |i| i + 1)
                ),
            };
            serde_json::json!({
                "summary": summary,
                "last_used_receive_index": receive,
                "last_used_change_index": change,
                "transactions": f.txs,
            })
        }
        Err(e) => serde_json::json!({
            "summary": format!("not done ({e}); the daemon scans at its first start, before the first payment"),
        }),
    }
}

fn new_token() -> zeroize::Zeroizing<String> {
    let mut b = zeroize::Zeroizing::new([0u8; 32]);
    getrandom::fill(b.as_mut()).expect("the OS random number generator works");
    zeroize::Zeroizing::new(hex::encode(&b[..]))
}
