//! The command line: `run` and the operator's procedures as subcommands.

mod access;
mod backup;
mod client;
mod electrum;
mod init;
mod ops;
mod receipts;
mod sink;
mod spend;
mod tls;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use http::Method;
use serde_json::{Value, json};

use crate::config::Config;
use client::DaemonClient;

/// Default configuration file.
pub const DEFAULT_CONFIG: &str = "/etc/snakkaz-pay/config.toml";

/// snakkaz-pay: a self-hosted Bitcoin payment appliance.
#[derive(Debug, Parser)]
#[command(version, about)]
pub struct Cli {
    /// Configuration file (TOML); environment variables override it.
    #[arg(long, global = true, env = "SNAKKAZ_PAY_CONFIG", default_value = DEFAULT_CONFIG)]
    pub config: PathBuf,
    /// Print JSON instead of a human summary.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon.
    Run,
    /// Check descriptors, write a config file and token files, print the first addresses.
    Init(init::InitArgs),
    /// Continue an Electrum wallet (4.x file, plain or encrypted): check its addresses against
    /// the configured descriptors and never hand out an address it handed out. Daemon stopped.
    ImportElectrumWallet(electrum::ImportArgs),
    /// The daily status check; exits non-zero when the daemon is down or Electrum is lost.
    Status,
    /// Work with payments through the running daemon.
    #[command(subcommand)]
    Payment(PaymentCmd),
    /// The Supabase sink: print its schema, or re-queue every payment.
    #[command(subcommand)]
    Sink(sink::SinkCmd),
    /// Print monitoring files: Prometheus rules and scrape config, Grafana dashboards.
    #[command(subcommand)]
    Monitoring(MonitoringCmd),
    /// Money no open payment counts (unattributed receipts); exit 2 while any is unassigned.
    Receipts {
        /// Assign a receipt to a payment.
        #[command(subcommand)]
        cmd: Option<receipts::ReceiptsCmd>,
    },
    /// Incident response: refuse new payments, admin actions and spending; keep watching.
    Lockdown(access::LockdownArgs),
    /// Lift a lock-down (local access only: on the file, or through a request file).
    Unlock,
    /// Rotate the API and admin bearer tokens.
    #[command(subcommand)]
    Tokens(access::TokensCmd),
    /// Print the audit log: admin actions, lock-downs, rotations, failed logins.
    Audit(access::AuditArgs),
    /// The HTTPS certificate of the page and API.
    #[command(subcommand)]
    Tls(tls::TlsCmd),
    /// Take an encrypted backup (snapshot through the daemon, or of the stopped database).
    Backup(backup::BackupArgs),
    /// Decrypt a backup, rebuild the wallet from it and compare with this configuration.
    VerifyBackup(backup::VerifyArgs),
    /// Restore a backup over the database (daemon stopped; the old file is kept aside).
    Restore(backup::RestoreArgs),
    /// Print the descriptors, account xpub (and SLIP-132 form) and first addresses.
    ExportMpk,
    /// Look up a transaction (by txid, address, payment id or reference) on the Electrum
    /// server: confirmations, fee and fee rate, RBF, unconfirmed parents, payments it pays.
    /// Exit codes: 0 found, 3 unknown, 4 Electrum unreachable, 1 other failures.
    Tx(ops::TxArgs),
    /// Move money to cold storage: build a PSBT, broadcast it signed (TOTP-confirmed).
    /// Exit codes: 0 done, 2 bad input, 4 Electrum refused, 5 refused for safety, 1 other.
    #[command(subcommand)]
    Transfer(spend::TransferCmd),
    /// The TOTP secret that confirms every broadcast.
    #[command(subcommand)]
    Totp(spend::TotpCmd),
    /// Fee estimates, the mempool histogram and whether unconfirmed payments will confirm soon.
    /// Exit codes: 0 answered, 4 Electrum unreachable, 1 other failures.
    Fees,
}

/// `monitoring` subcommands (print to stdout; no daemon or configuration needed).
#[derive(Debug, Subcommand)]
pub enum MonitoringCmd {
    /// The Prometheus alerting rules (the guide's five alerts).
    PrometheusRules,
    /// The three Grafana dashboards as a JSON array.
    GrafanaDashboards,
    /// The Prometheus scrape configuration for /api/metrics/bitcoin.
    PrometheusScrapeConfig,
}

