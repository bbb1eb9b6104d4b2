ALTER TABLE refresh_families DROP COLUMN dpop_jkt;
