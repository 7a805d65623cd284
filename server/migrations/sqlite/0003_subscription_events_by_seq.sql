-- Every node delivers FHIR Subscription notifications by reading them in seq order.
CREATE INDEX subscription_events_by_seq ON subscription_events (seq);
