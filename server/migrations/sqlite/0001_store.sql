-- The FHIR store, its search indexes, the event log and the audit trail (SQLite).
-- Every write touches these tables in ONE transaction (see server/src/store/sqlite.rs).

-- The current version of every resource (deleted ones stay as tombstones so reads answer 410).
CREATE TABLE resources (
    rtype        TEXT    NOT NULL,
    id           TEXT    NOT NULL,
    version_id   INTEGER NOT NULL,
    last_updated TEXT    NOT NULL,          -- RFC 3339 UTC, fixed width: sorts as text
    deleted      INTEGER NOT NULL DEFAULT 0,
    patient_id   TEXT,                      -- the patient the resource is about, if any
    unit_id      TEXT,                      -- for an active Encounter: the unit (Location) it is on
    restricted   INTEGER NOT NULL DEFAULT 0,-- security-labelled (see app::fhir::security_restricted)
    sort_date    TEXT,                      -- the clinical date `_sort=date` orders by
    content      TEXT    NOT NULL,          -- the full JSON, meta included
    PRIMARY KEY (rtype, id)
) WITHOUT ROWID;
CREATE INDEX resources_by_updated ON resources (rtype, deleted, last_updated);
CREATE INDEX resources_by_patient ON resources (patient_id, rtype);
CREATE INDEX resources_by_date    ON resources (rtype, sort_date);
CREATE INDEX resources_by_unit    ON resources (unit_id) WHERE unit_id IS NOT NULL;

-- Every version ever written. A deletion is a version with deleted = 1.
CREATE TABLE resource_history (
    rtype        TEXT    NOT NULL,
    id           TEXT    NOT NULL,
    version_id   INTEGER NOT NULL,
    last_updated TEXT    NOT NULL,
    deleted      INTEGER NOT NULL DEFAULT 0,
    content      TEXT    NOT NULL,
    PRIMARY KEY (rtype, id, version_id)
) WITHOUT ROWID;

-- Token, string and reference search values of current versions.
-- token: (system, value) = (coding system or '', code); string: ('', lower-cased text);
-- reference: (target type, target id).
CREATE TABLE search_index (
    rtype  TEXT NOT NULL,
    id     TEXT NOT NULL,
    param  TEXT NOT NULL,
    system TEXT NOT NULL DEFAULT '',
    value  TEXT NOT NULL
);
CREATE INDEX search_index_lookup ON search_index (rtype, param, value, system);
CREATE INDEX search_index_owner  ON search_index (rtype, id);

-- Date search values of current versions, as inclusive UTC ranges.
CREATE TABLE search_dates (
    rtype     TEXT NOT NULL,
    id        TEXT NOT NULL,
    param     TEXT NOT NULL,
    start_at  TEXT NOT NULL,
    end_at    TEXT NOT NULL
);
CREATE INDEX search_dates_lookup ON search_dates (rtype, param, start_at);
CREATE INDEX search_dates_owner  ON search_dates (rtype, id);

-- The one counter `seq` comes from. Incrementing it inside the write transaction holds the write
-- lock until commit, so seq order is commit order and a rolled-back write burns no number.
CREATE TABLE event_counter (
    singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
    seq       INTEGER NOT NULL
);
INSERT INTO event_counter (singleton, seq) VALUES (1, 0);

-- The event log the realtime hub delivers and replays.
CREATE TABLE event_log (
    seq           INTEGER PRIMARY KEY,      -- gap-free, strictly increasing in commit order
    event_type    TEXT    NOT NULL,
    action        TEXT    NOT NULL,         -- created | updated | deleted
    resource_type TEXT    NOT NULL,
    resource_id   TEXT    NOT NULL,
    version_id    INTEGER NOT NULL,         -- with type and id: the resource_history row it concerns
    patient_id    TEXT,
    rooms         TEXT    NOT NULL,         -- JSON array of room names
    user_id       TEXT,
    ts            TEXT    NOT NULL
);

-- Who did what to which record. Writes are audited in their own transaction; reads in batches.
CREATE TABLE audit_log (
    id            INTEGER PRIMARY KEY,
    ts            TEXT NOT NULL,
    user_id       TEXT,
    action        TEXT NOT NULL,            -- C R U D E (FHIR AuditEvent.action) 
    operation     TEXT NOT NULL,            -- create, read, vread, update, delete, search, history, login…
    resource_type TEXT,
    resource_id   TEXT,
    patient_id    TEXT,
    outcome       TEXT NOT NULL,            -- FHIR AuditEvent.outcome: 0 success, 4 minor, 8 serious
    detail        TEXT,
    source        TEXT                      -- the client address, when known
);
CREATE INDEX audit_by_patient ON audit_log (patient_id, ts);
CREATE INDEX audit_by_ts      ON audit_log (ts);

-- Accounts. Each is linked to a Practitioner resource; unit assignments live in user_units.
CREATE TABLE users (
    id              TEXT PRIMARY KEY,
    username        TEXT NOT NULL UNIQUE,
    name            TEXT NOT NULL,
    role            TEXT NOT NULL CHECK (role IN ('physician', 'nurse', 'pharmacist', 'admin')),
    password_hash   TEXT NOT NULL,
    practitioner_id TEXT,
    active          INTEGER NOT NULL DEFAULT 1,
    created_at      TEXT NOT NULL
);
CREATE TABLE user_units (
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    unit_id TEXT NOT NULL,
    PRIMARY KEY (user_id, unit_id)
) WITHOUT ROWID;

-- Sign-in sessions. A session lasts a shift; its access tokens are short-lived JWTs carrying the
-- session id, its refresh tokens rotate on every use and are stored only as SHA-256 hashes.
CREATE TABLE sessions (
    id          TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at  TEXT NOT NULL,
    expires_at  TEXT NOT NULL,
    revoked_at  TEXT,
    revoked_why TEXT
) WITHOUT ROWID;
CREATE TABLE refresh_tokens (
    token_hash TEXT PRIMARY KEY,
    session_id TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    issued_at  TEXT NOT NULL,
    used_at    TEXT                        -- set when rotated; a later use is a replay
) WITHOUT ROWID;
CREATE INDEX refresh_tokens_by_session ON refresh_tokens (session_id);

-- Small facts about this database (e.g. when the demo data was seeded).
CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;
