-- OAuth clients and the keys that sign access tokens.
CREATE TABLE clients (
    id TEXT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    owner_user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    client_type TEXT NOT NULL CHECK (client_type IN ('confidential', 'public')),
    secret_digest TEXT,
    previous_secret_digest TEXT,
    previous_secret_expires_at TIMESTAMP,
    redirect_uris TEXT NOT NULL,
    allowed_scopes TEXT NOT NULL,
    grant_types TEXT NOT NULL,
    first_party BOOLEAN NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    disabled_at TIMESTAMP
);
CREATE INDEX clients_owner ON clients (owner_user_id, created_at);

CREATE TABLE signing_keys (
    id TEXT PRIMARY KEY NOT NULL,
    alg TEXT NOT NULL,
    private_key_encrypted TEXT NOT NULL,
    public_jwk TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    activates_at TIMESTAMP NOT NULL,
    retired_at TIMESTAMP,
    expires_at TIMESTAMP
);
CREATE INDEX signing_keys_activation ON signing_keys (activates_at);
