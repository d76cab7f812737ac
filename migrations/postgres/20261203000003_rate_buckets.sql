-- Cluster-wide quotas of the upstreams (REMD, FRMR): one token bucket per upstream, shared
-- by every instance on this database (src/relay/quota.rs is the arithmetic, the store's
-- quota_take the one statement that applies it). Additive. UNLOGGED: a token is not worth
-- an fsync; after a crash of the server the buckets start again full (one burst more).
CREATE UNLOGGED TABLE rate_buckets (
    upstream    TEXT             PRIMARY KEY,
    tokens      DOUBLE PRECISION NOT NULL,
    refilled_at TIMESTAMPTZ      NOT NULL,
    granted     BOOLEAN          NOT NULL   -- whether the last take got a token
);

-- tokens + elapsed seconds × rate, at most burst; time never runs backwards.
CREATE FUNCTION egisz_refill(tokens DOUBLE PRECISION, refilled_at TIMESTAMPTZ, now TIMESTAMPTZ,
                             rate DOUBLE PRECISION, burst DOUBLE PRECISION)
RETURNS DOUBLE PRECISION LANGUAGE SQL IMMUTABLE AS $$
    SELECT LEAST(burst, tokens + GREATEST(0, EXTRACT(EPOCH FROM (now - refilled_at))::DOUBLE PRECISION) * rate)
$$;
