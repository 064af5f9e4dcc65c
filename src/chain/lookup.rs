//! Short-lived Electrum sessions for operator look-ups and broadcasts (`tx`, `fees`,
//! transfers), apart from the watcher's session so that a slow look-up never delays
//! detection. Each session tries the configured servers in order and is dropped after use.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bdk_electrum::electrum_client::{ElectrumApi, GetHistoryRes, Param};
use bdk_wallet::bitcoin::{BlockHash, Script, Transaction, Txid};

use super::{ChainError, Server, conn, req};

/// One look-up session on the first configured server that answers.
pub struct Lookup {
    conn: conn::Conn,
    server: Server,
}

impl Lookup {
    /// Opens a session on the first of `servers` that accepts one.
    pub fn open(
        servers: &[Server],
        ca_file: Option<&Path>,
        timeout: Duration,
    ) -> Result<Lookup, ChainError> {
        let tls: Arc<rustls::ClientConfig> = conn::tls_config(ca_file)?;
        // Look-ups report what the server says (as `probe` does): the raw client below,
        // not the header-checked one, so no header chain is kept for them.
        let guard = super::verified::Guard::new(bdk_wallet::bitcoin::Network::Bitcoin, Vec::new());
        let mut last = ChainError::Connect {
            server: "(none)".into(),
            detail: "no Electrum server is configured".into(),
        };
        for server in servers {
            match conn::connect(server, &tls, &guard, timeout) {
                Ok(conn) => {
                    return Ok(Lookup {
                        conn,
                        server: server.clone(),
                    });
                }
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    /// The server this session talks to.
    pub fn server(&self) -> &Server {
        &self.server
    }

    fn api(&self) -> &impl ElectrumApi {
        &self.conn.client.inner.inner
    }

    /// The server's tip height.
    pub fn tip(&self) -> Result<u32, ChainError> {
        let h = req("headers subscribe", self.api().block_headers_subscribe())?;
        Ok(h.height as u32)
    }

    /// Hash of the block at `height`.
    pub fn block_hash(&self, height: u32) -> Result<BlockHash, ChainError> {
        let h = req("block header", self.api().block_header(height as usize))?;
        Ok(h.block_hash())
    }

    /// A transaction; `Ok(None)` when the server does not know it.
    pub fn transaction(&self, txid: &Txid) -> Result<Option<Transaction>, ChainError> {
        match self.api().transaction_get(txid) {
            Ok(tx) => Ok(Some(tx)),
            // ElectrumX answers an unknown txid with an RPC error (not a transport failure).
            Err(bdk_electrum::electrum_client::Error::Protocol(_)) => Ok(None),
            Err(e) => Err(req("transaction get", Err(e))?),
        }
    }

    /// History of a script: (txid, height; 0 or -1 = unconfirmed).
    pub fn history(&self, script: &Script) -> Result<Vec<GetHistoryRes>, ChainError> {
        req("script history", self.api().script_get_history(script))
    }

    /// Block height and position of each confirmed `(txid, height)`
    /// (`blockchain.transaction.get_merkle`, batched).
    pub fn positions(&self, txs: &[(Txid, u32)]) -> Result<Vec<(u32, u32)>, ChainError> {
        let mut out = Vec::with_capacity(txs.len());
        // Batches of 50 keep each answer small and the server's cost accounting smooth.
        for chunk in txs.chunks(50) {
            let res = req(
                "transaction merkle",
                self.api().batch_transaction_get_merkle(
                    chunk
                        .iter()
                        .map(|(t, h)| (*t, *h as usize))
                        .collect::<Vec<_>>(),
                ),
            )?;
            out.extend(res.iter().map(|r| (r.block_height as u32, r.pos as u32)));
        }
        Ok(out)
    }

    /// `blockchain.estimatefee` for each target, in BTC/kvB as the server reports it
    /// (-1 when it has no estimate).
    pub fn estimate_fees(&self, targets: &[usize]) -> Result<Vec<f64>, ChainError> {
        req(
            "estimatefee",
            self.api().batch_estimate_fee(targets.iter().copied()),
        )
    }

    /// `mempool.get_fee_histogram`: (fee rate in sat/vB, vsize) pairs, highest rate first.
    pub fn fee_histogram(&self) -> Result<Vec<(f64, u64)>, ChainError> {
        let v = req(
            "fee histogram",
            self.api()
                .raw_call("mempool.get_fee_histogram", Vec::<Param>::new()),
        )?;
        let parse = |v: &serde_json::Value| -> Option<(f64, u64)> {
            let pair = v.as_array()?;
            Some((pair.first()?.as_f64()?, pair.get(1)?.as_u64()?))
        };
        v.as_array()
            .map(|a| a.iter().filter_map(parse).collect())
            .ok_or(ChainError::Request {
                op: "fee histogram",
                detail: format!("unexpected answer {v}"),
            })
    }

    /// The server's minimum relay fee in BTC/kvB (`mempool.get_info`, protocol 1.6;
    /// `blockchain.relayfee` before it).
    pub fn relay_fee(&self) -> Result<f64, ChainError> {
        match self.api().mempool_get_info() {
            Ok(info) => Ok(info.minrelaytxfee),
            Err(_) => req("relayfee", self.api().relay_fee()),
        }
    }

    /// Broadcasts a transaction; the server's refusal comes back as `Request`.
    pub fn broadcast(&self, tx: &Transaction) -> Result<Txid, ChainError> {
        req("broadcast", self.api().transaction_broadcast(tx))
    }
}
