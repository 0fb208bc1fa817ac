-- The daemon's pulls: one row per run of a bank's schedule, and each bank's state between
-- runs (the listing cursor of an HTTPS source, the failure streak behind its health).

CREATE TABLE runs (
    id            BIGSERIAL PRIMARY KEY,
    bank_id       TEXT NOT NULL,
    -- start (the daemon's first run), schedule, manual
    trigger_kind  TEXT NOT NULL,
    started_at    TEXT NOT NULL,
    finished_at   TEXT,
    files         BIGINT NOT NULL DEFAULT 0,
    duplicates    BIGINT NOT NULL DEFAULT 0,
    rejected      BIGINT NOT NULL DEFAULT 0,
    payments      BIGINT NOT NULL DEFAULT 0,
    bytes         BIGINT NOT NULL DEFAULT 0,
    -- running, ok, failed, cancelled
    outcome       TEXT NOT NULL CHECK (outcome IN ('running', 'ok', 'failed', 'cancelled')),
    error         TEXT
);
CREATE INDEX runs_by_bank ON runs (bank_id, id);

CREATE TABLE bank_state (
    bank_id               TEXT PRIMARY KEY,
    -- HTTPS: created_at of the newest file taken (the listing's since=)
    cursor                TEXT,
    consecutive_failures  BIGINT NOT NULL DEFAULT 0,
    last_success_at       TEXT,
    last_failure          TEXT,
    updated_at            TEXT NOT NULL
);
