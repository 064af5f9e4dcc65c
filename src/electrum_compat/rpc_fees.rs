//! Electrum 4.3's `getfeerate`: the fee rate (sat/kvB) its config would pay, from the
//! server's `blockchain.estimatefee` answers or its mempool histogram. Pure arithmetic on
//! integers; the estimates are fetched and cached by the caller.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use bdk_wallet::bitcoin::Network;

/// Electrum's `FEE_ETA_TARGETS`: the blocks of its four eta slider positions.
pub const ETA_TARGETS: [u32; 4] = [25, 10, 5, 2];
/// Electrum's `FEE_DEPTH_TARGETS`: mempool depths (vbytes) of its mempool slider positions.
const DEPTH_TARGETS: [u64; 9] = [
    10_000_000, 5_000_000, 2_000_000, 1_000_000, 800_000, 600_000, 400_000, 250_000, 100_000,
];
/// Electrum's `FEERATE_STATIC_VALUES` (sat/kvB).
const STATIC_VALUES: [u64; 12] = [
    1_000, 2_000, 5_000, 10_000, 20_000, 30_000, 50_000, 70_000, 100_000, 150_000, 200_000, 300_000,
];
/// Electrum's fallback static fee rate, used when `dynamic_fees` is off (sat/kvB).
const STATIC_FALLBACK: u64 = 150_000;
/// Electrum answers this on regtest whatever the estimates (`FEERATE_REGTEST_HARDCODED`).
pub const REGTEST_FEE_RATE: u64 = 180_000;
/// Electrum's bounds on a dynamic fee rate (sat/kvB).
const MIN_RELAY: u64 = 1_000;
const MAX_DYNAMIC: u64 = 1_500_000;
/// Electrum's default slider positions: eta level 2 (5 blocks), depth level 2 (2 MvB).
const DEFAULT_ETA_LEVEL: usize = 2;
const DEFAULT_DEPTH_LEVEL: usize = 2;
/// How long fetched estimates are reused (Electrum refreshes them about once a block).
pub const CACHE_FOR: Duration = Duration::from_secs(60);

/// Electrum's `fee_method` argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// The configured one: dynamic, by confirmation target (Electrum's default).
    Default,
    /// Fixed slider values.
    Static,
    /// By confirmation target.
    Eta,
    /// By depth in the mempool.
    Mempool,
}

impl Method {
    /// Parses Electrum's `fee_method` (case-insensitive), with its error text.
    pub fn parse(v: Option<&str>) -> Result<Method, String> {
        match v.map(str::to_lowercase).as_deref() {
            None => Ok(Method::Default),
            Some("static") => Ok(Method::Static),
            Some("eta") => Ok(Method::Eta),
            Some("mempool") => Ok(Method::Mempool),
            Some(_) => Err(format!(
                "Invalid fee estimation method: {}",
                v.unwrap_or_default()
            )),
        }
    }

    /// Whether answering needs the server's estimates or histogram.
    pub fn needs_server(self) -> bool {
        self != Method::Static
    }
}

/// What the server said, in integer units.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Estimates {
    /// sat/kvB for each of [`ETA_TARGETS`] plus 2 blocks; `None` when the server has none.
    pub by_target: Vec<(u32, Option<u64>)>,
    /// Mempool histogram: (fee rate in milli-sat/vB, vsize), highest rate first.
    pub histogram: Option<Vec<(u64, u64)>>,
}

impl Estimates {
    fn target(&self, blocks: u32) -> Option<u64> {
        self.by_target
            .iter()
            .find(|(b, _)| *b == blocks)
            .and_then(|(_, f)| *f)
    }
}

/// A slider position from Electrum's fractional `fee_level` (a decimal string in [0, 1]),
/// rounded as Python's `round` does (half to even).
pub fn slider_position(level: &str, max_pos: usize) -> Result<usize, String> {
    let bad = || format!("invalid fee_level: {level:?} (a decimal number from 0 to 1)");
    let t = level.trim();
    let (int, frac) = t.split_once('.').unwrap_or((t, ""));
    if int.is_empty() && frac.is_empty()
        || !int.chars().all(|c| c.is_ascii_digit())
        || !frac.chars().all(|c| c.is_ascii_digit())
        || frac.len() > 18
    {
        return Err(bad());
    }
    let scale = 10u128.pow(frac.len() as u32);
    let num = int.parse::<u128>().unwrap_or(0) * scale + frac.parse::<u128>().unwrap_or(0);
    // Electrum clamps the level to [0, 1].
    let num = num.min(scale) * max_pos as u128;
    let (q, r) = (num / scale, num % scale);
    let up = 2 * r > scale || (2 * r == scale && q % 2 == 1);
    Ok((q + u128::from(up)) as usize)
}

