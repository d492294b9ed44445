-- 007_rules: rules (triggers), their firings, and the signed webhook
-- deliveries of rules and of lifecycle events (docs/RULES.md).
--
-- A rule's definition is the JSON the API took (docs/RULES.md §2), stored
-- as given after validation: the api's rules engine compiles it again at
-- every load, so a definition is checked by the same code that runs it.

CREATE TABLE widget_rules (
    id                   bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    widget_id            integer     NOT NULL REFERENCES widget_configs (id) ON DELETE CASCADE,
    name                 text        NOT NULL,
    enabled              boolean     NOT NULL DEFAULT true,
    -- {"match": "all"|"any", "conditions": […], "actions": […]}
    definition           jsonb       NOT NULL,
    -- HMAC-SHA256 key of the rule's webhook signatures (shown once, at creation)
    webhook_secret       text        NOT NULL,
    -- set when the rule's webhook failed HERENOW_WEBHOOK_DISABLE_AFTER
    -- deliveries in a row: the rule is then disabled (enabled = false) with
    -- this reason, until someone enables it again
    failing_reason       text,
    consecutive_failures integer     NOT NULL DEFAULT 0,
    fired                bigint      NOT NULL DEFAULT 0,
    last_fired_at        timestamptz,
    -- bumped on every change: engines reload a widget's rules when it moves
    version              bigint      NOT NULL DEFAULT 1,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX widget_rules_widget ON widget_rules (widget_id, id);

-- One row per (rule, session) that fired: the claim that makes a rule fire
-- once per session however many api processes evaluate it (INSERT … ON
-- CONFLICT DO NOTHING RETURNING: the one that inserts acts).
CREATE TABLE rule_firings (
    rule_id    bigint      NOT NULL REFERENCES widget_rules (id) ON DELETE CASCADE,
    session_id text COLLATE "C" NOT NULL,
    widget_id  integer     NOT NULL,
    visitor_id text COLLATE "C",
    fired_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (rule_id, session_id)
);
-- caps per visitor (auto invitations), erasure
CREATE INDEX rule_firings_visitor ON rule_firings (widget_id, visitor_id, fired_at);

-- Lifecycle webhooks, opt-in per widget (docs/RULES.md §4).
CREATE TABLE widget_webhooks (
    widget_id  integer     PRIMARY KEY REFERENCES widget_configs (id) ON DELETE CASCADE,
    url        text        NOT NULL,
    secret     text        NOT NULL,
    -- of session.started, session.ended, chat.started, chat.message, chat.closed
    events     text[]      NOT NULL DEFAULT '{}',
    enabled    boolean     NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- The outbox: every webhook POST to make, rule or lifecycle, written in the
-- transaction that decided it; the api's webhook senders take due rows
-- (FOR UPDATE SKIP LOCKED), POST them, and record the outcome. At least
-- once: a receiver dedupes by the id (header Herenow-Delivery).
CREATE TABLE webhook_deliveries (
    id               bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    widget_id        integer     NOT NULL,
    rule_id          bigint      REFERENCES widget_rules (id) ON DELETE CASCADE,
    -- rule.fired, session.started, session.ended, chat.started, chat.message, chat.closed
    event            text        NOT NULL,
    -- what the event is about: a session id (erasure, dedupe of lifecycle events)
    subject          text COLLATE "C",
    -- the visitor it names (erasure)
    visitor_id       text COLLATE "C",
    url              text        NOT NULL,
    body             text        NOT NULL,
    state            text        NOT NULL DEFAULT 'pending'
                     CHECK (state IN ('pending', 'sending', 'delivered', 'failed')),
    attempts         integer     NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    -- a sender's lease on a 'sending' row: past it, another sender retries
    locked_until     timestamptz,
    last_status      integer,
    last_error       text,
    last_ms          integer,
    created_at       timestamptz NOT NULL DEFAULT now(),
    delivered_at     timestamptz
);
-- the senders' queue
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at)
    WHERE state IN ('pending', 'sending');
-- the delivery logs (per rule, per widget), newest first
CREATE INDEX webhook_deliveries_rule ON webhook_deliveries (rule_id, id DESC);
CREATE INDEX webhook_deliveries_widget ON webhook_deliveries (widget_id, id DESC);
CREATE INDEX webhook_deliveries_visitor ON webhook_deliveries (widget_id, visitor_id);
-- a lifecycle event once per subject (session.started of a session, …;
-- chat.message's subject is the message id, so a drain batch delivered
-- again enqueues nothing twice)
CREATE UNIQUE INDEX webhook_deliveries_once ON webhook_deliveries (widget_id, event, subject)
    WHERE rule_id IS NULL AND event IN ('session.started', 'session.ended', 'chat.started',
                                        'chat.message', 'chat.closed');

-- The session of a webhook body (docs/RULES.md §3), from what PostgreSQL
-- holds of it (NULL when the drain has not written it yet).
CREATE FUNCTION hn_webhook_session(p_widget integer, p_session text) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object('session_id', s.session_id, 'visitor_id', s.visitor_id,
        'url', s.current_page_url, 'title', s.current_page_title, 'referrer', s.referrer,
        'country', s.country, 'device', s.device_type, 'browser', s.browser, 'os', s.os,
        'page_views', s.page_views,
        'started_at', to_char(s.session_started_at AT TIME ZONE 'UTC',
                              'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'))
    FROM widget_visitor_sessions s WHERE s.widget_id = p_widget AND s.session_id = p_session
$$;

-- Enqueues a lifecycle webhook (docs/RULES.md §4) in the caller's
-- transaction when the widget's webhook is enabled with that event: the
-- body, the outbox row (once per subject: ON CONFLICT DO NOTHING) and the
-- NOTIFY that wakes the senders (sent at COMMIT). p_conversation and
-- p_message may be NULL. Returns the delivery id, or NULL when nothing was
-- enqueued.
CREATE FUNCTION hn_webhook_enqueue(p_widget integer, p_event text, p_subject text,
                                   p_session text, p_conversation uuid, p_message uuid)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    h  widget_webhooks%ROWTYPE;
    v_id bigint;
    v_body jsonb;
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
    IF p_message IS NOT NULL THEN
        SELECT v_body || jsonb_build_object('message', jsonb_build_object('id', m.id,
                   'sender', m.sender, 'body', m.body,
                   'sent_at', to_char(m.sent_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')))
          INTO v_body
          FROM widget_conversation_messages m WHERE m.id = p_message;
    END IF;
    INSERT INTO webhook_deliveries (id, widget_id, event, subject, visitor_id, url, body)
        OVERRIDING SYSTEM VALUE VALUES (v_id, p_widget, p_event, p_subject, v_visitor, h.url, v_body::text)
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
