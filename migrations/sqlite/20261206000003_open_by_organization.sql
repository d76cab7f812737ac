-- The queue's figures for a key limited to some organisations: the summary counts what is
-- still on its way and older than the registration deadline, of those organisations. Without
-- this index the planner reads the report's index over every submission before the deadline
-- (about a year of them: 130-200 ms on SQLite at a million); with it, the few on their way
-- (about 2 % of a region's submissions) by organisation and age: about a millisecond.
-- Partial: the states are the lifecycle's OPEN, in its order, as the summary's statement
-- names them (tests/schema_versions.rs holds the two together). Additive.
CREATE INDEX submissions_open_by_org ON submissions (organization, created_at)
    WHERE status IN ('queued', 'sending', 'awaiting_result', 'retry_wait', 'unknown');
