ALTER TABLE revoked_access_tokens DROP COLUMN revoked_from;
