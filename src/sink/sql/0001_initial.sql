-- snakkaz-pay sink schema, migration 1: the tables the Snakkaz Chat application reads.
-- Idempotent: every statement may run again on a database that already has it.

CREATE TABLE IF NOT EXISTS electrum_payments (
    id              text        PRIMARY KEY,
    reference       text        NOT NULL,
    description     text,
    bitcoin_address text        NOT NULL,
    amount_sat      bigint      NOT NULL CHECK (amount_sat > 0),
    received_sat    bigint      NOT NULL CHECK (received_sat >= 0),
    status          text        NOT NULL CHECK (status IN
                        ('pending', 'unconfirmed', 'confirmed', 'completed', 'expired', 'underpaid')),
    confirmations   integer     NOT NULL CHECK (confirmations >= 0),
    txids           text[]      NOT NULL DEFAULT '{}',
    flags           text[]      NOT NULL DEFAULT '{}',
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL,
    expires_at      timestamptz NOT NULL,
    first_seen_at   timestamptz,
    confirmed_at    timestamptz,
    -- The appliance's version of the payment: an upsert never replaces a higher one.
    version         bigint      NOT NULL,
    synced_at       timestamptz NOT NULL DEFAULT now()
);
-- The operational guide looks payments up by reference and address and lists them by
-- status and by time.
CREATE UNIQUE INDEX IF NOT EXISTS electrum_payments_reference_key ON electrum_payments (reference);
CREATE INDEX IF NOT EXISTS electrum_payments_bitcoin_address_idx ON electrum_payments (bitcoin_address);
CREATE INDEX IF NOT EXISTS electrum_payments_status_created_idx ON electrum_payments (status, created_at DESC);
CREATE INDEX IF NOT EXISTS electrum_payments_created_at_idx ON electrum_payments (created_at DESC);
CREATE INDEX IF NOT EXISTS electrum_payments_updated_at_idx ON electrum_payments (updated_at DESC);

-- Same columns as electrum_payments, for payments the appliance has archived.
CREATE TABLE IF NOT EXISTS electrum_payments_archive (
    LIKE electrum_payments INCLUDING DEFAULTS INCLUDING CONSTRAINTS,
    archived_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (id)
);
CREATE INDEX IF NOT EXISTS electrum_payments_archive_reference_idx ON electrum_payments_archive (reference);
CREATE INDEX IF NOT EXISTS electrum_payments_archive_bitcoin_address_idx ON electrum_payments_archive (bitcoin_address);
CREATE INDEX IF NOT EXISTS electrum_payments_archive_created_at_idx ON electrum_payments_archive (created_at DESC);

-- One row per wallet (by descriptor checksum): what the appliance watches and holds.
CREATE TABLE IF NOT EXISTS bitcoin_wallets (
    descriptor_checksum        text        PRIMARY KEY,
    change_descriptor_checksum text,
    network                    text        NOT NULL,
    addresses_in_use           integer     NOT NULL CHECK (addresses_in_use >= 0),
    confirmed_sat              bigint      NOT NULL CHECK (confirmed_sat >= 0),
    unconfirmed_sat            bigint      NOT NULL CHECK (unconfirmed_sat >= 0),
    tip_height                 integer,
    updated_at                 timestamptz NOT NULL
);

-- Transactions paying the appliance's addresses.
CREATE TABLE IF NOT EXISTS electrum_transaction_cache (
    txid         text        PRIMARY KEY,
    height       integer,
    fee_sat      bigint,
    received_sat bigint      NOT NULL,
    summary      jsonb,
    seen_at      timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS electrum_transaction_cache_height_idx ON electrum_transaction_cache (height);

-- Row level security on, and no policy: Supabase's anon and authenticated roles see and
-- change nothing; only the service role (which bypasses RLS) and the owner write.
ALTER TABLE electrum_payments ENABLE ROW LEVEL SECURITY;
ALTER TABLE electrum_payments_archive ENABLE ROW LEVEL SECURITY;
ALTER TABLE bitcoin_wallets ENABLE ROW LEVEL SECURITY;
ALTER TABLE electrum_transaction_cache ENABLE ROW LEVEL SECURITY;

-- Belt and braces on Supabase: its API roles get no table privileges either.
DO $$
DECLARE r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['anon', 'authenticated'] LOOP
        IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
            EXECUTE format('REVOKE ALL ON electrum_payments, electrum_payments_archive, '
                           'bitcoin_wallets, electrum_transaction_cache FROM %I', r);
        END IF;
    END LOOP;
END
$$;
