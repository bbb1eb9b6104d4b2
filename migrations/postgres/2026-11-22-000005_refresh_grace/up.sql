-- A rotated refresh token may be presented once more within the grace window (multi-tab apps).
ALTER TABLE refresh_tokens ADD COLUMN grace_used BOOLEAN NOT NULL DEFAULT FALSE;
