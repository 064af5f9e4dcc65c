//! `transfer create|broadcast|list` and `totp setup`: moving money to cold storage.
//!
//! Transfers go through the running daemon's admin API (it holds the wallet); a lock-down
//! refuses them there. `totp setup` works on the secret file on the box only.
//!
//! `cpfp` and `bump` build fee-bumping PSBTs the same way; their broadcast is `transfer
//! broadcast`.
//!
//! Exit codes: 0 done; 1 failure (daemon unreachable, build failed); 2 bad input (fee rate
//! out of bounds or not higher, destination not configured, insufficient funds, malformed
//! file, payment not stuck, transaction not bumpable); 3 unknown payment or txid; 4 the
//! Electrum server refused or was unreachable; 5 refused for safety (wrong or replayed
//! TOTP code, a transaction other than the one built, lock-down).

use std::io::{BufRead as _, IsTerminal as _, Write as _};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use clap::{Args, Subcommand};
use http::Method;
use serde_json::{Value, json};

use super::client::ClientError;
use super::{Cli, load_config};
use crate::spend::totp;

/// Exit code: bad input.
pub const EXIT_BAD_INPUT: u8 = 2;
/// Exit code: unknown payment or transaction.
pub const EXIT_UNKNOWN: u8 = 3;
/// Exit code: the Electrum server refused or was unreachable.
pub const EXIT_ELECTRUM: u8 = 4;
/// Exit code: refused for safety.
pub const EXIT_REFUSED: u8 = 5;

/// `transfer` subcommands.
#[derive(Debug, Subcommand)]
pub enum TransferCmd {
    /// Build a PSBT paying only the cold-storage destination and the wallet's own change.
    Create(CreateArgs),
    /// Check a signed transfer is the one built, ask for a TOTP code, broadcast it.
    Broadcast(BroadcastArgs),
    /// List the transfers built and broadcast.
    List,
}

/// `transfer create` arguments.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("how").required(true).args(["keep_sat", "amount_sat"])))]
pub struct CreateArgs {
    /// Keep this much in the hot wallet and send the rest.
    #[arg(long)]
    pub keep_sat: Option<u64>,
    /// Send exactly this much.
    #[arg(long)]
    pub amount_sat: Option<u64>,
    /// Fee rate in sat/vB (e.g. 5 or 2.5); see `snakkaz-pay fees`.
    #[arg(long, default_value = "2")]
    pub fee_rate: String,
    /// Where to write the PSBT (base64); default `transfer-TXID.psbt` here.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Hot mode: sign it with the appliance's hot key (written signed; broadcast still
    /// needs `transfer broadcast` and a TOTP code).
    #[arg(long)]
    pub sign: bool,
}

/// `transfer broadcast` arguments.
#[derive(Debug, Args)]
pub struct BroadcastArgs {
    /// The signed PSBT or raw transaction: a file, or the base64/hex text itself.
    pub signed: String,
}

/// `cpfp` arguments.
#[derive(Debug, Args)]
pub struct CpfpArgs {
    /// The stuck payment's id.
    pub payment_id: String,
    /// Package fee rate to reach, sat/vB (e.g. 10 or 12.5); see `snakkaz-pay fees`.
    #[arg(long)]
    pub fee_rate: String,
    /// Where the child pays: `change` (this wallet) or `cold` (the cold-storage destination).
    #[arg(long, default_value = "change")]
    pub to: String,
    /// Where to write the PSBT (base64); default `cpfp-TXID.psbt` here.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Hot mode: sign it with the appliance's hot key.
    #[arg(long)]
    pub sign: bool,
}

/// `hot` subcommands.
#[derive(Debug, Subcommand)]
pub enum HotCmd {
    /// Encrypt the wallet's extended private key (read from stdin, never argv) into the hot
    /// seed file (0600) with the wallet password.
    Import {
        /// Replace an existing seed file.
        #[arg(long)]
        force: bool,
    },
}

