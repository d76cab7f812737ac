-- FRMO, the federal register of medical organisations, as NSI publishes it: the
-- organisations (NSI 1.2.643.5.1.13.13.11.1461) and their departments (NSI
-- 1.2.643.5.1.13.13.99.2.114), each copy kept by (dictionary, version). A copy is fetched page
-- by page into the row tables and is in force only once `complete_at` is set; the previous
-- complete copy stays in force until then, and is dropped after. Dates are ISO days
-- (YYYY-MM-DD). Additive.
CREATE TABLE frmo_copies (
    dictionary  TEXT    NOT NULL,
    version     TEXT    NOT NULL,
    started_at  TIMESTAMPTZ NOT NULL,
    complete_at TIMESTAMPTZ,                -- NULL while being fetched
    row_count   BIGINT  NOT NULL DEFAULT 0,
    PRIMARY KEY (dictionary, version)
);

CREATE TABLE frmo_organizations (
    version     TEXT NOT NULL,
    oid         TEXT NOT NULL,
    name_full   TEXT NOT NULL,
    name_short  TEXT,
    region_id   TEXT,
    region_name TEXT,
    created_on  TEXT,
    deleted_on  TEXT,
    PRIMARY KEY (version, oid)
);

CREATE TABLE frmo_departments (
    version       TEXT NOT NULL,
    oid           TEXT NOT NULL,
    organization  TEXT NOT NULL,
    name          TEXT,
    created_on    TEXT,
    liquidated_on TEXT,
    PRIMARY KEY (version, oid)
);
