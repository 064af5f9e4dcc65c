//! The command line: `run` and the operator's procedures as subcommands.

mod access;
mod archive;
mod backup;
mod client;
mod electrum;
mod init;
mod ops;
mod receipts;
mod reconcile;
mod show;
mod sink;
mod spend;
mod tls;
mod update;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};
use http::Method;
use serde_json::json;

use crate::config::{ClientConfig, Config, Flag, keys};
use client::DaemonClient;

/// Default configuration file.
pub const DEFAULT_CONFIG: &str = "/etc/snakkaz-pay/config.toml";

/// Exit code: the daemon reports a problem (`status`).
pub const EXIT_DEGRADED: u8 = 2;
/// Exit code: the command line is wrong (nothing was done).
pub const EXIT_USAGE: u8 = 64;
/// Exit code: the configuration (file, environment or token file) is unusable.
pub const EXIT_CONFIG: u8 = 78;

const EXIT_CODES: &str = "Exit codes: 0 done; 1 failed (the error says what and what to do); \
64 wrong command line; 78 (status, payment) unusable configuration or token file. \
`status` also exits 2 when the appliance is degraded. Each command's --help has its own.";

/// snakkaz-pay: a self-hosted Bitcoin payment appliance.
#[derive(Debug, Parser)]
#[command(version, about, after_help = EXIT_CODES)]
pub struct Cli {
    /// Configuration file (TOML); environment variables override it.
    #[arg(long, global = true, env = "SNAKKAZ_PAY_CONFIG", default_value = DEFAULT_CONFIG)]
    pub config: PathBuf,
    /// Print JSON instead of a human summary (amounts in satoshis).
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon (logs to stderr; under systemd it reports ready and pings the watchdog).
    #[command(
        after_help = "Exit codes: 0 stopped by SIGTERM/SIGINT; 1 could not start or failed \
(the log's last line says why); 78 unusable configuration.\n\
Example: snakkaz-pay --config /etc/snakkaz-pay/config.toml run"
    )]
    Run,
    /// Check descriptors, write a config file and token files, print the first addresses.
    #[command(
        after_help = "Exit codes: 0 done; 1 failed, or unusable configuration (the error names what and what to do); 64 wrong command line.\nExample: snakkaz-pay init --descriptor zpub6r... --network bitcoin --electrum-host electrum.example.org"
    )]
    Init(init::InitArgs),
    /// Continue an Electrum wallet (4.x file, plain or encrypted): check its addresses against
    /// the configured descriptors and never hand out an address it handed out. Daemon stopped.
    #[command(
        after_help = "Exit codes: 0 done; 1 failed, or unusable configuration (the error names what and what to do); 64 wrong command line.\nExample: snakkaz-pay import-electrum-wallet ~/.electrum/wallets/default_wallet --with-requests"
    )]
    ImportElectrumWallet(electrum::ImportArgs),
    /// The daily status check: asks the running daemon (needs only its address and a token).
    #[command(
        after_help = "Exit codes: 0 healthy; 1 the daemon is not reachable (or refused the \
token); 2 degraded (the problems are printed, e.g. Electrum lost); 64 wrong command line; \
78 unusable configuration or token file.\n\
Example: snakkaz-pay status --listen 127.0.0.1:8080 --token-file /etc/snakkaz-pay/api-token"
    )]
    Status(DaemonArgs),
    /// Create, list, show and complete payments through the running daemon.
    #[command(
        after_help = "Exit codes: see each subcommand (0 done; 1 failed; 64 wrong command line; 78 unusable configuration or token file).\nExample: snakkaz-pay payment list --status pending"
    )]
    Payment(PaymentArgs),
    /// The Supabase sink: print its schema, or re-queue every payment.
    #[command(subcommand)]
    #[command(
        after_help = "Exit codes: 0 done; 1 failed, or unusable configuration (the error names what and what to do); 64 wrong command line.\nExample: snakkaz-pay sink schema > supabase-schema.sql"
    )]
    Sink(sink::SinkCmd),
    /// Print monitoring files: Prometheus rules and scrape config, Grafana dashboards.
    #[command(subcommand)]
    #[command(
        after_help = "Exit codes: 0 printed; 64 wrong command line (including --json: the files are printed as they are).\nExample: snakkaz-pay monitoring prometheus-rules > /etc/prometheus/rules/snakkaz-pay.yml"
    )]
    Monitoring(MonitoringCmd),
    /// Money no open payment counts (unattributed receipts); exit 2 while any is unassigned.
    Receipts {
        /// Assign a receipt to a payment.
        #[command(subcommand)]
        cmd: Option<receipts::ReceiptsCmd>,
    },
    /// Incident response: refuse new payments, admin actions and spending; keep watching.
    #[command(
        after_help = "Exit codes: 0 done; 1 failed, or unusable configuration (the error names what and what to do); 64 wrong command line.\nExample: snakkaz-pay lockdown --reason \"unknown admin login\""
    )]
    Lockdown(access::LockdownArgs),
    /// Lift a lock-down (local access only: on the file, or through a request file).
    #[command(
        after_help = "Exit codes: 0 done; 1 failed, or unusable configuration (the error names what and what to do); 64 wrong command line.\nExample (on the box, as root): snakkaz-pay unlock"
    )]
    Unlock,
    /// Rotate the API and admin bearer tokens.
    #[command(subcommand)]
    #[command(
        after_help = "Exit codes: 0 done; 1 failed, or unusable configuration (the error names what and what to do); 64 wrong command line.\nExample: snakkaz-pay tokens rotate all --grace-secs 3600 (grace 0 to 604800 s)"
    )]
    Tokens(access::TokensCmd),
    /// Print the audit log: admin actions, lock-downs, rotations, failed logins.
    #[command(
        after_help = "Exit codes: 0 done; 1 failed, or unusable configuration (the error names what and what to do); 64 wrong command line.\nExample: snakkaz-pay audit --since 24h --action auth."
    )]
    Audit(access::AuditArgs),
    /// The HTTPS certificate of the page and API.
    #[command(subcommand)]
    #[command(
        after_help = "Exit codes: 0 done; 1 failed, or unusable configuration (the error names what and what to do); 64 wrong command line.\nExample: snakkaz-pay tls generate --out /etc/snakkaz-pay/tls.pem --name pay.lan"
    )]
    Tls(tls::TlsCmd),
    /// Take an encrypted backup (snapshot through the daemon, or of the stopped database).
    #[command(
        after_help = "Exit codes: 0 written (and copied off-site when configured); 3 written, but the off-site copy failed; 1 failed; 64 wrong command line.\nExample: snakkaz-pay backup --to /var/lib/snakkaz-pay/backups"
    )]
    Backup(backup::BackupArgs),
    /// Decrypt a backup, rebuild the wallet from it and compare with this configuration.
    #[command(
        after_help = "Exit codes: 0 the backup restores and matches; 1 it does not (the reason: truncated, altered, other_key, corrupt, other_network, ...), or unusable configuration; 64 wrong command line.\nExample: snakkaz-pay verify-backup --latest --identity /etc/snakkaz-pay/backup-verify-identity.txt"
    )]
    VerifyBackup(backup::VerifyArgs),
    /// Restore a backup over the database (daemon stopped; the old file is kept aside).
    #[command(
        after_help = "Exit codes: 0 done; 1 failed, or unusable configuration (the error names what and what to do); 64 wrong command line.\nExample (daemon stopped): snakkaz-pay restore FILE.redb.age --identity /media/usb/snakkaz-pay-backup.key"
    )]
    Restore(backup::RestoreArgs),
    /// Print the descriptors, account xpub (and SLIP-132 form) and first addresses.
    #[command(
        after_help = "Exit codes: 0 done; 1 failed, or unusable configuration (the error names what and what to do); 64 wrong command line.\nExample: snakkaz-pay --json export-mpk"
    )]
    ExportMpk,
    /// Install a signed update bundle on the inactive root slot and reboot into it.
    Update(update::UpdateArgs),
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
    /// Compare the store with the chain (and the Supabase rows) and report each
    /// difference; `--fix` applies the lifecycle's answer. Resumable.
    /// Exit codes: 0 no differences left, 6 differences not fixed, 5 Supabase not compared,
    /// 4 Electrum unreachable, 1 other failures.
    Reconcile(reconcile::ReconcileArgs),
    /// Move settled payments unchanged for longer than --older-than (default 90d) into the
    /// archive, and their Supabase rows into electrum_payments_archive. They stay readable.
    /// Exit codes: 0 done, 5 Supabase rows not moved (retried next run), 64 bad arguments,
    /// 1 other failures.
    Archive(archive::ArchiveArgs),
    /// CPFP a stuck incoming payment: a PSBT of a child spending its output to this wallet's
    /// change (or cold storage) so parent and child reach the fee rate.
    /// Exit codes: 0 built, 2 bad input, 3 unknown payment, 4 Electrum unreachable, 5 refused, 1 other.
    Cpfp(spend::CpfpArgs),
    /// Hot mode: import the wallet's key into the encrypted seed file.
    #[command(subcommand)]
    Hot(spend::HotCmd),
    /// RBF fee bump of a broadcast transfer: a PSBT replacing it at a higher fee rate.
    /// Exit codes: 0 built, 2 bad input, 3 unknown txid, 5 refused, 1 other.
    Bump(spend::BumpArgs),
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

