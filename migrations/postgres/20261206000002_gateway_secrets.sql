-- Secrets every instance on the database shares (the key that signs the console's sign-in
-- form cookie), made by the first instance that needs one. Additive.
CREATE TABLE gateway_secrets (
    name  TEXT  PRIMARY KEY,
    value BYTEA NOT NULL
);
