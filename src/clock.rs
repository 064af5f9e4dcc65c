//! Wall-clock time as unix seconds, the unit of every timestamp in the store.

/// Seconds since the unix epoch (0 if the clock is before 1970).
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Formats unix seconds as RFC 3339 UTC (`2026-11-23T22:37:35Z`).
pub fn rfc3339(secs: u64) -> String {
    humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs))
        .to_string()
}
