-- Dictionary versions fetched from NSI, by (oid, version): their rows as a JSON array of
-- [code, name]. The newest fetched copy of a dictionary is the one in force; the shipped
-- mappings/ files stay the fallback. Additive.
CREATE TABLE nsi_dictionaries (
    oid        TEXT        NOT NULL,
    version    TEXT        NOT NULL,
    fetched_at TIMESTAMPTZ NOT NULL,
    rows       JSONB       NOT NULL,
    PRIMARY KEY (oid, version)
);
