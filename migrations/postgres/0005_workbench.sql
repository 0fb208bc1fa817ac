-- The exceptions workbench: resolutions made by people (or a bank's narrow auto-rule), the
-- append-only audit trail, escalation, and the users and tokens of the HTTP API.

-- Money of a payment written off by a resolution, signed: positive = a small surplus the
-- utility keeps instead of holding it as credit; negative = a small shortfall of a bill the
-- utility absorbs (its allocation row has rule `write_off`). Conservation becomes
-- amount = applied + credit + refunded + held + written_off.
ALTER TABLE payments ADD COLUMN written_off_minor BIGINT NOT NULL DEFAULT 0;

-- when the exception was escalated (unresolved after `exceptions.escalate_after_hours`)
ALTER TABLE exceptions ADD COLUMN escalated_at TEXT;
-- the account of the best suggestion (queue order: key accounts first)
ALTER TABLE exceptions ADD COLUMN suggested_account TEXT;

CREATE TABLE users (
    id          BIGSERIAL PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    role        TEXT NOT NULL CHECK (role IN ('viewer', 'clerk', 'supervisor', 'admin')),
    created_by  TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    revoked_at  TEXT
);

-- Tokens are stored as the SHA-256 of the token (tokens are 256 random bits: a plain digest
-- is enough, no password hashing needed). kind: api (long-lived, from `users add`) or
-- session (from the web login, expires).
CREATE TABLE user_tokens (
    id            BIGSERIAL PRIMARY KEY,
    user_id       BIGINT NOT NULL REFERENCES users (id),
    token_sha256  TEXT NOT NULL UNIQUE,
    kind          TEXT NOT NULL CHECK (kind IN ('api', 'session')),
    created_at    TEXT NOT NULL,
    expires_at    TEXT,
    revoked_at    TEXT,
    last_used_at  TEXT
);
CREATE INDEX user_tokens_by_user ON user_tokens (user_id);

-- One row per resolution of an exception. status: proposed (awaiting a supervisor's
-- approval, nothing moved yet), done, declined (a proposal turned down), reopened (undone).
-- A refund is done when marked; refund_ref/refund_paid_at record the payout.
CREATE TABLE resolutions (
    id              BIGSERIAL PRIMARY KEY,
    exception_id    BIGINT NOT NULL REFERENCES exceptions (id),
    payment_id      BIGINT NOT NULL REFERENCES payments (id),
    action          TEXT NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('proposed', 'done', 'declined', 'reopened')),
    request         TEXT NOT NULL,
    amount_minor    BIGINT NOT NULL,
    currency        TEXT NOT NULL,
    comment         TEXT NOT NULL,
    created_by      TEXT NOT NULL,
    created_at      TEXT NOT NULL,
    approved_by     TEXT,
    approved_at     TEXT,
    refund_ref      TEXT,
    refund_paid_at  TEXT,
    reopened_by     TEXT,
    reopened_at     TEXT
);
CREATE INDEX resolutions_by_payment ON resolutions (payment_id);
CREATE INDEX resolutions_by_exception ON resolutions (exception_id);

-- Who did what, when, why, before and after. Append-only: triggers refuse changes.
CREATE TABLE audit_log (
    id             BIGSERIAL PRIMARY KEY,
    at             TEXT NOT NULL,
    actor          TEXT NOT NULL,
    action         TEXT NOT NULL,
    payment_id     BIGINT,
    exception_id   BIGINT,
    resolution_id  BIGINT,
    comment        TEXT NOT NULL,
    -- JSON: the payment, its exception and the bills touched, before and after
    before_state   TEXT NOT NULL,
    after_state    TEXT NOT NULL
);
CREATE INDEX audit_by_payment ON audit_log (payment_id, id);

-- the bills an audit entry touched (the trail shown per bill)
CREATE TABLE audit_bills (
    audit_id  BIGINT NOT NULL REFERENCES audit_log (id),
    bill_id   TEXT NOT NULL,
    PRIMARY KEY (bill_id, audit_id)
);

CREATE FUNCTION billrecon_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only', TG_TABLE_NAME;
END;
$$;
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION billrecon_append_only();
CREATE TRIGGER audit_bills_append_only BEFORE UPDATE OR DELETE ON audit_bills
    FOR EACH ROW EXECUTE FUNCTION billrecon_append_only();
