-- Cluster-wide quotas are PostgreSQL's (its 20261203000003_rate_buckets): on SQLite one process
-- serves the database and its in-process limiter is the quota, so nothing is created here.
-- This version exists so that a schema number means the same on both engines. Databases
-- migrated before it numbered fair_claims 0003 and periodic_tasks 0004; the store renumbers
-- their records before migrating (src/store/sqlite.rs, `renumber`), and this one is applied
-- then as any other.
SELECT 1;
