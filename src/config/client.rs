//! What a command needs to talk to the running daemon: its address, a token file and its
//! certificate. Loaded from the same layers as [`super::Config`] (file < environment <
//! flags) without the wallet's settings, so `status` works on a box that has only these.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use super::source::{Flag, Layers};
use super::{ConfigError, DEFAULT_LISTEN, keys, parse_path, parse_socket_addr};

/// The daemon's address and the credentials to ask it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientConfig {
    /// Where the daemon listens (`SNAKKAZ_PAY_LISTEN`).
    pub listen: SocketAddr,
    /// The API token file.
    pub api_token_file: Option<PathBuf>,
    /// The admin token file.
    pub admin_token_file: Option<PathBuf>,
    /// The daemon's HTTPS certificate, pinned by the client.
    pub tls_cert_file: Option<PathBuf>,
}

impl ClientConfig {
    /// Loads the client settings; `flags` (e.g. `--listen`, `--token-file`) win over the
    /// environment, which wins over the file. Nothing else of the file is validated.
    pub fn load(
        file: Option<&Path>,
        env: &HashMap<String, String>,
        flags: &[Flag],
    ) -> Result<ClientConfig, ConfigError> {
        let layers = Layers::new(file, env)?.with_flags(flags);
        let listen = match layers.parse(keys::LISTEN, parse_socket_addr)? {
            Some(addr) => addr,
            None => DEFAULT_LISTEN
                .parse()
                .expect("DEFAULT_LISTEN is a socket address"),
        };
        Ok(ClientConfig {
            listen,
            api_token_file: layers.parse(keys::API_TOKEN_FILE, parse_path)?,
            admin_token_file: layers.parse(keys::ADMIN_TOKEN_FILE, parse_path)?,
            tls_cert_file: layers.parse(keys::TLS_CERT_FILE, parse_path)?,
        })
    }

    /// [`ClientConfig::load`] with the process environment (only the keys it reads).
    pub fn from_process_env(file: Option<&Path>, flags: &[Flag]) -> Result<Self, ConfigError> {
        let wanted = [
            keys::LISTEN,
            keys::API_TOKEN_FILE,
            keys::ADMIN_TOKEN_FILE,
            keys::TLS_CERT_FILE,
        ];
        let mut env = HashMap::new();
        for key in wanted {
            if let Some(value) = std::env::var_os(key) {
                let value = value.into_string().map_err(|_| ConfigError::NotUnicode {
                    name: key.to_owned(),
                })?;
                env.insert(key.to_owned(), value);
            }
        }
        ClientConfig::load(file, &env, flags)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn needs_no_descriptor_and_flags_win() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("config.toml");
        std::fs::write(
            &file,
            "listen = \"127.0.0.1:9000\"\napi_token_file = \"/etc/x/api-token\"\nnetwork = \"regtest\"\n",
        )
        .unwrap();
        let env = HashMap::new();
        let c = ClientConfig::load(Some(&file), &env, &[]).unwrap();
        assert_eq!(c.listen, "127.0.0.1:9000".parse().unwrap());
        assert_eq!(c.api_token_file, Some(PathBuf::from("/etc/x/api-token")));
        let flags = [Flag {
            key: keys::LISTEN,
            flag: "--listen",
            value: "127.0.0.1:9100".into(),
        }];
        let c = ClientConfig::load(Some(&file), &env, &flags).unwrap();
        assert_eq!(c.listen.port(), 9100);
        let bad = [Flag {
            key: keys::LISTEN,
            flag: "--listen",
            value: "nine".into(),
        }];
        let e = ClientConfig::load(Some(&file), &env, &bad).unwrap_err();
        assert!(e.to_string().starts_with("--listen"), "{e}");
    }
}
