-- JWT ids already presented, until they expire: client assertions (private_key_jwt, RFC 7523)
-- and DPoP proofs at the token endpoint (RFC 9449) are each accepted once. `id` names the kind,
-- the client or key, and the jti.
CREATE TABLE used_jtis (
    id TEXT PRIMARY KEY NOT NULL,
    expires_at TIMESTAMP NOT NULL
);
CREATE INDEX used_jtis_expiry ON used_jtis (expires_at);
