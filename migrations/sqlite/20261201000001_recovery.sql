-- Fast recovery. `checks`: look-ups in the register since the last send (reconciliation
-- backs off by it). `check_at`: when an accepted submission whose result has not come is
-- first looked up (epoch ms; only in awaiting_result).
ALTER TABLE submissions ADD COLUMN checks INTEGER NOT NULL DEFAULT 0;
ALTER TABLE submissions ADD COLUMN check_at INTEGER;
CREATE INDEX submissions_check_at ON submissions (check_at) WHERE check_at IS NOT NULL;
