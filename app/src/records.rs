//! The browser's stores: FHIR resources keyed by type and id, each at the newest version seen.
//!
//! Where it sits: step 5 of the event path. A screen loads a snapshot (server-rendered, as of a log
//! `seq`), then applies the `update`s the realtime client hands it, a whole animation frame's batch at
//! once. Every screen's lists are derived from a `Records`, so an order moving from "active" to
//! "cancelled", a prescription moving through the pharmacy queue or a result arriving is one insert,
//! update or removal here and nothing else.
//!
//! What it must never do: go back in time. An update whose version is not newer than what is held
//! is ignored (a replay after reconnect, or my own write coming back over the socket after its HTTP
//! answer was applied). An optimistic entry (a write not yet answered) is replaced by the real
//! resource as soon as either the answer or the socket delivers it, never shown next to it.

use std::{collections::HashMap, sync::Arc};

use serde_json::Value;

use crate::wire::Update;

/// The identifier system under which the browser tags a resource it creates, so that the copy
/// coming back (by HTTP answer or by socket, whichever is first) replaces the optimistic entry.
pub const CLIENT_REQUEST_SYSTEM: &str = "urn:rounds:client-request";

/// One resource as a screen holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub resource_type: String,
    pub id: String,
    /// `meta.versionId`; 0 for an optimistic entry the server has not answered yet.
    pub version: i64,
    pub json: Arc<Value>,
}

impl Record {
    /// Reads type, id and version from a resource's JSON; `None` without type or id.
    pub fn from_json(json: Value) -> Option<Self> {
        let resource_type = json.get("resourceType")?.as_str()?.to_owned();
        let id = json.get("id")?.as_str()?.to_owned();
        let version = version_of(&json);
        Some(Self {
            resource_type,
            id,
            version,
            json: Arc::new(json),
        })
    }

    pub fn is_pending(&self) -> bool {
        self.version == 0
    }

    /// A string at a JSON pointer, e.g. `/status`.
    pub fn str_at(&self, pointer: &str) -> Option<&str> {
        self.json.pointer(pointer).and_then(Value::as_str)
    }

    /// The client request tag this resource carries, if the browser created it.
    pub fn client_request(&self) -> Option<&str> {
        client_request(&self.json)
    }
}

fn version_of(json: &Value) -> i64 {
    json.pointer("/meta/versionId")
        .and_then(Value::as_str)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// The value of the [`CLIENT_REQUEST_SYSTEM`] identifier of a resource.
pub fn client_request(json: &Value) -> Option<&str> {
    json.get("identifier")?
        .as_array()?
        .iter()
        .find(|i| i.get("system").and_then(Value::as_str) == Some(CLIENT_REQUEST_SYSTEM))?
        .get("value")?
        .as_str()
}

/// What applying one change did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    Inserted,
    Updated,
    Removed,
    /// Not newer than what is held (or a deletion of something not held).
    Ignored,
}

/// Resources by type, then id: a screen reads one type at a time (`of_type`), and on a long
/// chart that must not walk every resource of every other type.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Records {
    by_type: HashMap<String, HashMap<String, Record>>,
    len: usize,
}

impl Records {
    pub fn from_resources(resources: impl IntoIterator<Item = Value>) -> Self {
        let mut records = Self::default();
        for json in resources {
            records.upsert(json);
        }
        records
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn get(&self, resource_type: &str, id: &str) -> Option<&Record> {
        self.by_type.get(resource_type)?.get(id)
    }

    /// The record a literal reference (`Type/id`) points at.
    pub fn resolve(&self, reference: &str) -> Option<&Record> {
        let (resource_type, id) = reference.split_once('/')?;
        self.get(resource_type, id)
    }

    pub fn of_type<'a>(&'a self, resource_type: &'a str) -> impl Iterator<Item = &'a Record> + 'a {
        self.by_type
            .get(resource_type)
            .into_iter()
            .flat_map(HashMap::values)
    }

    /// Inserts a resource, or replaces the held one if this version is newer. A real resource
    /// also replaces the optimistic entry carrying the same client request tag.
    pub fn upsert(&mut self, json: Value) -> Applied {
        let Some(record) = Record::from_json(json) else {
            return Applied::Ignored;
        };
        if let Some(held) = self.get(&record.resource_type, &record.id) {
            if held.version >= record.version {
                return Applied::Ignored;
            }
        }
        if !record.is_pending() {
            if let Some(tag) = record.client_request() {
                if let Some(of_type) = self.by_type.get_mut(&record.resource_type) {
                    let before = of_type.len();
                    of_type.retain(|_, held| {
                        !(held.is_pending() && held.client_request() == Some(tag))
                    });
                    self.len -= before - of_type.len();
                }
            }
        }
        let of_type = self
            .by_type
            .entry(record.resource_type.clone())
            .or_default();
        match of_type.insert(record.id.clone(), record) {
            Some(_) => Applied::Updated,
            None => {
                self.len += 1;
                Applied::Inserted
            }
        }
    }

