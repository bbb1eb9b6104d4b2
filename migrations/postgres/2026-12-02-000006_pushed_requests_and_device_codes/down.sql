DROP TABLE device_codes;
DROP TABLE pushed_requests;
ALTER TABLE clients DROP COLUMN options;
