DROP INDEX auth_codes_expires_at;
ALTER TABLE consents DROP COLUMN first_party;
