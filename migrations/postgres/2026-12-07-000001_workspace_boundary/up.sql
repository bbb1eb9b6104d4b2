-- The workspace boundary (issue 26): everything a user owns belongs to exactly one workspace.
--
-- Apps: `workspace_id` keeps its meaning (the workspace an app is private to: who may
-- authorize it); `owner_workspace_id` is new and says who controls it (change, rotate,
-- disable, delete): the workspace it was registered in, else its registrant's personal
-- workspace. NULL there only for the install's own apps (self-registered, metadata documents),
-- which administrators control.
--
-- Safe while old and new instances run side by side: nothing is renamed, dropped or made
-- NOT NULL. Old instances ignore the new column; an app an old instance registers during the
-- rollout has it NULL with an owner, and new instances read its controlling workspace as the
-- owner's personal one (`clients::control_workspace`), exactly what this backfill writes.
-- Deleting the workspace leaves its public apps (their users may be elsewhere): control falls
-- back to the registrant's personal workspace, as for a row without the column. Apps private to
-- the workspace go with it, as before (`workspace_id`).
ALTER TABLE clients ADD COLUMN owner_workspace_id TEXT REFERENCES workspaces (id) ON DELETE SET NULL;
UPDATE clients SET owner_workspace_id = COALESCE(
    workspace_id,
    (SELECT w.id FROM workspaces w WHERE w.personal_user_id = clients.owner_user_id)
) WHERE owner_workspace_id IS NULL;
CREATE INDEX clients_by_owner_workspace ON clients (owner_workspace_id);
-- Who disabled an app: a member who registered it does not enable what its workspace's
-- admins disabled.
ALTER TABLE clients ADD COLUMN disabled_by TEXT;

-- When a key's limits (allowlist, referrers, endpoints) last changed, or its owner's role in its
-- workspace was lowered: the tokens exchanged for it before then name the older version and
-- end (the denylist holds that version); NULL: never.
ALTER TABLE api_keys ADD COLUMN limits_changed_at TIMESTAMP;

-- Grants, codes and approvals made before workspaces (or by an instance that left the column
-- empty) act in their user's personal workspace, not "everywhere".
UPDATE consents SET workspace_id = (
    SELECT w.id FROM workspaces w WHERE w.personal_user_id = consents.user_id
) WHERE workspace_id IS NULL;
UPDATE auth_codes SET workspace_id = (
    SELECT w.id FROM workspaces w WHERE w.personal_user_id = auth_codes.user_id
) WHERE workspace_id IS NULL;
UPDATE refresh_families SET workspace_id = (
    SELECT w.id FROM workspaces w WHERE w.personal_user_id = refresh_families.user_id
) WHERE workspace_id IS NULL;
UPDATE device_codes SET workspace_id = (
    SELECT w.id FROM workspaces w WHERE w.personal_user_id = device_codes.user_id
) WHERE workspace_id IS NULL AND user_id IS NOT NULL;
