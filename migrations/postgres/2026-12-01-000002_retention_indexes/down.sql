DROP INDEX refresh_families_last_used_at;
DROP INDEX refresh_families_expires_at;
DROP INDEX sessions_last_seen_at;
DROP INDEX sessions_expires_at;