    /// Removes a resource deleted at `version` (kept if a newer version is held).
    pub fn remove(&mut self, resource_type: &str, id: &str, version: i64) -> Applied {
        match self.get(resource_type, id) {
            Some(held) if held.version <= version => {
                self.take(resource_type, id);
                Applied::Removed
            }
            _ => Applied::Ignored,
        }
    }

    /// Removes an optimistic entry (its write failed).
    pub fn discard_pending(&mut self, resource_type: &str, id: &str) -> bool {
        if self.get(resource_type, id).is_some_and(Record::is_pending) {
            self.take(resource_type, id);
            true
        } else {
            false
        }
    }

    fn take(&mut self, resource_type: &str, id: &str) {
        if let Some(of_type) = self.by_type.get_mut(resource_type) {
            if of_type.remove(id).is_some() {
                self.len -= 1;
            }
        }
    }

    /// Applies one realtime update.
    pub fn apply(&mut self, update: &Update) -> Applied {
        if update.action == "deleted" {
            return self.remove(
                &update.resource_type,
                &update.resource_id,
                update.version_id,
            );
        }
        if let Some(held) = self.get(&update.resource_type, &update.resource_id) {
            if held.version >= update.version_id {
                return Applied::Ignored;
            }
        }
        self.upsert(update.resource.clone())
    }

    /// Applies a batch; returns how many changed something.
    pub fn apply_all<'a>(&mut self, updates: impl IntoIterator<Item = &'a Update>) -> usize {
        updates
            .into_iter()
            .filter(|u| self.apply(u) != Applied::Ignored)
            .count()
    }
}

/// What a screen derives from each record (its day, its name, whether it raises an alert),
/// worked out once per version: on a chart of thousands of resources every update recomputes the
/// lists, and reading each resource's JSON again each time was most of a frame.
#[derive(Debug)]
pub struct Derived<T> {
    by_type: HashMap<String, HashMap<String, (i64, T)>>,
    held: usize,
}

impl<T> Default for Derived<T> {
    fn default() -> Self {
        Self {
            by_type: HashMap::new(),
            held: 0,
        }
    }
}

impl<T: Clone> Derived<T> {
    /// `derive(record)`, from the last time if this version was seen.
    pub fn of(&mut self, record: &Record, derive: impl FnOnce(&Record) -> T) -> T {
        if let Some((version, facts)) = self
            .by_type
            .get(&record.resource_type)
            .and_then(|of_type| of_type.get(&record.id))
        {
            if *version == record.version {
                return facts.clone();
            }
        }
        let facts = derive(record);
        let of_type = self
            .by_type
            .entry(record.resource_type.clone())
            .or_default();
        if of_type
            .insert(record.id.clone(), (record.version, facts.clone()))
            .is_none()
        {
            self.held += 1;
        }
        facts
    }

    /// Forgets what was derived of records `records` no longer holds, once it holds twice as many.
    pub fn forget_gone(&mut self, records: &Records) {
        if self.held <= 2 * records.len() + 64 {
            return;
        }
        for (resource_type, of_type) in &mut self.by_type {
            of_type.retain(|id, _| records.get(resource_type, id).is_some());
        }
        self.held = self.by_type.values().map(HashMap::len).sum();
    }
}

/// Orders a frame's batch for applying: critical alerts first, then by `seq`.
pub fn alerts_first(batch: &mut [Update]) {
    batch.sort_by_key(|u| (!is_alert(u), u.seq));
}

