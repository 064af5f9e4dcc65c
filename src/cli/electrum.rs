//! `snakkaz-pay import-electrum-wallet`: the CLI edge of `electrum_compat::import`.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use clap::Args;
use zeroize::Zeroizing;

use super::Cli;
use crate::config::Config;
use crate::electrum_compat::import::{self, ImportReport};
use crate::electrum_compat::wallet_file;
use crate::secret::Secret;
use crate::store::{AuditEntry, Store};

/// Name of the systemd credential holding the Electrum wallet's password.
pub const PASSWORD_CREDENTIAL: &str = "electrum-wallet-password";
/// Largest password file read.
const MAX_PASSWORD_FILE_BYTES: u64 = 4096;

/// Arguments of `import-electrum-wallet`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The Electrum 4.x wallet file (plain or password-encrypted).
    pub file: PathBuf,
    /// File holding the wallet's password (else the systemd credential
    /// `electrum-wallet-password`, else ELECTRUM_WALLET_PASSWORD).
    #[arg(long)]
    pub password_file: Option<PathBuf>,
    /// Bring the wallet's open, unpaid payment requests over as payments.
    #[arg(long)]
    pub with_requests: bool,
}

pub(super) fn run(cli: &Cli, a: &ImportArgs) -> anyhow::Result<ExitCode> {
    let cfg = Config::from_process_env(Some(cli.config.as_path()))?;
    let password = password(a.password_file.as_deref(), &cfg)?;
    let bytes = read_wallet_file(&a.file)?;
    let file = wallet_file::parse(&bytes, password.as_ref())
        .map_err(import::ImportError::from)
        .with_context(|| format!("importing {}", a.file.display()))?;
    drop(bytes);
    import::verify(
        &file,
        cfg.network,
        &cfg.descriptor,
        cfg.change_descriptor.as_deref(),
    )
    .with_context(|| format!("importing {}", a.file.display()))?;

    let store = Store::open(&cfg.db_path).with_context(|| {
        format!(
            "opening {} (stop the daemon first: the import works on the database file)",
            cfg.db_path.display()
        )
    })?;
    let mut wallet = crate::wallet::load_or_create(&store, &crate::wallet::WalletParams::of(&cfg))?;
    let now = crate::clock::now();
    let next_receive = file.next_receive_index();
    let next_change = file.next_change_index();
    let (file_descriptor, file_change_descriptor) = file.descriptors();
    let next_change_index = import::record_used(
        &mut wallet,
        &store,
        next_receive,
        next_change,
        AuditEntry {
            at: now,
            action: "electrum.import".to_owned(),
            detail: format!(
                "{}: {} receive and {} change addresses, next receive index {}",
                a.file.display(),
                file.receiving.len(),
                file.change.len(),
                next_receive
            ),
            source: "cli".to_owned(),
        },
    )?;
    let requests = if a.with_requests {
        import::import_requests(&file, &store, now, cfg.payment_expiry.as_secs())?
    } else {
        Vec::new()
    };
    let report = ImportReport {
        encrypted: file.encrypted,
        had_private_keys: file.had_private_keys,
        script_type: file.account.script.electrum_name(),
        file_descriptor,
        file_change_descriptor,
        receive_addresses_listed: file.receiving.len(),
        change_addresses_listed: file.change.len(),
        addresses_with_history: import::used_listed(&file),
        next_receive_index: wallet.next_derivation_index(bdk_wallet::KeychainKind::External),
        next_change_index,
        requests,
    };
    print_report(
        cli.json,
        &a.file,
        &cfg,
        &report,
        a.with_requests,
        file.requests.len(),
    )?;
    Ok(ExitCode::SUCCESS)
}

