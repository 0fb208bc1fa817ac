-- The notice outbox: every message to a customer or a customer manager is written here, in the
-- transaction that decides it, and delivered from here by the delivery worker. A notice is
-- sent at most once: its idempotency key is unique, and the gateway receives it too.

CREATE TABLE notices (
    id               BIGSERIAL PRIMARY KEY,
    -- dunning, manager_task, receipt
    kind             TEXT NOT NULL,
    account_no       TEXT NOT NULL,
    -- space-separated bill ids the notice is about (empty for a receipt)
    bill_ids         TEXT NOT NULL,
    stage            TEXT,
    channel          TEXT NOT NULL,
    language         TEXT NOT NULL,
    -- the rendered text and its data (JSON), as sent
    body             TEXT NOT NULL,
    payload          TEXT NOT NULL,
    idempotency_key  TEXT NOT NULL UNIQUE,
    -- queued, sent (the gateway took it), delivered (the gateway says it reached the
    -- customer), failed (retrying), dead (gave up), cancelled
    status           TEXT NOT NULL CHECK (status IN ('queued', 'sent', 'delivered', 'failed', 'dead', 'cancelled')),
    attempts         BIGINT NOT NULL DEFAULT 0,
    next_attempt_at  TEXT NOT NULL,
    last_error       TEXT,
    planned_for      TEXT NOT NULL,
    created_at       TEXT NOT NULL,
    sent_at          TEXT,
    delivered_at     TEXT,
    cancelled_reason TEXT
);
CREATE INDEX notices_due ON notices (status, next_attempt_at);
CREATE INDEX notices_by_account ON notices (account_no, created_at);
