//! TEMP STUB (replaced by helper)
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;
use bdk_wallet::bitcoin::Network;
use crate::secret::Secret;
#[derive(Debug)]
pub struct Config { pub enabled: bool, pub network: Network, pub descriptor: String, pub change_descriptor: Option<String>, pub servers: Vec<ElectrumServer>, pub ca_file: Option<PathBuf>, pub check_interval: Duration, pub electrum_timeout: Duration, pub min_confirmations: u32, pub db_path: PathBuf, pub listen: SocketAddr, pub api_token_file: Option<PathBuf>, pub admin_token_file: Option<PathBuf>, pub page_auth: PageAuth, pub payment_expiry: Duration, pub late_payment_window: Duration, pub auto_complete_depth: Option<u32>, pub wallet_password: Option<Secret>, pub log_filter: String }
#[derive(Debug, Clone)]
pub struct ElectrumServer { pub host: String, pub port: u16, pub tls: bool }
#[derive(Debug, Clone, Copy)]
pub enum PageAuth { Token, None }
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(String);
impl Config {
    pub fn load(_file: Option<&Path>, env: &HashMap<String, String>) -> Result<Config, ConfigError> {
        let g = |k: &str| env.get(k).cloned();
        let tls = g("ELECTRUM_PROTOCOL").as_deref() == Some("tls");
        let mut servers = vec![];
        if let Some(h) = g("ELECTRUM_HOST") { servers.push(ElectrumServer { host: h, port: g("ELECTRUM_PORT").map(|p| p.parse().unwrap()).unwrap_or(50001), tls }); }
        Ok(Config { enabled: true, network: match g("SNAKKAZ_PAY_NETWORK").as_deref() { Some("regtest") => Network::Regtest, _ => Network::Bitcoin },
            descriptor: g("SNAKKAZ_PAY_DESCRIPTOR").ok_or(ConfigError("SNAKKAZ_PAY_DESCRIPTOR missing".into()))?, change_descriptor: g("SNAKKAZ_PAY_CHANGE_DESCRIPTOR"), servers,
            ca_file: g("SNAKKAZ_PAY_ELECTRUM_CA_FILE").map(PathBuf::from), check_interval: Duration::from_millis(g("ELECTRUM_CHECK_INTERVAL").map(|p| p.parse().unwrap()).unwrap_or(30000)), electrum_timeout: Duration::from_secs(20),
            min_confirmations: g("ELECTRUM_MIN_CONFIRMATIONS").map(|p| p.parse().unwrap()).unwrap_or(1), db_path: g("ELECTRUM_WALLET_PATH").map(PathBuf::from).unwrap_or("/var/lib/snakkaz-pay/snakkaz-pay.redb".into()),
            listen: g("SNAKKAZ_PAY_LISTEN").map(|p| p.parse().unwrap()).unwrap_or("127.0.0.1:8080".parse().unwrap()), api_token_file: g("SNAKKAZ_PAY_API_TOKEN_FILE").map(PathBuf::from), admin_token_file: g("SNAKKAZ_PAY_ADMIN_TOKEN_FILE").map(PathBuf::from),
            page_auth: PageAuth::None, payment_expiry: Duration::from_secs(3600), late_payment_window: Duration::from_secs(7*86400), auto_complete_depth: None, wallet_password: None, log_filter: g("SNAKKAZ_PAY_LOG").unwrap_or("info".into()) })
    }
    pub fn from_process_env(file: Option<&Path>) -> Result<Config, ConfigError> { Config::load(file, &std::env::vars().collect()) }
    pub fn policy(&self) -> crate::payments::Policy { crate::payments::Policy { min_confirmations: self.min_confirmations, auto_complete_depth: self.auto_complete_depth } }
    pub fn to_toml(&self) -> String { String::new() }
}
