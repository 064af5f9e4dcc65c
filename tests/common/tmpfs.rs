//! A small tmpfs in a mount namespace of the test's own, to fill a disk on purpose. A
//! holder process keeps the namespace (and the tmpfs) alive across daemon restarts; the
//! daemon enters it with `nsenter`, and the test reaches the files through the holder's
//! `/proc/PID/root`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A mounted tmpfs, unmounted (with its namespace) when dropped.
pub struct Tmpfs {
    holder: Child,
    dir: PathBuf,
}

impl Tmpfs {
    /// Mounts a tmpfs of `size` (e.g. `8m`) on `dir`, seen only inside the namespace.
    pub fn mount(dir: &Path, size: &str) -> Tmpfs {
        std::fs::create_dir_all(dir).unwrap();
        let script = format!(
            "mount -t tmpfs -o size={size},mode=0700 tmpfs '{}' && exec sleep 3600",
            dir.display()
        );
        let holder = Command::new("unshare")
            .args(["-m", "--propagation", "private", "sh", "-c", &script])
            .stdin(Stdio::null())
            .spawn()
            .expect("unshare (util-linux) must be installed; the test runs as root");
        let t = Tmpfs {
            holder,
            dir: dir.to_owned(),
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        let mountinfo = format!("/proc/{}/mountinfo", t.holder.id());
        while !std::fs::read_to_string(&mountinfo)
            .unwrap_or_default()
            .contains(&format!(" {} ", dir.display()))
        {
            assert!(Instant::now() < deadline, "the tmpfs did not mount");
            std::thread::sleep(Duration::from_millis(20));
        }
        t
    }

    /// The command prefix that runs a program inside the namespace.
    pub fn nsenter(&self) -> Vec<String> {
        vec![
            "nsenter".into(),
            "-t".into(),
            self.holder.id().to_string(),
            "-m".into(),
            "--".into(),
        ]
    }

    /// Where a file of the tmpfs is, seen from the test.
    pub fn path(&self, name: &str) -> PathBuf {
        PathBuf::from(format!("/proc/{}/root", self.holder.id()))
            .join(self.dir.strip_prefix("/").unwrap())
            .join(name)
    }

    /// Fills the tmpfs until a write fails; returns the filler's path.
    pub fn fill(&self) -> PathBuf {
        use std::io::Write;
        let path = self.path("filler");
        let mut f = std::fs::File::create(&path).unwrap();
        let chunk = vec![0u8; 64 * 1024];
        for _ in 0..100_000 {
            if f.write_all(&chunk).is_err() {
                break;
            }
        }
        path
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = self.holder.kill();
        let _ = self.holder.wait();
    }
}
