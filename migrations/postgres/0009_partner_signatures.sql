-- The partner API's record of used request signatures (issue 23): a signed request is accepted
-- once; the record is kept until its timestamp leaves the replay window, in the database so
-- that a restart, or another daemon instance on the same database, still refuses a replay.
CREATE TABLE partner_signatures (
    bank_id     TEXT NOT NULL,
    -- the signature (HMAC-SHA256) as lower-case hex
    signature   TEXT NOT NULL,
    -- Unix seconds after which the request's timestamp is outside the window (then the row
    -- may be purged: the timestamp check refuses such a request anyway)
    expires_at  BIGINT NOT NULL,
    PRIMARY KEY (bank_id, signature)
);
CREATE INDEX partner_signatures_by_expiry ON partner_signatures (expires_at);
