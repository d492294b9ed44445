-- 006_concurrency_minutes: the concurrency route's per-minute rollup
-- (docs/API.md "GET /widgets/:widgetId/concurrency", docs/BENCHMARKS.md).
--
-- hn_concurrency() is THE definition of concurrency (the live rule over a
-- range, docs/API.md time travel): the route computes the unsettled tail
-- with it, and the fill below computes settled minutes with it, so an
-- answer read from the rollup is the one computed live.
--
-- A minute is settled one live window after its end: beacons carry the
-- collector's receive time and reach PostgreSQL within the drain's lag. The
-- drain's worker 0 fills settled minutes (hn_fill_concurrency, every few
-- seconds, idempotent, bounded per call); the route reads the rollup for
-- minutes before the widget's mark (settled_to) and computes the rest from
-- the beacons.
--
-- Late beacons: a beacon written into a minute already before the mark (a
-- collector spool replayed after an outage) is NOT in the rollup: the
-- answers for that minute stay what they were when it was filled. To take
-- such beacons in, move the widget's mark back (or delete it) by hand:
--   UPDATE widget_concurrency_marks SET settled_to = '2026-11-30' WHERE widget_id = 7;
-- the next fills recompute from there (docs/OPERATIONS.md).

-- $1 widget, $2 from, $3 to, $4 live window (s), $5 bucket (s), from and to
-- multiples of the bucket. Each beacon's presence [recv, min(next beacon,
-- recv + window)) clipped to [from, to) becomes +1/−1 steps; with a 0 step at
-- every bucket start (and at `to`), the running sum is the number present
-- from each step to the next one: per bucket k (0 = the one at from) its max
-- (peak, and when it is first reached) and its integral (present-ms).
CREATE FUNCTION hn_concurrency(w integer, t_from timestamptz, t_to timestamptz, window_s integer,
                               bucket_s integer)
RETURNS TABLE (k bigint, peak bigint, present_ms bigint, peak_at_ms bigint)
LANGUAGE sql STABLE AS $$
    WITH b AS (
        SELECT session_id, recv_at, 'pv'::text AS t FROM widget_page_views
         WHERE widget_id = w AND recv_at > t_from - make_interval(secs => window_s) AND recv_at <= t_to
        UNION ALL SELECT session_id, recv_at, event_type FROM widget_visitor_events
         WHERE widget_id = w AND recv_at > t_from - make_interval(secs => window_s) AND recv_at <= t_to
    ), iv AS (SELECT recv_at AS s, least(lead(recv_at) OVER w1, recv_at + make_interval(secs => window_s)) AS e,
                     t = 'end' AS is_end FROM b
               WINDOW w1 AS (PARTITION BY session_id ORDER BY recv_at, t = 'end')),
    c AS (SELECT greatest(s, t_from) AS s, least(e, t_to) AS e FROM iv
           WHERE NOT is_end AND e > s AND e > t_from AND s < t_to),
    st AS (SELECT s AS t, 1 AS d FROM c UNION ALL SELECT e, -1 FROM c
           UNION ALL SELECT generate_series(t_from, t_to, make_interval(secs => bucket_s)), 0),
    g AS (SELECT t, sum(d) AS d FROM st GROUP BY t),
    r AS (SELECT t, sum(d) OVER (ORDER BY t) AS n, lead(t) OVER (ORDER BY t) AS nt,
                 floor(extract(epoch FROM t - t_from) / bucket_s)::bigint AS k FROM g),
    r2 AS (SELECT *, max(n) OVER (PARTITION BY k) AS peak FROM r WHERE t < t_to)
    SELECT k, peak::bigint, sum(n * extract(epoch FROM nt - t) * 1000)::bigint,
           floor(extract(epoch FROM min(t) FILTER (WHERE n = peak)) * 1000)::bigint
      FROM r2 GROUP BY k, peak ORDER BY k
$$;

-- Per widget and minute with anyone present: the peak, when it was first
-- reached, and the present-milliseconds (the integral). Minutes with nobody
-- have no row; which minutes are filled is the widget's mark.
CREATE TABLE widget_concurrency_minutes (
    widget_id   integer     NOT NULL,
    minute      timestamptz NOT NULL,
    peak        integer     NOT NULL,
    peak_at_ms  bigint      NOT NULL,
    present_ms  bigint      NOT NULL,
    PRIMARY KEY (widget_id, minute)
);

-- The same per hour, made from the minutes (a 30-day answer at 1h reads 720
-- rows, not 43,200): recomputed for every hour a fill touches, so an hour
-- that ends before the mark holds all its minutes.
CREATE TABLE widget_concurrency_hours (
    widget_id   integer     NOT NULL,
    hour        timestamptz NOT NULL,
    peak        integer     NOT NULL,
    peak_at_ms  bigint      NOT NULL,
    present_ms  bigint      NOT NULL,
    PRIMARY KEY (widget_id, hour)
);

