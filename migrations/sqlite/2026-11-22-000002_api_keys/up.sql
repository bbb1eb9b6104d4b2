-- The scope registry (shared by API keys and OAuth), API keys and the audit log.
CREATE TABLE scopes (
    name TEXT PRIMARY KEY NOT NULL,
    description TEXT NOT NULL,
    admin_only BOOLEAN NOT NULL,
    created_at TIMESTAMP NOT NULL
);

CREATE TABLE api_keys (
    id TEXT PRIMARY KEY NOT NULL,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    issued_by TEXT NOT NULL,
    name TEXT NOT NULL,
    description TEXT NOT NULL,
    mode TEXT NOT NULL CHECK (mode IN ('live', 'test')),
    kind TEXT NOT NULL CHECK (kind IN ('secret', 'restricted')),
    key_digest TEXT NOT NULL UNIQUE,
    display_prefix TEXT NOT NULL,
    last4 TEXT NOT NULL,
    scopes TEXT NOT NULL,
    allowed_ips TEXT NOT NULL,
    rate_limit_per_minute BIGINT,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP,
    last_used_at TIMESTAMP,
    last_used_ip TEXT,
    revoked_at TIMESTAMP,
    revoked_by TEXT,
    rolled_from TEXT,
    rolled_to TEXT
);
CREATE INDEX api_keys_user ON api_keys (user_id, created_at);

CREATE TABLE audit_events (
    id TEXT PRIMARY KEY NOT NULL,
    occurred_at TIMESTAMP NOT NULL,
    action TEXT NOT NULL,
    actor_user_id TEXT,
    actor_key_id TEXT,
    subject_user_id TEXT,
    key_id TEXT,
    ip TEXT,
    details TEXT NOT NULL
);
CREATE INDEX audit_events_time ON audit_events (occurred_at);
CREATE INDEX audit_events_actor ON audit_events (actor_user_id, occurred_at);
CREATE INDEX audit_events_key ON audit_events (key_id, occurred_at);
CREATE INDEX audit_events_action ON audit_events (action, occurred_at);
