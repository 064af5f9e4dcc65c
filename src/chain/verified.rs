//! An Electrum client that answers block headers from the appliance's own verified
//! chain (see `headers`) and refuses a merkle proof that does not lead to a verified
//! header's merkle root. Every other call passes through.
//!
//! A server that sends a header breaking proof of work, difficulty or linkage, or a
//! proof that does not verify, gets an error: the session ends and the chain thread
//! moves on to the next server, with the reason shown as the last Electrum error.

use std::borrow::Borrow;
use std::sync::{Arc, Mutex};

use bdk_electrum::electrum_client::{
    Batch, Error, GetBalanceRes, GetHeadersRes, GetHistoryRes, GetMerkleRes, ListUnspentRes, Param,
    RawHeaderNotification, ScriptStatus, ServerFeaturesRes, TxidFromPosRes,
    bitcoin::{Script, Txid},
};
use bdk_electrum::electrum_client::{ElectrumApi, EstimationMode};
use bdk_wallet::bitcoin::BlockHash;
use bdk_wallet::bitcoin::block::Header;
use bdk_wallet::bitcoin::consensus::{deserialize, serialize};

use super::headers::{HeaderChain, HeaderError};

/// Most headers one `blockchain.block.headers` call returns (ElectrumX's maximum).
const CHUNK: u32 = 2016;
/// A wallet block further than this below the server's tip is too far to fetch the
/// chain up from on connect; the server's recent blocks start the chain instead.
const MAX_CATCH_UP: u32 = 20_160;
/// Headers fetched on first use when no wallet block is near the tip.
const FIRST_USE_DEPTH: u32 = 11;
/// How far below the verified chain headers are fetched to link an old block to it;
/// deeper (history from before the appliance, never a payment) is checked for proof of
/// work and difficulty limit only.
const MAX_BACKFILL: u32 = 52_560;
/// Verified headers kept below the tip: old ones are fetched and linked again if needed.
const KEEP: u32 = 4 * 2016;

/// The verified chain, shared by the chain thread's successive sessions, and the blocks
/// the wallet knew when the daemon started (height, hash), lowest first.
#[derive(Debug)]
pub struct Guard {
    chain: Mutex<HeaderChain>,
    known: Vec<(u32, BlockHash)>,
}

impl Guard {
    /// A guard for `network`, continuing from the wallet's known blocks.
    pub fn new(network: bdk_wallet::bitcoin::Network, known: Vec<(u32, BlockHash)>) -> Arc<Guard> {
        Arc::new(Guard {
            chain: Mutex::new(HeaderChain::new(network)),
            known,
        })
    }
}

/// An Electrum client whose headers and proofs are checked against the [`Guard`].
pub struct Verified<E> {
    /// The client that talks to the server.
    pub inner: E,
    guard: Arc<Guard>,
}

fn refused(what: &str, e: HeaderError) -> Error {
    Error::Message(format!(
        "the server sent a {what} that does not verify ({e}); not using this server"
    ))
}

impl<E: ElectrumApi> Verified<E> {
    /// Wraps `inner`.
    pub fn new(inner: E, guard: Arc<Guard>) -> Verified<E> {
        Verified { inner, guard }
    }

    fn fetch(&self, from: u32, to: u32) -> Result<Vec<Header>, Error> {
        let mut out = Vec::new();
        let mut at = from;
        while at <= to {
            let n = (to - at + 1).min(CHUNK);
            let got = self.inner.block_headers(at as usize, n as usize)?.headers;
            if got.is_empty() {
                return Err(Error::Message(format!(
                    "the server has no block headers from height {at}"
                )));
            }
            at += got.len() as u32;
            out.extend(got);
        }
        Ok(out)
    }