/// Whether an update raises an alert the user must see at once.
pub fn is_alert(update: &Update) -> bool {
    matches!(
        update.event_type.as_str(),
        "CRITICAL_VALUE_ALERT" | "CLINICAL_ALERT_TRIGGERED"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn order(id: &str, version: i64, status: &str) -> Value {
        json!({"resourceType": "ServiceRequest", "id": id, "status": status,
               "meta": {"versionId": version.to_string()}})
    }

    fn update(seq: i64, action: &str, json: Value) -> Update {
        Update {
            seq,
            action: action.into(),
            event_type: "ORDER_UPDATED".into(),
            resource_type: json["resourceType"].as_str().unwrap().into(),
            resource_id: json["id"].as_str().unwrap().into(),
            version_id: version_of(&json),
            patient_id: None,
            rooms: vec![],
            user_id: None,
            timestamp: String::new(),
            resource: json,
        }
    }

    #[test]
    fn newer_versions_replace_older_ones_and_old_ones_are_ignored() {
        let mut records = Records::from_resources([order("o1", 2, "active")]);
        assert_eq!(records.upsert(order("o1", 1, "draft")), Applied::Ignored);
        assert_eq!(records.upsert(order("o1", 2, "active")), Applied::Ignored);
        assert_eq!(records.upsert(order("o1", 3, "revoked")), Applied::Updated);
        assert_eq!(
            records
                .get("ServiceRequest", "o1")
                .unwrap()
                .str_at("/status"),
            Some("revoked")
        );
        assert_eq!(records.upsert(order("o2", 1, "active")), Applied::Inserted);
        assert_eq!(records.of_type("ServiceRequest").count(), 2);
    }

    #[test]
    fn deletions_remove_unless_a_newer_version_is_held() {
        let mut records = Records::from_resources([order("o1", 3, "active")]);
        assert_eq!(
            records.apply(&update(9, "deleted", order("o1", 2, "active"))),
            Applied::Ignored
        );
        assert_eq!(
            records.apply(&update(10, "deleted", order("o1", 4, "active"))),
            Applied::Removed
        );
        assert!(records.is_empty());
    }

    #[test]
    fn the_real_resource_replaces_its_optimistic_entry() {
        let mut pending = order("pending-1", 0, "active");
        pending["identifier"] = json!([{"system": CLIENT_REQUEST_SYSTEM, "value": "c-1"}]);
        let mut records = Records::from_resources([pending.clone()]);
        assert!(records
            .get("ServiceRequest", "pending-1")
            .unwrap()
            .is_pending());
        let mut real = order("sr-9", 1, "active");
        real["identifier"] = pending["identifier"].clone();
        // The socket delivers it first; the HTTP answer then changes nothing.
        assert_eq!(
            records.apply(&update(11, "created", real.clone())),
            Applied::Inserted
        );
        assert_eq!(records.len(), 1, "shown once, not twice");
        assert_eq!(records.upsert(real), Applied::Ignored);
        assert!(!records.discard_pending("ServiceRequest", "sr-9"));
    }

    #[test]
    fn malformed_resources_are_ignored() {
        let mut records = Records::default();
        assert_eq!(records.upsert(json!({"id": "x"})), Applied::Ignored);
        assert_eq!(records.upsert(json!([1, 2])), Applied::Ignored);
        assert!(records.is_empty());
    }

    #[test]
    fn derived_facts_are_worked_out_once_per_version() {
        let mut records = Records::from_resources([order("o1", 1, "active")]);
        let mut derived = Derived::<String>::default();
        let mut runs = 0;
        let status = |records: &Records, derived: &mut Derived<String>, runs: &mut u32| {
            let record = records.get("ServiceRequest", "o1").unwrap().clone();
            derived.of(&record, |r| {
                *runs += 1;
                r.str_at("/status").unwrap_or_default().to_owned()
            })
        };
        assert_eq!(status(&records, &mut derived, &mut runs), "active");
        assert_eq!(status(&records, &mut derived, &mut runs), "active");
        assert_eq!(runs, 1, "the same version is not read again");
        records.upsert(order("o1", 2, "revoked"));
        assert_eq!(status(&records, &mut derived, &mut runs), "revoked");
        assert_eq!(runs, 2, "a new version is");
        for i in 0..200 {
            let record = Record::from_json(order(&format!("gone-{i}"), 1, "active")).unwrap();
            derived.of(&record, |_| String::new());
        }
        derived.forget_gone(&records);
        assert_eq!(derived.held, 1, "only what the store still holds is kept");
    }

    #[test]
    fn batches_put_alerts_first() {
        let mut batch = vec![
            update(5, "created", order("a", 1, "active")),
            update(6, "created", order("b", 1, "active")),
        ];
        batch[1].event_type = "CRITICAL_VALUE_ALERT".into();
        alerts_first(&mut batch);
        assert_eq!(batch[0].seq, 6);
        assert_eq!(batch[1].seq, 5);
    }
}
