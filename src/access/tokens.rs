//! Bearer tokens, swappable while the daemon runs, with an optional grace period for the
//! tokens they replace.

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use crate::config::Config;
use crate::secret::{Secret, SecretError, read_token_file};

/// What a request is allowed to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Access {
    /// No valid token.
    None,
    /// The API token.
    Api,
    /// The admin token.
    Admin,
}

/// Bearer tokens accepted by the API.
#[derive(Clone, Default)]
pub struct Tokens {
    /// Token for the payment API.
    pub api: Option<Secret>,
    /// Token for everything, including admin actions.
    pub admin: Option<Secret>,
}

/// What an `Authorization` header presented.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presented {
    /// No bearer token at all.
    Nothing,
    /// A token that matches none in force: a failed authentication.
    Wrong,
    /// A token in force.
    Valid(Access),
}

impl Presented {
    /// The access granted (none unless valid).
    pub fn access(self) -> Access {
        match self {
            Presented::Valid(a) => a,
            _ => Access::None,
        }
    }
}

/// Why the token files could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum TokenLoadError {
    /// A token file is unusable.
    #[error("{key}: {source}")]
    File {
        /// The configuration key naming the file.
        key: &'static str,
        /// What is wrong with it.
        #[source]
        source: SecretError,
    },
    /// No token file is configured.
    #[error(
        "SNAKKAZ_PAY_API_TOKEN_FILE: not set; the API needs a token file (`snakkaz-pay init` creates one)"
    )]
    NoneConfigured,
}

impl Tokens {
    /// Reads the token files named in the configuration.
    pub fn load(cfg: &Config) -> Result<Tokens, TokenLoadError> {
        use crate::config::keys;
        let read = |path: &Option<std::path::PathBuf>, key| {
            path.as_deref()
                .map(read_token_file)
                .transpose()
                .map_err(|source| TokenLoadError::File { key, source })
        };
        let api = read(&cfg.api_token_file, keys::API_TOKEN_FILE)?;
        let admin = read(&cfg.admin_token_file, keys::ADMIN_TOKEN_FILE)?;
        if api.is_none() && admin.is_none() {
            return Err(TokenLoadError::NoneConfigured);
        }
        Ok(Tokens { api, admin })
    }

    /// The access this exact token grants (both compared every time, in constant time).
    fn grant(&self, token: &[u8]) -> Access {
        let admin = self
            .admin
            .as_ref()
            .is_some_and(|s| s.constant_time_eq(token));
        let api = self.api.as_ref().is_some_and(|s| s.constant_time_eq(token));
        if admin {
            Access::Admin
        } else if api {
            Access::Api
        } else {
            Access::None
        }
    }

    /// The access an `Authorization` header value grants.
    pub fn access(&self, header: Option<&str>) -> Access {
        match bearer(header) {
            Some(t) => self.grant(t),
            None => Access::None,
        }
    }
}

fn bearer(header: Option<&str>) -> Option<&[u8]> {
    header
        .and_then(|h| h.strip_prefix("Bearer "))
        .map(|t| t.trim().as_bytes())
}

/// A replaced token still accepted until `until`.
struct Retired {
    token: Secret,
    access: Access,
    until: Instant,
}

struct Set {
    current: Tokens,
    retired: Vec<Retired>,
}

/// The tokens in force, replaced as a whole on rotation (SIGHUP or the admin API).
pub struct LiveTokens {
    inner: RwLock<Arc<Set>>,
}

/// Which tokens a replacement changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Replaced {
    /// The API token changed.
    pub api: bool,
    /// The admin token changed.
    pub admin: bool,
}

impl LiveTokens {
    /// Starts with these tokens.
    pub fn new(tokens: Tokens) -> Self {
        LiveTokens {
            inner: RwLock::new(Arc::new(Set {
                current: tokens,
                retired: Vec::new(),
            })),
        }
    }

    fn snapshot(&self) -> Arc<Set> {
        self.inner.read().expect("token lock").clone()
    }

    /// The tokens in force (not those in a grace period).
    pub fn current(&self) -> Tokens {
        self.snapshot().current.clone()
    }

    /// What an `Authorization` header value presents, at time `now`.
    pub fn check(&self, header: Option<&str>, now: Instant) -> Presented {
        let Some(token) = bearer(header) else {
            return Presented::Nothing;
        };
        let set = self.snapshot();
        let mut access = set.current.grant(token);
        // Every retired token is compared too, so timing does not tell which one matched.
        for r in &set.retired {
            if r.token.constant_time_eq(token) && r.until > now && r.access > access {
                access = r.access;
            }
        }
        match access {
            Access::None => Presented::Wrong,
            a => Presented::Valid(a),
        }
    }

