-- Workspaces (issue 12): every user has a personal workspace, created with the account, and
-- may belong to shared ones with a role (owner, admin, member). Keys belong to a user in a
-- workspace; authorizations, refresh families and audit events name the workspace they acted in;
-- an app may be private to a workspace (NULL: offered to every user, as before).
CREATE TABLE workspaces (
    id TEXT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    slug TEXT NOT NULL UNIQUE,
    -- The user whose personal workspace this is (NULL for shared workspaces).
    personal_user_id TEXT UNIQUE REFERENCES users (id) ON DELETE CASCADE,
    -- Who creates keys: 'members' (each their own) or 'admins' (workspace admins issue them).
    key_issuance TEXT NOT NULL DEFAULT 'members',
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);

CREATE TABLE workspace_members (
    workspace_id TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    PRIMARY KEY (workspace_id, user_id)
);
CREATE INDEX workspace_members_by_user ON workspace_members (user_id);

CREATE TABLE workspace_invitations (
    id TEXT PRIMARY KEY NOT NULL,
    workspace_id TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    email TEXT NOT NULL,
    role TEXT NOT NULL,
    token_digest TEXT NOT NULL UNIQUE,
    invited_by TEXT,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    accepted_at TIMESTAMP,
    accepted_by TEXT,
    revoked_at TIMESTAMP
);
CREATE INDEX workspace_invitations_by_workspace ON workspace_invitations (workspace_id);

-- Every existing user gets their personal workspace (ids derived from the user's, so the
-- migration needs no random source), as its owner.
INSERT INTO workspaces (id, name, slug, personal_user_id, key_issuance, created_at, updated_at)
    SELECT 'ws_' || substr(id, 5), 'Personal', 'personal-' || lower(substr(id, 5)), id,
           'members', created_at, created_at
    FROM users;
INSERT INTO workspace_members (workspace_id, user_id, role, created_at)
    SELECT 'ws_' || substr(id, 5), id, 'owner', created_at FROM users;

-- Existing keys, grants and consents live in their user's personal workspace.
ALTER TABLE api_keys ADD COLUMN workspace_id TEXT NOT NULL DEFAULT '';
UPDATE api_keys SET workspace_id = 'ws_' || substr(user_id, 5);
CREATE INDEX api_keys_by_workspace ON api_keys (workspace_id, user_id);

ALTER TABLE auth_codes ADD COLUMN workspace_id TEXT;
UPDATE auth_codes SET workspace_id = 'ws_' || substr(user_id, 5);
ALTER TABLE refresh_families ADD COLUMN workspace_id TEXT;
UPDATE refresh_families SET workspace_id = 'ws_' || substr(user_id, 5);
CREATE INDEX refresh_families_by_workspace ON refresh_families (workspace_id, user_id);
-- The workspace a user last chose for an app (the consent page offers it first).
ALTER TABLE consents ADD COLUMN workspace_id TEXT;
UPDATE consents SET workspace_id = 'ws_' || substr(user_id, 5);

ALTER TABLE clients ADD COLUMN workspace_id TEXT REFERENCES workspaces (id) ON DELETE CASCADE;
ALTER TABLE audit_events ADD COLUMN workspace_id TEXT;
CREATE INDEX audit_events_by_workspace ON audit_events (workspace_id, occurred_at);
