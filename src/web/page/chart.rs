//! The overview's "last 24 hours" chart: payments created (bars) and paid (darker bars)
//! per hour, and the mean detection latency (notification → committed change) per hour as
//! a line. Inline SVG with classes only (the CSP forbids style attributes).

use std::fmt::Write as _;

use crate::metrics::hourly::{HOURS, HourStat};
use crate::payments::Payment;

/// Payments per hour of the last day, oldest hour first.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PerHour {
    /// Created in the hour.
    pub created: [u32; HOURS],
    /// Of those, fully paid (first seen) by now.
    pub paid: [u32; HOURS],
}

/// Buckets `payments` (any order) by the hour of the last day they were created in.
pub fn per_hour(payments: &[Payment], now: u64) -> PerHour {
    let mut out = PerHour::default();
    let current = now / 3600;
    for p in payments {
        let hour = p.created_at / 3600;
        if hour > current || current - hour >= HOURS as u64 {
            continue;
        }
        let i = HOURS - 1 - (current - hour) as usize;
        out.created[i] += 1;
        if p.first_seen_at.is_some() {
            out.paid[i] += 1;
        }
    }
    out
}

const W: u32 = 300;
const H: u32 = 110;
const TOP: u32 = 14;
const BOTTOM: u32 = 92;

/// The SVG. `capped` says the payments were read up to a limit (the bars may be short).
pub fn svg(per_hour: &PerHour, detection: &[HourStat; HOURS], capped: bool) -> String {
    let max_n = per_hour.created.iter().copied().max().unwrap_or(0).max(1);
    let max_ms = detection
        .iter()
        .filter_map(|s| s.mean_ms)
        .max()
        .unwrap_or(0)
        .max(1);
    let total: u32 = per_hour.created.iter().sum();
    let paid: u32 = per_hour.paid.iter().sum();
    let seen: u64 = detection.iter().map(|s| s.count).sum();
    let plot = BOTTOM - TOP;
    let step = W / HOURS as u32;
    let mut h = String::new();
    let _ = write!(
        h,
        "<svg class=\"chart day\" id=day-chart viewBox=\"0 0 {W} {H}\" role=img \
         aria-label=\"payments and detection latency per hour, last 24 hours\" \
         data-created={total} data-paid={paid} data-detections={seen}>"
    );
    for (i, (&n, &p)) in per_hour.created.iter().zip(&per_hour.paid).enumerate() {
        let x = i as u32 * step + 1;
        let bh = n * plot / max_n;
        let ph = p * plot / max_n;
        if n > 0 {
            let _ = write!(
                h,
                "<rect class=created x={x} y={} width={} height={bh}><title>{n} created</title></rect>",
                BOTTOM - bh,
                step - 2
            );
        }
        if p > 0 {
            let _ = write!(
                h,
                "<rect class=paid x={x} y={} width={} height={ph}><title>{p} paid</title></rect>",
                BOTTOM - ph,
                step - 2
            );
        }
    }
    let points: Vec<String> = detection
        .iter()
        .enumerate()
        .filter_map(|(i, s)| {
            let ms = s.mean_ms?;
            let x = i as u32 * step + step / 2;
            let y = BOTTOM - (ms * u64::from(plot) / max_ms) as u32;
            Some(format!("{x},{y}"))
        })
        .collect();
    if !points.is_empty() {
        let _ = write!(
            h,
            "<polyline class=latency points=\"{}\"/>",
            points.join(" ")
        );
        for p in &points {
            let (x, y) = p.split_once(',').unwrap_or(("0", "0"));
            let _ = write!(h, "<circle class=latency cx={x} cy={y} r=2 />");
        }
    }
    let _ = write!(
        h,
        "<line class=axis x1=0 y1={BOTTOM} x2={W} y2={BOTTOM} />\
         <text class=label x=0 y=10>{max_n} / h</text>\
         <text class=\"label latency\" x={W} y=10 text-anchor=end>{max_ms} ms</text>\
         <text class=label x=0 y=106>24 h ago</text>\
         <text class=label x={W} y=106 text-anchor=end>now</text></svg>"
    );
    let _ = write!(
        h,
        "<p class=\"muted legend\"><span class=\"key k-created\"></span> {total} created \
         <span class=\"key k-paid\"></span> {paid} paid \
         <span class=\"key k-latency\"></span> detection, mean per hour ({seen} since start){}</p>",
        if capped {
            " · newest payments only"
        } else {
            ""
        }
    );
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payment(created_at: u64, paid: bool) -> Payment {
        Payment {
            id: "pay_x".into(),
            seq: 0,
            reference: "r".into(),
            description: None,
            address: "a".into(),
            derivation_index: 0,
            amount_sat: 1,
            received_sat: 0,
            status: crate::payments::Status::Pending,
            confirmations: 0,
            txids: vec![],
            flags: Default::default(),
            created_at,
            updated_at: created_at,
            expires_at: created_at + 3600,
            first_seen_at: paid.then_some(created_at + 5),
            confirmed_at: None,
            covered_height: None,
            created_height: None,
            version: 1,
        }
    }

    #[test]
    fn payments_fall_in_their_hour_and_older_ones_drop_out() {
        let now = 500 * 3600 + 1800;
        let ps = [
            payment(now, true),
            payment(now - 60, false),
            payment(now - 3600, true),
            payment(now - 24 * 3600, true),
        ];
        let h = per_hour(&ps, now);
        assert_eq!(h.created[HOURS - 1], 2);
        assert_eq!(h.paid[HOURS - 1], 1);
        assert_eq!(h.created[HOURS - 2], 1);
        assert_eq!(h.created.iter().sum::<u32>(), 3, "a day old is out");
    }

    #[test]
    fn the_chart_draws_bars_and_the_latency_line_without_style_attributes() {
        let now = 500 * 3600;
        let h = per_hour(&[payment(now, true), payment(now, false)], now);
        let mut d = [HourStat::default(); HOURS];
        d[HOURS - 1] = HourStat {
            count: 3,
            mean_ms: Some(120),
            max_ms: Some(200),
        };
        let svg = svg(&h, &d, false);
        assert!(
            svg.contains("data-created=2 data-paid=1 data-detections=3"),
            "{svg}"
        );
        assert!(
            svg.contains("class=latency") && svg.contains("120 ms"),
            "{svg}"
        );
        assert!(!svg.contains("style="));
        // Unquoted attribute values swallow a following `/`: `r=2/>` would open, not close.
        for tag in svg.split('<').filter(|t| t.ends_with("/>")) {
            let before = tag.trim_end_matches("/>");
            assert!(
                before.ends_with(' ') || before.ends_with('"'),
                "self-closing tag with an unquoted last value: <{tag}"
            );
        }
    }
}
