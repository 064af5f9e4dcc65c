//! Fee-rate arithmetic in integers: rates are kept in sat per 1000 vB (sat/kvB), so that
//! 1.5 sat/vB is exactly 1500 and no float ever touches an amount.

/// Estimated vsize of a child spending one P2WPKH output to one P2WPKH output (CPFP).
pub const CPFP_CHILD_VSIZE: u64 = 110;

/// Fee rate of `fee_sat` over `vsize`, in sat/kvB (rounded down).
pub fn per_kvb(fee_sat: u64, vsize: u64) -> u64 {
    if vsize == 0 {
        return 0;
    }
    ((u128::from(fee_sat) * 1000) / u128::from(vsize)) as u64
}

/// The fee that pays `rate_kvb` over `vsize`, rounded up.
pub fn fee_for(rate_kvb: u64, vsize: u64) -> u64 {
    (u128::from(rate_kvb) * u128::from(vsize)).div_ceil(1000) as u64
}

/// `12.34` for 12340 sat/kvB: two decimals, truncated.
pub fn display(rate_kvb: u64) -> String {
    format!("{}.{:02}", rate_kvb / 1000, (rate_kvb % 1000) / 10)
}

/// Parses an operator's fee rate in sat/vB (`5`, `2.5`, `12.34`) into sat/kvB.
pub fn parse_sat_vb(s: &str) -> Result<u64, String> {
    let bad = || format!("{s:?} is not a fee rate in sat/vB (e.g. 5 or 2.5)");
    let (whole, frac) = match s.trim().split_once('.') {
        Some((w, f)) => (w, f),
        None => (s.trim(), ""),
    };
    if whole.is_empty() || frac.len() > 3 || !frac.chars().all(|c| c.is_ascii_digit()) {
        return Err(bad());
    }
    let w: u64 = whole.parse().map_err(|_| bad())?;
    let f: u64 = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<3}").parse().map_err(|_| bad())?
    };
    w.checked_mul(1000)
        .and_then(|x| x.checked_add(f))
        .ok_or_else(bad)
}

/// An Electrum `estimatefee` answer (BTC/kvB, -1 = none) as sat/kvB.
pub fn from_btc_per_kvb(btc: f64) -> Option<u64> {
    // The protocol reports a float; converting once at the edge keeps every sum integral.
    (btc.is_finite() && btc > 0.0).then(|| (btc * 100_000_000.0).round() as u64)
}

/// A histogram's float rate (sat/vB) as sat/kvB (0 for nonsense).
pub fn from_sat_vb(r: f64) -> u64 {
    if r.is_finite() && r > 0.0 {
        (r * 1000.0).round() as u64
    } else {
        0
    }
}

/// What a child must pay so that parent (with its unconfirmed ancestors: `package_fee`
/// over `package_vsize`) and child together reach `target_kvb`. Never below the child's
/// own share at the target rate (a child paying less would itself be below the target).
pub fn cpfp_child_fee(package_fee: u64, package_vsize: u64, target_kvb: u64) -> u64 {
    let total = fee_for(target_kvb, package_vsize + CPFP_CHILD_VSIZE);
    total
        .saturating_sub(package_fee)
        .max(fee_for(target_kvb, CPFP_CHILD_VSIZE))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_are_exact_in_sat_per_kvb() {
        assert_eq!(per_kvb(1410, 141), 10_000);
        assert_eq!(per_kvb(211, 141), 1496);
        assert_eq!(per_kvb(5, 0), 0);
        assert_eq!(fee_for(1496, 141), 211);
        assert_eq!(fee_for(1000, 141), 141);
        assert_eq!(fee_for(1001, 141), 142, "rounded up: never below the rate");
        assert_eq!(display(1496), "1.49");
        assert_eq!(display(12_340), "12.34");
        assert_eq!(display(7), "0.00");
    }

    #[test]
    fn operator_rates_parse_exactly_or_are_refused() {
        assert_eq!(parse_sat_vb("5"), Ok(5000));
        assert_eq!(parse_sat_vb("2.5"), Ok(2500));
        assert_eq!(parse_sat_vb("0.125"), Ok(125));
        for bad in [
            "",
            "abc",
            "1.2345",
            "-1",
            "1e3",
            ".5",
            "99999999999999999999",
        ] {
            assert!(parse_sat_vb(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn estimatefee_answers_convert_and_no_estimate_is_none() {
        assert_eq!(from_btc_per_kvb(0.00001), Some(1000));
        assert_eq!(from_btc_per_kvb(0.0002), Some(20_000));
        assert_eq!(from_btc_per_kvb(-1.0), None);
        assert_eq!(from_btc_per_kvb(f64::NAN), None);
    }

    #[test]
    fn cpfp_child_makes_up_the_package_rate() {
        // Parent 141 vB paying 141 sat (1 sat/vB); target 10 sat/vB.
        let child = cpfp_child_fee(141, 141, 10_000);
        assert_eq!(child, fee_for(10_000, 141 + CPFP_CHILD_VSIZE) - 141);
        assert_eq!(per_kvb(141 + child, 141 + CPFP_CHILD_VSIZE), 10_000);
        // A parent already above the target: the child still pays its own way.
        assert_eq!(
            cpfp_child_fee(100_000, 141, 10_000),
            fee_for(10_000, CPFP_CHILD_VSIZE)
        );
    }
}
