-- Apps that register themselves (RFC 7591 dynamic registration) or are described by a Client
-- ID Metadata Document (their client_id is the document's https URL) belong to no user.
ALTER TABLE clients ALTER COLUMN owner_user_id DROP NOT NULL;
-- registered: made by a user or an administrator; dcr: RFC 7591; cimd: a metadata document.
ALTER TABLE clients ADD COLUMN origin TEXT NOT NULL DEFAULT 'registered';
-- RFC 7592: the digest of the registration access token (dcr only).
ALTER TABLE clients ADD COLUMN registration_token_digest TEXT;
-- What a self-registered app said of itself that Gatehouse shows or answers back (RFC 7591
-- §2: token_endpoint_auth_method, client_uri, logo_uri, policy_uri, tos_uri, contacts,
-- software_id, software_version), as a JSON object.
ALTER TABLE clients ADD COLUMN metadata TEXT NOT NULL DEFAULT '{}';
-- The address a dcr client registered from.
ALTER TABLE clients ADD COLUMN registered_from TEXT;
-- cimd: when the fetched document must be fetched again.
ALTER TABLE clients ADD COLUMN metadata_expires_at TIMESTAMP;
ALTER TABLE clients ADD COLUMN first_used_at TIMESTAMP;
ALTER TABLE clients ADD COLUMN last_used_at TIMESTAMP;
CREATE INDEX clients_self_registered ON clients (origin, last_used_at);

-- Initial access tokens (RFC 7591 §3): minted by administrators when registration needs one.
CREATE TABLE registration_tokens (
    id TEXT PRIMARY KEY NOT NULL,
    digest TEXT NOT NULL UNIQUE,
    label TEXT NOT NULL,
    created_by TEXT REFERENCES users (id) ON DELETE SET NULL,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    -- NULL: any number of registrations until it expires.
    uses_left INTEGER,
    revoked_at TIMESTAMP
);

-- Hosts whose Client ID Metadata Documents Gatehouse no longer fetches.
CREATE TABLE blocked_client_hosts (
    host TEXT PRIMARY KEY NOT NULL,
    blocked_by TEXT REFERENCES users (id) ON DELETE SET NULL,
    created_at TIMESTAMP NOT NULL
);
