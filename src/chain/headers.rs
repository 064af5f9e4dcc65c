//! The appliance's own header chain: every block header a server sends is checked for
//! proof of work, for the network's difficulty rules and for linkage to the headers
//! already verified, so a server (or anyone on the path) cannot make up a block.
//!
//! The chain is a contiguous run of verified headers, seeded from the wallet's last known
//! block when it is near the server's tip (continuity across restarts) and otherwise from
//! the server's recent blocks (first use). Merkle proofs are checked against these
//! headers, never against a header the same answer brought along.

use bdk_wallet::bitcoin::block::Header;
use bdk_wallet::bitcoin::{BlockHash, Network, Target};

/// Deepest reorganisation followed; deeper means a server on another chain.
pub const MAX_REORG: u32 = 2016;

/// Why headers were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    /// The header's hash does not meet its own target.
    #[error("block header at height {height} does not carry the proof of work it claims")]
    PowInvalid {
        /// Height of the header.
        height: u32,
    },
    /// The header's difficulty breaks the network's rules.
    #[error("block header at height {height} has a difficulty the network's rules do not allow")]
    BadDifficulty {
        /// Height of the header.
        height: u32,
    },
    /// The header does not follow the previous one.
    #[error("block header at height {height} does not link to the previous block")]
    Unlinked {
        /// Height of the header.
        height: u32,
    },
    /// The server's chain leaves the verified one deeper than [`MAX_REORG`].
    #[error("the server's chain forks from the verified one more than {MAX_REORG} blocks deep")]
    TooDeep,
}

/// The verified header chain.
#[derive(Debug, Clone)]
pub struct HeaderChain {
    network: Network,
    /// Height of `headers[0]`.
    low: u32,
    headers: Vec<Header>,
}

impl HeaderChain {
    /// An empty chain for `network`.
    pub fn new(network: Network) -> HeaderChain {
        HeaderChain {
            network,
            low: 0,
            headers: Vec::new(),
        }
    }

    /// The network whose rules apply.
    pub fn network(&self) -> Network {
        self.network
    }

    /// Height of the highest verified header.
    pub fn tip(&self) -> Option<u32> {
        (!self.headers.is_empty()).then(|| self.low + self.headers.len() as u32 - 1)
    }

    /// Height of the lowest verified header.
    pub fn low(&self) -> Option<u32> {
        (!self.headers.is_empty()).then_some(self.low)
    }

    /// The verified header at `height`.
    pub fn get(&self, height: u32) -> Option<&Header> {
        height
            .checked_sub(self.low)
            .and_then(|i| self.headers.get(i as usize))
    }

    /// Checks a run's own proof of work, difficulty and linkage.
    fn check_run(&self, start: u32, run: &[Header]) -> Result<(), HeaderError> {
        let params = bdk_wallet::bitcoin::params::Params::new(self.network);
        for (i, h) in run.iter().enumerate() {
            let height = start + i as u32;
            if h.target() > params.max_attainable_target {
                return Err(HeaderError::BadDifficulty { height });
            }
            h.validate_pow(h.target())
                .map_err(|_| HeaderError::PowInvalid { height })?;
            let prev = if i > 0 {
                Some(&run[i - 1])
            } else {
                height.checked_sub(1).and_then(|p| self.get(p))
            };
            if let Some(prev) = prev {
                if h.prev_blockhash != prev.block_hash() {
                    return Err(HeaderError::Unlinked { height });
                }
                if !difficulty_follows(&params, height, prev, h) {
                    return Err(HeaderError::BadDifficulty { height });
                }
            }
        }
        Ok(())
    }

    /// Starts the chain from a run the server sent (trust on first use of its linkage;
    /// proof of work and difficulty are still checked), or from a run that begins with a
    /// block the wallet already knew (`known`), which carries the old chain's trust over.
    pub fn seed(
        &mut self,
        start: u32,
        run: Vec<Header>,
        known: Option<(u32, BlockHash)>,
    ) -> Result<(), HeaderError> {
        if let Some((h, hash)) = known
            && let Some(header) = h.checked_sub(start).and_then(|i| run.get(i as usize))
            && header.block_hash() != hash
        {
            return Err(HeaderError::Unlinked { height: h });
        }
        let fresh = HeaderChain::new(self.network);
        fresh.check_run(start, &run)?;
        self.low = start;
        self.headers = run;
        Ok(())
    }

