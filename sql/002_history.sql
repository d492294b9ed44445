-- 002_history: sessions, page views, events, rollups (DESIGN.md §4).
--
-- Written only by the drain worker of herenow-api (api/drain.c), read by the
-- API. The drain writes page views and events first (INSERT … ON CONFLICT DO
-- NOTHING on (event_id, recv_at)) and then updates sessions and rollups only
-- from the rows that insert returned, so a record delivered twice changes
-- nothing the second time. Every counter below is therefore exact.
--
-- No foreign keys on the tables the drain writes: a record whose widget was
-- deleted meanwhile must not wedge the drain (it would fail the batch for
-- ever). Erasing a widget's data is an explicit DELETE (docs/OPERATIONS.md).

-- ---------------------------------------------------------------------------
-- Sessions: one row per (widget, session id), the seed's columns plus what
-- the drain needs to keep them exact.
CREATE TABLE widget_visitor_sessions (
    id                  bigint      GENERATED ALWAYS AS IDENTITY UNIQUE,
    widget_id           integer     NOT NULL,
    session_id          text COLLATE "C"        NOT NULL,
    -- identity: visitor_id is the persistent id (vid) when the site sent one,
    -- else the daily-salted visitor hash, else the session id itself
    visitor_id          text COLLATE "C"        NOT NULL,
    visitor_hash        text,
    visitor_name        text,
    visitor_email       text,
    visitor_phone       text,
    -- location (IP as stored: masked by default, HERENOW_IP_MODE)
    ip_address          text,
    country             text,
    region              text,
    city                text,
    -- device
    user_agent          text,
    browser             text,
    browser_version     text,
    os                  text,
    os_version          text,
    device_type         text,
    language            text,
    screen_width        integer,
    screen_height       integer,
    -- current activity
    landing_page        text,
    -- the referrer of the first page view (the landing page's)
    referrer            text,
    -- what the referrer breakdown counts this session under: the referrer's
    -- host, '(direct)' without one; moved when an earlier first page view
    -- arrives late (records of a session may reach the drain out of order)
    referrer_source     text,
    current_page_url    text,
    current_page_title  text,
    -- metrics
    is_active           boolean     NOT NULL DEFAULT true,
    page_views          integer     NOT NULL DEFAULT 0,
    events_count        integer     NOT NULL DEFAULT 0,
    engaged_ms          bigint      NOT NULL DEFAULT 0,
    -- engaged (visible) time, as the seed's whole seconds: engaged_ms / 1000
    total_time_seconds  integer     NOT NULL DEFAULT 0,
    last_active_at      timestamptz NOT NULL,
    session_started_at  timestamptz NOT NULL,
    session_ended_at    timestamptz,
    -- engagement: chat_opened + chat_message_sent events; has_chatted is
    -- chat_events > 0, kept as the seed's column
    messages_sent       integer     NOT NULL DEFAULT 0,
    chat_events         integer     NOT NULL DEFAULT 0,
    has_chatted         boolean     NOT NULL DEFAULT false,
    -- bookkeeping: receive times of the first and latest page view (which
    -- one is the landing / the current page when batches come out of order)
    -- and the hour the session counts in for the rollups (fixed at insert)
    first_pv_at         timestamptz,
    last_pv_at          timestamptz,
    rollup_hour         timestamptz NOT NULL,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (widget_id, session_id)
) WITH (fillfactor = 70);
-- fillfactor and the indexes below are chosen so that the drain's updates
-- (counters, last_active_at, current page) touch no indexed column: they
-- are HOT updates, no index entry is written (the drain updates a session
-- row at every batch its session has beacons in).

-- past sessions, newest first; stats and export by start time
CREATE INDEX widget_visitor_sessions_started ON widget_visitor_sessions (widget_id, session_started_at DESC, id DESC);
-- GET /sessions/:sessionId (the route has no widget)
CREATE INDEX widget_visitor_sessions_sid ON widget_visitor_sessions (session_id);
-- a visitor's earlier sessions; erase a visitor
CREATE INDEX widget_visitor_sessions_visitor ON widget_visitor_sessions (widget_id, visitor_id);
-- active sessions (the drain's sweep of sessions that left without an `end`)
CREATE INDEX widget_visitor_sessions_active ON widget_visitor_sessions (widget_id, session_started_at) WHERE is_active;

-- ---------------------------------------------------------------------------
-- Identifiers (session_id, visitor_id) are compared byte by byte (COLLATE
-- "C") whatever the database's locale: cheaper index inserts and lookups.
--
-- Page views and all other beacons, partitioned by receive time (one
-- partition per UTC day, made ahead by hn_ensure_partitions). The unique key
-- (event_id, recv_at) makes a redelivered record insert nothing.
CREATE TABLE widget_page_views (
    event_id    uuid        NOT NULL,
    recv_at     timestamptz NOT NULL,
    widget_id   integer     NOT NULL,
    session_id  text COLLATE "C"        NOT NULL,
    visitor_id  text COLLATE "C"        NOT NULL,
    seq         bigint      NOT NULL,
    url         text        NOT NULL,
    -- url without query string and fragment: what breakdowns count
    path        text        NOT NULL,
    title       text,
    referrer    text,
    engaged_ms  bigint      NOT NULL DEFAULT 0,
    transport   smallint    NOT NULL,
    PRIMARY KEY (event_id, recv_at)
) PARTITION BY RANGE (recv_at);

CREATE INDEX widget_page_views_time ON widget_page_views (widget_id, recv_at);
CREATE INDEX widget_page_views_session ON widget_page_views (widget_id, session_id, recv_at);

-- Every beacon that is not a page view: ev (custom events, named), hb, hide,
-- show, end, id. event_data holds ev's properties d, id's name/email/phone.
CREATE TABLE widget_visitor_events (
    event_id    uuid        NOT NULL,
    recv_at     timestamptz NOT NULL,
    widget_id   integer     NOT NULL,
    session_id  text COLLATE "C"        NOT NULL,
    visitor_id  text COLLATE "C"        NOT NULL,
    seq         bigint      NOT NULL,
    event_type  text        NOT NULL,
    event_name  text,
    url         text,
    event_data  jsonb,
    engaged_ms  bigint      NOT NULL DEFAULT 0,
    transport   smallint    NOT NULL,
    PRIMARY KEY (event_id, recv_at)
) PARTITION BY RANGE (recv_at);

CREATE INDEX widget_visitor_events_time ON widget_visitor_events (widget_id, recv_at);
CREATE INDEX widget_visitor_events_session ON widget_visitor_events (widget_id, session_id, recv_at);

-- The source a referrer URL counts under in the breakdowns: its host,
-- lower case, or '(direct)'.
CREATE FUNCTION hn_referrer_source(ref text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT coalesce(lower(substring(ref FROM '^[A-Za-z][A-Za-z0-9+.-]*://([^/?#:@]+)')), '(direct)')
$$;

-- Creates the daily partitions of both tables for [from_day, to_day]
-- (idempotent; concurrent callers queue on an advisory lock). Returns how
-- many it created.
CREATE FUNCTION hn_ensure_partitions(from_day date, to_day date) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    d date;
    t text;
    made integer := 0;
BEGIN
    PERFORM pg_advisory_xact_lock(29384939580321656);
    d := from_day;
    WHILE d <= to_day LOOP
        FOREACH t IN ARRAY ARRAY['widget_page_views', 'widget_visitor_events'] LOOP
            IF to_regclass(format('%I', t || '_p' || to_char(d, 'YYYYMMDD'))) IS NULL THEN
                EXECUTE format('CREATE TABLE %I PARTITION OF %I FOR VALUES FROM (%L) TO (%L)',
                               t || '_p' || to_char(d, 'YYYYMMDD'), t,
                               d::timestamp AT TIME ZONE 'UTC',
                               (d + 1)::timestamp AT TIME ZONE 'UTC');
                made := made + 1;
            END IF;
        END LOOP;
        d := d + 1;
    END LOOP;
    RETURN made;
END $$;

-- ---------------------------------------------------------------------------
-- Rollups: what the stats, timeseries and breakdowns read, so that 30 days
-- cost hundreds of rows, not millions.
--
-- Per widget and UTC hour. Session metrics count in the hour the session
-- started (rollup_hour); page_views and events in their own hour.
CREATE TABLE widget_rollup_hourly (
    widget_id      integer     NOT NULL,
    hour           timestamptz NOT NULL,
    page_views     bigint      NOT NULL DEFAULT 0,
    events         bigint      NOT NULL DEFAULT 0,   -- custom events (ev)
    sessions       bigint      NOT NULL DEFAULT 0,   -- sessions started
    -- visitors seen for the first time that UTC day (their first session of
    -- the day started this hour): sums over hours and days give daily uniques
    visitors_day   bigint      NOT NULL DEFAULT 0,
    -- distinct visitors with a session starting this hour
    visitors_hour  bigint      NOT NULL DEFAULT 0,
    session_pages  bigint      NOT NULL DEFAULT 0,   -- page views of those sessions
    engaged_ms     bigint      NOT NULL DEFAULT 0,   -- engaged time of those sessions
    bounces        bigint      NOT NULL DEFAULT 0,   -- those with fewer than 2 page views
    chat_sessions  bigint      NOT NULL DEFAULT 0,   -- those with a chat event
    PRIMARY KEY (widget_id, hour)
);

-- The distinct-visitor sets behind visitors_day / visitors_hour.
CREATE TABLE widget_visitor_days (
    widget_id   integer     NOT NULL,
    day         date        NOT NULL,
    visitor_id  text COLLATE "C"        NOT NULL,
    PRIMARY KEY (widget_id, day, visitor_id)
);
CREATE TABLE widget_visitor_hours (
    widget_id   integer     NOT NULL,
    hour        timestamptz NOT NULL,
    visitor_id  text COLLATE "C"        NOT NULL,
    PRIMARY KEY (widget_id, hour, visitor_id)
);

-- Breakdowns per widget, UTC day, dimension and value. dim: page (path,
-- counts page views), event (name, counts events), referrer, country,
-- browser, os, device (count sessions, in the day the session started).
CREATE TABLE widget_rollup_dims (
    widget_id   integer NOT NULL,
    dim         text    NOT NULL,
    day         date    NOT NULL,
    value       text    NOT NULL,
    n           bigint  NOT NULL DEFAULT 0,
    PRIMARY KEY (widget_id, dim, day, value)
);

-- ---------------------------------------------------------------------------
-- Retention (DESIGN.md §4): whole partitions older than the longest
-- retention of any widget are dropped; widgets with a shorter retention are
-- purged row by row, at most `batch` rows per table per call (the drain calls
-- it periodically, so a large purge spreads over several calls). Returns the
-- number of partitions dropped plus rows deleted.
CREATE FUNCTION hn_apply_retention(batch integer DEFAULT 50000) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    longest integer;
    cutoff date;
    p record;
    w record;
    done bigint := 0;
    n bigint;
BEGIN
    PERFORM pg_advisory_xact_lock(29384939580321656);
    SELECT coalesce(max(retention_days), 395) INTO longest FROM widget_configs;
    cutoff := (now() AT TIME ZONE 'UTC')::date - longest;
    FOR p IN
        SELECT c.relname
          FROM pg_inherits i
          JOIN pg_class c ON c.oid = i.inhrelid
          JOIN pg_class parent ON parent.oid = i.inhparent
         WHERE parent.relname IN ('widget_page_views', 'widget_visitor_events')
           AND c.relname ~ '_p[0-9]{8}$'
           AND to_date(right(c.relname, 8), 'YYYYMMDD') < cutoff
    LOOP
        EXECUTE format('DROP TABLE %I', p.relname);
        done := done + 1;
    END LOOP;

    FOR w IN SELECT id, retention_days FROM widget_configs WHERE retention_days < longest LOOP
        -- by the unique key: a ctid names a row only within one partition
        DELETE FROM widget_page_views WHERE (event_id, recv_at) IN (
            SELECT event_id, recv_at FROM widget_page_views
             WHERE widget_id = w.id AND recv_at < now() - make_interval(days => w.retention_days)
             LIMIT batch);
        GET DIAGNOSTICS n = ROW_COUNT; done := done + n;
        DELETE FROM widget_visitor_events WHERE (event_id, recv_at) IN (
            SELECT event_id, recv_at FROM widget_visitor_events
             WHERE widget_id = w.id AND recv_at < now() - make_interval(days => w.retention_days)
             LIMIT batch);
        GET DIAGNOSTICS n = ROW_COUNT; done := done + n;
    END LOOP;

    -- sessions, rollups and visitor sets follow each widget's own retention
    DELETE FROM widget_visitor_sessions s USING widget_configs c
     WHERE c.id = s.widget_id AND NOT s.is_active
       AND s.last_active_at < now() - make_interval(days => c.retention_days);
    GET DIAGNOSTICS n = ROW_COUNT; done := done + n;
    DELETE FROM widget_rollup_hourly r USING widget_configs c
     WHERE c.id = r.widget_id AND r.hour < now() - make_interval(days => c.retention_days);
    DELETE FROM widget_rollup_dims r USING widget_configs c
     WHERE c.id = r.widget_id AND r.day < (now() - make_interval(days => c.retention_days))::date;
    DELETE FROM widget_visitor_days r USING widget_configs c
     WHERE c.id = r.widget_id AND r.day < (now() - make_interval(days => c.retention_days))::date;
    DELETE FROM widget_visitor_hours r USING widget_configs c
     WHERE c.id = r.widget_id AND r.hour < now() - make_interval(days => c.retention_days);
    RETURN done;
END $$;

-- ---------------------------------------------------------------------------
-- Stream entries the drain could not decode (a collector bug or a foreign
-- writer): kept here byte for byte, in the same transaction that acknowledges
-- them, so nothing leaves the stream without a trace.
CREATE TABLE drain_rejects (
    id          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    stream      text        NOT NULL,
    entry_id    text        NOT NULL,
    reason      text        NOT NULL,
    raw         bytea,
    received_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (stream, entry_id)
);
