//! `lockdown`, `unlock`, `tokens rotate` and `audit`: incident response at the command line.
//!
//! With the daemon stopped these work on the database file; with it running, lock-down and
//! the audit log go through its admin API, and unlock through a request file next to the
//! database (local access only: the network API cannot lift a lock-down).

use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use clap::{Args, Subcommand, ValueEnum};
use http::Method;
use serde_json::{Value, json};

use super::client::DaemonClient;
use super::ops::open_unless_daemon;
use super::{Cli, load_config};
use crate::access::local::{self, RequestKind};
use crate::access::lockdown;
use crate::access::{audit_json, lockdown_json};
use crate::config::Config;
use crate::secret::Secret;

/// How long the CLI waits for the daemon to pick up a request file.
const PICKUP_TIMEOUT: Duration = Duration::from_secs(20);

/// `lockdown` arguments.
#[derive(Debug, Args)]
pub struct LockdownArgs {
    /// Why (recorded in the audit log and shown on the page).
    #[arg(long)]
    pub reason: Option<String>,
}

/// `tokens` subcommands.
#[derive(Debug, Subcommand)]
pub enum TokensCmd {
    /// Write new token files (0600) and make the running daemon take them.
    Rotate {
        /// Which token to replace.
        #[arg(value_enum, default_value_t = Which::All)]
        which: Which,
        /// Seconds the replaced tokens keep working (for the chat application's deploy).
        #[arg(long, default_value_t = 0)]
        grace_secs: u64,
    },
}

/// Which token to rotate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Which {
    /// The payment API token.
    Api,
    /// The admin token.
    Admin,
    /// Both.
    All,
}

/// `audit` arguments.
#[derive(Debug, Args)]
pub struct AuditArgs {
    /// Only entries newer than this: a duration (`24h`, `30d`) or a time (`2026-11-01T00:00:00Z`).
    #[arg(long)]
    pub since: Option<String>,
    /// Only actions starting with this (e.g. `auth.failed`, `lockdown`).
    #[arg(long)]
    pub action: Option<String>,
    /// Most entries shown.
    #[arg(long, default_value_t = 100)]
    pub limit: usize,
}

fn admin_client(cfg: &Config) -> anyhow::Result<DaemonClient> {
    let tokens = crate::daemon::load_tokens(cfg)?;
    let token = tokens.admin.context(
        "SNAKKAZ_PAY_ADMIN_TOKEN_FILE: not set; talking to the running daemon needs the admin token",
    )?;
    super::client_for(cfg, token)
}

fn print(as_json: bool, v: &Value, human: impl FnOnce()) -> anyhow::Result<()> {
    if as_json {
        println!("{}", serde_json::to_string_pretty(v)?);
    } else {
        human();
    }
    Ok(())
}

fn describe(v: &Value) -> String {
    if v["locked"] == true {
        format!(
            "LOCKED DOWN since {} by {}: {}",
            v["since"].as_str().unwrap_or("?"),
            v["source"].as_str().unwrap_or("?"),
            v["reason"].as_str().unwrap_or("")
        )
    } else {
        "not locked down".to_owned()
    }
}

