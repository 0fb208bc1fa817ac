-- Late fees (违约金) as receivables, and money that moves when a bill changes after it was
-- paid (issue 14).
--
-- A bill's late fee is kept apart from its principal: `paid_minor` stays the principal paid,
-- and four running totals follow the late_fees rows and the fee allocations (verify proves
-- each one):
--   fee_accrued_minor  what the charges computed (base x rate x days), net of undone ones
--   fee_charged_minor  what was charged: the accrued total, lifted to the minimum
--   fee_waived_minor   what a supervisor waived of what was owed
--   fee_paid_minor     the fee allocations (allocations with part 'late_fee')
-- owed = fee_charged - fee_waived - fee_paid.
ALTER TABLE bills ADD COLUMN fee_accrued_minor BIGINT NOT NULL DEFAULT 0;
ALTER TABLE bills ADD COLUMN fee_charged_minor BIGINT NOT NULL DEFAULT 0;
ALTER TABLE bills ADD COLUMN fee_waived_minor BIGINT NOT NULL DEFAULT 0;
ALTER TABLE bills ADD COLUMN fee_paid_minor BIGINT NOT NULL DEFAULT 0;
-- 1: the late fee is waived (late_fee_waivers has who and why): no fee is charged any more
ALTER TABLE bills ADD COLUMN late_fee_waived BIGINT NOT NULL DEFAULT 0;
UPDATE bills SET late_fee_waived = 1 WHERE bill_id IN (SELECT bill_id FROM late_fee_waivers);

-- what an allocation settles: the bill's principal, or its late fee (rule `late_fee`; undoing
-- rows keep the part of the row they undo)
ALTER TABLE allocations ADD COLUMN part TEXT NOT NULL DEFAULT 'principal';

-- The late-fee ledger. Append-only: an undone charge gets an `undo` row, never a change.
-- kind: charge      the fee accrued on `base_minor` paid late by `payment_id`, from `from_on`
--                   to `to_on` (`days`) at `rate` (one row per rate: a period that crosses the
--                   due date's year end has two)
--       undo        a charge taken back (its payment reversed, reopened, or moved off a
--                   cancelled or lowered bill): the same base, days and rate, computed negative
--       waiver      a supervisor waived what was owed (negative amount)
--       waiver_undo a waiver given back because the charge it waived was undone
-- computed_minor = base x rate x days (rounded half away from zero; negative for undo);
-- amount_minor = what the row changes the bill's fee by: per bill the charges and undos add up
-- to their computed total lifted to `minimum_minor` (that of the bill's latest such row).
CREATE TABLE late_fees (
    id              BIGSERIAL PRIMARY KEY,
    bill_id         TEXT NOT NULL REFERENCES bills (bill_id),
    account_no      TEXT NOT NULL,
    currency        TEXT NOT NULL,
    kind            TEXT NOT NULL CHECK (kind IN ('charge', 'undo', 'waiver', 'waiver_undo')),
    -- the payment whose late money the fee is on (charge, undo); none for waivers
    payment_id      BIGINT REFERENCES payments (id),
    -- the payment that undid it (a bank reversal), when there is one
    by_payment_id   BIGINT REFERENCES payments (id),
    -- why: reversal, reopen, bill_cancelled, bill_lowered, late_fee_released; a waiver's reason
    reason          TEXT NOT NULL DEFAULT '',
    actor           TEXT NOT NULL DEFAULT '',
    due_on          TEXT,
    from_on         TEXT,
    to_on           TEXT,
    days            BIGINT NOT NULL DEFAULT 0,
    rate            TEXT NOT NULL DEFAULT '0',
    base_minor      BIGINT NOT NULL DEFAULT 0,
    computed_minor  BIGINT NOT NULL DEFAULT 0,
    amount_minor    BIGINT NOT NULL,
    minimum_minor   BIGINT NOT NULL DEFAULT 0,
    created_at      TEXT NOT NULL
);
-- a reversal reads the charges of the payment it undoes; nothing on the hot path reads by bill
-- (verify and the reports read the whole table), so no index by bill: it slowed matching's
-- inserts by a third
CREATE INDEX late_fees_by_payment ON late_fees (payment_id);