    /// Brings the verified chain up to the server's `height`, whose header is `tip`.
    fn follow(&self, height: u32, tip: &Header) -> Result<(), Error> {
        let mut chain = self.guard.chain.lock().expect("header chain lock");
        match chain.tip() {
            None => {
                let start = self
                    .guard
                    .known
                    .iter()
                    .find(|(h, _)| *h <= height && height - *h <= MAX_CATCH_UP)
                    .copied();
                let (from, known) = match start {
                    Some((h, hash)) => (h, Some((h, hash))),
                    None => (height.saturating_sub(FIRST_USE_DEPTH - 1), None),
                };
                let run = self.fetch(from, height)?;
                chain
                    .seed(from, run, known)
                    .map_err(|e| refused("chain of block headers", e))?;
                if known.is_none() {
                    tracing::info!(
                        height,
                        "header chain started from the server's recent blocks (no wallet block near its tip)"
                    );
                }
            }
            Some(ours) if height > ours => {
                let run = self.fetch(ours + 1, height)?;
                if chain.accept(ours + 1, &run).is_err() {
                    self.reorg(&mut chain, height)?;
                }
            }
            Some(_) if chain.get(height) == Some(tip) => {}
            Some(_) => self.reorg(&mut chain, height)?,
        }
        if chain.get(height) != Some(tip) {
            return Err(refused("tip header", HeaderError::Unlinked { height }));
        }
        chain.forget_below(height.saturating_sub(KEEP));
        Ok(())
    }

    /// The server's chain differs near the top: fetch back until it links.
    fn reorg(&self, chain: &mut HeaderChain, height: u32) -> Result<(), Error> {
        let tip = chain.tip().unwrap_or(height);
        let mut depth = 8;
        loop {
            let from = tip
                .min(height)
                .saturating_sub(depth)
                .max(chain.low().unwrap_or(0));
            let run = self.fetch(from, height)?;
            match chain.accept(from, &run) {
                Ok(fork) => {
                    tracing::warn!(
                        fork,
                        height,
                        "the chain reorganised; verified headers follow the server's longer chain"
                    );
                    return Ok(());
                }
                Err(HeaderError::Unlinked { .. }) if depth < super::headers::MAX_REORG => {
                    depth = (depth * 8).min(super::headers::MAX_REORG);
                }
                Err(e) => return Err(refused("chain of block headers", e)),
            }
        }
    }

    /// The verified header at `height`, fetching and linking what is missing.
    fn verified(&self, height: u32) -> Result<Header, Error> {
        {
            let chain = self.guard.chain.lock().expect("header chain lock");
            if let Some(h) = chain.get(height) {
                return Ok(*h);
            }
        }
        let (low, tip) = {
            let chain = self.guard.chain.lock().expect("header chain lock");
            (chain.low(), chain.tip())
        };
        match (low, tip) {
            // Above the chain, or no chain yet: follow the server's tip first.
            (None, _) | (_, None) => self.follow_server_tip()?,
            (Some(_), Some(tip)) if height > tip => self.follow_server_tip()?,
            (Some(low), Some(_)) if low - height <= MAX_BACKFILL => {
                let mut chain = self.guard.chain.lock().expect("header chain lock");
                while chain.low().is_some_and(|l| l > height) {
                    let end = chain.low().unwrap_or(0) - 1;
                    let from = end.saturating_sub(CHUNK - 1).max(height);
                    let run = self.fetch(from, end)?;
                    chain
                        .accept(from, &run)
                        .map_err(|e| refused("block header", e))?;
                }
            }
            (Some(_), Some(_)) => {
                // History from long before the appliance: proof of work and the network's
                // limit, not linkage (never a payment's confirmation).
                let h = self.inner.block_header(height as usize)?;
                let mut probe = HeaderChain::new(self.network());
                probe
                    .seed(height, vec![h], None)
                    .map_err(|e| refused("block header", e))?;
                return Ok(h);
            }
        }
        let chain = self.guard.chain.lock().expect("header chain lock");
        chain.get(height).copied().ok_or_else(|| {
            Error::Message(format!(
                "no verified block header at height {height} (the server's tip is lower)"
            ))
        })
    }

    fn follow_server_tip(&self) -> Result<(), Error> {
        let n = self.inner.block_headers_subscribe_raw()?;
        let header: Header = deserialize(&n.header)?;
        self.follow(n.height as u32, &header)
    }

