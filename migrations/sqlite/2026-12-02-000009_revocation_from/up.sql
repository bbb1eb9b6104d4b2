-- A revocation that takes effect later: a rolled key's exchanged access tokens work through the
-- old key's grace period and no longer. NULL: revoked from the row's creation on.
ALTER TABLE revoked_access_tokens ADD COLUMN revoked_from TIMESTAMP;
