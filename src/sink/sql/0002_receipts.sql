-- Unattributed receipts: money that reached the appliance's wallet and that no open
-- payment counts, with the operator's assignment once made.
CREATE TABLE IF NOT EXISTS electrum_receipts (
    outpoint            text        PRIMARY KEY,
    txid                text        NOT NULL,
    address             text        NOT NULL,
    change              boolean     NOT NULL,
    derivation_index    integer     NOT NULL,
    amount_sat          bigint      NOT NULL CHECK (amount_sat >= 0),
    height              integer,
    cause               text        NOT NULL,
    address_payment_id  text,
    state               text        NOT NULL CHECK (state IN ('unassigned', 'assigned', 'gone')),
    assigned_to         text,
    note                text,
    first_seen_at       timestamptz NOT NULL,
    updated_at          timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS electrum_receipts_state_idx ON electrum_receipts (state);
ALTER TABLE electrum_receipts ENABLE ROW LEVEL SECURITY;
DO $$
DECLARE r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['anon', 'authenticated'] LOOP
        IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
            EXECUTE format('REVOKE ALL ON electrum_receipts FROM %I', r);
        END IF;
    END LOOP;
END
$$;
