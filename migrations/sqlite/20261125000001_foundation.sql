-- The foundation: API clients and the FRMR lookup cache.
-- Times are UTC milliseconds since the Unix epoch (INTEGER); the PostgreSQL schema holds
-- the same columns as TIMESTAMPTZ.

CREATE TABLE api_clients (
    id                TEXT    PRIMARY KEY,          -- UUID
    name              TEXT    NOT NULL,
    key_id            TEXT    NOT NULL UNIQUE,      -- the public part of the key, for lookup
    key_hash          BLOB    NOT NULL,             -- SHA-256 of the whole key
    roles             TEXT    NOT NULL,             -- JSON array of role names
    organizations     TEXT    NOT NULL,             -- JSON array of MO OIDs
    all_organizations INTEGER NOT NULL DEFAULT 0,   -- 1: may act for every organisation
    created_at        INTEGER NOT NULL,
    revoked_at        INTEGER
);

-- One FRMR answer per (SNILS, organisation): the person as FRMR returned it (or NULL when
-- FRMR has no such person). Verdicts are computed from it per request (date, position).
CREATE TABLE staff_cache (
    snils        TEXT    NOT NULL,
    organization TEXT    NOT NULL,
    person       TEXT,                              -- JSON of the person; NULL = not in FRMR
    fetched_at   INTEGER NOT NULL,
    PRIMARY KEY (snils, organization)
);
CREATE INDEX staff_cache_fetched_at ON staff_cache (fetched_at);
