-- Per-installation ownership for several replicas (issue 17 §3). Each installation's events,
-- effects and run polling are acted on by the one replica holding its lease; a lease runs
-- out unless its holder renews it, so a dead replica's installations go to the others.
-- Times are the database's clock in unix ms, so replicas' clocks never have to agree.
CREATE TABLE installation_leases (
    installation_id BIGINT PRIMARY KEY,                  -- 0: the token mode's one "installation"
    owner           TEXT   NOT NULL DEFAULT '',          -- replica id; '' when free
    expires_at      BIGINT NOT NULL DEFAULT 0            -- unix ms (database clock)
);

-- The replicas alive: each writes its heartbeat when it renews its leases. The fair share
-- of installations a replica takes is the known installations over the live replicas.
CREATE TABLE replicas (
    id      TEXT   PRIMARY KEY,
    seen_at BIGINT NOT NULL                              -- unix ms (database clock)
);
