-- Operations: the retry schedule's start (an operator's retry restarts it), the audit log of
-- operators' actions, console sign-ins, and the indexes the ops views and reports read.

-- NULL: since intake (created_at).
ALTER TABLE submissions ADD COLUMN schedule_from TIMESTAMPTZ;

-- Claims take the earliest due first, ties in creation order (ids are UUID v7).
DROP INDEX submissions_due;
CREATE INDEX submissions_due ON submissions (next_attempt_at, id) WHERE next_attempt_at IS NOT NULL;

-- Lists and counts by status, newest first; the oldest waiting submission of a status.
CREATE INDEX submissions_by_status ON submissions (status, created_at DESC, id DESC);
-- The REMD report and the dashboard's days: everything they read, from the index alone.
CREATE INDEX submissions_report ON submissions (created_at, organization, kind, status, last_error_code);

CREATE TABLE ops_audit (
    id            BIGSERIAL   PRIMARY KEY,
    at            TIMESTAMPTZ NOT NULL,
    actor_id      UUID        NOT NULL,             -- api_clients.id
    actor_name    TEXT        NOT NULL,
    action        TEXT        NOT NULL,             -- retry | cancel | bulk_retry | bulk_retry_dry_run | show_personal_data | sign_in | sign_out
    organization  TEXT,                             -- the MO acted for, when the action concerned one
    submission_id UUID,                             -- the one submission acted on, if one
    filter        JSONB,                            -- the filter of a bulk action
    comment       TEXT,
    count         BIGINT      NOT NULL              -- submissions affected (matched, on a dry run)
);
CREATE INDEX ops_audit_newest ON ops_audit (at DESC, id DESC);

-- Console sign-ins: an ops key exchanged for a session cookie. Only the token's hash is kept.
CREATE TABLE console_sessions (
    token_hash BYTEA       PRIMARY KEY,             -- SHA-256 of the cookie's token
    client_id  UUID        NOT NULL REFERENCES api_clients (id),
    csrf_token TEXT        NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX console_sessions_expiry ON console_sessions (expires_at);

-- Submissions per organisation and status, kept by the database, so that the summary, the
-- dashboard and the queue gauges read a few hundred rows instead of counting the table.
-- Triggers only append deltas (no row is updated, so concurrent intakes and claims never
-- wait for one another or deadlock on a counter); the gateway folds them into
-- submission_counts now and then (OpsStore::compact_counts). A count is the base plus the
-- deltas not folded yet.
CREATE TABLE submission_counts (
    organization TEXT   NOT NULL,
    status       TEXT   NOT NULL,
    n            BIGINT NOT NULL,
    PRIMARY KEY (organization, status)
);
CREATE TABLE submission_count_deltas (
    id           BIGSERIAL PRIMARY KEY,
    organization TEXT      NOT NULL,
    status       TEXT      NOT NULL,
    n            INTEGER   NOT NULL
);
INSERT INTO submission_counts (organization, status, n)
    SELECT organization, status, COUNT(*) FROM submissions GROUP BY organization, status;
-- Notes are appended and deleted all day: vacuumed after every 10,000 dead rows, not after a
-- share of the table (which stays small).
ALTER TABLE submission_count_deltas SET (autovacuum_vacuum_scale_factor = 0.0, autovacuum_vacuum_threshold = 10000);

CREATE FUNCTION submission_counts_keep() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        INSERT INTO submission_count_deltas (organization, status, n) VALUES (OLD.organization, OLD.status, -1);
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        INSERT INTO submission_count_deltas (organization, status, n) VALUES (NEW.organization, NEW.status, 1);
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER submission_counts_insert AFTER INSERT ON submissions
    FOR EACH ROW EXECUTE FUNCTION submission_counts_keep();
CREATE TRIGGER submission_counts_update AFTER UPDATE OF status ON submissions
    FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status) EXECUTE FUNCTION submission_counts_keep();
CREATE TRIGGER submission_counts_delete AFTER DELETE ON submissions
    FOR EACH ROW EXECUTE FUNCTION submission_counts_keep();