/// `payment` subcommands.
#[derive(Debug, Subcommand)]
pub enum PaymentCmd {
    /// Create a payment request.
    Create {
        /// Amount in satoshis.
        #[arg(long)]
        amount_sat: u64,
        /// Your reference (idempotency key).
        #[arg(long)]
        reference: String,
        /// Seconds until expiry.
        #[arg(long)]
        expires_in_secs: Option<u64>,
        /// Description shown to the payer.
        #[arg(long)]
        description: Option<String>,
    },
    /// List payments, newest first.
    List {
        /// Only this status.
        #[arg(long)]
        status: Option<String>,
        /// Only this reference.
        #[arg(long)]
        reference: Option<String>,
        /// Page size.
        #[arg(long, default_value_t = 50)]
        limit: usize,
        /// Cursor from a previous page.
        #[arg(long)]
        cursor: Option<String>,
    },
    /// Show one payment with its history.
    Show {
        /// Payment id.
        id: String,
    },
    /// Acknowledge a confirmed payment.
    Complete {
        /// Payment id.
        id: String,
    },
}

/// Parses the command line and runs the command.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match dispatch(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn config_path(cli: &Cli) -> Option<&std::path::Path> {
    Some(cli.config.as_path())
}

fn load_config(cli: &Cli) -> anyhow::Result<Config> {
    Ok(Config::from_process_env(config_path(cli))?)
}

fn init_tracing(filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colours only for a person at a terminal: the journal and log files get plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let _already_set_in_tests = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .try_init();
}

