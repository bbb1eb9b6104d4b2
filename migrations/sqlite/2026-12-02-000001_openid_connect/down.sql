DROP TABLE backchannel_logouts;
ALTER TABLE clients DROP COLUMN backchannel_logout_session_required;
ALTER TABLE clients DROP COLUMN backchannel_logout_uri;
ALTER TABLE clients DROP COLUMN post_logout_redirect_uris;
DROP INDEX refresh_families_session_id;
ALTER TABLE refresh_families DROP COLUMN session_id;
ALTER TABLE auth_codes DROP COLUMN session_id;
ALTER TABLE auth_codes DROP COLUMN nonce;
