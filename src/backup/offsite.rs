//! Off-site copies with rclone (called as a process; its config file comes from the
//! operator). `rclone copy` copies what the remote lacks and never deletes, so a failed
//! run is simply retried by the next one, and the local files are never touched.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::manifest::{MANIFEST_SUFFIX, PREFIX, SUFFIX};

/// Longest one `rclone copy` may run before it is stopped.
pub const RCLONE_DEADLINE: Duration = Duration::from_secs(30 * 60);

/// The outcome of one off-site copy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OffsiteReport {
    /// The rclone remote path.
    pub remote: String,
    /// Whether rclone succeeded.
    pub ok: bool,
    /// What went wrong (rclone's last lines), with the operator's fix.
    pub error: Option<String>,
}

/// The rclone arguments (pure, for tests and for the README's example).
pub fn args(dir: &Path, remote: &str, config: Option<&Path>) -> Vec<String> {
    let mut a = vec![
        "copy".to_owned(),
        dir.display().to_string(),
        remote.to_owned(),
        "--include".to_owned(),
        format!("{PREFIX}*{SUFFIX}"),
        "--include".to_owned(),
        format!("{PREFIX}*{MANIFEST_SUFFIX}"),
        // Fail fast on a dead remote; the next run retries.
        "--retries".to_owned(),
        "2".to_owned(),
        "--low-level-retries".to_owned(),
        "2".to_owned(),
        "--contimeout".to_owned(),
        "15s".to_owned(),
        "--timeout".to_owned(),
        "60s".to_owned(),
    ];
    if let Some(c) = config {
        a.push("--config".to_owned());
        a.push(c.display().to_string());
    }
    a
}

/// Copies the backups in `dir` that `remote` lacks.
pub fn copy(dir: &Path, remote: &str, config: Option<&Path>) -> OffsiteReport {
    let fail = |error: String| OffsiteReport {
        remote: remote.to_owned(),
        ok: false,
        error: Some(error),
    };
    let mut child = match Command::new("rclone")
        .args(args(dir, remote, config))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => {
            return fail(format!(
                "cannot run rclone: {e}; install rclone (apt-get install rclone) or unset SNAKKAZ_PAY_BACKUP_REMOTE"
            ));
        }
    };
    // stderr is read on a thread so a chatty rclone never blocks on a full pipe.
    let mut stderr = child.stderr.take().expect("stderr is piped");
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _partial_output_is_still_useful = stderr.read_to_string(&mut s);
        s
    });
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break Ok(s),
            Ok(None) if started.elapsed() > RCLONE_DEADLINE => {
                let _already_exited = child.kill();
                let _reaped = child.wait();
                break Err(format!(
                    "rclone did not finish within {} s and was stopped",
                    RCLONE_DEADLINE.as_secs()
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(100)),
            Err(e) => break Err(format!("waiting for rclone: {e}")),
        }
    };
    let err_text = reader.join().unwrap_or_default();
    match status {
        Ok(s) if s.success() => OffsiteReport {
            remote: remote.to_owned(),
            ok: true,
            error: None,
        },
        Ok(s) => {
            let tail: Vec<&str> = err_text
                .lines()
                .filter(|l| !l.trim().is_empty())
                .rev()
                .take(3)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            fail(format!(
                "rclone copy to {remote} failed ({s}): {}; the local backup is kept and the next run retries; check the remote and SNAKKAZ_PAY_BACKUP_RCLONE_CONFIG",
                tail.join(" | ")
            ))
        }
        Err(e) => fail(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_only_backups_and_manifests_never_syncs() {
        let a = args(Path::new("/b"), "off:pay", Some(Path::new("/etc/r.conf")));
        assert_eq!(a[0], "copy");
        assert!(a.contains(&"snakkaz-pay-*.redb.age".to_owned()));
        assert!(a.contains(&"snakkaz-pay-*.manifest.json".to_owned()));
        assert_eq!(a[a.len() - 2..], ["--config", "/etc/r.conf"]);
    }
}
