-- FHIR Subscriptions (websocket channel): per-subscription event numbering, derived from the
-- event log by the subscription matcher (server/src/subscriptions), which runs on one node at a
-- time (a PostgreSQL advisory lock elects it). Every node delivers to its own sockets by reading
-- subscription_events in seq order.

CREATE TABLE subscription_state (
    subscription_id TEXT COLLATE "C"    PRIMARY KEY,
    owner_id        TEXT COLLATE "C"    NOT NULL,
    start_seq       BIGINT  NOT NULL,
    events_count    BIGINT  NOT NULL,
    active          BOOLEAN NOT NULL
);

CREATE TABLE subscription_events (
    subscription_id TEXT COLLATE "C"    NOT NULL,
    event_number    BIGINT  NOT NULL,
    seq             BIGINT  NOT NULL,
    PRIMARY KEY (subscription_id, event_number)
);
CREATE INDEX subscription_events_by_seq ON subscription_events (seq);
