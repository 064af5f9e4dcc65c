//! The `Host` header check (DNS-rebinding defence).
//!
//! A web page the operator visits can make its own name resolve to the appliance's
//! address; the browser then sends that foreign name in `Host`. Only names the appliance
//! knows itself by are answered: loopback names and addresses, the configured listen
//! address, the address the client connected to (the box's IP) and configured names.

use std::net::{IpAddr, SocketAddr};

/// The names the web server answers to.
#[derive(Debug, Clone)]
pub(crate) struct HostPolicy {
    listen: IpAddr,
    names: Vec<String>,
}

impl HostPolicy {
    /// Policy for a server listening on `listen` that also answers to `names` (lowercase).
    pub(crate) fn new(listen: SocketAddr, names: &[String]) -> Self {
        HostPolicy {
            listen: listen.ip(),
            names: names.to_vec(),
        }
    }

    /// Whether a request with this `Host` header, arriving on `local`, may be answered.
    pub(crate) fn allows(&self, header: Option<&str>, local: SocketAddr) -> bool {
        let Some(host) = header.and_then(host_part) else {
            return false;
        };
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        if host == "localhost" || host.ends_with(".localhost") {
            // RFC 6761: browsers resolve these to loopback themselves, never through DNS.
            return true;
        }
        if let Ok(ip) = host.parse::<IpAddr>() {
            let ip = ip.to_canonical();
            // Never the unspecified address: browsers map 0.0.0.0 to this machine.
            return !ip.is_unspecified()
                && (ip.is_loopback() || ip == local.ip().to_canonical() || ip == self.listen);
        }
        self.names.contains(&host)
    }
}

/// The host of a `Host` header value, without port; IPv6 without brackets.
fn host_part(value: &str) -> Option<&str> {
    let value = value.trim();
    if let Some(rest) = value.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        return (after.is_empty() || port_ok(after.strip_prefix(':')?)).then_some(host);
    }
    let host = match value.rsplit_once(':') {
        Some((h, port)) if port_ok(port) => h,
        Some(_) => return None,
        None => value,
    };
    (!host.is_empty()).then_some(host)
}

fn port_ok(p: &str) -> bool {
    !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> HostPolicy {
        HostPolicy::new("0.0.0.0:8080".parse().unwrap(), &["pay.lan".to_owned()])
    }

    const LOCAL: &str = "192.168.1.20:8080";

    fn ok(h: &str) -> bool {
        policy().allows(Some(h), LOCAL.parse().unwrap())
    }

    #[test]
    fn own_names_and_addresses_are_answered() {
        for h in [
            "localhost",
            "localhost:8080",
            "LOCALHOST.",
            "app.localhost",
            "127.0.0.1:8080",
            "127.3.4.5",
            "[::1]:8080",
            "[::1]",
            "192.168.1.20:8080",
            "pay.lan",
            "Pay.LAN:443",
            "[::ffff:127.0.0.1]:80",
        ] {
            assert!(ok(h), "{h} should be allowed");
        }
    }

    #[test]
    fn foreign_names_are_refused() {
        for h in [
            "evil.example",
            "evil.example:8080",
            "0.0.0.0",
            "0.0.0.0:8080",
            "localhost.evil.example",
            "192.168.1.21",
            "pay.lan.evil.example",
            "",
            "[::1",
            "pay.lan:80x",
            "127.0.0.1:80:80",
        ] {
            assert!(!ok(h), "{h} should be refused");
        }
        assert!(!policy().allows(None, LOCAL.parse().unwrap()));
    }

    #[test]
    fn a_specific_listen_address_is_allowed() {
        let p = HostPolicy::new("10.1.1.1:80".parse().unwrap(), &[]);
        assert!(p.allows(Some("10.1.1.1"), "10.1.1.1:80".parse().unwrap()));
        assert!(!p.allows(Some("pay.lan"), "10.1.1.1:80".parse().unwrap()));
    }
}
