-- The foundation: API clients and the FRMR lookup cache.
-- Logically the same schema as migrations/sqlite (which stores times as epoch ms).

CREATE TABLE api_clients (
    id                UUID        PRIMARY KEY,
    name              TEXT        NOT NULL,
    key_id            TEXT        NOT NULL UNIQUE,   -- the public part of the key, for lookup
    key_hash          BYTEA       NOT NULL,          -- SHA-256 of the whole key
    roles             JSONB       NOT NULL,          -- array of role names
    organizations     JSONB       NOT NULL,          -- array of MO OIDs
    all_organizations BOOLEAN     NOT NULL DEFAULT FALSE,
    created_at        TIMESTAMPTZ NOT NULL,
    revoked_at        TIMESTAMPTZ
);

-- One FRMR answer per (SNILS, organisation); shared by every gateway instance.
CREATE TABLE staff_cache (
    snils        TEXT        NOT NULL,
    organization TEXT        NOT NULL,
    person       JSONB,                              -- NULL = not in FRMR
    fetched_at   TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (snils, organization)
);
CREATE INDEX staff_cache_fetched_at ON staff_cache (fetched_at);
