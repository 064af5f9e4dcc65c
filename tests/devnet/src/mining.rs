//! Building and solving regtest blocks.

use bitcoin::block::{Header, Version};
use bitcoin::blockdata::opcodes::all::OP_RETURN;
use bitcoin::blockdata::script::{Builder, PushBytesBuf};
use bitcoin::hashes::Hash;
use bitcoin::{
    Amount, Block, BlockHash, CompactTarget, OutPoint, ScriptBuf, Sequence, Transaction, TxIn,
    TxMerkleNode, TxOut, Witness, absolute, transaction,
};

/// Regtest's proof-of-work limit: about every other hash meets it.
pub const REGTEST_BITS: u32 = 0x207f_ffff;

/// BIP141's witness reserved value, which we always set to zeros.
const WITNESS_RESERVED_VALUE: [u8; 32] = [0; 32];

/// What a new block needs besides its transactions.
pub struct Template<'a> {
    /// Hash of the block it builds on.
    pub prev_hash: BlockHash,
    /// Its height (for BIP34).
    pub height: u32,
    /// Its timestamp.
    pub time: u32,
    /// Makes the coinbase, and so the block, unique even when all else is equal.
    pub extranonce: u64,
    /// Who receives subsidy and fees.
    pub payout: &'a ScriptBuf,
    /// Subsidy plus the fees of `txs`.
    pub reward: Amount,
}

/// Builds a block with a BIP34 coinbase and a BIP141 commitment, and solves its PoW.
pub fn build_block(template: &Template<'_>, txs: Vec<Transaction>) -> Block {
    let coinbase = coinbase_tx(template);
    let mut txdata = Vec::with_capacity(txs.len() + 1);
    txdata.push(coinbase);
    txdata.extend(txs);
    let mut block = Block {
        header: Header {
            version: Version::from_consensus(0x2000_0000),
            prev_blockhash: template.prev_hash,
            merkle_root: TxMerkleNode::all_zeros(),
            time: template.time,
            bits: CompactTarget::from_consensus(REGTEST_BITS),
            nonce: 0,
        },
        txdata,
    };
    // The witness root treats the coinbase's wtxid as zero, so it can be computed
    // before the commitment output is added to the coinbase.
    let witness_root = block.witness_root().expect("block has a coinbase");
    let commitment = Block::compute_witness_commitment(&witness_root, &WITNESS_RESERVED_VALUE);
    let mut payload = vec![0xaa, 0x21, 0xa9, 0xed];
    payload.extend_from_slice(commitment.as_byte_array());
    let payload = PushBytesBuf::try_from(payload).expect("36 bytes fit a push");
    block.txdata[0].output.push(TxOut {
        value: Amount::ZERO,
        script_pubkey: Builder::new()
            .push_opcode(OP_RETURN)
            .push_slice(payload)
            .into_script(),
    });
    block.header.merkle_root = block.compute_merkle_root().expect("block has transactions");
    solve(&mut block.header);
    block
}

fn coinbase_tx(template: &Template<'_>) -> Transaction {
    let script_sig = Builder::new()
        .push_int(i64::from(template.height))
        .push_slice(template.extranonce.to_le_bytes())
        .into_script();
    Transaction {
        version: transaction::Version::TWO,
        lock_time: absolute::LockTime::ZERO,
        input: vec![TxIn {
            previous_output: OutPoint::null(),
            script_sig,
            sequence: Sequence::MAX,
            witness: Witness::from_slice(&[WITNESS_RESERVED_VALUE]),
        }],
        output: vec![TxOut {
            value: template.reward,
            script_pubkey: template.payout.clone(),
        }],
    }
}

fn solve(header: &mut Header) {
    let target = header.target();
    while !target.is_met_by(header.block_hash()) {
        header.nonce = header.nonce.checked_add(1).unwrap_or_else(|| {
            // Practically unreachable at regtest difficulty; move time on and retry.
            header.time += 1;
            0
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bitcoin::blockdata::constants::genesis_block;

    #[test]
    fn block_is_valid_and_unique_per_extranonce() {
        let genesis = genesis_block(bitcoin::Network::Regtest);
        let payout = ScriptBuf::new_op_return([1u8; 4]);
        let mk = |extranonce| Template {
            prev_hash: genesis.block_hash(),
            height: 200,
            time: genesis.header.time + 1,
            extranonce,
            payout: &payout,
            reward: Amount::from_int_btc(50),
        };
        let a = build_block(&mk(1), vec![]);
        let b = build_block(&mk(2), vec![]);
        assert_ne!(a.block_hash(), b.block_hash());
        assert!(a.header.validate_pow(a.header.target()).is_ok());
        assert!(a.check_merkle_root());
        assert!(a.check_witness_commitment());
        // (rust-bitcoin cannot read heights 1..=16, which Core encodes as OP_1..OP_16.)
        assert_eq!(a.bip34_block_height(), Ok(200));
    }
}
