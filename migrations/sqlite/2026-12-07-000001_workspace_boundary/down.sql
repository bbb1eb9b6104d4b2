ALTER TABLE api_keys DROP COLUMN limits_changed_at;
ALTER TABLE clients DROP COLUMN disabled_by;
DROP INDEX clients_by_owner_workspace;
ALTER TABLE clients DROP COLUMN owner_workspace_id;