-- Minutes before settled_to are in widget_concurrency_minutes, computed with
-- live window window_s (a different HERENOW_LIVE_WINDOW_S refills the widget
-- from its first beacon, and the route reads the rollup only when the
-- windows agree).
CREATE TABLE widget_concurrency_marks (
    widget_id   integer     PRIMARY KEY,
    settled_to  timestamptz,
    window_s    integer,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- Fills settled minutes, widget after widget (those furthest behind first),
-- at most max_minutes per widget and until budget_ms has passed; one
-- transaction. A widget's mark row is locked (SKIP LOCKED) while it is
-- filled, so api processes running it at once fill different widgets, and a
-- minute range is deleted and rewritten, so running it again changes
-- nothing. Returns the minutes filled.
CREATE FUNCTION hn_fill_concurrency(live_window_s integer, max_minutes integer DEFAULT 180,
                                    budget_ms integer DEFAULT 250) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    target timestamptz := date_trunc('minute', now() - make_interval(secs => live_window_s));
    t0 timestamptz := clock_timestamp();
    wid integer;
    m record;
    lo timestamptz;
    hi timestamptz;
    done bigint := 0;
BEGIN
    INSERT INTO widget_concurrency_marks (widget_id)
        SELECT id FROM widget_configs ON CONFLICT DO NOTHING;
    FOR wid IN
        SELECT k.widget_id FROM widget_concurrency_marks k JOIN widget_configs c ON c.id = k.widget_id
         WHERE k.settled_to IS NULL OR k.settled_to < target OR k.window_s IS DISTINCT FROM live_window_s
         ORDER BY k.settled_to NULLS FIRST, k.widget_id
    LOOP
        EXIT WHEN clock_timestamp() - t0 > make_interval(secs => budget_ms / 1000.0);
        SELECT * INTO m FROM widget_concurrency_marks WHERE widget_id = wid FOR UPDATE SKIP LOCKED;
        CONTINUE WHEN NOT FOUND;
        lo := m.settled_to;
        IF m.window_s IS DISTINCT FROM live_window_s THEN
            DELETE FROM widget_concurrency_minutes WHERE widget_id = wid;
            DELETE FROM widget_concurrency_hours WHERE widget_id = wid;
            lo := NULL;
        END IF;
        IF lo IS NULL THEN
            lo := coalesce(date_trunc('minute', least(
                    (SELECT min(recv_at) FROM widget_page_views WHERE widget_id = wid),
                    (SELECT min(recv_at) FROM widget_visitor_events WHERE widget_id = wid))), target);
        END IF;
        lo := least(lo, target);
        hi := least(target, lo + make_interval(mins => max_minutes));
        IF hi > lo THEN
            DELETE FROM widget_concurrency_minutes WHERE widget_id = wid AND minute >= lo AND minute < hi;
            INSERT INTO widget_concurrency_minutes (widget_id, minute, peak, peak_at_ms, present_ms)
                SELECT wid, lo + make_interval(mins => x.k::integer), x.peak, x.peak_at_ms, x.present_ms
                  FROM hn_concurrency(wid, lo, hi, live_window_s, 60) x WHERE x.peak > 0;
            DELETE FROM widget_concurrency_hours
             WHERE widget_id = wid AND hour >= date_trunc('hour', lo) AND hour < hi;
            INSERT INTO widget_concurrency_hours (widget_id, hour, peak, peak_at_ms, present_ms)
                SELECT wid, date_trunc('hour', minute), max(peak),
                       (array_agg(peak_at_ms ORDER BY peak DESC, minute))[1], sum(present_ms)
                  FROM widget_concurrency_minutes
                 WHERE widget_id = wid AND minute >= date_trunc('hour', lo) AND minute < hi
                 GROUP BY 2;
            done := done + (extract(epoch FROM hi - lo) / 60)::bigint;
        END IF;
        UPDATE widget_concurrency_marks SET settled_to = hi, window_s = live_window_s,
               updated_at = now() WHERE widget_id = wid;
    END LOOP;
    RETURN done;
END $$;

-- Retention: rollup minutes and hours follow their widget's retention_days (called
-- with hn_apply_retention by the drain).
CREATE FUNCTION hn_apply_concurrency_retention() RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    n bigint;
BEGIN
    DELETE FROM widget_concurrency_minutes r USING widget_configs c
     WHERE c.id = r.widget_id AND r.minute < now() - make_interval(days => c.retention_days);
    GET DIAGNOSTICS n = ROW_COUNT;
    DELETE FROM widget_concurrency_hours r USING widget_configs c
     WHERE c.id = r.widget_id AND r.hour < now() - make_interval(days => c.retention_days);
    RETURN n;
END $$;
