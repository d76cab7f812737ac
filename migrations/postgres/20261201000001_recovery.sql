-- Fast recovery. `checks`: look-ups in the register since the last send (reconciliation
-- backs off by it). `inconclusive`: of those, the ones that found nothing although REMD
-- holds the localUid (repeated on growing intervals up to relay.result_deadline). `check_at`: when an accepted submission whose result has not come is
-- first looked up (only in awaiting_result).
ALTER TABLE submissions ADD COLUMN checks INTEGER NOT NULL DEFAULT 0;
ALTER TABLE submissions ADD COLUMN inconclusive INTEGER NOT NULL DEFAULT 0;
ALTER TABLE submissions ADD COLUMN check_at TIMESTAMPTZ;
CREATE INDEX submissions_check_at ON submissions (check_at) WHERE check_at IS NOT NULL;
