-- FHIR Subscriptions (websocket channel): per-subscription event numbering, derived from the
-- event log by the subscription matcher (server/src/subscriptions), in the log's order.

-- One row per Subscription the matcher has seen become active.
CREATE TABLE subscription_state (
    subscription_id TEXT    PRIMARY KEY,
    owner_id        TEXT    NOT NULL,     -- the user whose access rights filter its events
    start_seq       INTEGER NOT NULL,     -- the seq of the write that created it
    events_count    INTEGER NOT NULL,     -- eventsSinceSubscriptionStart
    active          INTEGER NOT NULL
) WITHOUT ROWID;

-- Notification n of a subscription is event `seq` of the log.
CREATE TABLE subscription_events (
    subscription_id TEXT    NOT NULL,
    event_number    INTEGER NOT NULL,
    seq             INTEGER NOT NULL,
    PRIMARY KEY (subscription_id, event_number)
) WITHOUT ROWID;