fn limits(fee: Option<u64>) -> Option<u64> {
    fee.map(|f| f.clamp(MIN_RELAY, MAX_DYNAMIC))
}

/// Electrum's `eta_to_fee`: the estimate for a slider position; past the last position
/// "next block", 1.5 times the 2-block estimate.
fn eta_to_fee(pos: usize, est: &Estimates) -> Option<u64> {
    let fee = match ETA_TARGETS.get(pos) {
        Some(&blocks) => est.target(blocks),
        None => est.target(2).map(|f| f + f / 2),
    };
    limits(fee)
}

/// Electrum's `depth_target_to_fee`: the rate needed to be within `depth` vbytes of the
/// top of the mempool, plus 1 sat/vB for the histogram's precision.
fn depth_to_fee(pos: usize, est: &Estimates) -> Option<u64> {
    let target = DEPTH_TARGETS[pos.min(DEPTH_TARGETS.len() - 1)];
    let hist = est.histogram.as_ref()?;
    let mut depth = 0;
    for &(milli_sat_vb, vsize) in hist {
        depth += vsize;
        if depth > target {
            // Electrum's int((fee + 1) * 1000) of a rate in sat/vB.
            return limits(Some(milli_sat_vb + 1_000));
        }
    }
    limits(Some(0))
}

/// The answer of `getfeerate` (sat/kvB; `None` is Electrum's `null`: no estimate yet).
pub fn fee_rate(
    network: Network,
    method: Method,
    level: Option<&str>,
    est: &Estimates,
) -> Result<Option<u64>, String> {
    if network == Network::Regtest {
        return Ok(Some(REGTEST_FEE_RATE));
    }
    match (method, level) {
        (Method::Static, None) => Ok(Some(STATIC_FALLBACK)),
        (Method::Static, Some(l)) => Ok(Some(
            STATIC_VALUES[slider_position(l, STATIC_VALUES.len() - 1)?],
        )),
        (Method::Default | Method::Eta, None) => Ok(eta_to_fee(DEFAULT_ETA_LEVEL, est)),
        (Method::Default | Method::Eta, Some(l)) => {
            Ok(eta_to_fee(slider_position(l, ETA_TARGETS.len())?, est))
        }
        (Method::Mempool, None) => Ok(depth_to_fee(DEFAULT_DEPTH_LEVEL, est)),
        (Method::Mempool, Some(l)) => Ok(depth_to_fee(
            slider_position(l, DEPTH_TARGETS.len() - 1)?,
            est,
        )),
    }
}

/// Converts the server's BTC/kvB estimate (-1: none) to sat/kvB as Electrum does.
pub fn btc_per_kvb_to_sat(v: f64) -> Option<u64> {
    // The protocol carries floats; this is the one place they become integers.
    (v > 0.0).then(|| (v * 100_000_000.0).round() as u64)
}

/// Converts a histogram rate in sat/vB to milli-sat/vB.
pub fn sat_vb_to_milli(v: f64) -> u64 {
    if v > 0.0 {
        (v * 1_000.0).round() as u64
    } else {
        0
    }
}

/// Estimates fetched from the server, reused for [`CACHE_FOR`].
#[derive(Debug, Default)]
pub struct Cache(Mutex<Option<(Instant, Estimates)>>);

impl Cache {
    /// Fresh estimates, if any.
    pub fn get(&self) -> Option<Estimates> {
        let g = self.0.lock().unwrap_or_else(|e| e.into_inner());
        g.as_ref()
            .filter(|(at, _)| at.elapsed() < CACHE_FOR)
            .map(|(_, e)| e.clone())
    }

