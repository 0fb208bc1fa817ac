-- Findings: the checks of a bank file's declared totals that failed (a balance that does not
-- close, a count or control total that is not what the file holds). A file ingested under a
-- bank's `checks = "warn"` policy keeps every finding here, as does a file whose findings are
-- warnings only; a `strict` bank's file with an error finding is quarantined instead.
-- Append-only, written in the file's one ingest transaction.
CREATE TABLE file_findings (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    file_id        BIGINT NOT NULL REFERENCES bank_files (id),
    bank_id        TEXT NOT NULL,
    -- the statement of the file (statements.seq), NULL for the file's own trailer
    statement_seq  BIGINT,
    statement_id   TEXT,
    check_name     TEXT NOT NULL,
    -- error | warning
    severity       TEXT NOT NULL,
    line           BIGINT NOT NULL,
    location       TEXT NOT NULL,
    declared       TEXT NOT NULL,
    computed       TEXT NOT NULL,
    message        TEXT NOT NULL,
    -- the bank's policy when the file was ingested: strict | warn
    policy         TEXT NOT NULL,
    created_at     TEXT NOT NULL
);
CREATE INDEX file_findings_by_file ON file_findings (file_id);
CREATE INDEX file_findings_by_bank ON file_findings (bank_id, check_name, severity);
