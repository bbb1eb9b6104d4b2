ALTER TABLE api_keys DROP COLUMN allowed_endpoints;
ALTER TABLE api_keys DROP COLUMN allowed_referrers;
