-- OpenID Connect. A code and the grant it starts remember the browser session they came from
-- (the ID token's `sid`; what a sign-out ends) and the request's `nonce`.
ALTER TABLE auth_codes ADD COLUMN nonce TEXT;
ALTER TABLE auth_codes ADD COLUMN session_id TEXT;
ALTER TABLE refresh_families ADD COLUMN session_id TEXT;
CREATE INDEX refresh_families_session_id ON refresh_families (session_id);
-- RP-Initiated Logout (registered exactly, newline-separated) and Back-Channel Logout.
ALTER TABLE clients ADD COLUMN post_logout_redirect_uris TEXT NOT NULL DEFAULT '';
ALTER TABLE clients ADD COLUMN backchannel_logout_uri TEXT;
ALTER TABLE clients ADD COLUMN backchannel_logout_session_required BOOLEAN NOT NULL DEFAULT FALSE;
-- Logout tokens waiting for delivery, and what became of them (the "Connected apps" page
-- shows it; the janitor drops finished rows after a while).
CREATE TABLE backchannel_logouts (
    id TEXT PRIMARY KEY NOT NULL,
    client_id TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    session_id TEXT,
    reason TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMP NOT NULL,
    delivered_at TIMESTAMP,
    failed_at TIMESTAMP,
    last_error TEXT
);
CREATE INDEX backchannel_logouts_pending ON backchannel_logouts (next_attempt_at)
    WHERE delivered_at IS NULL AND failed_at IS NULL;
CREATE INDEX backchannel_logouts_user ON backchannel_logouts (user_id, created_at);