fn print_report(
    json: bool,
    path: &Path,
    cfg: &Config,
    r: &ImportReport,
    with_requests: bool,
    requests_in_file: usize,
) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(r)?);
        return Ok(());
    }
    println!(
        "imported {} ({}{} wallet)",
        path.display(),
        if r.encrypted { "encrypted " } else { "" },
        r.script_type
    );
    if r.had_private_keys {
        println!(
            "note: the file holds private keys (seed/xprv); they were NOT read: imported watch-only"
        );
    }
    println!("descriptors from the file:");
    println!("  receive: {}", r.file_descriptor);
    println!("  change:  {}", r.file_change_descriptor);
    println!(
        "checked {} receive and {} change addresses: all derive from the configured descriptors",
        r.receive_addresses_listed, r.change_addresses_listed
    );
    println!(
        "{} of them have transactions; receive addresses 0..{} are recorded as handed out",
        r.addresses_with_history, r.next_receive_index
    );
    println!("next receive index: {}", r.next_receive_index);
    if let Some(c) = r.next_change_index {
        println!("next change index:  {c}");
    }
    if with_requests {
        for q in &r.requests {
            match (&q.payment_id, &q.skipped) {
                (Some(p), None) => println!(
                    "request {} ({} sat to {}): now payment {p}",
                    q.request_id, q.amount_sat, q.address
                ),
                (_, Some(why)) => println!("request {} skipped: {why}", q.request_id),
                (None, None) => {}
            }
        }
    } else if requests_in_file > 0 {
        println!(
            "the file has {requests_in_file} payment requests; pass --with-requests to bring the open ones over"
        );
    }
    println!(
        "database: {} (start the daemon; it scans the imported addresses)",
        cfg.db_path.display()
    );
    Ok(())
}

fn read_wallet_file(path: &Path) -> anyhow::Result<Zeroizing<Vec<u8>>> {
    let f = std::fs::File::open(path).with_context(|| {
        format!(
            "cannot open the wallet file {}; Electrum keeps it in ~/.electrum/wallets/ (or ELECTRUM_WALLET_PATH)",
            path.display()
        )
    })?;
    let mut bytes = Zeroizing::new(Vec::new());
    f.take(wallet_file::MAX_FILE_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("reading {}", path.display()))?;
    if bytes.len() > wallet_file::MAX_FILE_BYTES {
        bail!(
            "{} is larger than {} bytes: not an Electrum wallet file",
            path.display(),
            wallet_file::MAX_FILE_BYTES
        );
    }
    Ok(bytes)
}

/// The password: `--password-file`, else the systemd credential, else the environment.
fn password(file: Option<&Path>, cfg: &Config) -> anyhow::Result<Option<Secret>> {
    if let Some(p) = file {
        return read_password_file(p).map(Some);
    }
    if let Some(dir) = std::env::var_os("CREDENTIALS_DIRECTORY") {
        let p = Path::new(&dir).join(PASSWORD_CREDENTIAL);
        if p.exists() {
            return read_password_file(&p).map(Some);
        }
    }
    Ok(cfg.wallet_password.clone())
}

/// A password file: not readable by others, one trailing newline dropped, spaces kept.
fn read_password_file(path: &Path) -> anyhow::Result<Secret> {
    let f = std::fs::File::open(path)
        .with_context(|| format!("cannot open the password file {}", path.display()))?;
    let meta = f
        .metadata()
        .with_context(|| format!("reading {}", path.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o007 != 0 {
            bail!(
                "the password file {} is readable by others (mode {mode:o}); chmod 600 it",
                path.display()
            );
        }
    }
    let mut bytes = Zeroizing::new(Vec::with_capacity(MAX_PASSWORD_FILE_BYTES as usize + 1));
    f.take(MAX_PASSWORD_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("reading {}", path.display()))?;
    if bytes.len() as u64 > MAX_PASSWORD_FILE_BYTES || meta.len() > MAX_PASSWORD_FILE_BYTES {
        bail!("the password file {} is too large", path.display());
    }
    let text = std::str::from_utf8(&bytes)
        .with_context(|| format!("the password file {} is not UTF-8", path.display()))?;
    let text = text
        .strip_suffix('\n')
        .map(|t| t.strip_suffix('\r').unwrap_or(t))
        .unwrap_or(text);
    Ok(Secret::new(text))
}
