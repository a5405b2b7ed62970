-- Dashboard sign-ins (issue 16). A row per signed-in browser, keyed by the SHA-256 of the
-- session secret its cookie carries (the table alone lets nobody in). The viewer's GitHub
-- token stays here, never in the browser: with it the repositories the viewer may read are
-- listed again every few minutes, so that lost access ends what the dashboard shows.
CREATE TABLE dashboard_sessions (
    id         TEXT    PRIMARY KEY,                     -- hex SHA-256 of the session secret
    login      TEXT    NOT NULL,                        -- the viewer's GitHub login
    token      TEXT    NOT NULL,                        -- the viewer's OAuth token
    reach      TEXT    NOT NULL,                        -- JSON: [[installation id, "owner/repo"], ...]
    checked_at BIGINT  NOT NULL,                        -- unix ms; when reach was listed
    expires_at BIGINT  NOT NULL                         -- unix ms
);
CREATE INDEX dashboard_sessions_expiry ON dashboard_sessions (expires_at);
