-- Work done once for the whole cluster (the NSI refresh): when it last ran and which
-- instance ran it; an instance claims a run with one conditional upsert. Additive.
CREATE TABLE periodic_tasks (
    name        TEXT        PRIMARY KEY,
    last_run_at TIMESTAMPTZ NOT NULL,
    instance    TEXT        NOT NULL
);
