ALTER TABLE clients DROP COLUMN resources;
ALTER TABLE clients DROP COLUMN admin_locked;