/// Waits until the daemon has taken (removed) a request file.
fn wait_pickup(path: &Path) -> anyhow::Result<()> {
    let deadline = Instant::now() + PICKUP_TIMEOUT;
    while path.exists() {
        if Instant::now() > deadline {
            // Leave nothing behind that a later daemon would act on unexpectedly.
            let _ = std::fs::remove_file(path);
            bail!(
                "the daemon did not pick up {} within {} s; is `snakkaz-pay run` running with this ELECTRUM_WALLET_PATH?",
                path.display(),
                PICKUP_TIMEOUT.as_secs()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}

/// `snakkaz-pay lockdown`.
pub fn lockdown(cli: &Cli, args: &LockdownArgs) -> anyhow::Result<ExitCode> {
    let cfg = load_config(cli)?;
    let reason = lockdown::clean_reason(args.reason.as_deref()).map_err(anyhow::Error::msg)?;
    let state = match open_unless_daemon(&cfg)? {
        Some(store) => {
            store
                .commit_blocking(lockdown::lock_batch(&reason, "cli"))
                .context("writing the lock-down")?;
            lockdown_json(store.lockdown()?.as_ref())
        }
        None => {
            let via_api = admin_client(&cfg).and_then(|c| {
                super::runtime()?.block_on(c.call(
                    Method::POST,
                    "/api/admin/lockdown",
                    Some(json!({"reason": reason})),
                ))
            });
            match via_api {
                Ok((_, v)) => v,
                Err(e) => {
                    // The API is unreachable (or its token lost): the file next to the database.
                    eprintln!("warning: admin API failed ({e:#}); using a local request file");
                    let path = local::write_request(&cfg.db_path, RequestKind::Lockdown, &reason)
                        .context("writing the lock-down request file")?;
                    wait_pickup(&path)?;
                    json!({"locked": true, "reason": reason, "source": "local"})
                }
            }
        }
    };
    print(cli.json, &state, || {
        println!("{}", describe(&state));
        println!(
            "new payments, admin actions and spending are refused; open payments are still watched"
        );
        println!("lift it on the box with: snakkaz-pay unlock");
    })?;
    Ok(ExitCode::SUCCESS)
}

/// `snakkaz-pay unlock`: only with local access to the database or its directory.
pub fn unlock(cli: &Cli) -> anyhow::Result<ExitCode> {
    let cfg = load_config(cli)?;
    let (was_locked, how) = match open_unless_daemon(&cfg)? {
        Some(store) => {
            let was = store.lockdown()?.is_some();
            if was {
                store
                    .commit_blocking(lockdown::unlock_batch(
                        "cli",
                        "lifted on the box with the daemon stopped",
                    ))
                    .context("lifting the lock-down")?;
            }
            (was, "on the database file")
        }
        None => {
            let path = local::write_request(&cfg.db_path, RequestKind::Unlock, "")
                .with_context(|| {
                    format!(
                        "writing the unlock request next to {} (run as root or as the service user)",
                        cfg.db_path.display()
                    )
                })?;
            wait_pickup(&path)?;
            (true, "by the running daemon")
        }
    };
    let v = json!({"locked": false, "was_locked": was_locked});
    print(cli.json, &v, || {
        if was_locked {
            println!("lock-down lifted {how}; new payments and admin actions are accepted again");
        } else {
            println!("not locked down; nothing to do");
        }
    })?;
    Ok(ExitCode::SUCCESS)
}

/// Writes a new token to `path`, keeping the old file's owner, group and mode (0600 or
/// 0640 for a service group), so whoever could read the old token can read the new one.
fn write_token(path: &Path, token: &Secret) -> anyhow::Result<()> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let old = std::fs::metadata(path).ok();
    crate::secret::write_secret_file(path, format!("{}\n", token.expose()).as_bytes())?;
    if let Some(old) = old {
        std::os::unix::fs::chown(path, Some(old.uid()), Some(old.gid()))
            .with_context(|| format!("{}: keeping the old owner", path.display()))?;
        let mode = (old.mode() & 0o640) | 0o600;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
            .with_context(|| format!("{}: keeping the old mode", path.display()))?;
    }
    Ok(())
}

/// `snakkaz-pay tokens rotate`: new token files, handed to the running daemon locally.
pub fn tokens(cli: &Cli, cmd: &TokensCmd) -> anyhow::Result<ExitCode> {
    let TokensCmd::Rotate { which, grace_secs } = cmd;
    let cfg = load_config(cli)?;
    if *grace_secs > crate::access::tokens::MAX_GRACE.as_secs() {
        bail!(
            "--grace-secs: at most {} (7 days)",
            crate::access::tokens::MAX_GRACE.as_secs()
        );
    }
    let mut written = Vec::new();
    let (mut new_api, mut new_admin) = (None, None);
    for (kind, path, key) in [
        (
            Which::Api,
            &cfg.api_token_file,
            crate::config::keys::API_TOKEN_FILE,
        ),
        (
            Which::Admin,
            &cfg.admin_token_file,
            crate::config::keys::ADMIN_TOKEN_FILE,
        ),
    ] {
        if *which != Which::All && *which != kind {
            continue;
        }
        let Some(path) = path else {
            if *which == kind {
                bail!(
                    "{key}: not set; name the token file to rotate (on the box: /etc/snakkaz-pay/{}-token)",
                    if kind == Which::Api { "api" } else { "admin" }
                );
            }
            continue;
        };
        let token = crate::access::tokens::generate();
        write_token(path, &token).with_context(|| format!("{key}: writing the new token"))?;
        written.push(path.display().to_string());
        match kind {
            Which::Api => new_api = Some(token),
            _ => new_admin = Some(token),
        }
    }
    if written.is_empty() {
        bail!(
            "SNAKKAZ_PAY_API_TOKEN_FILE and SNAKKAZ_PAY_ADMIN_TOKEN_FILE: neither is set; there is no token to rotate"
        );
    }
    let grace = Duration::from_secs(*grace_secs);
    // No database yet means no daemon has run: the files are all it needs.
    let running = cfg.db_path.exists() && open_unless_daemon(&cfg)?.is_none();
    let daemon = if running {
        // Handed over locally, not through the API: this works with a lost or stolen
        // admin token, and with tokens the service receives as systemd credentials.
        let text = local::tokens_request(new_api.as_ref(), new_admin.as_ref(), grace);
        let path = local::write_request(&cfg.db_path, RequestKind::Tokens, &text)
            .context("handing the new tokens to the daemon (run as root or as the service user)")?;
        wait_pickup(&path)?;
        "took the new tokens"
    } else {
        "not running"
    };
    let note = match (daemon, *grace_secs) {
        ("not running", _) => {
            "the daemon is not running; it reads the new files when it starts".to_owned()
        }
        (_, 0) => "the old tokens stopped working now".to_owned(),
        (_, g) => format!("the old tokens stop working in {g} s"),
    };
    let v = json!({"written": written, "daemon": daemon, "grace_secs": grace_secs, "note": note});
    print(cli.json, &v, || {
        for w in &written {
            println!("new token written to {w}");
        }
        println!("daemon: {daemon}; {note}");
        println!(
            "give the new API token to the chat application (read it from the file; it is not printed)"
        );
    })?;
    Ok(ExitCode::SUCCESS)
}

/// Parses `--since`: a duration back from now, or a point in time.
fn parse_since(s: &str, now: u64) -> anyhow::Result<u64> {
    if let Ok(d) = humantime::parse_duration(s) {
        return Ok(now.saturating_sub(d.as_secs()));
    }
    let t = humantime::parse_rfc3339_weak(s)
        .or_else(|_| humantime::parse_rfc3339_weak(&format!("{s} 00:00:00")))
        .map_err(|_| {
            anyhow::anyhow!(
                "--since: {s:?} is neither a duration (24h, 7d) nor a time (2026-11-01)"
            )
        })?;
    Ok(t.duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs()))
}

/// `snakkaz-pay audit`.
pub fn audit(cli: &Cli, args: &AuditArgs) -> anyhow::Result<ExitCode> {
    let cfg = load_config(cli)?;
    let since = match &args.since {
        Some(s) => parse_since(s, crate::clock::now())?,
        None => 0,
    };
    if args.limit == 0 || args.limit > 1000 {
        bail!("--limit: must be between 1 and 1000");
    }
    if !cfg.db_path.exists() {
        bail!(
            "no database at {} (ELECTRUM_WALLET_PATH); nothing has been recorded yet",
            cfg.db_path.display()
        );
    }
    let entries: Vec<Value> = match open_unless_daemon(&cfg)? {
        Some(store) => {
            let action = args.action.as_deref();
            store
                .audit_since(since, args.limit, |e| {
                    action.is_none_or(|a| e.action.starts_with(a))
                })?
                .iter()
                .map(audit_json)
                .collect()
        }
        None => {
            let mut q = form_urlencoded::Serializer::new(String::new());
            q.append_pair("since", &since.to_string());
            q.append_pair("limit", &args.limit.to_string());
            if let Some(a) = &args.action {
                q.append_pair("action", a);
            }
            let client = admin_client(&cfg)?;
            let (_, v) = super::runtime()?.block_on(client.call(
                Method::GET,
                &format!("/api/admin/audit?{}", q.finish()),
                None,
            ))?;
            v["entries"].as_array().cloned().unwrap_or_default()
        }
    };
    let v = json!({"entries": entries});
    print(cli.json, &v, || {
        if entries.is_empty() {
            println!("no audit entries in that period");
        }
        for e in &entries {
            println!(
                "{}  {:<22} {:<24} {}",
                e["at"].as_str().unwrap_or(""),
                e["action"].as_str().unwrap_or(""),
                e["source"]
                    .as_str()
                    .filter(|s| !s.is_empty())
                    .unwrap_or("-"),
                e["detail"].as_str().unwrap_or("")
            );
        }
    })?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_takes_durations_and_times() {
        assert_eq!(parse_since("1h", 10_000).unwrap(), 10_000 - 3600);
        assert_eq!(parse_since("1970-01-02", 0).unwrap(), 86_400);
        assert_eq!(parse_since("1970-01-01T00:01:00Z", 0).unwrap(), 60);
        assert!(parse_since("yesterday-ish", 0).is_err());
    }
}