    /// Takes a run of headers from `start` that extends the chain, replaces its top after
    /// a reorganisation, or (ending just below it) extends it downwards. Returns the height
    /// below which nothing changed.
    pub fn accept(&mut self, start: u32, run: &[Header]) -> Result<u32, HeaderError> {
        if run.is_empty() {
            return Ok(self.tip().map_or(0, |t| t + 1));
        }
        let Some(tip) = self.tip() else {
            self.seed(start, run.to_vec(), None)?;
            return Ok(start);
        };
        let end = start + run.len() as u32 - 1;
        if end + 1 == self.low {
            // Older headers, below the verified chain: they must lead up into it.
            self.check_run(start, run)?;
            if self.headers[0].prev_blockhash != run[run.len() - 1].block_hash() {
                return Err(HeaderError::Unlinked { height: self.low });
            }
            let mut all = run.to_vec();
            all.append(&mut self.headers);
            self.headers = all;
            self.low = start;
            return Ok(end + 1);
        }
        if start < self.low || start > tip + 1 {
            return Err(HeaderError::Unlinked { height: start });
        }
        // Skip what we already have; the first differing header is the fork point.
        let same = run
            .iter()
            .zip(start..)
            .take_while(|(h, height)| self.get(*height).is_some_and(|ours| ours == *h))
            .count();
        let fork = start + same as u32;
        let rest = &run[same..];
        if rest.is_empty() {
            return Ok(fork);
        }
        if tip.saturating_sub(fork) >= MAX_REORG {
            return Err(HeaderError::TooDeep);
        }
        let mut probe = self.clone();
        probe.headers.truncate((fork - self.low) as usize);
        probe.check_run(fork, rest)?;
        // A shorter competing chain is not the best chain: keep ours.
        if fork + rest.len() as u32 <= tip && fork <= tip {
            return Err(HeaderError::Unlinked { height: fork });
        }
        probe.headers.extend_from_slice(rest);
        *self = probe;
        Ok(fork)
    }

    /// Drops verified headers below `height` (memory stays bounded on a long-running box).
    pub fn forget_below(&mut self, height: u32) {
        if let Some(n) = height.checked_sub(self.low).map(|n| n as usize)
            && n > 0
            && n < self.headers.len()
        {
            self.headers.drain(..n);
            self.low = height;
        }
    }
}

/// The network's difficulty rule between two consecutive headers. Test networks with
/// minimum-difficulty blocks are checked only against the network's limit.
fn difficulty_follows(
    params: &bdk_wallet::bitcoin::params::Params,
    height: u32,
    prev: &Header,
    h: &Header,
) -> bool {
    if params.no_pow_retargeting {
        return h.bits == prev.bits;
    }
    if params.allow_min_difficulty_blocks {
        return true;
    }
    let interval = (params.pow_target_timespan / params.pow_target_spacing) as u32;
    if !height.is_multiple_of(interval) {
        return h.bits == prev.bits;
    }
    let t: Target = h.target();
    let p = prev.target();
    t >= p.min_transition_threshold() && t <= p.max_transition_threshold_unchecked()
}

#[cfg(test)]
mod tests {
    use super::*;
    use bdk_wallet::bitcoin::block::Version;
    use bdk_wallet::bitcoin::hashes::Hash;
    use bdk_wallet::bitcoin::{CompactTarget, TxMerkleNode};

    /// Mines a regtest header on `prev` (regtest's target is met by about half the hashes).
    fn mine(prev: BlockHash, salt: u32) -> Header {
        let mut h = Header {
            version: Version::TWO,
            prev_blockhash: prev,
            merkle_root: TxMerkleNode::from_byte_array([salt as u8; 32]),
            time: 1_700_000_000 + salt,
            bits: CompactTarget::from_consensus(0x207fffff),
            nonce: 0,
        };
        while h.validate_pow(h.target()).is_err() {
            h.nonce += 1;
        }
        h
    }

