ALTER TABLE refresh_families DROP COLUMN resource;
ALTER TABLE auth_codes DROP COLUMN resource;
