-- 009_erasures: erasure is final (docs/API.md, "DELETE /widgets/:widgetId/visitors/:visitor").
--
-- Erasing a visitor deletes what PostgreSQL holds, but records of that
-- visitor may still be on their way: in a stream shard the drain has not
-- reached, in a collector's spool while Redis was down. Each erasure leaves
-- tombstones here — one for the visitor id, one per session erased — and
-- the drain leaves out every record that matches one and was received at or
-- before the erasure (a later visit is a new one). A tombstone holds no id in
-- clear: SHA-256("<widget id>:v:<visitor id>") or ("…:s:<session id>"),
-- which the drain computes for the records it reads. That is pseudonymous,
-- not anonymous: an id that can be guessed (an email, user-42) can be
-- confirmed against it. erased_at is clock_timestamp() after the lock; a
-- record's time is its collector's clock (herenowctl doctor checks the
-- clocks agree).
--
-- Tombstones are kept as long as the drain accepts a record's receive time
-- (400 days, api/drain/batch.c TS_PAST_US): no record they could stop is
-- written after that anyway. hn_apply_erasure_retention() removes older ones.
--
-- Order: the erase route takes pg_advisory_xact_lock(HN_ERASE_LOCK) before
-- it deletes and writes tombstones; every drain transaction takes the same
-- lock shared and then reads the tombstones it has not seen (by seq). So a
-- batch either committed before the erasure (whose DELETE then removes its
-- rows) or reads the erasure's tombstones before it builds.
CREATE TABLE visitor_erasures (
    seq         bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    widget_id   integer     NOT NULL,
    digest      bytea       NOT NULL CHECK (length(digest) = 32),
    erased_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX visitor_erasures_time ON visitor_erasures (erased_at);

CREATE FUNCTION hn_erasure_digest(widget_id integer, kind text, id text) RETURNS bytea
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT sha256(convert_to(widget_id::text || ':' || kind || ':' || id, 'UTF8'))
$$;

CREATE FUNCTION hn_apply_erasure_retention() RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    n bigint;
BEGIN
    DELETE FROM visitor_erasures WHERE erased_at < now() - interval '400 days';
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END $$;
