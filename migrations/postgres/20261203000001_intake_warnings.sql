-- What intake accepted a document with (a check under the `warn` policy, FRMR or the
-- signature verifier unreachable): a JSON array of {rule, path, message, remd_code}.
-- Additive: an instance that does not know the column keeps writing submissions.
ALTER TABLE submissions ADD COLUMN warnings JSONB NOT NULL DEFAULT '[]';
