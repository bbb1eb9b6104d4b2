CREATE INDEX api_keys_user ON api_keys (user_id, created_at);
DROP INDEX api_keys_user_created_id;
