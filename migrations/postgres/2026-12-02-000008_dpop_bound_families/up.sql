-- DPoP (RFC 9449): the key (its RFC 7638 thumbprint) a public client's refresh tokens are bound
-- to; a refresh needs a proof made with it.
ALTER TABLE refresh_families ADD COLUMN dpop_jkt TEXT;
