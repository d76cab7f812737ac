-- Work done once for every instance on the database (the NSI refresh): when it last ran and
-- which instance ran it. Additive.
CREATE TABLE periodic_tasks (
    name        TEXT    PRIMARY KEY,
    last_run_at INTEGER NOT NULL,            -- ms since the epoch
    instance    TEXT    NOT NULL
);
