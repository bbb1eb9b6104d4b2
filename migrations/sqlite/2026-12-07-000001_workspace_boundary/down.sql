ALTER TABLE api_keys DROP COLUMN limits_changed_at;
DROP INDEX clients_by_owner_workspace;
ALTER TABLE clients DROP COLUMN owner_workspace_id;
