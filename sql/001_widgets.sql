-- 001_widgets: the tracked sites and apps (DESIGN.md §4, the seed's widget_configs).
--
-- Applied by `herenowctl migrate` inside its own transaction, together with its
-- schema_migrations row (which herenowctl creates): no BEGIN/COMMIT here.
--
-- PostgreSQL is the source of truth for widgets; Redis' hn:widgets (key → id)
-- is a cache of it, written by herenowctl and rebuilt by `herenowctl widget sync`.

CREATE TABLE widget_configs (
    id             integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- the public key in the embed snippet (data-widget="…"), 16 base62 characters
    key            text        NOT NULL UNIQUE,
    name           text        NOT NULL,
    -- the site's domain, for people: beacons are not filtered by it
    domain         text        NOT NULL,
    settings       jsonb       NOT NULL DEFAULT '{}',
    -- history older than this is dropped (whole partitions, DESIGN.md §4)
    retention_days integer     NOT NULL DEFAULT 395 CHECK (retention_days > 0),
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);
