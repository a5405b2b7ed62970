-- What the bot knows of each issue it manages, and of their blockers: the live graph is
-- rebuilt from these rows at start-up. `data` is JSON written by the bot.
CREATE TABLE issues (
    installation_id INTEGER NOT NULL,
    repository      TEXT    NOT NULL,
    number          INTEGER NOT NULL,
    data            TEXT    NOT NULL,
    updated_at      INTEGER NOT NULL                   -- unix ms
);
CREATE UNIQUE INDEX issues_key ON issues (lower(repository), number);

-- The one status comment of each issue. The row is claimed before the comment is created,
-- so two workers never both create one; `body_hash` skips edits that change nothing.
CREATE TABLE status_comments (
    repository    TEXT    NOT NULL,
    number        INTEGER NOT NULL,
    comment_id    INTEGER,
    body_hash     TEXT,
    claimed_until INTEGER                              -- unix ms; a creator's lease
);
CREATE UNIQUE INDEX status_comments_key ON status_comments (lower(repository), number);

-- Small settings that must survive restarts: paused repositories, reported problems.
CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
