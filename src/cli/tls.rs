//! `tls generate` and `tls fingerprint`: the HTTPS certificate of the page and API.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use clap::Subcommand;
use serde_json::json;

use super::{Cli, load_config};

/// `tls` subcommands.
#[derive(Debug, Subcommand)]
pub enum TlsCmd {
    /// Create a self-signed certificate and key in one PEM file (mode 0600) and print its
    /// SHA-256 fingerprint; point SNAKKAZ_PAY_TLS_CERT_FILE at it.
    Generate {
        /// The PEM file to write.
        #[arg(long)]
        out: PathBuf,
        /// Host names and IP addresses the certificate names (repeat); `localhost` and
        /// `127.0.0.1` are always included.
        #[arg(long = "name")]
        names: Vec<String>,
        /// Replace an existing file.
        #[arg(long)]
        force: bool,
    },
    /// Print the SHA-256 fingerprint of the configured certificate (SNAKKAZ_PAY_TLS_CERT_FILE).
    Fingerprint,
}

/// Runs a `tls` subcommand.
pub fn run(cli: &Cli, cmd: &TlsCmd) -> anyhow::Result<ExitCode> {
    let (file, fingerprint, names) = match cmd {
        TlsCmd::Generate { out, names, force } => {
            if out.exists() && !force {
                bail!(
                    "{}: exists; pass --force to replace the certificate (browsers will warn about the new one)",
                    out.display()
                );
            }
            let mut all: Vec<String> = vec!["localhost".into(), "127.0.0.1".into()];
            for n in names {
                let n = n.trim().to_ascii_lowercase();
                if n.is_empty()
                    || n.contains(['/', ':', ' ']) && n.parse::<std::net::IpAddr>().is_err()
                {
                    bail!("--name {n:?}: give a host name or IP address, without scheme or port");
                }
                if !all.contains(&n) {
                    all.push(n);
                }
            }
            let (pem, fp) = crate::web::tls::generate(&all).map_err(anyhow::Error::msg)?;
            crate::secret::write_secret_file(out, pem.as_bytes())
                .with_context(|| format!("writing {}", out.display()))?;
            (out.clone(), fp, all)
        }
        TlsCmd::Fingerprint => {
            let cfg = load_config(cli)?;
            let path = cfg
                .tls_cert_file
                .clone()
                .context("SNAKKAZ_PAY_TLS_CERT_FILE: not set; the daemon serves plain HTTP")?;
            let t = crate::web::tls::load(&path)?;
            (path, t.fingerprint, Vec::new())
        }
    };
    if cli.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "file": file.display().to_string(),
                "sha256_fingerprint": fingerprint,
                "names": names,
            }))?
        );
    } else {
        println!("certificate: {}", file.display());
        if !names.is_empty() {
            println!("names:       {}", names.join(", "));
        }
        println!("SHA-256:     {fingerprint}");
        println!("compare this with the fingerprint your browser shows before you trust the page");
    }
    Ok(ExitCode::SUCCESS)
}
