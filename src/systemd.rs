//! Service manager notifications (sd_notify) without libsystemd or unsafe code.
//!
//! The protocol is one datagram of newline-separated `KEY=VALUE` pairs sent to the
//! `AF_UNIX` socket named by `$NOTIFY_SOCKET`: a path, or an abstract name written
//! with a leading `@`. See sd_notify(3).

use std::ffi::OsStr;
use std::io;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::path::Path;
use std::time::Duration;

/// Sends `state` (e.g. `READY=1`, `WATCHDOG=1`) to systemd; `Ok(false)` when not run by systemd.
pub fn notify(state: &str) -> io::Result<bool> {
    match std::env::var_os("NOTIFY_SOCKET") {
        Some(socket) => send(&socket, state).map(|()| true),
        None => Ok(false),
    }
}

/// The watchdog interval systemd expects pings within, if it set one for this process.
pub fn watchdog_interval() -> Option<Duration> {
    let usec = std::env::var("WATCHDOG_USEC").ok()?;
    let pid = std::env::var("WATCHDOG_PID").ok();
    parse_watchdog(&usec, pid.as_deref(), std::process::id())
}

fn send(socket: &OsStr, state: &str) -> io::Result<()> {
    let addr = socket_addr(socket)?;
    let sock = UnixDatagram::unbound()?;
    let sent = sock.send_to_addr(state.as_bytes(), &addr)?;
    // A datagram is sent whole or not at all; a short count would mean a truncated state.
    if sent != state.len() {
        return Err(io::Error::new(
            io::ErrorKind::WriteZero,
            format!("sent {sent} of {} bytes to NOTIFY_SOCKET", state.len()),
        ));
    }
    Ok(())
}

fn socket_addr(socket: &OsStr) -> io::Result<SocketAddr> {
    match socket.as_bytes() {
        [b'@', name @ ..] => SocketAddr::from_abstract_name(name),
        [b'/', ..] => SocketAddr::from_pathname(Path::new(socket)),
        // systemd 254+ may also hand out `vsock:` addresses; this appliance never runs in such a VM.
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("unsupported NOTIFY_SOCKET address {socket:?}"),
        )),
    }
}

fn parse_watchdog(usec: &str, pid: Option<&str>, own_pid: u32) -> Option<Duration> {
    // WATCHDOG_PID names the process the watchdog is meant for; a child that inherited
    // the environment must not ping on its parent's behalf.
    if let Some(pid) = pid
        && pid.trim().parse::<u32>().ok() != Some(own_pid)
    {
        return None;
    }
    match usec.trim().parse::<u64>().ok()? {
        0 => None,
        usec => Some(Duration::from_micros(usec)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsString;

    fn received(server: &UnixDatagram) -> String {
        let mut buf = [0u8; 256];
        server
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let n = server.recv(&mut buf).unwrap();
        String::from_utf8(buf[..n].to_vec()).unwrap()
    }

    #[test]
    fn sends_to_a_path_socket() {
        let dir = std::env::temp_dir().join(format!("sd-notify-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("notify.sock");
        let _ = std::fs::remove_file(&path);
        let server = UnixDatagram::bind(&path).unwrap();

        send(path.as_os_str(), "READY=1\nSTATUS=serving").unwrap();
        assert_eq!(received(&server), "READY=1\nSTATUS=serving");

        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn sends_to_an_abstract_socket() {
        let name = format!("snakkaz-pay-notify-test-{}", std::process::id());
        let server =
            UnixDatagram::bind_addr(&SocketAddr::from_abstract_name(name.as_bytes()).unwrap())
                .unwrap();

        send(&OsString::from(format!("@{name}")), "WATCHDOG=1").unwrap();
        assert_eq!(received(&server), "WATCHDOG=1");
    }

    #[test]
    fn a_missing_listener_is_an_error() {
        let path = std::env::temp_dir().join("snakkaz-pay-no-such-notify.sock");
        assert!(send(path.as_os_str(), "READY=1").is_err());
    }

    #[test]
    fn rejects_relative_and_empty_addresses() {
        for socket in ["", "relative.sock", "vsock:2:1234"] {
            let err = send(OsStr::new(socket), "READY=1").unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{socket:?}");
        }
    }

    #[test]
    fn notify_without_systemd_is_a_no_op() {
        // The test runner is not started by systemd with Type=notify; if it ever is, skip.
        if std::env::var_os("NOTIFY_SOCKET").is_none() {
            assert!(!notify("READY=1").unwrap());
        }
    }

    #[test]
    fn watchdog_interval_parsing() {
        let secs = |s| Some(Duration::from_secs(s));
        assert_eq!(parse_watchdog("30000000", None, 42), secs(30));
        assert_eq!(parse_watchdog("30000000", Some("42"), 42), secs(30));
        assert_eq!(parse_watchdog("30000000", Some("41"), 42), None);
        assert_eq!(parse_watchdog("30000000", Some("x"), 42), None);
        assert_eq!(parse_watchdog("0", None, 42), None);
        assert_eq!(parse_watchdog("soon", None, 42), None);
        assert_eq!(
            parse_watchdog("1500", None, 42),
            Some(Duration::from_micros(1500))
        );
    }
}