    fn network(&self) -> bdk_wallet::bitcoin::Network {
        self.guard
            .chain
            .lock()
            .expect("header chain lock")
            .network()
    }

    fn check_proof(&self, txid: &Txid, height: usize, proof: &GetMerkleRes) -> Result<(), Error> {
        let header = self.verified(height as u32)?;
        if bdk_electrum::electrum_client::utils::validate_merkle_proof(
            txid,
            &header.merkle_root,
            proof,
        ) {
            Ok(())
        } else {
            Err(Error::Message(format!(
                "the server sent a merkle proof for {txid} at height {height} that does not match the verified block header; not using this server"
            )))
        }
    }
}

impl<E: ElectrumApi> ElectrumApi for Verified<E> {
    fn raw_call(
        &self,
        method_name: &str,
        params: impl IntoIterator<Item = Param>,
    ) -> Result<serde_json::Value, Error> {
        self.inner.raw_call(method_name, params)
    }

    fn batch_call(&self, batch: &Batch) -> Result<Vec<serde_json::Value>, Error> {
        self.inner.batch_call(batch)
    }

    fn block_headers_subscribe_raw(&self) -> Result<RawHeaderNotification, Error> {
        let n = self.inner.block_headers_subscribe_raw()?;
        let header: Header = deserialize(&n.header)?;
        self.follow(n.height as u32, &header)?;
        Ok(n)
    }

    fn block_headers_pop_raw(&self) -> Result<Option<RawHeaderNotification>, Error> {
        let n = self.inner.block_headers_pop_raw()?;
        if let Some(n) = &n {
            let header: Header = deserialize(&n.header)?;
            self.follow(n.height as u32, &header)?;
        }
        Ok(n)
    }

    fn block_header_raw(&self, height: usize) -> Result<Vec<u8>, Error> {
        Ok(serialize(&self.verified(height as u32)?))
    }

    fn block_headers(&self, start_height: usize, count: usize) -> Result<GetHeadersRes, Error> {
        let res = self.inner.block_headers(start_height, count)?;
        for (height, h) in (start_height as u32..).zip(&res.headers) {
            if self.verified(height)? != *h {
                return Err(refused("block header", HeaderError::Unlinked { height }));
            }
        }
        Ok(res)
    }

    fn transaction_get_raw(&self, txid: &Txid) -> Result<Vec<u8>, Error> {
        self.inner.transaction_get_raw(txid)
    }

    fn batch_transaction_get_raw<'t, I>(&self, txids: I) -> Result<Vec<Vec<u8>>, Error>
    where
        I: IntoIterator + Clone,
        I::Item: Borrow<&'t Txid>,
    {
        self.inner.batch_transaction_get_raw(txids)
    }

    fn batch_block_header_raw<I>(&self, heights: I) -> Result<Vec<Vec<u8>>, Error>
    where
        I: IntoIterator + Clone,
        I::Item: Borrow<u32>,
    {
        heights
            .into_iter()
            .map(|h| Ok(serialize(&self.verified(*h.borrow())?)))
            .collect()
    }

    fn batch_estimate_fee<I>(&self, numbers: I) -> Result<Vec<f64>, Error>
    where
        I: IntoIterator + Clone,
        I::Item: Borrow<usize>,
    {
        self.inner.batch_estimate_fee(numbers)
    }

    fn transaction_broadcast_raw(&self, raw_tx: &[u8]) -> Result<Txid, Error> {
        self.inner.transaction_broadcast_raw(raw_tx)
    }

    fn transaction_broadcast_package_raw<T: AsRef<[u8]>>(
        &self,
        raw_txs: &[T],
    ) -> Result<bdk_electrum::electrum_client::BroadcastPackageRes, Error> {
        self.inner.transaction_broadcast_package_raw(raw_txs)
    }

    fn transaction_get_merkle(&self, txid: &Txid, height: usize) -> Result<GetMerkleRes, Error> {
        let proof = self.inner.transaction_get_merkle(txid, height)?;
        self.check_proof(txid, height, &proof)?;
        Ok(proof)
    }

