-- Agent runs, one row per (issue, attempt). The row is written before Codegen is asked to
-- create the run (state 'launching', an intent held until lease_until), so the unique key
-- makes a second creation impossible: a redelivered webhook, a restart or a second replica
-- finds the row taken and does not launch. The run's id is stored in the same row.
CREATE TABLE runs (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    installation_id INTEGER NOT NULL,
    repository      TEXT    NOT NULL,                  -- owner/name as GitHub spells it
    issue_number    INTEGER NOT NULL,
    attempt         INTEGER NOT NULL CHECK (attempt >= 1),
    state           TEXT    NOT NULL
                    CHECK (state IN ('launching', 'running', 'succeeded', 'failed',
                                     'timed_out', 'cancelled')),
    prompt          TEXT    NOT NULL,                  -- sent again if a crash lost the launch
    codegen_run_id  INTEGER,
    web_url         TEXT,
    summary         TEXT,
    pull_requests   TEXT    NOT NULL DEFAULT '[]',     -- JSON array of pull request URLs
    failure         TEXT,                              -- why it failed, for the status
    lease_until     INTEGER,                           -- unix ms; a launching row's holder
    created_at      INTEGER NOT NULL,                  -- unix ms
    started_at      INTEGER,                           -- unix ms; when Codegen accepted it
    finished_at     INTEGER                            -- unix ms
);

-- GitHub names are case-insensitive: Acme/API#1 and acme/api#1 are one issue.
CREATE UNIQUE INDEX runs_once ON runs (lower(repository), issue_number, attempt);
CREATE INDEX runs_active ON runs (state) WHERE state IN ('launching', 'running');
CREATE UNIQUE INDEX runs_codegen_id ON runs (codegen_run_id) WHERE codegen_run_id IS NOT NULL;
