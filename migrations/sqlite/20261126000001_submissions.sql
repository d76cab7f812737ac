-- Document registration in REMD: submissions (the outbox), their documents, the message ids
-- sent for them, their timeline, and REMD's calls back. Times: UTC epoch milliseconds.

CREATE TABLE submissions (
    id              TEXT    PRIMARY KEY,            -- UUID v7
    organization    TEXT    NOT NULL,               -- MO OID
    local_uid       TEXT    NOT NULL,               -- ClinicalDocument/id/@extension
    kind            INTEGER NOT NULL,               -- NSI 1520 id
    status          TEXT    NOT NULL,
    checksum        INTEGER NOT NULL,               -- CRC-32 of the document bytes
    byte_size       INTEGER NOT NULL,
    request         TEXT    NOT NULL,               -- JSON: the registerDocument request derived at intake
    attempts        INTEGER NOT NULL DEFAULT 0,     -- registerDocument calls made
    next_attempt_at INTEGER,                        -- set while the relay should take it (queued, retry_wait, unknown)
    lease_owner     TEXT,                           -- relay worker holding it
    lease_until     INTEGER,
    emdr_id         TEXT,
    registered_at   INTEGER,
    errors          TEXT    NOT NULL DEFAULT '[]',  -- JSON [{code, message, disposition, hint_ru}]
    last_error_code TEXT,
    awaiting_since  INTEGER,                        -- when REMD accepted the request
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    UNIQUE (organization, local_uid)
);
CREATE INDEX submissions_due ON submissions (next_attempt_at) WHERE next_attempt_at IS NOT NULL;
CREATE INDEX submissions_leased ON submissions (lease_until) WHERE lease_owner IS NOT NULL;
CREATE INDEX submissions_awaiting ON submissions (awaiting_since) WHERE status = 'awaiting_result';
CREATE INDEX submissions_newest ON submissions (created_at DESC, id DESC);

-- The exact bytes, apart from the hot rows.
CREATE TABLE documents (
    submission_id TEXT PRIMARY KEY REFERENCES submissions (id),
    content       BLOB NOT NULL
);

-- Every wsa:MessageID sent for a submission: REMD's calls back may relate to any of them.
CREATE TABLE submission_messages (
    message_id    TEXT    PRIMARY KEY,
    submission_id TEXT    NOT NULL REFERENCES submissions (id),
    sent_at       INTEGER NOT NULL
);
CREATE INDEX submission_messages_by_submission ON submission_messages (submission_id);

CREATE TABLE submission_events (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    submission_id TEXT    NOT NULL REFERENCES submissions (id),
    at            INTEGER NOT NULL,
    status        TEXT    NOT NULL,
    actor         TEXT    NOT NULL,
    detail        TEXT    NOT NULL
);
CREATE INDEX submission_events_by_submission ON submission_events (submission_id, id);

-- REMD's calls to the gateway, as received (results for unknown messages included).
CREATE TABLE remd_callbacks (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    received_at   INTEGER NOT NULL,
    operation     TEXT    NOT NULL,                 -- getDocumentFile | sendRegisterDocumentResult
    message_id    TEXT    NOT NULL,                 -- REMD's wsa:MessageID
    relates_to    TEXT,                             -- our registerDocument MessageID
    submission_id TEXT,
    outcome       TEXT    NOT NULL,                 -- what the gateway did with it
    payload       TEXT    NOT NULL                  -- JSON of the parsed call
);
CREATE UNIQUE INDEX remd_callbacks_once ON remd_callbacks (operation, message_id);
