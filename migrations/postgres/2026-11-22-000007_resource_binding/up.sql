-- RFC 8707: the resource an authorization request named, carried by its code and by the
-- refresh family it starts (tokens of the grant are for that resource only).
ALTER TABLE auth_codes ADD COLUMN resource TEXT;
ALTER TABLE refresh_families ADD COLUMN resource TEXT;
