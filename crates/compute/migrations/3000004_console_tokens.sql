-- Console tokens (Nova's console_auth_tokens): only the sha256 of a token is kept,
-- so any proxy process can check one and a database dump gives no console away.
CREATE TABLE console_auth_tokens (
    token_hash TEXT PRIMARY KEY,
    instance_uuid TEXT NOT NULL,
    console_type TEXT NOT NULL,
    host TEXT NOT NULL,
    address TEXT,
    port BIGINT,
    internal_access_path TEXT,
    access_url_base TEXT NOT NULL,
    created_at_us BIGINT NOT NULL,
    expires_us BIGINT NOT NULL
);
CREATE INDEX console_auth_tokens_instance ON console_auth_tokens (instance_uuid);
CREATE INDEX console_auth_tokens_expires ON console_auth_tokens (expires_us);
