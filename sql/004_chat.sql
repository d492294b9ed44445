-- 004_chat: Start Chat's conversations and messages (docs/CHAT.md §5).
--
-- Written by the api's chat routes (agent side: invitations, messages,
-- close) and by the drain (visitor side: `msg` records and the invitation
-- events). Ids are the contract's UUIDs: a message's id is the record's
-- event_id (visitor) or the id the api made (agent), so a redelivered record
-- or a retried call inserts nothing the second time (ON CONFLICT DO NOTHING).

CREATE TABLE widget_conversations (
    id              uuid        PRIMARY KEY,
    widget_id       integer     NOT NULL,
    session_id      text COLLATE "C" NOT NULL,
    -- the session's visitor_id (erasure finds conversations by it too)
    visitor_id      text COLLATE "C",
    visitor_hash    text,
    started_by      text        NOT NULL CHECK (started_by IN ('agent', 'visitor', 'rule')),
    -- invited → shown → accepted | declined | expired → chatting → closed
    state           text        NOT NULL CHECK (state IN ('invited', 'shown', 'accepted',
                                 'declined', 'expired', 'chatting', 'closed')),
    agent_name      text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    invited_at      timestamptz,
    shown_at        timestamptz,
    accepted_at     timestamptz,
    declined_at     timestamptz,
    expired_at      timestamptz,
    chatting_at     timestamptz,
    closed_at       timestamptz,
    last_message_at timestamptz,
    messages        integer     NOT NULL DEFAULT 0,
    updated_at      timestamptz NOT NULL DEFAULT now()
);
-- a session's conversations, latest first
CREATE INDEX widget_conversations_session ON widget_conversations (widget_id, session_id, created_at DESC);
-- the statistics' range (invitations sent, chats by who started them)
CREATE INDEX widget_conversations_created ON widget_conversations (widget_id, created_at);
-- GET /widgets/:id/chats?state=open|closed, newest first (cursor: created_at, id)
CREATE INDEX widget_conversations_list ON widget_conversations (widget_id, created_at DESC, id DESC);
-- erasure of a visitor
CREATE INDEX widget_conversations_visitor ON widget_conversations (widget_id, visitor_id);

CREATE TABLE widget_conversation_messages (
    id              uuid        PRIMARY KEY,
    conversation_id uuid        NOT NULL REFERENCES widget_conversations (id) ON DELETE CASCADE,
    widget_id       integer     NOT NULL,
    sender          text        NOT NULL CHECK (sender IN ('agent', 'visitor')),
    agent_name      text,
    body            text        NOT NULL,
    sent_at         timestamptz NOT NULL,
    -- order of insertion: ties of sent_at, and the pages of GET …/messages
    seq             bigint      GENERATED ALWAYS AS IDENTITY UNIQUE
);
CREATE INDEX widget_conversation_messages_thread ON widget_conversation_messages (conversation_id, sent_at, seq);

-- the session's latest conversation
ALTER TABLE widget_visitor_sessions
    ADD COLUMN conversation_id uuid REFERENCES widget_conversations (id) ON DELETE SET NULL;

-- Chat retention: a conversation goes (its messages with it) once its last
-- activity is older than the widget's settings->>'chat_retention_days', else
-- its retention_days. Called with hn_apply_retention by the drain.
CREATE FUNCTION hn_apply_chat_retention(batch integer DEFAULT 50000) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    n bigint;
BEGIN
    DELETE FROM widget_conversations WHERE id IN (
        SELECT v.id FROM widget_conversations v JOIN widget_configs c ON c.id = v.widget_id
         WHERE greatest(v.created_at, v.last_message_at, v.closed_at)
               < now() - make_interval(days => CASE
                   WHEN c.settings->>'chat_retention_days' ~ '^[1-9][0-9]{0,5}$'
                   THEN (c.settings->>'chat_retention_days')::integer
                   ELSE c.retention_days END)
         LIMIT batch);
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END $$;

-- The order of a conversation's states: a later event never moves it back
-- (declined and expired rank with accepted: the invitation's fate).
CREATE FUNCTION hn_chat_state_rank(state text) RETURNS integer
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE state WHEN 'invited' THEN 1 WHEN 'shown' THEN 2 WHEN 'accepted' THEN 3
        WHEN 'declined' THEN 3 WHEN 'expired' THEN 3 WHEN 'chatting' THEN 4
        WHEN 'closed' THEN 5 ELSE 0 END
$$;