    /// Puts `new` in force; a replaced token keeps working until `now + grace`. A zero
    /// grace revokes every replaced token at once, including those still in an earlier grace.
    pub fn replace(&self, new: Tokens, grace: Duration, now: Instant) -> Replaced {
        let mut guard = self.inner.write().expect("token lock");
        let old = guard.clone();
        let changed = |a: &Option<Secret>, b: &Option<Secret>| a != b;
        let replaced = Replaced {
            api: changed(&old.current.api, &new.api),
            admin: changed(&old.current.admin, &new.admin),
        };
        // A rotation without grace is a revocation: it also ends earlier grace periods.
        let mut retired: Vec<Retired> = old
            .retired
            .iter()
            .filter(|r| r.until > now && !grace.is_zero())
            .map(|r| Retired {
                token: r.token.clone(),
                access: r.access,
                until: r.until,
            })
            .collect();
        if !grace.is_zero() {
            let until = now + grace;
            for (was, access, did_change) in [
                (&old.current.api, Access::Api, replaced.api),
                (&old.current.admin, Access::Admin, replaced.admin),
            ] {
                if let (Some(token), true) = (was, did_change) {
                    retired.push(Retired {
                        token: token.clone(),
                        access,
                        until,
                    });
                }
            }
        }
        *guard = Arc::new(Set {
            current: new,
            retired,
        });
        replaced
    }
}

/// Longest grace period a rotation may give the replaced tokens.
pub const MAX_GRACE: Duration = Duration::from_secs(7 * 86_400);

impl LiveTokens {
    /// Re-reads the token files named in `cfg` and puts them in force (see [`Self::replace`]).
    pub fn reload(&self, cfg: &Config, grace: Duration) -> Result<Replaced, TokenLoadError> {
        let new = Tokens::load(cfg)?;
        Ok(self.replace(new, grace.min(MAX_GRACE), Instant::now()))
    }
}

/// A new random token: 32 bytes from the OS as 64 hex characters.
pub fn generate() -> Secret {
    let mut b = zeroize::Zeroizing::new([0u8; 32]);
    getrandom::fill(&mut b[..]).expect("the OS random number generator works");
    Secret::new(hex::encode(&b[..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(api: &str, admin: &str) -> Tokens {
        Tokens {
            api: Some(Secret::new(api)),
            admin: Some(Secret::new(admin)),
        }
    }

    fn h(t: &str) -> String {
        format!("Bearer {t}")
    }

    #[test]
    fn missing_wrong_and_valid_tokens_are_told_apart() {
        let live = LiveTokens::new(tokens("api-0123456789abcdef", "adm-0123456789abcdef"));
        let now = Instant::now();
        assert_eq!(live.check(None, now), Presented::Nothing);
        assert_eq!(live.check(Some("Basic x"), now), Presented::Nothing);
        assert_eq!(live.check(Some(&h("nope")), now), Presented::Wrong);
        assert_eq!(
            live.check(Some(&h("api-0123456789abcdef")), now),
            Presented::Valid(Access::Api)
        );
        assert_eq!(
            live.check(Some(&h("adm-0123456789abcdef")), now),
            Presented::Valid(Access::Admin)
        );
    }

    #[test]
    fn replaced_tokens_fail_at_once_without_grace() {
        let live = LiveTokens::new(tokens("api-old", "adm-old"));
        let now = Instant::now();
        let r = live.replace(tokens("api-new", "adm-old"), Duration::ZERO, now);
        assert_eq!(
            r,
            Replaced {
                api: true,
                admin: false
            }
        );
        assert_eq!(live.check(Some(&h("api-old")), now), Presented::Wrong);
        assert_eq!(
            live.check(Some(&h("api-new")), now),
            Presented::Valid(Access::Api)
        );
        assert_eq!(
            live.check(Some(&h("adm-old")), now),
            Presented::Valid(Access::Admin)
        );
    }

    #[test]
    fn replaced_tokens_work_until_the_grace_period_ends() {
        let live = LiveTokens::new(tokens("api-old", "adm-old"));
        let now = Instant::now();
        live.replace(tokens("api-new", "adm-new"), Duration::from_secs(60), now);
        let during = now + Duration::from_secs(59);
        let after = now + Duration::from_secs(60);
        assert_eq!(
            live.check(Some(&h("adm-old")), during),
            Presented::Valid(Access::Admin)
        );
        assert_eq!(
            live.check(Some(&h("api-old")), during),
            Presented::Valid(Access::Api)
        );
        assert_eq!(live.check(Some(&h("adm-old")), after), Presented::Wrong);
    }

    #[test]
    fn a_rotation_without_grace_revokes_tokens_still_in_grace() {
        let live = LiveTokens::new(tokens("api-old", "adm-old"));
        let now = Instant::now();
        live.replace(tokens("api-new", "adm-new"), Duration::from_secs(600), now);
        live.replace(tokens("api-3", "adm-3"), Duration::ZERO, now);
        for t in ["api-old", "adm-old", "api-new", "adm-new"] {
            assert_eq!(live.check(Some(&h(t)), now), Presented::Wrong, "{t}");
        }
        assert_eq!(
            live.check(Some(&h("adm-3")), now),
            Presented::Valid(Access::Admin)
        );
    }

    #[test]
    fn generated_tokens_are_long_and_distinct() {
        let (a, b) = (generate(), generate());
        assert_eq!(a.expose().len(), 64);
        assert_ne!(a, b);
    }
}
