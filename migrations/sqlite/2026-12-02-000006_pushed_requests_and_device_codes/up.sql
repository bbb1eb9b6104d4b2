-- Per-app security options as a JSON object (require_pushed_authorization_requests, …): one
-- column that grows with the options, not one column per option.
ALTER TABLE clients ADD COLUMN options TEXT NOT NULL DEFAULT '{}';

-- Pushed authorization requests (RFC 9126): the parameters an app sent to /oauth/par, named by
-- the digest of the request_uri's secret, usable for a minute and until a decision is made.
CREATE TABLE pushed_requests (
    id TEXT PRIMARY KEY NOT NULL,
    digest TEXT NOT NULL UNIQUE,
    client_id TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    params TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    consumed_at TIMESTAMP
);
CREATE INDEX pushed_requests_expiry ON pushed_requests (expires_at);

-- Device authorization (RFC 8628): the device code and the user code, both as digests only.
-- status: pending, approved, denied, consumed.
CREATE TABLE device_codes (
    id TEXT PRIMARY KEY NOT NULL,
    device_code_digest TEXT NOT NULL UNIQUE,
    user_code_digest TEXT NOT NULL UNIQUE,
    client_id TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    scopes TEXT NOT NULL,
    resource TEXT,
    status TEXT NOT NULL DEFAULT 'pending',
    user_id TEXT REFERENCES users (id) ON DELETE CASCADE,
    workspace_id TEXT,
    session_id TEXT,
    auth_time TIMESTAMP,
    interval_seconds INTEGER NOT NULL,
    last_polled_at TIMESTAMP,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    decided_at TIMESTAMP
);
CREATE INDEX device_codes_expiry ON device_codes (expires_at);
