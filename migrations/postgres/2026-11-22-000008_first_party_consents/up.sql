-- A first-party app is approved without asking; its grant is still recorded, so the user can
-- see it and disconnect it. The flag says the approval was not the user's.
ALTER TABLE consents ADD COLUMN first_party BOOLEAN NOT NULL DEFAULT FALSE;
-- Housekeeping purges codes long expired.
CREATE INDEX auth_codes_expires_at ON auth_codes (expires_at);
