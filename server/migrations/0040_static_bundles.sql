-- The recipes of the page bundles under /static/bundles (server/bundle_recipes.py): what an
-- instance joined under a name, so that every other instance can make the same file when a
-- browser asks it for that name. Public words only (a page's entries and translated strings).
-- Written once per name (INSERT ... ON CONFLICT DO NOTHING), never changed.
CREATE TABLE static_bundles (
    name text PRIMARY KEY CHECK (length(name) <= 200),
    entries text[] NOT NULL CHECK (cardinality(entries) <= 32),
    strings jsonb CHECK (strings IS NULL OR jsonb_typeof(strings) = 'object'),
    created_at timestamptz NOT NULL DEFAULT now()
);
