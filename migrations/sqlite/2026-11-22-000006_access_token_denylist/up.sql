-- Access tokens revoked before they expire: a token's `jti`, or the id of the grant (refresh
-- family) whose tokens are all revoked. Rows leave once every token they name has expired.
CREATE TABLE revoked_access_tokens (
    id TEXT PRIMARY KEY NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX revoked_access_tokens_created ON revoked_access_tokens (created_at);
CREATE INDEX revoked_access_tokens_expires ON revoked_access_tokens (expires_at);
