-- The FHIR store, its search indexes, the event log and the audit trail (PostgreSQL).
-- The same tables as migrations/sqlite/0001_store.sql, in PostgreSQL's types; every write
-- touches them in ONE transaction (see server/src/store/postgres.rs).

CREATE TABLE resources (
    rtype        TEXT COLLATE "C"    NOT NULL,
    id           TEXT COLLATE "C"    NOT NULL,
    version_id   BIGINT  NOT NULL,
    last_updated TEXT COLLATE "C"    NOT NULL,          -- RFC 3339 UTC, fixed width: sorts as text
    deleted      BOOLEAN NOT NULL DEFAULT FALSE,
    patient_id   TEXT,
    unit_id      TEXT,
    restricted   BOOLEAN NOT NULL DEFAULT FALSE,
    sort_date    TEXT,
    content      TEXT COLLATE "C"    NOT NULL,
    PRIMARY KEY (rtype, id)
);
CREATE INDEX resources_by_updated ON resources (rtype, deleted, last_updated);
CREATE INDEX resources_by_patient ON resources (patient_id, rtype);
CREATE INDEX resources_by_date    ON resources (rtype, sort_date);
CREATE INDEX resources_by_unit    ON resources (unit_id) WHERE unit_id IS NOT NULL;

CREATE TABLE resource_history (
    rtype        TEXT COLLATE "C"    NOT NULL,
    id           TEXT COLLATE "C"    NOT NULL,
    version_id   BIGINT  NOT NULL,
    last_updated TEXT COLLATE "C"    NOT NULL,
    deleted      BOOLEAN NOT NULL DEFAULT FALSE,
    content      TEXT COLLATE "C"    NOT NULL,
    PRIMARY KEY (rtype, id, version_id)
);

CREATE TABLE search_index (
    rtype  TEXT COLLATE "C" NOT NULL,
    id     TEXT COLLATE "C" NOT NULL,
    param  TEXT COLLATE "C" NOT NULL,
    system TEXT COLLATE "C" NOT NULL DEFAULT '',
    value  TEXT COLLATE "C" NOT NULL
);
CREATE INDEX search_index_lookup ON search_index (rtype, param, value, system);
CREATE INDEX search_index_owner  ON search_index (rtype, id);

CREATE TABLE search_dates (
    rtype     TEXT COLLATE "C" NOT NULL,
    id        TEXT COLLATE "C" NOT NULL,
    param     TEXT COLLATE "C" NOT NULL,
    start_at  TEXT COLLATE "C" NOT NULL,
    end_at    TEXT COLLATE "C" NOT NULL
);
CREATE INDEX search_dates_lookup ON search_dates (rtype, param, start_at);
CREATE INDEX search_dates_owner  ON search_dates (rtype, id);

-- The one counter `seq` comes from. Every write transaction locks this row FIRST (SELECT ... FOR
-- UPDATE) and keeps the lock until it commits, so on every node writers take seq numbers one
-- transaction after the other, in commit order, and a rollback returns its numbers. A plain
-- SEQUENCE would not do: it hands out 5 and 6 to two transactions that may commit 6 first, and
-- a reader that has seen 6 would skip 5 forever. See README, "Several nodes on PostgreSQL".
CREATE TABLE event_counter (
    singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
    seq       BIGINT  NOT NULL
);
INSERT INTO event_counter (singleton, seq) VALUES (1, 0);

CREATE TABLE event_log (
    seq           BIGINT  PRIMARY KEY,      -- gap-free, strictly increasing in commit order
    event_type    TEXT COLLATE "C"    NOT NULL,
    action        TEXT COLLATE "C"    NOT NULL,
    resource_type TEXT COLLATE "C"    NOT NULL,
    resource_id   TEXT COLLATE "C"    NOT NULL,
    version_id    BIGINT  NOT NULL,
    patient_id    TEXT,
    rooms         TEXT COLLATE "C"    NOT NULL,         -- JSON array of room names
    user_id       TEXT,
    ts            TEXT COLLATE "C"    NOT NULL
);
CREATE INDEX event_log_by_ts ON event_log (ts);

CREATE TABLE audit_log (
    id            BIGSERIAL PRIMARY KEY,
    ts            TEXT COLLATE "C" NOT NULL,
    user_id       TEXT,
    action        TEXT COLLATE "C" NOT NULL,
    operation     TEXT COLLATE "C" NOT NULL,
    resource_type TEXT,
    resource_id   TEXT,
    patient_id    TEXT,
    outcome       TEXT COLLATE "C" NOT NULL,
    detail        TEXT,
    source        TEXT
);
CREATE INDEX audit_by_patient ON audit_log (patient_id, ts);
CREATE INDEX audit_by_ts      ON audit_log (ts);

CREATE TABLE users (
    id              TEXT COLLATE "C" PRIMARY KEY,
    username        TEXT COLLATE "C" NOT NULL UNIQUE,
    name            TEXT COLLATE "C" NOT NULL,
    role            TEXT COLLATE "C" NOT NULL CHECK (role IN ('physician', 'nurse', 'pharmacist', 'admin')),
    password_hash   TEXT COLLATE "C" NOT NULL,
    practitioner_id TEXT,
    active          BOOLEAN NOT NULL DEFAULT TRUE,
    created_at      TEXT COLLATE "C" NOT NULL
);
CREATE TABLE user_units (
    user_id TEXT COLLATE "C" NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    unit_id TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (user_id, unit_id)
);

CREATE TABLE sessions (
    id          TEXT COLLATE "C" PRIMARY KEY,
    user_id     TEXT COLLATE "C" NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at  TEXT COLLATE "C" NOT NULL,
    expires_at  TEXT COLLATE "C" NOT NULL,
    revoked_at  TEXT,
    revoked_why TEXT
);
CREATE TABLE refresh_tokens (
    token_hash TEXT COLLATE "C" PRIMARY KEY,
    session_id TEXT COLLATE "C" NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    issued_at  TEXT COLLATE "C" NOT NULL,
    used_at    TEXT
);
CREATE INDEX refresh_tokens_by_session ON refresh_tokens (session_id);

CREATE TABLE settings (
    key   TEXT COLLATE "C" PRIMARY KEY,
    value TEXT COLLATE "C" NOT NULL
);
