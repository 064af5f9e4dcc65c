//! Connecting to the downstream Postgres over rustls: the connection string, the TLS
//! mode, and error texts that never carry the secret.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use tokio_postgres::Client;
use tokio_postgres::config::{ChannelBinding, Host, SslMode};
use tokio_postgres_rustls::MakeRustlsConnect;
use zeroize::Zeroizing;

use super::SinkError;
use crate::secret::Secret;

/// How far the server's certificate is checked, as libpq's `sslmode` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsMode {
    /// Encrypted, certificate not checked (libpq's default `require`).
    Require,
    /// Certificate chain checked against the trust anchors, host name not.
    VerifyCa,
    /// Chain and host name checked.
    VerifyFull,
}

impl TlsMode {
    /// libpq's name of the mode.
    pub fn as_str(self) -> &'static str {
        match self {
            TlsMode::Require => "require",
            TlsMode::VerifyCa => "verify-ca",
            TlsMode::VerifyFull => "verify-full",
        }
    }
}

/// A parsed, ready-to-dial downstream database.
pub struct Target {
    pg: tokio_postgres::Config,
    tls: MakeRustlsConnect,
    mode: TlsMode,
    label: String,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // tokio_postgres::Config's own Debug would print the password.
        f.debug_struct("Target")
            .field("label", &self.label)
            .finish()
    }
}

impl Target {
    /// Parses the connection string and prepares TLS. With a CA file the mode is
    /// `verify-full` unless the string asks for `verify-ca`; without, the string's
    /// `sslmode` (default `require`) and the system roots.
    pub fn new(url: &Secret, ca_file: Option<&Path>) -> Result<Target, SinkError> {
        let (rest, sslmode) = split_sslmode(url.expose())?;
        let mode = match (sslmode.as_deref(), ca_file) {
            (None | Some("require"), None) => TlsMode::Require,
            (None | Some("require" | "verify-full"), Some(_)) => TlsMode::VerifyFull,
            (Some("verify-ca"), _) => TlsMode::VerifyCa,
            (Some("verify-full"), None) => TlsMode::VerifyFull,
            (Some(other), _) => {
                return Err(SinkError::Url {
                    detail: format!(
                        "sslmode={other} is not supported: the sink always uses TLS \
                         (require, verify-ca or verify-full)"
                    ),
                });
            }
        };
        let mut pg: tokio_postgres::Config = rest.parse().map_err(|e| SinkError::Url {
            detail: scrub_with(&error_text(&e), url.expose(), None),
        })?;
        if pg.get_hosts().is_empty() {
            return Err(SinkError::Url {
                detail: "the connection string names no host".into(),
            });
        }
        if pg.get_hosts().iter().any(|h| !matches!(h, Host::Tcp(_))) {
            return Err(SinkError::Url {
                detail: "Unix socket hosts are not supported; use a TCP host name".into(),
            });
        }
        pg.ssl_mode(SslMode::Require);
        if mode == TlsMode::Require {
            // Nothing proves the server's certificate, so only SCRAM channel binding
            // (tls-server-end-point) keeps a man in the middle from the password: the sink
            // never falls back to cleartext, MD5 or SCRAM without binding, whatever the
            // string says. Supabase and PostgreSQL 11+ offer SCRAM-SHA-256-PLUS over TLS.
            pg.channel_binding(ChannelBinding::Require);
        }
        if pg.get_application_name().is_none() {
            pg.application_name("snakkaz-pay");
        }
        // Notice a dead link (Supabase gone, NAT dropped) instead of waiting on it forever.
        pg.keepalives(true)
            .keepalives_idle(Duration::from_secs(30))
            .tcp_user_timeout(Duration::from_secs(60));
        let tls = MakeRustlsConnect::new(tls_config(mode, ca_file)?);
        let label = label(&pg, mode);
        Ok(Target {
            pg,
            tls,
            mode,
            label,
        })
    }

    /// `user@host:port/db (sslmode)`: what the logs and the status page name.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// The TLS mode in use.
    pub fn mode(&self) -> TlsMode {
        self.mode
    }

