-- Partner banks online (issue 8): their own credentials (never a finance user's), real-time
-- payments and reversals posted through the partner API, and the end-of-day reconciliation of
-- each bank's business day against its file, then against the settlement transfer.

-- One row per credential of a bank: the SHA-256 of a 256-bit random token.
CREATE TABLE partner_credentials (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    bank_id       TEXT NOT NULL,
    token_sha256  TEXT NOT NULL UNIQUE,
    created_by    TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    revoked_at    TEXT,
    last_used_at  TEXT
);
CREATE INDEX partner_credentials_by_bank ON partner_credentials (bank_id);

-- where a payment came from: a bank file, or the partner API in real time
ALTER TABLE payments ADD COLUMN source TEXT NOT NULL DEFAULT 'file';
-- the bank's channel (counter, app, atm, direct_debit, ...), when the bank says
ALTER TABLE payments ADD COLUMN channel TEXT;
-- a line of a partner bank's daily file that confirms a real-time payment (status
-- `confirmed`: the money was counted when it was posted, the line carries none)
ALTER TABLE payments ADD COLUMN confirms_payment_id BIGINT;

-- A real-time posting, one per (bank, bank_txn_id): the request's digest and the answer given,
-- so a retry gets the first answer and a different body under the same id is refused.
CREATE TABLE partner_payments (
    id                   INTEGER PRIMARY KEY AUTOINCREMENT,
    bank_id              TEXT NOT NULL,
    bank_txn_id          TEXT NOT NULL,
    request_sha256       TEXT NOT NULL,
    payment_id           BIGINT NOT NULL REFERENCES payments (id),
    business_date        TEXT NOT NULL,
    amount_minor         BIGINT NOT NULL,
    currency             TEXT NOT NULL,
    channel              TEXT,
    response             TEXT NOT NULL,
    created_at           TEXT NOT NULL,
    reversal_payment_id  BIGINT REFERENCES payments (id),
    reversal_response    TEXT,
    reversed_at          TEXT,
    UNIQUE (bank_id, bank_txn_id)
);
CREATE INDEX partner_payments_by_day ON partner_payments (bank_id, business_date);

-- The end-of-day comparison of a bank's business day: one row per line that needs a word
-- (matched lines are counted in eod_runs, not listed).
-- category: bank_only | utility_only | amount_mismatch | reversed_bank_only | reversed_utility_only
CREATE TABLE eod_discrepancies (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    bank_id           TEXT NOT NULL,
    business_date     TEXT NOT NULL,
    category          TEXT NOT NULL,
    bank_txn_id       TEXT NOT NULL,
    payment_id        BIGINT,
    file_payment_id   BIGINT,
    realtime_minor    BIGINT,
    file_minor        BIGINT,
    currency          TEXT NOT NULL,
    detail            TEXT NOT NULL,
    created_at        TEXT NOT NULL
);
CREATE INDEX eod_discrepancies_by_day ON eod_discrepancies (bank_id, business_date);

-- One row per bank and business day once its file was compared; then the settlement check.
-- settlement: pending | settled | short | over | missing
CREATE TABLE eod_runs (
    bank_id            TEXT NOT NULL,
    business_date      TEXT NOT NULL,
    file_id            BIGINT REFERENCES bank_files (id),
    matched            BIGINT NOT NULL,
    discrepancies      BIGINT NOT NULL,
    net_minor          BIGINT NOT NULL,
    fee_minor          BIGINT NOT NULL,
    currency           TEXT NOT NULL,
    settlement         TEXT NOT NULL,
    settled_minor      BIGINT,
    settlement_ref     TEXT,
    compared_at        TEXT NOT NULL,
    settled_at         TEXT,
    PRIMARY KEY (bank_id, business_date)
);

-- the lines of a business day (the settlement report, the end-of-day comparison); led by the
-- day, not the bank: an index led by bank_id lured SQLite's planner away from the end-to-end
-- id and bank reference indexes when matching looks up the original of a reversal
CREATE INDEX payments_by_day ON payments (booking_date, bank_id);