/// Blocking tasks still running at shutdown get this long before the process exits.
const RUNTIME_STOP: std::time::Duration = std::time::Duration::from_secs(1);

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    match &cli.command {
        Command::Run => {
            let cfg = load_config(&cli)?;
            init_tracing(&cfg.log_filter);
            let rt = runtime()?;
            let result = rt.block_on(crate::daemon::run(cfg));
            // Dropping a runtime waits for every blocking task without limit; a network
            // call still in flight must not keep a stopping daemon alive.
            rt.shutdown_timeout(RUNTIME_STOP);
            result?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Init(args) => init::run(&cli, args),
        Command::ImportElectrumWallet(args) => electrum::run(&cli, args),
        Command::Status => {
            let cfg = load_config(&cli)?;
            runtime()?.block_on(status(&cfg, cli.json))
        }
        Command::Payment(cmd) => {
            let cfg = load_config(&cli)?;
            runtime()?.block_on(payment(&cfg, cmd, cli.json))
        }
        Command::Sink(cmd) => sink::run(&cli, cmd),
        Command::Receipts { cmd } => receipts::run(&cli, cmd.as_ref()),
        Command::Lockdown(args) => access::lockdown(&cli, args),
        Command::Unlock => access::unlock(&cli),
        Command::Tokens(cmd) => access::tokens(&cli, cmd),
        Command::Audit(args) => access::audit(&cli, args),
        Command::Tls(cmd) => tls::run(&cli, cmd),
        Command::Backup(args) => backup::backup(&cli, args),
        Command::VerifyBackup(args) => backup::verify_backup(&cli, args),
        Command::Restore(args) => backup::restore(&cli, args),
        Command::ExportMpk => backup::export_mpk(&cli),
        Command::Tx(args) => ops::tx(&cli, args),
        Command::Fees => ops::fees(&cli),
        Command::Transfer(cmd) => spend::transfer(&cli, cmd),
        Command::Totp(cmd) => spend::totp_cmd(&cli, cmd),
        Command::Monitoring(cmd) => {
            match cmd {
                MonitoringCmd::PrometheusRules => print!("{}", crate::monitoring::PROMETHEUS_RULES),
                MonitoringCmd::GrafanaDashboards => {
                    println!("{}", crate::monitoring::grafana_dashboards_json())
                }
                MonitoringCmd::PrometheusScrapeConfig => {
                    print!("{}", crate::monitoring::PROMETHEUS_SCRAPE)
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn daemon_client(cfg: &Config) -> anyhow::Result<DaemonClient> {
    let tokens = crate::daemon::load_tokens(cfg)?;
    let token = tokens
        .admin
        .or(tokens.api)
        .context("no token file configured")?;
    client_for(cfg, token)
}

/// A client holding the admin token, for admin endpoints.
pub(crate) fn access_admin_client(cfg: &Config) -> anyhow::Result<DaemonClient> {
    let tokens = crate::daemon::load_tokens(cfg)?;
    let token = tokens.admin.context(
        "SNAKKAZ_PAY_ADMIN_TOKEN_FILE: not set; talking to the running daemon needs the admin token",
    )?;
    client_for(cfg, token)
}

/// A client for the daemon of `cfg`: HTTPS pinned to its certificate when it has one.
pub(crate) fn client_for(
    cfg: &Config,
    token: crate::secret::Secret,
) -> anyhow::Result<DaemonClient> {
    let client = DaemonClient::new(cfg.listen, token);
    Ok(match &cfg.tls_cert_file {
        Some(path) => client.with_pinned_tls(&crate::web::tls::load(path)?.fingerprint),
        None => client,
    })
}

async fn status(cfg: &Config, as_json: bool) -> anyhow::Result<ExitCode> {
    let client = daemon_client(cfg)?;
    let (_, s) = client.call(Method::GET, "/api/status", None).await?;
    let healthy = s["healthy"].as_bool().unwrap_or(false);
    if as_json {
        println!("{}", serde_json::to_string_pretty(&s)?);
    } else {
        let e = &s["electrum"];
        println!(
            "snakkaz-pay {} on {}",
            s["version"].as_str().unwrap_or("?"),
            s["network"].as_str().unwrap_or("?")
        );
        println!("health:    {}", if healthy { "OK" } else { "DEGRADED" });
        for p in s["problems"].as_array().into_iter().flatten() {
            println!("  problem: {}", p.as_str().unwrap_or(""));
        }
        println!(
            "electrum:  {} {} tip {}",
            if e["connected"].as_bool() == Some(true) {
                "connected to"
            } else {
                "disconnected from"
            },
            e["server"].as_str().unwrap_or("-"),
            e["tip_height"]
                .as_u64()
                .map_or("-".into(), |t| t.to_string())
        );
        let w = &s["wallet"];
        println!(
            "wallet:    {} sat confirmed, {} sat unconfirmed, {} addresses in use",
            w["confirmed_sat"], w["unconfirmed_sat"], w["addresses_in_use"]
        );
        let counts: Vec<String> = s["payments"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        println!("payments:  {}", counts.join(", "));
        println!("outbox:    {} pending", s["outbox"]["pending"]);
    }
    Ok(if healthy {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
}

async fn payment(cfg: &Config, cmd: &PaymentCmd, as_json: bool) -> anyhow::Result<ExitCode> {
    let client = daemon_client(cfg)?;
    let (_, v) = match cmd {
        PaymentCmd::Create {
            amount_sat,
            reference,
            expires_in_secs,
            description,
        } => {
            let body = json!({
                "amount_sat": amount_sat,
                "reference": reference,
                "expires_in_secs": expires_in_secs,
                "description": description,
            });
            client
                .call(Method::POST, "/api/payments", Some(body))
                .await?
        }
        PaymentCmd::List {
            status,
            reference,
            limit,
            cursor,
        } => {
            let mut q = form_urlencoded::Serializer::new(String::new());
            q.append_pair("limit", &limit.to_string());
            if let Some(s) = status {
                q.append_pair("status", s);
            }
            if let Some(r) = reference {
                q.append_pair("reference", r);
            }
            if let Some(c) = cursor {
                q.append_pair("cursor", c);
            }
            client
                .call(Method::GET, &format!("/api/payments?{}", q.finish()), None)
                .await?
        }
        PaymentCmd::Show { id } => {
            client
                .call(
                    Method::GET,
                    &format!("/api/payments/{}", encode_segment(id)),
                    None,
                )
                .await?
        }
        PaymentCmd::Complete { id } => {
            client
                .call(
                    Method::POST,
                    &format!("/api/payments/{}/complete", encode_segment(id)),
                    None,
                )
                .await?
        }
    };
    if as_json {
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else if let Some(list) = v["payments"].as_array() {
        for p in list {
            print_payment_line(p);
        }
        if let Some(c) = v["next_cursor"].as_str() {
            println!("(more: --cursor {c})");
        }
    } else {
        print_payment(&v);
    }
    Ok(ExitCode::SUCCESS)
}

fn encode_segment(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fn print_payment_line(p: &Value) {
    println!(
        "{}  {:<11} {:>12} sat  received {:>12}  conf {:>3}  {}",
        p["id"].as_str().unwrap_or(""),
        p["status"].as_str().unwrap_or(""),
        p["amount_sat"],
        p["received_sat"],
        p["confirmations"],
        p["reference"].as_str().unwrap_or("")
    );
}

fn print_payment(p: &Value) {
    println!("id:            {}", p["id"].as_str().unwrap_or(""));
    println!("reference:     {}", p["reference"].as_str().unwrap_or(""));
    println!("status:        {}", p["status"].as_str().unwrap_or(""));
    println!("address:       {}", p["address"].as_str().unwrap_or(""));
    println!("amount:        {} sat", p["amount_sat"]);
    println!("received:      {} sat", p["received_sat"]);
    println!("confirmations: {}", p["confirmations"]);
    println!("expires at:    {}", p["expires_at"].as_str().unwrap_or(""));
    println!("pay with:      {}", p["bip21"].as_str().unwrap_or(""));
    for e in p["events"].as_array().into_iter().flatten() {
        println!(
            "  {}  {} -> {}  {}",
            e["at"].as_str().unwrap_or(""),
            e["from"].as_str().unwrap_or("-"),
            e["to"].as_str().unwrap_or(""),
            e["reason"].as_str().unwrap_or("")
        );
    }
}