    /// Connects and spawns the connection's I/O task.
    pub async fn connect(&self, timeout: Duration) -> Result<Client, SinkError> {
        let mut pg = self.pg.clone();
        pg.connect_timeout(timeout);
        let connecting = pg.connect(self.tls.clone());
        let (client, connection) = match tokio::time::timeout(timeout, connecting).await {
            Ok(Ok(c)) => c,
            Ok(Err(e)) => {
                return Err(SinkError::Connect {
                    target: self.label.clone(),
                    detail: self.scrub(&error_text(&e)),
                    source: e,
                });
            }
            Err(_) => {
                return Err(SinkError::ConnectTimeout {
                    target: self.label.clone(),
                    secs: timeout.as_secs(),
                });
            }
        };
        tokio::spawn(async move {
            // The client reports a broken connection on its next use (and `is_closed`);
            // that is where the failure is handled and logged.
            if let Err(e) = connection.await {
                tracing::debug!(error = %error_text(&e), "Postgres connection ended");
            }
        });
        Ok(client)
    }

    /// Removes the password from a text that may quote it.
    pub fn scrub(&self, text: &str) -> String {
        let password = self
            .pg
            .get_password()
            .and_then(|p| std::str::from_utf8(p).ok());
        scrub_with(text, "", password)
    }
}

/// The full text of an error and its causes, on one line.
pub fn error_text(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let t = c.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        cur = c.source();
    }
    s.replace('\n', " ")
}

fn scrub_with(text: &str, url: &str, password: Option<&str>) -> String {
    let mut out = text.to_owned();
    if !url.is_empty() {
        out = out.replace(url, "<redacted>");
    }
    // Short passwords would mangle ordinary words; those are not worth a secret anyway.
    if let Some(p) = password.filter(|p| p.len() >= 4) {
        out = out.replace(p, "<redacted>");
    }
    out
}

/// Takes `sslmode` out of the connection string (tokio-postgres knows only `require`),
/// returning the rest. Accepts URLs and `key=value` strings.
fn split_sslmode(url: &str) -> Result<(Zeroizing<String>, Option<String>), SinkError> {
    let url = url.trim();
    let mut mode = None;
    let mut take = |k: &str, v: &str| -> Result<bool, SinkError> {
        match k {
            "sslmode" => {
                mode = Some(v.to_owned());
                Ok(true)
            }
            "sslrootcert" | "sslcert" | "sslkey" => Err(SinkError::Url {
                detail: format!(
                    "{k} is not supported in the connection string; \
                     set SNAKKAZ_PAY_SUPABASE_CA_FILE for the server's CA"
                ),
            }),
            _ => Ok(false),
        }
    };
    let rest = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        match url.split_once('?') {
            None => url.to_owned(),
            Some((base, query)) => {
                let mut kept = Vec::new();
                for pair in query.split('&').filter(|p| !p.is_empty()) {
                    let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                    if !take(k, v)? {
                        kept.push(pair);
                    }
                }
                if kept.is_empty() {
                    base.to_owned()
                } else {
                    format!("{base}?{}", kept.join("&"))
                }
            }
        }
    } else {
        let mut kept = Vec::new();
        for tok in url.split_whitespace() {
            let (k, v) = tok.split_once('=').unwrap_or((tok, ""));
            if !take(k.trim(), v.trim())? {
                kept.push(tok);
            }
        }
        kept.join(" ")
    };
    Ok((Zeroizing::new(rest), mode))
}

fn label(pg: &tokio_postgres::Config, mode: TlsMode) -> String {
    let host = match pg.get_hosts().first() {
        Some(Host::Tcp(h)) => h.clone(),
        _ => "?".into(),
    };
    let port = pg.get_ports().first().copied().unwrap_or(5432);
    let user = pg.get_user().unwrap_or("?");
    let db = pg.get_dbname().unwrap_or(user);
    format!("{user}@{host}:{port}/{db} (sslmode={})", mode.as_str())
}

