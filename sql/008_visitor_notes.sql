-- 008_visitor_notes: notes, tags and bans on visitors (docs/RULES.md §5).
--
-- A subject is a visitor: by visitor id ('visitor', the sessions'
-- visitor_id: the site's persistent id where it sends one, else the daily
-- visitor hash) or by identified email ('email', compared lower-cased).

CREATE TABLE visitor_notes (
    id           bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    widget_id    integer     NOT NULL REFERENCES widget_configs (id) ON DELETE CASCADE,
    subject_kind text        NOT NULL CHECK (subject_kind IN ('visitor', 'email')),
    subject      text COLLATE "C" NOT NULL,
    body         text        NOT NULL,
    author       text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX visitor_notes_subject ON visitor_notes (widget_id, subject_kind, subject, id);

CREATE TABLE visitor_tags (
    widget_id    integer     NOT NULL REFERENCES widget_configs (id) ON DELETE CASCADE,
    subject_kind text        NOT NULL CHECK (subject_kind IN ('visitor', 'email')),
    subject      text COLLATE "C" NOT NULL,
    tag          text COLLATE "C" NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (widget_id, subject_kind, subject, tag)
);
CREATE INDEX visitor_tags_tag ON visitor_tags (widget_id, tag);

CREATE TABLE visitor_bans (
    id             bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    widget_id      integer     NOT NULL REFERENCES widget_configs (id) ON DELETE CASCADE,
    subject_kind   text        NOT NULL CHECK (subject_kind IN ('visitor', 'email')),
    subject        text COLLATE "C" NOT NULL,
    -- true: the collector drops the visitor's beacons too (reason `banned`);
    -- false: chat only (invitations not sent, messages refused)
    block_tracking boolean     NOT NULL DEFAULT false,
    reason         text,
    author         text,
    created_at     timestamptz NOT NULL DEFAULT now(),
    UNIQUE (widget_id, subject_kind, subject)
);

-- A ban by email also bans, by visitor id, the sessions that identified
-- with that address (the api's ban members, docs/RULES.md §5).
CREATE INDEX widget_visitor_sessions_email ON widget_visitor_sessions (widget_id, lower(visitor_email))
    WHERE visitor_email IS NOT NULL;