    fn chain(from: BlockHash, n: u32, salt: u32) -> Vec<Header> {
        let mut out: Vec<Header> = Vec::new();
        for i in 0..n {
            let prev = out.last().map_or(from, |h| h.block_hash());
            out.push(mine(prev, salt + i));
        }
        out
    }

    #[test]
    fn a_chain_grows_only_with_linked_headers_that_carry_their_work() {
        let base = chain(BlockHash::all_zeros(), 10, 0);
        let mut c = HeaderChain::new(Network::Regtest);
        c.seed(100, base.clone(), None).unwrap();
        assert_eq!(c.tip(), Some(109));

        let next = chain(base[9].block_hash(), 3, 50);
        assert_eq!(c.accept(110, &next), Ok(110));
        assert_eq!(c.tip(), Some(112));

        // A header whose merkle root was rewritten no longer links to its successor.
        let mut forged = chain(next[2].block_hash(), 2, 60);
        forged[0].merkle_root = TxMerkleNode::from_byte_array([0xee; 32]);
        let e = c.accept(113, &forged).unwrap_err();
        assert!(
            matches!(
                e,
                HeaderError::Unlinked { height: 114 } | HeaderError::PowInvalid { height: 113 }
            ),
            "{e:?}"
        );
        assert_eq!(c.tip(), Some(112), "nothing of a refused run is kept");

        // A header that does not follow our tip.
        let stray = chain(BlockHash::all_zeros(), 1, 70);
        assert!(matches!(
            c.accept(113, &stray),
            Err(HeaderError::Unlinked { height: 113 })
        ));

        // Invalid proof of work.
        let mut weak = chain(next[2].block_hash(), 1, 80);
        while weak[0].validate_pow(weak[0].target()).is_ok() {
            weak[0].nonce += 1;
        }
        assert_eq!(
            c.accept(113, &weak),
            Err(HeaderError::PowInvalid { height: 113 })
        );

        // A difficulty the network does not have.
        let mut easy = chain(next[2].block_hash(), 1, 90);
        easy[0].bits = CompactTarget::from_consensus(0x2100ffff);
        assert!(c.accept(113, &easy).is_err());
    }

    #[test]
    fn a_longer_fork_replaces_the_top_and_a_shorter_one_does_not() {
        let base = chain(BlockHash::all_zeros(), 10, 0);
        let mut c = HeaderChain::new(Network::Regtest);
        c.seed(0, base.clone(), None).unwrap();
        let fork = chain(base[7].block_hash(), 3, 100);
        assert_eq!(c.accept(8, &fork), Ok(8));
        assert_eq!(c.tip(), Some(10));
        assert_eq!(c.get(8), Some(&fork[0]));
        // Re-sending what we have changes nothing.
        assert_eq!(c.accept(8, &fork), Ok(11));
        // A competing branch that is not longer is refused.
        let short = chain(base[7].block_hash(), 2, 200);
        assert!(c.accept(8, &short).is_err());
        assert_eq!(c.get(8), Some(&fork[0]));
    }

    #[test]
    fn older_headers_must_lead_into_the_verified_chain() {
        let all = chain(BlockHash::all_zeros(), 20, 0);
        let mut c = HeaderChain::new(Network::Regtest);
        c.seed(10, all[10..].to_vec(), None).unwrap();
        assert_eq!(c.accept(5, &all[5..10]), Ok(10));
        assert_eq!(c.low(), Some(5));
        let other = chain(BlockHash::all_zeros(), 5, 300);
        assert!(c.accept(0, &other).is_err());
        c.forget_below(12);
        assert_eq!(c.low(), Some(12));
        assert_eq!(c.get(12), Some(&all[12]));
    }

    #[test]
    fn seeding_from_a_known_block_refuses_another_chain() {
        let all = chain(BlockHash::all_zeros(), 5, 0);
        let mut c = HeaderChain::new(Network::Regtest);
        let known = Some((2, all[2].block_hash()));
        c.seed(0, all.clone(), known).unwrap();
        let other = chain(BlockHash::all_zeros(), 5, 400);
        let mut d = HeaderChain::new(Network::Regtest);
        assert!(d.seed(0, other, known).is_err());
    }
}
