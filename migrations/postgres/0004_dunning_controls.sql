-- Dunning controls: late fees waived per bill by a supervisor (with the reason), and customer
-- managers' acknowledgements of a key account's last stage.

CREATE TABLE late_fee_waivers (
    bill_id    TEXT PRIMARY KEY REFERENCES bills (bill_id),
    waived_by  TEXT NOT NULL,
    reason     TEXT NOT NULL,
    waived_at  TEXT NOT NULL
);

CREATE TABLE manager_acks (
    account_no  TEXT NOT NULL REFERENCES customers (account_no),
    stage       TEXT NOT NULL,
    acked_by    TEXT NOT NULL,
    acked_at    TEXT NOT NULL,
    PRIMARY KEY (account_no, stage)
);

-- the payment a receipt confirms
ALTER TABLE notices ADD COLUMN payment_id BIGINT;
CREATE INDEX notices_by_payment ON notices (payment_id);

-- the language a customer's notices are written in (zh, en; empty: the configured default)
ALTER TABLE customers ADD COLUMN language TEXT;