/// `bump` arguments.
#[derive(Debug, Args)]
pub struct BumpArgs {
    /// The broadcast transfer's txid.
    pub txid: String,
    /// New fee rate, sat/vB, higher than the transfer's.
    #[arg(long)]
    pub fee_rate: String,
    /// Where to write the PSBT (base64); default `bump-TXID.psbt` here.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// `totp` subcommands.
#[derive(Debug, Subcommand)]
pub enum TotpCmd {
    /// Create the TOTP secret (0600) and show it once as an otpauth URI and QR code.
    Setup {
        /// Replace an existing secret (the old authenticator entry stops working).
        #[arg(long)]
        force: bool,
    },
}

fn exit_for_code(code: &str) -> ExitCode {
    match code {
        "fee_rate_out_of_bounds"
        | "destination_not_configured"
        | "insufficient_funds"
        | "invalid_request"
        | "invalid_json"
        | "not_stuck"
        | "not_bumpable"
        | "fee_rate_not_higher"
        | "hot_mode_off" => ExitCode::from(EXIT_BAD_INPUT),
        "unknown_payment" | "unknown_txid" => ExitCode::from(EXIT_UNKNOWN),
        "broadcast_failed" | "electrum_unavailable" => ExitCode::from(EXIT_ELECTRUM),
        "wrong_totp"
        | "totp_not_set_up"
        | "not_the_built_transaction"
        | "locked_down"
        | "hot_sign_refused" => ExitCode::from(EXIT_REFUSED),
        _ => ExitCode::FAILURE,
    }
}

/// Calls the admin API; an API error becomes (code, message) for the exit code.
fn call(
    cli: &Cli,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> anyhow::Result<Result<Value, (String, String)>> {
    let cfg = load_config(cli)?;
    let client = super::access_admin_client(&cfg)?;
    match super::runtime()?.block_on(client.call(method, path, body)) {
        Ok((_, v)) => Ok(Ok(v)),
        Err(e) => match e.downcast_ref::<ClientError>() {
            Some(ClientError::Api { code, message, .. }) => {
                Ok(Err((code.clone(), message.clone())))
            }
            _ => Err(e),
        },
    }
}

fn fail(as_json: bool, code: &str, message: &str) -> anyhow::Result<ExitCode> {
    if as_json {
        let v = json!({"error": {"code": code, "message": message}});
        println!("{}", serde_json::to_string_pretty(&v)?);
    }
    eprintln!("error: {message}");
    Ok(exit_for_code(code))
}

fn show_record(v: &Value) {
    println!("transfer {}", v["txid"].as_str().unwrap_or(""));
    println!(
        "  to cold storage {}: {} sat",
        v["destination"].as_str().unwrap_or(""),
        v["amount_sat"]
    );
    println!("  change back to this wallet: {} sat", v["change_sat"]);
    println!(
        "  fee: {} sat at {} sat/vB",
        v["fee_sat"],
        v["fee_rate_sat_vb"].as_str().unwrap_or("")
    );
    for i in v["inputs"].as_array().into_iter().flatten() {
        println!("  spends {}", i.as_str().unwrap_or(""));
    }
}

/// `snakkaz-pay transfer …`.
pub fn transfer(cli: &Cli, cmd: &TransferCmd) -> anyhow::Result<ExitCode> {
    match cmd {
        TransferCmd::Create(a) => create(cli, a),
        TransferCmd::Broadcast(a) => broadcast(cli, a),
        TransferCmd::List => {
            let v = match call(cli, Method::GET, "/api/admin/transfers", None)? {
                Ok(v) => v,
                Err((code, message)) => return fail(cli.json, &code, &message),
            };
            if cli.json {
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                let list = v["transfers"].as_array().cloned().unwrap_or_default();
                if list.is_empty() {
                    println!("no transfers");
                }
                for t in &list {
                    println!(
                        "{}  {}  {} sat to {}  fee {} sat  {}",
                        t["created_at"].as_str().unwrap_or(""),
                        t["txid"].as_str().unwrap_or(""),
                        t["amount_sat"],
                        t["destination"].as_str().unwrap_or(""),
                        t["fee_sat"],
                        match t["broadcast_at"].as_str() {
                            Some(at) => format!("broadcast {at}"),
                            None => "built, not broadcast".into(),
                        }
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Writes a built PSBT to `out` (or `PREFIX-TXID.psbt`) and shows it.
fn write_built(
    cli: &Cli,
    v: &Value,
    out: Option<&PathBuf>,
    prefix: &str,
    show: impl FnOnce(&Value),
) -> anyhow::Result<ExitCode> {
    let txid = v["txid"].as_str().unwrap_or(prefix);
    let out = out
        .cloned()
        .unwrap_or_else(|| PathBuf::from(format!("{prefix}-{}.psbt", &txid[..txid.len().min(16)])));
    let signed = v["signed_psbt"].as_str();
    let psbt = signed.or(v["psbt"].as_str()).unwrap_or("");
    std::fs::write(&out, format!("{psbt}\n"))
        .with_context(|| format!("writing the PSBT to {}", out.display()))?;
    if cli.json {
        let mut v = v.clone();
        v["file"] = json!(out.display().to_string());
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        show(v);
        if signed.is_some() {
            println!("signed with the hot key; written to {}", out.display());
            println!(
                "broadcast it (a TOTP code is asked): snakkaz-pay transfer broadcast {}",
                out.display()
            );
        } else {
            println!("PSBT written to {}:", out.display());
            println!("{psbt}");
            println!(
                "sign it offline (e.g. `electrum signtransaction`), then: snakkaz-pay transfer broadcast SIGNED"
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `snakkaz-pay cpfp PAYMENT_ID --fee-rate R`.
pub fn cpfp(cli: &Cli, a: &CpfpArgs) -> anyhow::Result<ExitCode> {
    let rate = match crate::ops::rate::parse_sat_vb(&a.fee_rate) {
        Ok(r) => r,
        Err(m) => return fail(cli.json, "invalid_request", &format!("--fee-rate: {m}")),
    };
    let body = json!({"payment_id": a.payment_id, "fee_rate_sat_per_kvb": rate, "to": a.to, "sign": a.sign});
    let v = match call(cli, Method::POST, "/api/admin/cpfp", Some(body))? {
        Ok(v) => v,
        Err((code, message)) => return fail(cli.json, &code, &message),
    };
    write_built(cli, &v, a.out.as_ref(), "cpfp", |v| {
        println!(
            "CPFP child {} for payment {}",
            v["txid"].as_str().unwrap_or(""),
            v["payment_id"].as_str().unwrap_or("")
        );
        for p in v["parents"].as_array().into_iter().flatten() {
            println!("  spends the output of {}", p.as_str().unwrap_or(""));
        }
        println!(
            "  pays {} sat to {}",
            v["amount_sat"],
            v["destination"].as_str().unwrap_or("")
        );
        println!(
            "  child fee {} sat: package {} -> {} sat/vB",
            v["fee_sat"],
            v["package_fee_rate_before_sat_vb"].as_str().unwrap_or(""),
            v["package_fee_rate_after_sat_vb"].as_str().unwrap_or("")
        );
    })
}

/// `snakkaz-pay bump TXID --fee-rate R`.
pub fn bump(cli: &Cli, a: &BumpArgs) -> anyhow::Result<ExitCode> {
    let rate = match crate::ops::rate::parse_sat_vb(&a.fee_rate) {
        Ok(r) => r,
        Err(m) => return fail(cli.json, "invalid_request", &format!("--fee-rate: {m}")),
    };
    let body = json!({"txid": a.txid, "fee_rate_sat_per_kvb": rate});
    let v = match call(cli, Method::POST, "/api/admin/bump", Some(body))? {
        Ok(v) => v,
        Err((code, message)) => return fail(cli.json, &code, &message),
    };
    write_built(cli, &v, a.out.as_ref(), "bump", |v| {
        println!("fee bump of {}", v["replaces"].as_str().unwrap_or(""));
        show_record(v);
    })
}

fn create(cli: &Cli, a: &CreateArgs) -> anyhow::Result<ExitCode> {
    let rate = match crate::ops::rate::parse_sat_vb(&a.fee_rate) {
        Ok(r) => r,
        Err(m) => return fail(cli.json, "invalid_request", &format!("--fee-rate: {m}")),
    };
    let mut body = json!({"fee_rate_sat_per_kvb": rate, "sign": a.sign});
    match (a.keep_sat, a.amount_sat) {
        (Some(k), _) => body["keep_sat"] = json!(k),
        (_, Some(n)) => body["amount_sat"] = json!(n),
        _ => unreachable!("clap requires one of them"),
    }
    let v = match call(cli, Method::POST, "/api/admin/transfers", Some(body))? {
        Ok(v) => v,
        Err((code, message)) => return fail(cli.json, &code, &message),
    };
    write_built(cli, &v, a.out.as_ref(), "transfer", show_record)
}

/// Reads the TOTP code from stdin (a prompt when it is a terminal): never from argv.
fn read_code() -> anyhow::Result<String> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprint!("TOTP code: ");
        std::io::stderr().flush().ok();
    }
    let mut line = String::new();
    stdin
        .lock()
        .read_line(&mut line)
        .context("reading the TOTP code from stdin")?;
    Ok(line.trim().to_owned())
}

fn broadcast(cli: &Cli, a: &BroadcastArgs) -> anyhow::Result<ExitCode> {
    let path = std::path::Path::new(&a.signed);
    let text = if path.exists() {
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        if bytes.starts_with(b"psbt\xff") {
            use base64::Engine as _;
            base64::engine::general_purpose::STANDARD.encode(&bytes)
        } else {
            String::from_utf8(bytes)
                .map_err(|_| anyhow::anyhow!("{}: neither a PSBT nor text", path.display()))?
                .trim()
                .to_owned()
        }
    } else {
        a.signed.trim().to_owned()
    };
    // A local parse first: a damaged file is named before a TOTP code is spent on it.
    if let Err(e) = crate::spend::parse_signed(text.as_bytes()) {
        return fail(cli.json, e.code(), &e.to_string());
    }
    let code = read_code()?;
    let body = json!({"tx": text, "totp": code});
    let v = match call(
        cli,
        Method::POST,
        "/api/admin/transfers/broadcast",
        Some(body),
    )? {
        Ok(v) => v,
        Err((code, message)) => return fail(cli.json, &code, &message),
    };
    if cli.json {
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        show_record(&v);
        println!(
            "broadcast as {}; follow it with: snakkaz-pay tx {}",
            v["broadcast_txid"].as_str().unwrap_or(""),
            v["broadcast_txid"].as_str().unwrap_or("")
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `snakkaz-pay hot import`: on the box, the daemon may run (it reads the file when signing).
pub fn hot_cmd(cli: &Cli, cmd: &HotCmd) -> anyhow::Result<ExitCode> {
    let HotCmd::Import { force } = cmd;
    let cfg = load_config(cli)?;
    let Some(hot) = cfg.hot.as_ref() else {
        return fail(
            cli.json,
            "hot_mode_off",
            "hot mode is off: set SNAKKAZ_PAY_HOT_SEED_FILE (where the encrypted seed goes) first",
        );
    };
    let done = (|| {
        let password = crate::spend::hot::password(hot, &cfg)?;
        if std::io::stdin().is_terminal() {
            eprint!("extended private key (xprv/tprv of the wallet's root): ");
            std::io::stderr().flush().ok();
        }
        let mut line = zeroize::Zeroizing::new(String::new());
        std::io::stdin().lock().read_line(&mut line).map_err(|e| {
            crate::spend::SpendError::Hot(format!("reading the key from stdin: {e}"))
        })?;
        crate::spend::hot::check_key(&line, &cfg.descriptor)?;
        crate::spend::hot::write_seed(&hot.seed_file, &line, &password, *force)
    })();
    if let Err(e) = done {
        return fail(cli.json, e.code(), &e.to_string());
    }
    let file = hot.seed_file.display().to_string();
    if cli.json {
        println!("{}", serde_json::to_string_pretty(&json!({"file": file}))?);
    } else {
        println!(
            "hot seed encrypted into {file} (mode 0600); `transfer create --sign` and `cpfp --sign` now sign on the box"
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `snakkaz-pay totp setup`.
pub fn totp_cmd(cli: &Cli, cmd: &TotpCmd) -> anyhow::Result<ExitCode> {
    let TotpCmd::Setup { force } = cmd;
    let cfg = load_config(cli)?;
    let path = &cfg.totp_secret_file;
    if path.exists() && !force {
        bail!(
            "{} exists: a TOTP secret is already set up; use --force to replace it (the old authenticator entry stops working)",
            path.display()
        );
    }
    let mut secret = zeroize::Zeroizing::new([0u8; totp::SECRET_BYTES]);
    getrandom::fill(secret.as_mut_slice())
        .map_err(|e| anyhow::anyhow!("reading random bytes for the secret: {e}"))?;
    let b32 = totp::encode_secret(secret.as_slice());
    crate::secret::write_secret_file(path, format!("{}\n", b32.as_str()).as_bytes())
        .with_context(|| format!("writing {}", path.display()))?;
    let label = format!("{} {}", cfg.network, cfg.db_path.display());
    let uri = totp::otpauth_uri(&b32, &label);
    if cli.json {
        // Shown once, to the operator who asked for it on the box; never logged or stored elsewhere.
        let v = json!({"file": path.display().to_string(), "otpauth_uri": uri.as_str()});
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        let qr = qrcode::QrCode::new(uri.as_bytes()).context("drawing the QR code")?;
        let image = qr
            .render::<qrcode::render::unicode::Dense1x2>()
            .quiet_zone(true)
            .build();
        println!("{image}");
        println!("{}", uri.as_str());
        println!(
            "scan the QR code (or enter the URI) in an authenticator app now: it is shown only once."
        );
        println!(
            "secret written to {} (mode 0600); every `transfer broadcast` asks for a code.",
            path.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}
