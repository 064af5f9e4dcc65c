//! Monitoring files shipped inside the binary, so an operator gets them from the box:
//! the Prometheus rules and scrape configuration, and three Grafana dashboards.

/// Prometheus alerting and recording rules (the guide's five alerts).
pub const PROMETHEUS_RULES: &str = include_str!("../monitoring/prometheus-rules.yml");
/// Prometheus scrape configuration for `/api/metrics/bitcoin`.
pub const PROMETHEUS_SCRAPE: &str = include_str!("../monitoring/prometheus-scrape.yml");
/// Grafana dashboards as (file name, JSON).
pub const GRAFANA_DASHBOARDS: [(&str, &str); 3] = [
    (
        "payment-overview.json",
        include_str!("../monitoring/grafana/payment-overview.json"),
    ),
    (
        "processing-performance.json",
        include_str!("../monitoring/grafana/processing-performance.json"),
    ),
    (
        "wallet-security.json",
        include_str!("../monitoring/grafana/wallet-security.json"),
    ),
];

/// The dashboards as one JSON array (what `monitoring grafana-dashboards` prints).
pub fn grafana_dashboards_json() -> String {
    let all: Vec<serde_json::Value> = GRAFANA_DASHBOARDS
        .iter()
        .map(|(_, d)| serde_json::from_str(d).expect("embedded dashboards are valid JSON"))
        .collect();
    serde_json::to_string_pretty(&all).expect("JSON values serialize")
}

/// Every `snakkaz_pay_*` and `process_*` metric name a text refers to, histogram suffixes removed.
pub fn referenced_metrics(text: &str) -> std::collections::BTreeSet<String> {
    let mut out = std::collections::BTreeSet::new();
    let bytes = text.as_bytes();
    let is_name = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b == b':';
    let mut i = 0;
    while i < bytes.len() {
        if is_name(bytes[i]) && (i == 0 || !is_name(bytes[i - 1])) {
            let start = i;
            while i < bytes.len() && is_name(bytes[i]) {
                i += 1;
            }
            let word = &text[start..i];
            // Recording rules (with ':') are defined in the rules file, not exported.
            if (word.starts_with("snakkaz_pay_") || word.starts_with("process_"))
                && !word.contains(':')
            {
                let base = ["_bucket", "_sum", "_count"]
                    .iter()
                    .find_map(|s| word.strip_suffix(s))
                    .unwrap_or(word);
                out.insert(base.to_owned());
            }
        } else {
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dashboards_are_valid_json_with_their_guide_titles() {
        let titles: Vec<String> = GRAFANA_DASHBOARDS
            .iter()
            .map(|(_, d)| {
                serde_json::from_str::<serde_json::Value>(d).unwrap()["title"].to_string()
            })
            .collect();
        assert_eq!(
            titles,
            [
                "\"Bitcoin Payment Overview\"",
                "\"Transaction Processing Performance\"",
                "\"Wallet Security & Status\""
            ]
        );
    }

    #[test]
    fn every_alert_rule_is_in_the_rules_file() {
        for rule in crate::alerts::RULES {
            assert!(
                PROMETHEUS_RULES.contains(&format!("alert: {rule}\n")),
                "{rule} missing"
            );
        }
    }

    #[test]
    fn metric_names_are_found_without_suffixes_or_recording_rules() {
        let names = referenced_metrics(
            "rate(snakkaz_pay_x_seconds_bucket[5m]) + snakkaz_pay:y:sum + process_open_fds{a=\"b\"}",
        );
        assert_eq!(
            names.into_iter().collect::<Vec<_>>(),
            ["process_open_fds", "snakkaz_pay_x_seconds"]
        );
    }
}
