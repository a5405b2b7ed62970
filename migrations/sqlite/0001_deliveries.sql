-- The webhook inbox: every accepted delivery, stored before GitHub gets its answer.
-- Bodies live in their own table: SQLite rewrites a whole row (overflow pages included) on
-- every UPDATE, and the bookkeeping columns change several times per delivery.
CREATE TABLE deliveries (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT, -- arrival order
    id              TEXT    NOT NULL UNIQUE,           -- X-GitHub-Delivery
    event           TEXT    NOT NULL,                  -- X-GitHub-Event
    action          TEXT,
    installation_id INTEGER,
    repository      TEXT,                              -- owner/name when the payload has one
    received_at     INTEGER NOT NULL,                  -- unix milliseconds
    state           TEXT    NOT NULL DEFAULT 'pending'
                    CHECK (state IN ('pending', 'processed', 'ignored', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    last_error      TEXT,
    next_attempt_at INTEGER NOT NULL DEFAULT 0,        -- unix milliseconds
    lease_until     INTEGER,                           -- unix milliseconds; a claim's expiry
    finished_at     INTEGER                            -- unix milliseconds
);

CREATE INDEX deliveries_pending ON deliveries (seq) WHERE state = 'pending';
CREATE INDEX deliveries_failed ON deliveries (seq) WHERE state = 'failed';

CREATE TABLE delivery_bodies (
    seq  INTEGER PRIMARY KEY REFERENCES deliveries (seq) ON DELETE CASCADE,
    body BLOB NOT NULL                                 -- the raw, verified payload
);