    /// Stores estimates just fetched.
    pub fn put(&self, e: Estimates) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some((Instant::now(), e));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn est() -> Estimates {
        Estimates {
            by_target: vec![
                (25, Some(1_500)),
                (10, Some(4_000)),
                (5, Some(12_000)),
                (2, Some(21_000)),
            ],
            histogram: Some(vec![
                (50_000, 600_000),
                (20_500, 1_000_000),
                (3_000, 900_000),
            ]),
        }
    }

    #[test]
    fn regtest_answers_electrums_constant() {
        for m in [Method::Default, Method::Static, Method::Mempool] {
            assert_eq!(
                fee_rate(Network::Regtest, m, None, &Estimates::default()),
                Ok(Some(180_000))
            );
        }
    }

    #[test]
    fn the_default_is_the_five_block_estimate_within_limits() {
        let e = est();
        assert_eq!(
            fee_rate(Network::Bitcoin, Method::Default, None, &e),
            Ok(Some(12_000))
        );
        assert_eq!(
            fee_rate(Network::Bitcoin, Method::Eta, Some("0"), &e),
            Ok(Some(1_500))
        );
        assert_eq!(
            fee_rate(Network::Bitcoin, Method::Eta, Some("0.75"), &e),
            Ok(Some(21_000))
        );
        // Past the last target: 1.5 x the 2-block estimate.
        assert_eq!(
            fee_rate(Network::Bitcoin, Method::Eta, Some("1"), &e),
            Ok(Some(31_500))
        );
        let low = Estimates {
            by_target: vec![(5, Some(200))],
            histogram: None,
        };
        assert_eq!(
            fee_rate(Network::Bitcoin, Method::Eta, None, &low),
            Ok(Some(1_000))
        );
        assert_eq!(
            fee_rate(Network::Bitcoin, Method::Eta, None, &Estimates::default()),
            Ok(None)
        );
    }

    #[test]
    fn mempool_depth_adds_one_sat_per_vbyte() {
        let e = est();
        // 2 MvB deep is reached in the third bucket (3 sat/vB): 4 sat/vB.
        assert_eq!(
            fee_rate(Network::Signet, Method::Mempool, None, &e),
            Ok(Some(4_000))
        );
        // 1 MvB is reached in the second bucket (20.5 sat/vB): 21.5 sat/vB.
        assert_eq!(
            fee_rate(Network::Signet, Method::Mempool, Some("0.375"), &e),
            Ok(Some(21_500))
        );
        // Deeper than the whole mempool: the relay minimum.
        assert_eq!(
            fee_rate(Network::Signet, Method::Mempool, Some("0"), &e),
            Ok(Some(1_000))
        );
    }

    #[test]
    fn static_levels_and_bad_arguments() {
        let e = Estimates::default();
        assert_eq!(
            fee_rate(Network::Bitcoin, Method::Static, None, &e),
            Ok(Some(150_000))
        );
        assert_eq!(
            fee_rate(Network::Bitcoin, Method::Static, Some("1"), &e),
            Ok(Some(300_000))
        );
        assert_eq!(
            fee_rate(Network::Bitcoin, Method::Static, Some("5"), &e),
            Ok(Some(300_000))
        );
        assert_eq!(Method::parse(Some("ETA")), Ok(Method::Eta));
        assert_eq!(
            Method::parse(Some("fast")),
            Err("Invalid fee estimation method: fast".to_owned())
        );
        assert!(fee_rate(Network::Bitcoin, Method::Eta, Some("-1"), &e).is_err());
        assert!(fee_rate(Network::Bitcoin, Method::Eta, Some("x"), &e).is_err());
    }

    #[test]
    fn slider_rounds_half_to_even_as_python() {
        assert_eq!(slider_position("0.625", 4), Ok(2)); // round(2.5) == 2
        assert_eq!(slider_position("0.875", 4), Ok(4)); // round(3.5) == 4
        assert_eq!(slider_position("0.5", 11), Ok(6)); // round(5.5) == 6
        assert_eq!(slider_position(".1", 4), Ok(0));
    }

    #[test]
    fn server_floats_become_integers_once() {
        assert_eq!(btc_per_kvb_to_sat(0.00012), Some(12_000));
        assert_eq!(btc_per_kvb_to_sat(-1.0), None);
        assert_eq!(sat_vb_to_milli(20.5), 20_500);
    }
}
