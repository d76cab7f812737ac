-- The MessageID of the latest registerDocument sent for a submission: REMD's error results
-- for earlier sends must not override what happened to the latest one.
ALTER TABLE submissions ADD COLUMN current_message_id TEXT;
