-- 010_data_at_rest: encryption at rest (docs/OPERATIONS.md, "Data at rest").
--
-- With HERENOW_DATA_KEY_FILE set, the api and herenowctl store visitor
-- names, emails and phones (widget_visitor_sessions, and the `id` events'
-- event_data), conversation messages (widget_conversation_messages.body)
-- and the webhook bodies that carry them sealed: "hnenc:v1:<key id>:…",
-- AES-256-GCM (common/datakey.h). SQL cannot read those values; it only
-- moves them.
--
-- hn_data_keys: the keys that may have sealed a value still stored, each
-- with a value it sealed (check_value) so that a daemon started with
-- another key under the same id is refused. `herenowctl key rotate`
-- removes a key's row once no value is sealed under it.
CREATE TABLE hn_data_keys (
    id          text        PRIMARY KEY,
    check_value text        NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- The email key (common/datakey.h, hn_dk_email_key): the address lower-cased,
-- or with keys its HMAC ("hmac:<hex>"). What equality lookups compare now
-- that visitor_email may be sealed: a ban by email finds its sessions by it.
ALTER TABLE widget_visitor_sessions ADD COLUMN visitor_email_key text;
UPDATE widget_visitor_sessions
    SET visitor_email_key = translate(visitor_email, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz')
    WHERE visitor_email IS NOT NULL AND visitor_email NOT LIKE 'hnenc:%';
DROP INDEX widget_visitor_sessions_email;
CREATE INDEX widget_visitor_sessions_email ON widget_visitor_sessions (widget_id, visitor_email_key)
    WHERE visitor_email_key IS NOT NULL;

-- A ban by email: its address's email key, beside the address itself
-- (subject, which stays in clear: docs/OPERATIONS.md says so).
ALTER TABLE visitor_bans ADD COLUMN subject_key text;
UPDATE visitor_bans SET subject_key = subject WHERE subject_kind = 'email';
