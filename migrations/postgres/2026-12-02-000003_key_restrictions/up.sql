-- Referrer and endpoint restrictions of API keys (one entry per line; empty: none).
ALTER TABLE api_keys ADD COLUMN allowed_referrers TEXT NOT NULL DEFAULT '';
ALTER TABLE api_keys ADD COLUMN allowed_endpoints TEXT NOT NULL DEFAULT '';
