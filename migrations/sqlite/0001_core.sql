-- billrecon core schema (SQLite). Money is in minor units (BIGINT), signed: credits positive.
-- Dates are ISO 8601 text (YYYY-MM-DD), timestamps RFC 3339 UTC text: portable and sortable.
-- Applied migrations are never edited: add a new file instead (see migrations/README.md).

CREATE TABLE customers (
    account_no   TEXT PRIMARY KEY,
    account_key  TEXT NOT NULL UNIQUE,
    name         TEXT NOT NULL,
    class        TEXT NOT NULL,
    key_account  BIGINT NOT NULL, -- 0 or 1 (integer flags decode alike on every backend)
    manager      TEXT,
    phone        TEXT,
    email        TEXT,
    updated_at   TEXT NOT NULL
);

CREATE TABLE bills (
    bill_id      TEXT PRIMARY KEY,
    bill_key     TEXT NOT NULL UNIQUE,
    account_no   TEXT NOT NULL REFERENCES customers (account_no),
    period       TEXT NOT NULL,
    amount_minor BIGINT NOT NULL,
    currency     TEXT NOT NULL,
    issued_on    TEXT NOT NULL,
    due_on       TEXT NOT NULL,
    paid_minor   BIGINT NOT NULL DEFAULT 0,
    -- open | paid | cancelled
    status       TEXT NOT NULL,
    updated_at   TEXT NOT NULL
);
-- without status: a bill being paid does not move in the index
CREATE INDEX bills_by_account ON bills (account_no, due_on, bill_id);

-- One row per distinct file (by SHA-256); the bytes are in the archive under that digest.
CREATE TABLE bank_files (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    bank_id       TEXT NOT NULL,
    sha256        TEXT NOT NULL UNIQUE,
    file_name     TEXT NOT NULL,
    size_bytes    BIGINT NOT NULL,
    format        TEXT NOT NULL,
    message_id    TEXT,
    archive_path  TEXT NOT NULL,
    received_at   TEXT NOT NULL,
    statements    BIGINT NOT NULL DEFAULT 0,
    payments      BIGINT NOT NULL DEFAULT 0
);

-- Every delivery of a file, including re-deliveries of one already ingested.
CREATE TABLE file_deliveries (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    bank_id      TEXT NOT NULL,
    file_name    TEXT NOT NULL,
    sha256       TEXT NOT NULL,
    received_at  TEXT NOT NULL,
    -- ingested | duplicate_file
    outcome      TEXT NOT NULL,
    file_id      BIGINT REFERENCES bank_files (id)
);

CREATE TABLE statements (
    id                     INTEGER PRIMARY KEY AUTOINCREMENT,
    file_id                BIGINT NOT NULL REFERENCES bank_files (id),
    seq                    BIGINT NOT NULL,
    statement_id           TEXT,
    account                TEXT NOT NULL,
    currency               TEXT,
    opening_minor          BIGINT,
    closing_minor          BIGINT,
    declared_entries       BIGINT,
    declared_sum_minor     BIGINT,
    declared_net_minor     BIGINT,
    declared_credit_count  BIGINT,
    declared_credit_minor  BIGINT,
    declared_debit_count   BIGINT,
    declared_debit_minor   BIGINT
);
CREATE INDEX statements_by_file ON statements (file_id);

-- One row per transaction of a bank file. Booked lines are payments; lines the bank marked
-- pending or informational are kept (status not_booked) so file totals can be proven.
CREATE TABLE payments (
    id                      INTEGER PRIMARY KEY AUTOINCREMENT,
    file_id                 BIGINT NOT NULL REFERENCES bank_files (id),
    statement_row           BIGINT NOT NULL REFERENCES statements (id),
    bank_id                 TEXT NOT NULL,
    entry_seq               BIGINT NOT NULL,
    tx_seq                  BIGINT NOT NULL,
    bank_ref                TEXT,
    entry_ref               TEXT,
    end_to_end_id           TEXT,
    tx_id                   TEXT,
    -- dedupe key: the same bank transaction has the same key (see ingest::txn_key)
    txn_key                 TEXT,
    amount_minor            BIGINT NOT NULL,
    currency                TEXT NOT NULL,
    direction               TEXT NOT NULL,
    reversal                BIGINT NOT NULL, -- 0 or 1
    booking_date            TEXT,
    value_date              TEXT,
    payer_name              TEXT,
    payer_account           TEXT,
    reference               TEXT,
    remittance              TEXT,
    additional_info         TEXT,
    return_reason           TEXT,
    instructed_minor        BIGINT,
    -- pending | applied | partially_applied | credit | exception | reversed | not_booked
    status                  TEXT NOT NULL,
    account_no              TEXT,
    applied_minor           BIGINT NOT NULL DEFAULT 0,
    credit_minor            BIGINT NOT NULL DEFAULT 0,
    refunded_minor          BIGINT NOT NULL DEFAULT 0,
    held_minor              BIGINT NOT NULL DEFAULT 0,
    exception_reason        TEXT,
    exception_detail        TEXT,
    reverses_payment_id     BIGINT,
    reversed_by_payment_id  BIGINT,
    matched_at              TEXT
);
-- only pending lines are indexed: matched ones leave the index instead of moving in it
CREATE INDEX payments_pending ON payments (id) WHERE status = 'pending';
CREATE INDEX payments_by_txn_key ON payments (txn_key, bank_id);
CREATE INDEX payments_by_e2e ON payments (end_to_end_id, bank_id);
CREATE INDEX payments_by_bank_ref ON payments (bank_ref, bank_id);

-- Money applied to bills. Append-only: a reversal adds negative rows (rule `reversal`).
CREATE TABLE allocations (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    payment_id    BIGINT NOT NULL REFERENCES payments (id),
    bill_id       TEXT NOT NULL REFERENCES bills (bill_id),
    account_no    TEXT NOT NULL,
    amount_minor  BIGINT NOT NULL,
    currency      TEXT NOT NULL,
    rule          TEXT NOT NULL,
    created_at    TEXT NOT NULL
);
CREATE INDEX allocations_by_payment ON allocations (payment_id);

-- Customer credit balance movements. Append-only; the balance is the sum per account.
CREATE TABLE credit_ledger (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    account_no    TEXT NOT NULL,
    payment_id    BIGINT REFERENCES payments (id),
    amount_minor  BIGINT NOT NULL,
    currency      TEXT NOT NULL,
    -- overpayment | reversal
    kind          TEXT NOT NULL,
    created_at    TEXT NOT NULL
);
CREATE INDEX credit_ledger_by_account ON credit_ledger (account_no);
CREATE INDEX credit_ledger_by_payment ON credit_ledger (payment_id);

-- Payments the daemon would not apply automatically. `held_minor` of the payment is the
-- amount of its open exception.
CREATE TABLE exceptions (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    payment_id    BIGINT NOT NULL REFERENCES payments (id),
    reason        TEXT NOT NULL,
    detail        TEXT NOT NULL,
    amount_minor  BIGINT NOT NULL,
    currency      TEXT NOT NULL,
    -- open | resolved
    status        TEXT NOT NULL,
    related_payment_id BIGINT,
    created_at    TEXT NOT NULL,
    resolved_at   TEXT
);
CREATE INDEX exceptions_by_status ON exceptions (status, id);
CREATE INDEX exceptions_by_payment ON exceptions (payment_id);
