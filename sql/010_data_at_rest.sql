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

-- Lifecycle webhook bodies (sql/007_rules.sql): the api's sender opens the
-- sealed values of a body before it signs and sends it, and only the
-- message's text is one. A string of the session (a page's title, URL,
-- referrer: what a visitor's page sent) that looks sealed gets its ':'
-- escaped, the same JSON value, which the opener leaves alone; the message
-- goes in after that.
CREATE OR REPLACE FUNCTION hn_webhook_enqueue(p_widget integer, p_event text, p_subject text,
                                              p_session text, p_conversation uuid, p_message uuid)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    h  widget_webhooks%ROWTYPE;
    v_id bigint;
    v_body jsonb;
    v_text text;
    v_msg jsonb;
    v_sess jsonb;
    v_visitor text;
BEGIN
    SELECT * INTO h FROM widget_webhooks WHERE widget_id = p_widget AND enabled
        AND p_event = ANY (events);
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    v_id := nextval(pg_get_serial_sequence('webhook_deliveries', 'id'));
    v_sess := hn_webhook_session(p_widget, p_session);
    v_visitor := v_sess->>'visitor_id';
    v_body := jsonb_build_object('id', v_id, 'event', p_event,
        'at', to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
        'widget_id', p_widget,
        'session', coalesce(v_sess, jsonb_build_object('session_id', p_session)));
    IF p_conversation IS NOT NULL THEN
        SELECT v_body || jsonb_build_object('conversation',
                   jsonb_build_object('id', c.id, 'state', c.state)),
               coalesce(v_visitor, c.visitor_id)
          INTO v_body, v_visitor
          FROM widget_conversations c WHERE c.id = p_conversation;
    END IF;
    v_text := replace(v_body::text, '"hnenc:', E'"hnenc\\u003a');
    IF p_message IS NOT NULL THEN
        SELECT jsonb_build_object('id', m.id, 'sender', m.sender, 'body', m.body,
                   'sent_at', to_char(m.sent_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'))
          INTO v_msg
          FROM widget_conversation_messages m WHERE m.id = p_message;
        IF v_msg IS NOT NULL THEN
            v_text := left(v_text, -1) || ', "message": ' || v_msg::text || '}';
        END IF;
    END IF;
    INSERT INTO webhook_deliveries (id, widget_id, event, subject, visitor_id, url, body)
        OVERRIDING SYSTEM VALUE VALUES (v_id, p_widget, p_event, p_subject, v_visitor, h.url, v_text)
        ON CONFLICT (widget_id, event, subject) WHERE rule_id IS NULL AND event IN
            ('session.started', 'session.ended', 'chat.started', 'chat.message', 'chat.closed')
        DO NOTHING;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    PERFORM pg_notify('herenow_webhooks', '');
    RETURN v_id;
END
$$;