fn tls_config(mode: TlsMode, ca_file: Option<&Path>) -> Result<ClientConfig, SinkError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| SinkError::Tls {
            detail: e.to_string(),
        })?;
    let verifier: Arc<dyn ServerCertVerifier> = match mode {
        TlsMode::Require => Arc::new(EncryptOnly(provider)),
        TlsMode::VerifyCa | TlsMode::VerifyFull => {
            let webpki =
                WebPkiServerVerifier::builder_with_provider(Arc::new(roots(ca_file)?), provider)
                    .build()
                    .map_err(|e| SinkError::Tls {
                        detail: e.to_string(),
                    })?;
            if mode == TlsMode::VerifyCa {
                Arc::new(ChainOnly(webpki))
            } else {
                webpki
            }
        }
    };
    Ok(builder
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth())
}

fn roots(ca_file: Option<&Path>) -> Result<RootCertStore, SinkError> {
    crate::net::trust_anchors(ca_file).map_err(|e| SinkError::CaFile {
        path: e.path,
        detail: e.detail,
    })
}

/// `sslmode=require`: encrypt, accept any certificate, but still check that the server
/// holds the key of the certificate it sent (the handshake signatures).
#[derive(Debug)]
struct EncryptOnly(Arc<CryptoProvider>);

impl ServerCertVerifier for EncryptOnly {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// `sslmode=verify-ca`: the full WebPKI check, except that the name may differ.
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        // WebPKI checks the name last, so a name error means the chain was good.
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            r => r,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(s: &str) -> Secret {
        Secret::new(s.to_owned())
    }

    #[test]
    fn sslmode_is_taken_from_urls_and_key_value_strings() {
        let (rest, mode) = split_sslmode(
            "postgresql://u:pw@db.example:6543/postgres?sslmode=verify-full&connect_timeout=5",
        )
        .unwrap();
        assert_eq!(
            rest.as_str(),
            "postgresql://u:pw@db.example:6543/postgres?connect_timeout=5"
        );
        assert_eq!(mode.as_deref(), Some("verify-full"));
        let (rest, mode) = split_sslmode("host=db user=u sslmode=require").unwrap();
        assert_eq!(
            (rest.as_str(), mode.as_deref()),
            ("host=db user=u", Some("require"))
        );
        let (rest, mode) = split_sslmode("postgres://u@h/d").unwrap();
        assert_eq!((rest.as_str(), mode), ("postgres://u@h/d", None));
        assert!(split_sslmode("postgres://u@h/d?sslrootcert=/x").is_err());
    }

    #[test]
    fn modes_follow_sslmode_and_the_ca_file() {
        let ca = Path::new("/nonexistent-ca.pem");
        let t = Target::new(&secret("postgresql://u:pw@h/d"), None).unwrap();
        assert_eq!(t.mode(), TlsMode::Require);
        assert_eq!(t.label(), "u@h:5432/d (sslmode=require)");
        // Unverified TLS demands channel binding, even when the string turns it off.
        let t = Target::new(
            &secret("postgresql://u:pw@h/d?channel_binding=disable"),
            None,
        )
        .unwrap();
        assert_eq!(t.pg.get_channel_binding(), ChannelBinding::Require);
        // A CA file upgrades to verify-full (and must be readable).
        let e = Target::new(&secret("postgresql://u:pw@h/d"), Some(ca)).unwrap_err();
        assert!(matches!(e, SinkError::CaFile { .. }), "{e}");
        for plain in ["disable", "prefer", "allow"] {
            let e = Target::new(
                &secret(&format!("postgresql://u:pw@h/d?sslmode={plain}")),
                None,
            )
            .unwrap_err();
            assert!(e.to_string().contains("always uses TLS"), "{e}");
        }
    }

    #[test]
    fn errors_never_quote_the_password() {
        let e =
            Target::new(&secret("postgresql://u:hunter2secret@h:notaport/d"), None).unwrap_err();
        assert!(!format!("{e} {e:?}").contains("hunter2secret"), "{e}");
        let t = Target::new(&secret("postgresql://u:hunter2secret@h/d"), None).unwrap();
        assert_eq!(t.scrub("x hunter2secret y"), "x <redacted> y");
        assert!(!format!("{t:?}").contains("hunter2secret"));
    }
}
