-- A registration whose time REMD did not give (or gave unreadable) carries the gateway's
-- clock, marked so. Additive.
ALTER TABLE submissions ADD COLUMN registered_at_by_gateway BOOLEAN NOT NULL DEFAULT FALSE;