    fn batch_transaction_get_merkle<I>(
        &self,
        txids_and_heights: I,
    ) -> Result<Vec<GetMerkleRes>, Error>
    where
        I: IntoIterator + Clone,
        I::Item: Borrow<(Txid, usize)>,
    {
        let proofs = self
            .inner
            .batch_transaction_get_merkle(txids_and_heights.clone())?;
        for (item, proof) in txids_and_heights.into_iter().zip(&proofs) {
            let (txid, height) = item.borrow();
            self.check_proof(txid, *height, proof)?;
        }
        Ok(proofs)
    }

    fn txid_from_pos(&self, height: usize, tx_pos: usize) -> Result<Txid, Error> {
        self.inner.txid_from_pos(height, tx_pos)
    }

    fn txid_from_pos_with_merkle(
        &self,
        height: usize,
        tx_pos: usize,
    ) -> Result<TxidFromPosRes, Error> {
        self.inner.txid_from_pos_with_merkle(height, tx_pos)
    }

    fn server_features(&self) -> Result<ServerFeaturesRes, Error> {
        self.inner.server_features()
    }

    fn protocol_version(&self) -> Result<String, Error> {
        self.inner.protocol_version()
    }

    fn mempool_get_info(&self) -> Result<bdk_electrum::electrum_client::MempoolInfoRes, Error> {
        self.inner.mempool_get_info()
    }

    fn ping(&self) -> Result<(), Error> {
        self.inner.ping()
    }

    fn calls_made(&self) -> Result<usize, Error> {
        self.inner.calls_made()
    }

    fn estimate_fee(&self, number: usize, mode: Option<EstimationMode>) -> Result<f64, Error> {
        self.inner.estimate_fee(number, mode)
    }

    fn relay_fee(&self) -> Result<f64, Error> {
        self.inner.relay_fee()
    }

    fn script_subscribe(&self, script: &Script) -> Result<Option<ScriptStatus>, Error> {
        self.inner.script_subscribe(script)
    }

    fn batch_script_subscribe<'s, I>(&self, scripts: I) -> Result<Vec<Option<ScriptStatus>>, Error>
    where
        I: IntoIterator + Clone,
        I::Item: Borrow<&'s Script>,
    {
        self.inner.batch_script_subscribe(scripts)
    }

    fn script_unsubscribe(&self, script: &Script) -> Result<bool, Error> {
        self.inner.script_unsubscribe(script)
    }

    fn script_pop(&self, script: &Script) -> Result<Option<ScriptStatus>, Error> {
        self.inner.script_pop(script)
    }

    fn script_get_balance(&self, script: &Script) -> Result<GetBalanceRes, Error> {
        self.inner.script_get_balance(script)
    }

    fn batch_script_get_balance<'s, I>(&self, scripts: I) -> Result<Vec<GetBalanceRes>, Error>
    where
        I: IntoIterator + Clone,
        I::Item: Borrow<&'s Script>,
    {
        self.inner.batch_script_get_balance(scripts)
    }

    fn script_get_history(&self, script: &Script) -> Result<Vec<GetHistoryRes>, Error> {
        self.inner.script_get_history(script)
    }

    fn batch_script_get_history<'s, I>(&self, scripts: I) -> Result<Vec<Vec<GetHistoryRes>>, Error>
    where
        I: IntoIterator + Clone,
        I::Item: Borrow<&'s Script>,
    {
        self.inner.batch_script_get_history(scripts)
    }

    fn script_list_unspent(&self, script: &Script) -> Result<Vec<ListUnspentRes>, Error> {
        self.inner.script_list_unspent(script)
    }

    fn batch_script_list_unspent<'s, I>(
        &self,
        scripts: I,
    ) -> Result<Vec<Vec<ListUnspentRes>>, Error>
    where
        I: IntoIterator + Clone,
        I::Item: Borrow<&'s Script>,
    {
        self.inner.batch_script_list_unspent(scripts)
    }
}
