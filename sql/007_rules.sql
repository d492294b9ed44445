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
-- a lifecycle event once per subject (session.started of a session, …)
CREATE UNIQUE INDEX webhook_deliveries_once ON webhook_deliveries (widget_id, event, subject)
    WHERE rule_id IS NULL AND event IN ('session.started', 'session.ended', 'chat.started', 'chat.closed');
