-- Claims fair to every organisation: when each organisation was last served, and the due
-- work by organisation (the claim's skip scan over organisations, then each one's earliest).
-- Additive: an older instance claims oldest first as before and does not touch the turns.
CREATE TABLE organization_turns (
    organization    TEXT    PRIMARY KEY,
    last_claimed_at INTEGER NOT NULL           -- ms since the epoch
);
CREATE INDEX submissions_due_by_org ON submissions (organization, next_attempt_at, id) WHERE next_attempt_at IS NOT NULL;
