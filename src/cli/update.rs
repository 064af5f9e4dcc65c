//! `snakkaz-pay update BUNDLE`: install a signed update on the inactive root slot and
//! reboot into it (see `crate::update` for the steps and their order).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Args;

use super::Cli;
use crate::update::{self, System};

/// The root of the system updated; tests and offline updates point it elsewhere.
const SYSROOT_ENV: &str = "SNAKKAZ_PAY_UPDATE_SYSROOT";

/// `update` arguments.
#[derive(Debug, Args)]
pub struct UpdateArgs {
    /// The update bundle: its directory, or the SHA256SUMS file in it. Without it: print
    /// the running version, slot, boot entries and the last update's outcome.
    pub bundle: Option<PathBuf>,
    /// Install an older version, or the running one again.
    #[arg(long)]
    pub force: bool,
    /// Only check the bundle (signature, hashes, version) and say what would be done.
    #[arg(long)]
    pub check: bool,
    /// Do not reboot at the end; the new version starts at the next boot.
    #[arg(long)]
    pub no_reboot: bool,
    /// Without a bundle: also write the status where the daemon reads it (root; the
    /// appliance's units run this before the daemon starts and once the boot is blessed).
    #[arg(long, conflicts_with_all = ["bundle", "force", "check", "no_reboot"])]
    pub publish: bool,
}

/// Runs `update`.
pub fn run(cli: &Cli, args: &UpdateArgs) -> anyhow::Result<ExitCode> {
    let root = std::env::var_os(SYSROOT_ENV).map_or_else(|| PathBuf::from("/"), PathBuf::from);
    let sys = System::new(&root);
    let cmdline_path = root.join("proc/cmdline");
    let cmdline = std::fs::read_to_string(&cmdline_path)
        .with_context(|| format!("reading {}", cmdline_path.display()))?;
    let Some(bundle) = &args.bundle else {
        if args.publish {
            update::publish::publish(&sys, &cmdline).context("publishing the update status")?;
        }
        return print_status(cli, &sys, &cmdline);
    };
    let dir = if bundle.is_file() {
        bundle
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
            .to_owned()
    } else {
        bundle.clone()
    };
    let report = update::apply(&sys, &cmdline, &dir, args.force, args.check, || {
        pre_update_snapshot(cli)
    })
    .with_context(|| format!("update from {}", dir.display()))?;
    let reboot = !args.check && !args.no_reboot;
    if cli.json {
        let mut v = serde_json::to_value(&report)?;
        v["applied"] = (!args.check).into();
        v["rebooting"] = reboot.into();
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        let verb = if args.check {
            "would install"
        } else {
            "installed"
        };
        println!(
            "bundle:   signature and SHA-256 of every file good ({})",
            report.signed_comment
        );
        println!(
            "version:  {} -> {} ({:?})",
            report.from, report.to, report.direction
        );
        println!(
            "slot:     running {}, {verb} {} MiB on slot {}",
            report.running_slot,
            report.root_bytes.div_ceil(1024 * 1024),
            report.target_slot
        );
        for r in &report.removed_entries {
            println!("removed:  old boot entry {r}");
        }
        println!(
            "entry:    {verb} {} (on trial: kept only if its boot is assessed healthy, else the loader falls back to slot {})",
            report.installed_entry, report.running_slot
        );
        if let Some(s) = &report.snapshot {
            println!("database: pre-update snapshot {}", s.display());
        }
        if reboot {
            println!("rebooting into {}", report.to);
        } else if !args.check {
            println!("the new version starts at the next boot");
        }
    }
    if reboot {
        let status = std::process::Command::new("systemctl")
            .arg("reboot")
            .status()
            .context("running systemctl reboot")?;
        anyhow::ensure!(
            status.success(),
            "systemctl reboot failed ({status}); the update is installed: reboot the box to start it"
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn print_status(cli: &Cli, sys: &System, cmdline: &str) -> anyhow::Result<ExitCode> {
    let s = update::status(sys, cmdline).context("reading the update status")?;
    if cli.json {
        println!("{}", serde_json::to_string_pretty(&s)?);
    } else {
        println!("version:     {} (slot {})", s.version, s.slot);
        println!("last update: {}", s.summary);
        for e in &s.entries {
            let state = match e.counter {
                None => "good".to_string(),
                Some(c) if c.left == 0 => format!("bad (failed {} boots)", c.done),
                Some(c) => format!("on trial ({} of {} boots left)", c.left, c.left + c.done),
            };
            println!("boot entry:  {} {state}", e.name);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// A plaintext snapshot of the database beside it (the data partition already holds the
/// database itself), for a rollback to restore; `None` on a box not configured yet.
fn pre_update_snapshot(cli: &Cli) -> anyhow::Result<Option<PathBuf>> {
    if !cli.config.exists() {
        return Ok(None);
    }
    let cfg = super::load_config(cli)?;
    if !cfg.db_path.exists() {
        return Ok(None);
    }
    let dir = cfg
        .db_path
        .parent()
        .unwrap_or(Path::new("."))
        .join("pre-update");
    crate::backup::take::create_private_dir(&dir)?;
    let dest = dir.join(format!(
        "snakkaz-pay-{}.redb",
        crate::backup::manifest::compact_time(crate::backup::manifest::now_ms())
    ));
    let via = super::backup::snapshot(&cfg, &dest)?;
    give_to_database_owner(&cfg.db_path, &[&dir, &dest])?;
    tracing::info!(file = %dest.display(), via, "pre-update snapshot");
    Ok(Some(dest))
}

/// The daemon (its own user) restores the snapshot after a rollback: the snapshot and
/// its directory, made by root here, must be its own.
#[cfg(unix)]
fn give_to_database_owner(db: &Path, paths: &[&Path]) -> anyhow::Result<()> {
    use std::os::unix::fs::MetadataExt as _;
    let m = std::fs::metadata(db).with_context(|| format!("reading {}", db.display()))?;
    for p in paths {
        let have = std::fs::metadata(p).with_context(|| format!("reading {}", p.display()))?;
        if (have.uid(), have.gid()) != (m.uid(), m.gid()) {
            std::os::unix::fs::chown(p, Some(m.uid()), Some(m.gid())).with_context(|| {
                format!(
                    "giving {} to the database's owner (uid {}), so the daemon can restore it after a rollback",
                    p.display(),
                    m.uid()
                )
            })?;
        }
    }
    Ok(())
}

#[cfg(not(unix))]
fn give_to_database_owner(_db: &Path, _paths: &[&Path]) -> anyhow::Result<()> {
    Ok(())
}
