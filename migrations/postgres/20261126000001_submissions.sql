-- Document registration in REMD: submissions (the outbox), their documents, the message ids
-- sent for them, their timeline, and REMD's calls back. Same schema as migrations/sqlite.

CREATE TABLE submissions (
    id              UUID        PRIMARY KEY,
    organization    TEXT        NOT NULL,
    local_uid       TEXT        NOT NULL,
    kind            INTEGER     NOT NULL,
    status          TEXT        NOT NULL,
    checksum        BIGINT      NOT NULL,
    byte_size       BIGINT      NOT NULL,
    request         JSONB       NOT NULL,
    attempts        INTEGER     NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMPTZ,
    lease_owner     TEXT,
    lease_until     TIMESTAMPTZ,
    emdr_id         TEXT,
    registered_at   TIMESTAMPTZ,
    errors          JSONB       NOT NULL DEFAULT '[]',
    last_error_code TEXT,
    awaiting_since  TIMESTAMPTZ,
    created_at      TIMESTAMPTZ NOT NULL,
    updated_at      TIMESTAMPTZ NOT NULL,
    UNIQUE (organization, local_uid)
);
CREATE INDEX submissions_due ON submissions (next_attempt_at) WHERE next_attempt_at IS NOT NULL;
CREATE INDEX submissions_leased ON submissions (lease_until) WHERE lease_owner IS NOT NULL;
CREATE INDEX submissions_awaiting ON submissions (awaiting_since) WHERE status = 'awaiting_result';
CREATE INDEX submissions_newest ON submissions (created_at DESC, id DESC);

CREATE TABLE documents (
    submission_id UUID  PRIMARY KEY REFERENCES submissions (id),
    content       BYTEA NOT NULL
);

CREATE TABLE submission_messages (
    message_id    TEXT        PRIMARY KEY,
    submission_id UUID        NOT NULL REFERENCES submissions (id),
    sent_at       TIMESTAMPTZ NOT NULL
);
CREATE INDEX submission_messages_by_submission ON submission_messages (submission_id);

CREATE TABLE submission_events (
    id            BIGSERIAL   PRIMARY KEY,
    submission_id UUID        NOT NULL REFERENCES submissions (id),
    at            TIMESTAMPTZ NOT NULL,
    status        TEXT        NOT NULL,
    actor         TEXT        NOT NULL,
    detail        TEXT        NOT NULL
);
CREATE INDEX submission_events_by_submission ON submission_events (submission_id, id);

CREATE TABLE remd_callbacks (
    id            BIGSERIAL   PRIMARY KEY,
    received_at   TIMESTAMPTZ NOT NULL,
    operation     TEXT        NOT NULL,
    message_id    TEXT        NOT NULL,
    relates_to    TEXT,
    submission_id UUID,
    outcome       TEXT        NOT NULL,
    payload       JSONB       NOT NULL
);
CREATE UNIQUE INDEX remd_callbacks_once ON remd_callbacks (operation, message_id);
