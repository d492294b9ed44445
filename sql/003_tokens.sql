-- 003_tokens: API tokens (DESIGN.md §4–5).
--
-- A token is "hn_<id>_<secret>": id is 12 base62 characters, public (it names
-- the token in `herenowctl token list|revoke` and is how the API finds the
-- row), secret is 32 base62 characters (≈ 190 bits). Only the SHA-256 of the
-- whole token text is stored; the token itself is shown once, by
-- `herenowctl token create`. The API compares the digest in constant time.
CREATE TABLE api_tokens (
    id           text        PRIMARY KEY,
    token_sha256 bytea       NOT NULL CHECK (length(token_sha256) = 32),
    -- the widget the token may see; NULL: every widget
    widget_id    integer     REFERENCES widget_configs (id) ON DELETE CASCADE,
    name         text        NOT NULL DEFAULT '',
    created_at   timestamptz NOT NULL DEFAULT now(),
    revoked_at   timestamptz
);
