-- The transactional outbox (see migrations/sqlite/0005_outbox.sql): what the engine decided,
-- committed with the state changes that led to it, and carried out afterwards.
CREATE TABLE outbox (
    id              BIGSERIAL PRIMARY KEY,               -- commit order
    installation_id BIGINT  NOT NULL,
    decision        TEXT    NOT NULL,                    -- JSON written by the engine
    state           TEXT    NOT NULL DEFAULT 'pending'
                    CHECK (state IN ('pending', 'done', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,          -- failed attempts so far
    last_error      TEXT,
    next_attempt_at BIGINT  NOT NULL,                    -- unix ms; due from then on
    created_at      BIGINT  NOT NULL,                    -- unix ms
    done_at         BIGINT                               -- unix ms; when done or given up
);
CREATE INDEX outbox_pending ON outbox (id) WHERE state = 'pending';
CREATE INDEX outbox_finished ON outbox (done_at) WHERE done_at IS NOT NULL;
