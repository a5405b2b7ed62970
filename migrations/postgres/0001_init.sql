-- The PostgreSQL store: the same tables as the SQLite one (see migrations/sqlite), for
-- several replicas sharing one database.

-- The webhook inbox: every accepted delivery, stored before GitHub gets its answer.
CREATE TABLE deliveries (
    seq             BIGSERIAL PRIMARY KEY,               -- arrival order
    id              TEXT    NOT NULL UNIQUE,             -- X-GitHub-Delivery
    event           TEXT    NOT NULL,
    action          TEXT,
    installation_id BIGINT,
    repository      TEXT,
    received_at     BIGINT  NOT NULL,                    -- unix milliseconds
    state           TEXT    NOT NULL DEFAULT 'pending'
                    CHECK (state IN ('pending', 'processed', 'ignored', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    last_error      TEXT,
    next_attempt_at BIGINT  NOT NULL DEFAULT 0,
    lease_until     BIGINT,                              -- a claim's expiry
    finished_at     BIGINT
);
CREATE INDEX deliveries_pending ON deliveries (seq) WHERE state = 'pending';
CREATE INDEX deliveries_failed ON deliveries (seq) WHERE state = 'failed';

CREATE TABLE delivery_bodies (
    seq  BIGINT PRIMARY KEY REFERENCES deliveries (seq) ON DELETE CASCADE,
    body BYTEA  NOT NULL                                 -- LZ4, length first
);

-- Agent runs, one row per (issue, attempt), written before Codegen is asked.
CREATE TABLE runs (
    id              BIGSERIAL PRIMARY KEY,
    installation_id BIGINT  NOT NULL,
    repository      TEXT    NOT NULL,
    issue_number    BIGINT  NOT NULL,
    attempt         INTEGER NOT NULL CHECK (attempt >= 1),
    prompt          TEXT    NOT NULL,
    state           TEXT    NOT NULL
                    CHECK (state IN ('launching', 'running', 'succeeded', 'failed',
                                     'timed_out', 'cancelled')),
    codegen_run_id  BIGINT,
    web_url         TEXT,
    summary         TEXT,
    pull_requests   TEXT    NOT NULL DEFAULT '[]',
    failure         TEXT,
    lease_until     BIGINT,
    created_at      BIGINT  NOT NULL,
    started_at      BIGINT,
    finished_at     BIGINT
);
CREATE UNIQUE INDEX runs_once ON runs (lower(repository), issue_number, attempt);
CREATE INDEX runs_active ON runs (state) WHERE state IN ('launching', 'running');
CREATE UNIQUE INDEX runs_codegen_id ON runs (codegen_run_id) WHERE codegen_run_id IS NOT NULL;

-- What the bot knows of each issue (JSON it writes).
CREATE TABLE issues (
    installation_id BIGINT NOT NULL,
    repository      TEXT   NOT NULL,
    number          BIGINT NOT NULL,
    data            TEXT   NOT NULL,
    updated_at      BIGINT NOT NULL
);
CREATE UNIQUE INDEX issues_key ON issues (lower(repository), number);

-- The one status comment of each issue, claimed before it is created.
CREATE TABLE status_comments (
    repository    TEXT   NOT NULL,
    number        BIGINT NOT NULL,
    comment_id    BIGINT,
    body_hash     TEXT,
    claimed_until BIGINT
);
CREATE UNIQUE INDEX status_comments_key ON status_comments (lower(repository), number);

CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