/// Where the daemon listens and which token to show it: all that `status` and `payment`
/// need. Defaults come from the config file and the environment; the wallet's settings
/// (descriptors, Electrum) are not read.
#[derive(Debug, Args)]
pub struct DaemonArgs {
    /// The daemon's address [default: SNAKKAZ_PAY_LISTEN of the config file or environment, else 127.0.0.1:8080].
    #[arg(long, global = true, value_name = "IP:PORT")]
    pub listen: Option<String>,
    /// File holding the API (or admin) token [default: SNAKKAZ_PAY_API_TOKEN_FILE, else SNAKKAZ_PAY_ADMIN_TOKEN_FILE].
    #[arg(long, global = true, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
}

/// `payment`: its daemon arguments and the subcommand.
#[derive(Debug, Args)]
pub struct PaymentArgs {
    #[command(flatten)]
    daemon: DaemonArgs,
    #[command(subcommand)]
    cmd: PaymentCmd,
}

/// `payment` subcommands.
#[derive(Debug, Subcommand)]
pub enum PaymentCmd {
    /// Create a payment request (the same reference again returns the same payment).
    #[command(after_help = PAYMENT_CREATE_HELP)]
    Create {
        /// Amount in satoshis, 1 to 2,100,000,000,000,000.
        #[arg(long, value_name = "SAT", value_parser = clap::value_parser!(u64).range(1..=crate::payments::MAX_AMOUNT_SAT))]
        amount_sat: u64,
        /// Your reference (idempotency key), 1-128 printable characters.
        #[arg(long)]
        reference: String,
        /// Seconds until expiry, 1 to 2,592,000 (30 days) [default: SNAKKAZ_PAY_PAYMENT_EXPIRY_SECS, 3600].
        #[arg(long, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..=2_592_000))]
        expires_in_secs: Option<u64>,
        /// Description shown to the payer (in the BIP21 URI).
        #[arg(long)]
        description: Option<String>,
    },
    /// List payments, newest first, with a header (ID, status, amounts, flags, reference).
    #[command(after_help = PAYMENT_LIST_HELP)]
    List {
        /// Only this status: pending, unconfirmed, confirmed, completed, expired or underpaid.
        #[arg(long)]
        status: Option<String>,
        /// Only this reference.
        #[arg(long)]
        reference: Option<String>,
        /// Page size, 1 to 500.
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u16).range(1..=500))]
        limit: u16,
        /// Cursor from a previous page (printed as "more: --cursor C").
        #[arg(long)]
        cursor: Option<String>,
    },
    /// Show one payment: flags, amounts asked and received, transactions, times and its history.
    #[command(after_help = PAYMENT_SHOW_HELP)]
    Show {
        /// Payment id (pay_...).
        id: String,
    },
    /// Acknowledge a confirmed payment (it becomes completed; repeating it is harmless).
    #[command(after_help = PAYMENT_COMPLETE_HELP)]
    Complete {
        /// Payment id (pay_...).
        id: String,
    },
}

