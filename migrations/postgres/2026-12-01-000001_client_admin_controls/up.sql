-- An administrator's disable is a lock that only an administrator lifts; the resource servers
-- (RFC 8707) an app may ask tokens for are bound to it by an administrator, space-separated.
ALTER TABLE clients ADD COLUMN admin_locked BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE clients ADD COLUMN resources TEXT NOT NULL DEFAULT '';
