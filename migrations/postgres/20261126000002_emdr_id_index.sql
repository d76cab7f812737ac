-- REMD may ask for the file of a registered document by its emdrId.
CREATE INDEX submissions_emdr_id ON submissions (emdr_id) WHERE emdr_id IS NOT NULL;