const PAYMENT_CREATE_HELP: &str = "Exit codes: 0 created (or the existing payment of this reference); 1 the daemon is not \
reachable or refused the request (the error names the field); 64 wrong command line; \
78 unusable configuration or token file.\n\
Example: snakkaz-pay payment create --amount-sat 150000 --reference order-7 --description \"Snakkaz Pro\"";

const PAYMENT_LIST_HELP: &str = "Exit codes: 0 listed (also when there are none); 1 the daemon is not reachable or refused \
the request; 64 wrong command line; 78 unusable configuration or token file.\n\
Example: snakkaz-pay payment list --status pending --limit 20";

const PAYMENT_SHOW_HELP: &str = "Exit codes: 0 shown; 1 no such payment, or the daemon is not reachable; 64 wrong command \
line; 78 unusable configuration or token file.\n\
Example: snakkaz-pay payment show pay_0123456789abcdef0123456789abcdef";

const PAYMENT_COMPLETE_HELP: &str = "Exit codes: 0 completed; 1 not confirmed yet, no such payment, or the daemon is not \
reachable; 64 wrong command line; 78 unusable configuration or token file.\n\
Example: snakkaz-pay payment complete pay_0123456789abcdef0123456789abcdef";

/// Parses the command line and runs the command.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // clap's own code for a usage error is 2, which `status` gives to "degraded".
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(EXIT_USAGE)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    match dispatch(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            if e.downcast_ref::<SetupError>().is_some() {
                ExitCode::from(EXIT_CONFIG)
            } else if e.downcast_ref::<UsageError>().is_some() {
                ExitCode::from(EXIT_USAGE)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

/// The client side could not be set up (configuration or token file): nothing was asked.
#[derive(Debug, thiserror::Error)]
#[error("{0:#}")]
struct SetupError(anyhow::Error);

/// An option that means nothing for this command.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct UsageError(&'static str);

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
        Command::Run if cli.json => Err(UsageError(
            "--json: `run` is the daemon and prints no summary; leave --json out (the log goes to stderr)",
        )
        .into()),
        Command::Monitoring(_) if cli.json => Err(UsageError(
            "--json: `monitoring` prints the files themselves (YAML, or JSON for the dashboards); leave --json out",
        )
        .into()),
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
        Command::Status(args) => {
            let client = daemon_only_client(&cli, args)?;
            runtime()?.block_on(status(&client, cli.json))
        }
        Command::Payment(args) => {
            let client = daemon_only_client(&cli, &args.daemon)?;
            runtime()?.block_on(payment(&client, &args.cmd, cli.json))
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
        Command::Update(args) => update::run(&cli, args),
        Command::Tx(args) => ops::tx(&cli, args),
        Command::Fees => ops::fees(&cli),
        Command::Reconcile(args) => reconcile::run(&cli, args),
        Command::Archive(args) => archive::run(&cli, args),
        Command::Transfer(cmd) => spend::transfer(&cli, cmd),
        Command::Totp(cmd) => spend::totp_cmd(&cli, cmd),
        Command::Cpfp(a) => spend::cpfp(&cli, a),
        Command::Bump(a) => spend::bump(&cli, a),
        Command::Hot(cmd) => spend::hot_cmd(&cli, cmd),
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

/// A client from the daemon's address and a token only (`status`, `payment`): the
/// descriptors and Electrum settings are neither needed nor checked.
fn daemon_only_client(cli: &Cli, args: &DaemonArgs) -> anyhow::Result<DaemonClient> {
    let mut flags = Vec::new();
    if let Some(l) = &args.listen {
        flags.push(Flag {
            key: keys::LISTEN,
            flag: "--listen",
            value: l.clone(),
        });
    }
    if let Some(t) = &args.token_file {
        flags.push(Flag {
            key: keys::API_TOKEN_FILE,
            flag: "--token-file",
            value: t.display().to_string(),
        });
    }
    let setup = || -> anyhow::Result<DaemonClient> {
        let c = ClientConfig::from_process_env(config_path(cli), &flags)?;
        let (key, path) = match (&c.api_token_file, &c.admin_token_file) {
            (Some(p), _) => (
                if args.token_file.is_some() {
                    "--token-file"
                } else {
                    keys::API_TOKEN_FILE
                },
                p,
            ),
            (None, Some(p)) => (keys::ADMIN_TOKEN_FILE, p),
            (None, None) => anyhow::bail!(
                "no token: give --token-file FILE, or set SNAKKAZ_PAY_API_TOKEN_FILE (in {} or the environment)",
                cli.config.display()
            ),
        };
        let token = crate::secret::read_token_file(path).with_context(|| key.to_owned())?;
        let client = DaemonClient::new(c.listen, token);
        Ok(match &c.tls_cert_file {
            Some(path) => client.with_pinned_tls(&crate::web::tls::load(path)?.fingerprint),
            None => client,
        })
    };
    setup().map_err(|e| SetupError(e).into())
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

async fn status(client: &DaemonClient, as_json: bool) -> anyhow::Result<ExitCode> {
    let (_, s) = client.call(Method::GET, "/api/status", None).await?;
    let healthy = s["healthy"].as_bool().unwrap_or(false);
    if as_json {
        println!("{}", serde_json::to_string_pretty(&s)?);
    } else {
        print!("{}", show::status(&s));
    }
    Ok(if healthy {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_DEGRADED)
    })
}

async fn payment(
    client: &DaemonClient,
    cmd: &PaymentCmd,
    as_json: bool,
) -> anyhow::Result<ExitCode> {
    let mut filtered = false;
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
            filtered = status.is_some() || reference.is_some() || cursor.is_some();
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
    } else if v["payments"].is_array() {
        print!("{}", show::payment_list(&v, filtered));
    } else {
        print!("{}", show::payment(&v, std::time::SystemTime::now()));
    }
    Ok(ExitCode::SUCCESS)
}

fn encode_segment(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}
