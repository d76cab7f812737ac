-- The failed documents of some organisations, newest first: the console's failed list filtered
-- by an organisation (its OID, or the organisations whose name matches what the operator
-- typed). Without this index the list walks every failed submission newest first until it
-- has a page of those organisations' (at a million submissions, 90 organisations: some 100 ms
-- on SQLite); with it, each organisation's failed ones in order. Partial: failed submissions
-- are a few per cent of a region's. Additive.
CREATE INDEX submissions_failed_by_org ON submissions (organization, created_at, id)
    WHERE status = 'failed';
