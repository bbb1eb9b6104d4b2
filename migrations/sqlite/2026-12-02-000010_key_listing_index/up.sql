-- A user's keys are listed newest first by (created_at, id): with the id in the index, a page
-- is read in order from it, with no sort of the user's keys. It serves every query the
-- index it replaces served (same leading columns).
CREATE INDEX api_keys_user_created_id ON api_keys (user_id, created_at, id);
DROP INDEX api_keys_user;
