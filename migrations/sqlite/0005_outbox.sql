-- The transactional outbox: what the engine decided, committed in the same transaction as
-- the delivery's outcome and the state changes that led to it, and carried out afterwards.
-- An entry is pending until its effect is done, or failed when it was given up on; both
-- finished states are pruned by the same retention as deliveries.
CREATE TABLE outbox (
    id              INTEGER PRIMARY KEY AUTOINCREMENT, -- commit order
    installation_id INTEGER NOT NULL,
    decision        TEXT    NOT NULL,                  -- JSON written by the engine
    state           TEXT    NOT NULL DEFAULT 'pending'
                    CHECK (state IN ('pending', 'done', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,        -- failed attempts so far
    last_error      TEXT,
    next_attempt_at INTEGER NOT NULL,                  -- unix ms; due from then on
    created_at      INTEGER NOT NULL,                  -- unix ms
    done_at         INTEGER                            -- unix ms; when it was done or given up
);
CREATE INDEX outbox_pending ON outbox (id) WHERE state = 'pending';
CREATE INDEX outbox_finished ON outbox (done_at) WHERE done_at IS NOT NULL;
