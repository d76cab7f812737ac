-- Operations: the retry schedule's start (an operator's retry restarts it), the audit log of
-- operators' actions, console sign-ins, and the indexes the ops views and reports read.
-- Times: UTC epoch milliseconds.

-- NULL: since intake (created_at).
ALTER TABLE submissions ADD COLUMN schedule_from INTEGER;

-- Claims take the earliest due first, ties in creation order (ids are UUID v7).
DROP INDEX submissions_due;
CREATE INDEX submissions_due ON submissions (next_attempt_at, id) WHERE next_attempt_at IS NOT NULL;

-- Lists and counts by status, newest first; the oldest waiting submission of a status.
CREATE INDEX submissions_by_status ON submissions (status, created_at DESC, id DESC);
-- The REMD report and the dashboard's days: everything they read, from the index alone.
CREATE INDEX submissions_report ON submissions (created_at, organization, kind, status, last_error_code);

CREATE TABLE ops_audit (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    at            INTEGER NOT NULL,
    actor_id      TEXT    NOT NULL,                 -- api_clients.id
    actor_name    TEXT    NOT NULL,
    action        TEXT    NOT NULL,                 -- retry | cancel | bulk_retry | bulk_retry_dry_run | show_personal_data | sign_in | sign_out
    organization  TEXT,                             -- the MO acted for, when the action concerned one
    submission_id TEXT,                             -- the one submission acted on, if one
    filter        TEXT,                             -- JSON: the filter of a bulk action
    comment       TEXT,
    count         INTEGER NOT NULL                  -- submissions affected (matched, on a dry run)
);
CREATE INDEX ops_audit_newest ON ops_audit (at DESC, id DESC);

-- Console sign-ins: an ops key exchanged for a session cookie. Only the token's hash is kept.
CREATE TABLE console_sessions (
    token_hash BLOB    PRIMARY KEY,                 -- SHA-256 of the cookie's token
    client_id  TEXT    NOT NULL REFERENCES api_clients (id),
    csrf_token TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX console_sessions_expiry ON console_sessions (expires_at);

-- Submissions per organisation and status, kept by triggers, so that the summary, the
-- dashboard and the queue gauges read a few hundred rows instead of counting the table.
-- (SQLite has one writer, so the triggers update the counters in place; `shard` is always 0.)
CREATE TABLE submission_counts (
    organization TEXT    NOT NULL,
    status       TEXT    NOT NULL,
    shard        INTEGER NOT NULL,
    n            INTEGER NOT NULL,
    PRIMARY KEY (organization, status, shard)
);
INSERT INTO submission_counts (organization, status, shard, n)
    SELECT organization, status, 0, COUNT(*) FROM submissions GROUP BY organization, status;

CREATE TRIGGER submission_counts_insert AFTER INSERT ON submissions BEGIN
    INSERT INTO submission_counts (organization, status, shard, n) VALUES (NEW.organization, NEW.status, 0, 1)
        ON CONFLICT (organization, status, shard) DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER submission_counts_update AFTER UPDATE OF status ON submissions WHEN OLD.status <> NEW.status BEGIN
    INSERT INTO submission_counts (organization, status, shard, n) VALUES (OLD.organization, OLD.status, 0, -1)
        ON CONFLICT (organization, status, shard) DO UPDATE SET n = n - 1;
    INSERT INTO submission_counts (organization, status, shard, n) VALUES (NEW.organization, NEW.status, 0, 1)
        ON CONFLICT (organization, status, shard) DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER submission_counts_delete AFTER DELETE ON submissions BEGIN
    INSERT INTO submission_counts (organization, status, shard, n) VALUES (OLD.organization, OLD.status, 0, -1)
        ON CONFLICT (organization, status, shard) DO UPDATE SET n = n - 1;
END;
