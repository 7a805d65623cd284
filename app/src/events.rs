//! The event catalogue, the room names, and the classifier that turns one write into its events.
//!
//! Where it sits: step 2 of the event path. Inside the store's write transaction, `classify` is given
//! the previous and the new version of the resource and answers which events to append to the event
//! log and which rooms each goes to; the dispatcher (step 3) routes by those room names, and the
//! browser reads `event_type` from `update` messages with the same [`EventType`].
//!
//! What it must never do:
//! - Look at anything but its arguments. `classify` is a pure function of (previous version, new
//!   version), so replaying the history of a resource always derives the same events.
//! - Return no event. Every write yields at least one event and every event comes from a write; a write
//!   without an event would leave open charts silently stale.
//! - Panic, on any JSON at all: the store calls it with whatever it accepted.
//! - Decide who may see an event. Rooms say where an event is relevant; access is checked on join and on
//!   every delivery by the server.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::fhir;

/// The room every pharmacist watches: the prescription lifecycle for all patients.
pub const PHARMACY_QUEUE: &str = "pharmacy:queue";

/// The room every signed-in user is in: critical values, clinical alerts, and their clearing.
pub const FACILITY_ALERTS: &str = "facility:alerts";

/// What happened, in clinical terms. The wire names (`ORDER_PLACED`, ...) are part of the external
/// contract: they appear in `update` messages and in the event log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum EventType {
    /// A ServiceRequest was created.
    OrderPlaced,
    /// A ServiceRequest changed without being cancelled.
    OrderUpdated,
    /// A ServiceRequest was revoked, entered in error, or deleted.
    OrderCancelled,
    /// An Observation or DiagnosticReport became, or changed while, final/amended/corrected.
    ResultAvailable,
    /// A result became available with a critical interpretation (sent as well as RESULT_AVAILABLE).
    CriticalValueAlert,
    /// A MedicationRequest was created.
    MedicationPrescribed,
    /// A pharmacist completed a verification Task (see [`fhir::TASK_CODE_SYSTEM`]).
    PrescriptionVerified,
    /// A MedicationDispense was recorded or completed.
    MedicationDispensed,
    /// A Flag became active.
    ClinicalAlertTriggered,
    /// A clinician completed an acknowledgement Task (see [`fhir::ROUNDS_TASK_SYSTEM`]).
    AlertAcknowledged,
    /// A DocumentReference was created.
    NoteCreated,
    /// A DocumentReference's docStatus became final.
    NoteSigned,
    /// An Encounter put its patient on a unit.
    PatientAdmitted,
    /// An Encounter moved its patient from one unit to another.
    PatientTransferred,
    /// A Task changed in any way that is not a verification or acknowledgement.
    TaskUpdated,
    /// A Patient resource changed.
    PatientUpdated,
    /// Any other change to a resource in a patient's chart (a Condition, an allergy, a preliminary
    /// result, a discharge, a prescription's later life, ...). It exists so that every write about a
    /// patient reaches that patient's room even when it is not one of the named clinical events.
    ChartUpdated,
    /// A change to a resource about no patient (Practitioner, Location, Subscription, ...). It goes to
    /// no room; it exists so that the event log, and FHIR Subscriptions reading it, see every write.
    ResourceChanged,
}

impl EventType {
    /// Every event type, in catalogue order.
    pub const ALL: [EventType; 18] = [
        EventType::OrderPlaced,
        EventType::OrderUpdated,
        EventType::OrderCancelled,
        EventType::ResultAvailable,
        EventType::CriticalValueAlert,
        EventType::MedicationPrescribed,
        EventType::PrescriptionVerified,
        EventType::MedicationDispensed,
        EventType::ClinicalAlertTriggered,
        EventType::AlertAcknowledged,
        EventType::NoteCreated,
        EventType::NoteSigned,
        EventType::PatientAdmitted,
        EventType::PatientTransferred,
        EventType::TaskUpdated,
        EventType::PatientUpdated,
        EventType::ChartUpdated,
        EventType::ResourceChanged,
    ];

    /// The wire name, identical to the serde form; for the event log column and for metrics labels.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::OrderPlaced => "ORDER_PLACED",
            EventType::OrderUpdated => "ORDER_UPDATED",
            EventType::OrderCancelled => "ORDER_CANCELLED",
            EventType::ResultAvailable => "RESULT_AVAILABLE",
            EventType::CriticalValueAlert => "CRITICAL_VALUE_ALERT",
            EventType::MedicationPrescribed => "MEDICATION_PRESCRIBED",
            EventType::PrescriptionVerified => "PRESCRIPTION_VERIFIED",
            EventType::MedicationDispensed => "MEDICATION_DISPENSED",
            EventType::ClinicalAlertTriggered => "CLINICAL_ALERT_TRIGGERED",
            EventType::AlertAcknowledged => "ALERT_ACKNOWLEDGED",
            EventType::NoteCreated => "NOTE_CREATED",
            EventType::NoteSigned => "NOTE_SIGNED",
            EventType::PatientAdmitted => "PATIENT_ADMITTED",
            EventType::PatientTransferred => "PATIENT_TRANSFERRED",
            EventType::TaskUpdated => "TASK_UPDATED",
            EventType::PatientUpdated => "PATIENT_UPDATED",
            EventType::ChartUpdated => "CHART_UPDATED",
            EventType::ResourceChanged => "RESOURCE_CHANGED",
        }
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for EventType {
    type Err = ParseNameError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        EventType::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| ParseNameError::new("event type", s))
    }
}

/// What the write did to the resource, as FHIR REST names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Created,
    Updated,
    Deleted,
}

impl Action {
    /// The wire name, identical to the serde form.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Created => "created",
            Action::Updated => "updated",
            Action::Deleted => "deleted",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Action {
    type Err = ParseNameError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [Action::Created, Action::Updated, Action::Deleted]
            .into_iter()
            .find(|a| a.as_str() == s)
            .ok_or_else(|| ParseNameError::new("action", s))
    }
}

/// A name that is not one of the catalogue's: the event log or a client holds something this build
/// does not know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseNameError {
    what: &'static str,
    name: String,
}

impl ParseNameError {
    fn new(what: &'static str, name: &str) -> Self {
        ParseNameError {
            what,
            name: name.to_owned(),
        }
    }
}

impl fmt::Display for ParseNameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown {} {:?}", self.what, self.name)
    }
}

impl std::error::Error for ParseNameError {}

/// The room of everything about one patient.
pub fn patient_room(id: &str) -> String {
    format!("patient:{id}")
}

/// The room of one unit's admissions, transfers and discharges.
pub fn unit_room(id: &str) -> String {
    format!("unit:{id}")
}

/// A room name, parsed. Clients name rooms as strings; the server parses them before checking access,
/// so that a malformed name is refused for what it is rather than mistaken for an unknown patient.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Room {
    Patient(String),
    Unit(String),
    PharmacyQueue,
    FacilityAlerts,
}

impl fmt::Display for Room {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Room::Patient(id) => write!(f, "patient:{id}"),
            Room::Unit(id) => write!(f, "unit:{id}"),
            Room::PharmacyQueue => f.write_str(PHARMACY_QUEUE),
            Room::FacilityAlerts => f.write_str(FACILITY_ALERTS),
        }
    }
}

impl FromStr for Room {
    type Err = RoomError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_room(s)
    }
}

/// Why a room name was refused. The messages are safe to send back to the client: they do not echo
/// the name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoomError {
    /// Not one of the four room forms.
    Unknown,
    /// A `patient:` or `unit:` room whose id is not a FHIR id.
    InvalidId {
        /// "patient" or "unit".
        kind: &'static str,
    },
}

impl fmt::Display for RoomError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RoomError::Unknown => f.write_str(
                "unknown room: expected patient:{id}, unit:{id}, pharmacy:queue or facility:alerts",
            ),
            RoomError::InvalidId { kind } => write!(
                f,
                "invalid {kind} id in room name: a FHIR id is 1 to 64 characters from A-Z, a-z, 0-9, '-' and '.'"
            ),
        }
    }
}

impl std::error::Error for RoomError {}

/// Parses a room name as clients send it (`patient:p1`, `unit:w1`, `pharmacy:queue`,
/// `facility:alerts`). Names are case-sensitive, and ids must be FHIR ids, so one room has exactly one
/// spelling.
pub fn parse_room(s: &str) -> Result<Room, RoomError> {
    match s {
        PHARMACY_QUEUE => return Ok(Room::PharmacyQueue),
        FACILITY_ALERTS => return Ok(Room::FacilityAlerts),
        _ => {}
    }
    let (kind, id) = s.split_once(':').ok_or(RoomError::Unknown)?;
    let (kind, room): (&'static str, fn(String) -> Room) = match kind {
        "patient" => ("patient", Room::Patient),
        "unit" => ("unit", Room::Unit),
        _ => return Err(RoomError::Unknown),
    };
    if fhir::is_fhir_id(id) {
        Ok(room(id.to_owned()))
    } else {
        Err(RoomError::InvalidId { kind })
    }
}

/// One event a write yields, with the rooms it goes to (de-duplicated, in a stable order so the event
/// log is reproducible).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DerivedEvent {
    pub event_type: EventType,
    /// Room names as [`Room`] displays them. Empty exactly when `event_type` is RESOURCE_CHANGED.
    pub rooms: Vec<String>,
}

/// The events one write yields: never empty.
///
/// `prev` is the previous live version (`None` on create, and when a deleted resource is re-created);
/// `next` is the new version, or for [`Action::Deleted`] the last live version, the one deleted.
/// `resource_type` picks the rule; the patient comes from the resources themselves.
///
/// The rules are the catalogue in ARCHITECTURE.md made precise; each rule function below says why it
/// draws its lines where it does. Across all rules:
/// - A write with no previous live version counts as a creation, whatever `action` says, because to
///   every open chart the resource is new.
/// - The patient room is that of the patient `next` is about. If `prev` was about a different patient
///   (a misfiled result moved to the right chart, or a subject removed), the former patient's room
///   gets a CHART_UPDATED of its own so their chart can drop the resource; the rule's events, alerts
///   included, go only to the patient the resource is about now.
/// - An event keeps its type for as long as it has a room: a MedicationRequest with no patient is
///   still MEDICATION_PRESCRIBED to `pharmacy:queue`. If no event has a room left (the resource is about
///   no patient and no rule names another room), the write yields one RESOURCE_CHANGED with no rooms.
pub fn classify(
    resource_type: &str,
    action: Action,
    prev: Option<&Value>,
    next: &Value,
) -> Vec<DerivedEvent> {
    let change = Change::new(action, prev, next);
    let drafts = match resource_type {
        "ServiceRequest" => order(&change),
        "Observation" | "DiagnosticReport" => result(&change),
        "MedicationRequest" => prescription(&change),
        "MedicationDispense" => dispense(&change),
        "Task" => task(&change),
        "Flag" => flag(&change),
        "DocumentReference" => note(&change),
        "Encounter" => encounter(&change),
        "Patient" => vec![draft(EventType::PatientUpdated, vec![Target::Patient])],
        _ => vec![draft(EventType::ChartUpdated, vec![Target::Patient])],
    };
    let patient = fhir::patient_id(next);
    let mut events = resolve(drafts, patient.as_deref());
    if let Some(former) = change.prev.and_then(fhir::patient_id) {
        if patient.as_ref() != Some(&former) {
            events.push(DerivedEvent {
                event_type: EventType::ChartUpdated,
                rooms: vec![patient_room(&former)],
            });
        }
    }
    if events.is_empty() {
        events.push(DerivedEvent {
            event_type: EventType::ResourceChanged,
            rooms: Vec::new(),
        });
    }
    events
}

/// A write, normalised so the rules need not repeat the creation and deletion cases.
struct Change<'a> {
    /// True when no previous live version exists and the resource is not being deleted.
    created: bool,
    deleted: bool,
    /// The previous live version; always `None` when `created`.
    prev: Option<&'a Value>,
    next: &'a Value,
}

impl<'a> Change<'a> {
    fn new(action: Action, prev: Option<&'a Value>, next: &'a Value) -> Self {
        let deleted = action == Action::Deleted;
        let created = !deleted && (action == Action::Created || prev.is_none());
        Change {
            created,
            deleted,
            prev: if created { None } else { prev },
            next,
        }
    }

    /// Whether the write moved the resource into a state: `next` is in it and the previous live
    /// version (if any) was not. A deletion never moves anything into a state.
    fn became(&self, state: impl Fn(&Value) -> bool) -> bool {
        !self.deleted && state(self.next) && !self.prev.is_some_and(&state)
    }
}

/// Where an event goes, before the patient is known to exist.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    Patient,
    Unit(String),
    PharmacyQueue,
    FacilityAlerts,
}

/// An event before its rooms are resolved.
#[derive(Debug)]
struct Draft {
    event_type: EventType,
    targets: Vec<Target>,
}

fn draft(event_type: EventType, targets: Vec<Target>) -> Draft {
    Draft {
        event_type,
        targets,
    }
}

/// Turns targets into room names, dropping events left with no room (a patient event about no patient).
fn resolve(drafts: Vec<Draft>, patient: Option<&str>) -> Vec<DerivedEvent> {
    drafts
        .into_iter()
        .filter_map(|draft| {
            let mut rooms: Vec<String> = Vec::new();
            for target in draft.targets {
                let names = match target {
                    Target::Patient => patient.map(patient_room).into_iter().collect(),
                    Target::Unit(id) => vec![unit_room(&id)],
                    Target::PharmacyQueue => vec![PHARMACY_QUEUE.to_owned()],
                    Target::FacilityAlerts => vec![FACILITY_ALERTS.to_owned()],
                };
                for name in names {
                    if !rooms.contains(&name) {
                        rooms.push(name);
                    }
                }
            }
            (!rooms.is_empty()).then_some(DerivedEvent {
                event_type: draft.event_type,
                rooms,
            })
        })
        .collect()
}

fn status(resource: &Value) -> Option<&str> {
    resource.get("status")?.as_str()
}

fn has_status(resource: &Value, statuses: &[&str]) -> bool {
    status(resource).is_some_and(|s| statuses.contains(&s))
}

/// ServiceRequest. Cancellation wins over creation so that an order created already revoked never
/// appears on a chart as placed. Re-saving an order that was already cancelled is an update, not a
/// second cancellation.
fn order(change: &Change) -> Vec<Draft> {
    let cancelled = |r: &Value| has_status(r, &["revoked", "entered-in-error"]);
    let event_type = if change.deleted || change.became(cancelled) {
        EventType::OrderCancelled
    } else if change.created {
        EventType::OrderPlaced
    } else {
        EventType::OrderUpdated
    };
    vec![draft(event_type, vec![Target::Patient])]
}

/// Observation and DiagnosticReport. A result is available when it is final-ish and either new, newly
/// final, or changed in what a clinician reads (value, interpretation, status, conclusion, or the
/// patient it is filed under); a re-save that changes only metadata is a chart update. A critical
/// value alerts the facility once: when it first becomes available as critical for its patient, not
/// again on every amendment. A critical result moved from a wrong patient to the right one alerts
/// again, because the right patient's clinicians never saw the first alert.
fn result(change: &Change) -> Vec<Draft> {
    let final_ish = |r: &Value| has_status(r, &["final", "amended", "corrected"]);
    let next = change.next;
    let available = !change.deleted
        && final_ish(next)
        && change
            .prev
            .is_none_or(|prev| !final_ish(prev) || result_content_changed(prev, next));
    if !available {
        return vec![draft(EventType::ChartUpdated, vec![Target::Patient])];
    }
    let mut drafts = vec![draft(EventType::ResultAvailable, vec![Target::Patient])];
    let already_alerted = change.prev.is_some_and(|prev| {
        final_ish(prev)
            && fhir::is_critical(prev)
            && fhir::patient_id(prev) == fhir::patient_id(next)
    });
    if fhir::is_critical(next) && !already_alerted {
        drafts.push(draft(
            EventType::CriticalValueAlert,
            vec![Target::Patient, Target::FacilityAlerts],
        ));
    }
    drafts
}

/// Whether two versions of a result differ in anything a clinician reads: `value[x]`, interpretation,
/// status, conclusion and their structured forms, and the patient it is filed under (for that patient
/// the result is new).
fn result_content_changed(prev: &Value, next: &Value) -> bool {
    const FIELDS: &[&str] = &[
        "status",
        "subject",
        "interpretation",
        "component",
        "dataAbsentReason",
        "conclusion",
        "conclusionCode",
        "result",
        "presentedForm",
    ];
    let significant = |key: &str| FIELDS.contains(&key) || key.starts_with("value");
    let keys = |r: &Value| -> Vec<String> {
        r.as_object()
            .map(|o| o.keys().filter(|k| significant(k)).cloned().collect())
            .unwrap_or_default()
    };
    keys(prev)
        .iter()
        .chain(keys(next).iter())
        .any(|key| prev.get(key) != next.get(key))
}

/// MedicationRequest. The pharmacy queue sees every change, not only creation, because a cancelled or
/// changed prescription must leave or change in the queue before anyone dispenses it.
fn prescription(change: &Change) -> Vec<Draft> {
    let event_type = if change.created {
        EventType::MedicationPrescribed
    } else {
        EventType::ChartUpdated
    };
    vec![draft(
        event_type,
        vec![Target::Patient, Target::PharmacyQueue],
    )]
}

/// MedicationDispense. Recording a dispense announces it, and so does completing one that was recorded
/// earlier (in preparation); anything else is a chart update the queue still sees.
fn dispense(change: &Change) -> Vec<Draft> {
    let completed = |r: &Value| status(r) == Some("completed");
    let event_type = if change.created || change.became(completed) {
        EventType::MedicationDispensed
    } else {
        EventType::ChartUpdated
    };
    vec![draft(
        event_type,
        vec![Target::Patient, Target::PharmacyQueue],
    )]
}

/// Task. A verification or acknowledgement happens when its Task becomes completed. When a completed
/// one stops being completed or is deleted (the pharmacist or clinician withdraws it), the room that
/// saw it happen is told too, so that queue or banner goes back to "not yet verified/acknowledged".
fn task(change: &Change) -> Vec<Draft> {
    let completed = |r: &Value| status(r) == Some("completed");
    if change.became(completed) {
        match fhir::task_kind(change.next) {
            fhir::TaskKind::Verification => {
                return vec![draft(
                    EventType::PrescriptionVerified,
                    vec![Target::Patient, Target::PharmacyQueue],
                )]
            }
            fhir::TaskKind::Acknowledgement => {
                return vec![draft(
                    EventType::AlertAcknowledged,
                    vec![Target::Patient, Target::FacilityAlerts],
                )]
            }
            fhir::TaskKind::Other => {}
        }
    }
    let withdrawn = if change.deleted {
        Some(change.next).filter(|r| completed(r))
    } else if completed(change.next) {
        None
    } else {
        change.prev.filter(|r| completed(r))
    };
    let mut targets = vec![Target::Patient];
    match withdrawn.map(fhir::task_kind) {
        Some(fhir::TaskKind::Verification) => targets.push(Target::PharmacyQueue),
        Some(fhir::TaskKind::Acknowledgement) => targets.push(Target::FacilityAlerts),
        Some(fhir::TaskKind::Other) | None => {}
    }
    vec![draft(EventType::TaskUpdated, targets)]
}

/// Flag. Becoming active raises the alert facility-wide; ceasing to be active (or being deleted while
/// active) is told to the facility too, so every banner showing it clears.
fn flag(change: &Change) -> Vec<Draft> {
    let active = |r: &Value| status(r) == Some("active");
    if change.became(active) {
        return vec![draft(
            EventType::ClinicalAlertTriggered,
            vec![Target::Patient, Target::FacilityAlerts],
        )];
    }
    let was_active = change.prev.is_some_and(active);
    let cleared = if change.deleted {
        active(change.next) || was_active
    } else {
        was_active && !active(change.next)
    };
    let mut targets = vec![Target::Patient];
    if cleared {
        targets.push(Target::FacilityAlerts);
    }
    vec![draft(EventType::ChartUpdated, targets)]
}

/// DocumentReference. A note created already signed is both created and signed, so both events go
/// out and a client listening for either is right.
fn note(change: &Change) -> Vec<Draft> {
    let signed = |r: &Value| r.get("docStatus").and_then(Value::as_str) == Some("final");
    let mut drafts = Vec::new();
    if change.created {
        drafts.push(draft(EventType::NoteCreated, vec![Target::Patient]));
    }
    if change.became(signed) {
        drafts.push(draft(EventType::NoteSigned, vec![Target::Patient]));
    }
    if drafts.is_empty() {
        drafts.push(draft(EventType::ChartUpdated, vec![Target::Patient]));
    }
    drafts
}

/// Encounter. The unit rooms follow the patient: arriving on a unit is an admission there, moving is a
/// transfer both units see, and leaving (discharge, cancellation, deletion) is a chart update the old
/// unit also sees so its panel drops the patient. Deleting an encounter is leaving its unit.
fn encounter(change: &Change) -> Vec<Draft> {
    let (before, after) = if change.deleted {
        (fhir::encounter_unit(change.next), None)
    } else {
        (
            change.prev.and_then(fhir::encounter_unit),
            fhir::encounter_unit(change.next),
        )
    };
    let (event_type, targets) = match (before, after) {
        (None, Some(unit)) => (
            EventType::PatientAdmitted,
            vec![Target::Unit(unit), Target::Patient],
        ),
        (Some(from), Some(to)) if from != to => (
            EventType::PatientTransferred,
            vec![Target::Unit(from), Target::Unit(to), Target::Patient],
        ),
        (Some(from), None) => (
            EventType::ChartUpdated,
            vec![Target::Unit(from), Target::Patient],
        ),
        _ => (EventType::ChartUpdated, vec![Target::Patient]),
    };
    vec![draft(event_type, targets)]
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const P1: &str = "patient:p1";

    fn ev(event_type: EventType, rooms: &[&str]) -> DerivedEvent {
        DerivedEvent {
            event_type,
            rooms: rooms.iter().map(|r| r.to_string()).collect(),
        }
    }

    fn created(resource_type: &str, next: &Value) -> Vec<DerivedEvent> {
        classify(resource_type, Action::Created, None, next)
    }

    fn updated(resource_type: &str, prev: &Value, next: &Value) -> Vec<DerivedEvent> {
        classify(resource_type, Action::Updated, Some(prev), next)
    }

    fn deleted(resource_type: &str, last: &Value) -> Vec<DerivedEvent> {
        classify(resource_type, Action::Deleted, None, last)
    }

    /// Returns `resource` with `status` (or another field) replaced.
    fn with(resource: &Value, field: &str, value: Value) -> Value {
        let mut copy = resource.clone();
        copy[field] = value;
        copy
    }

    // ---- ServiceRequest ----------------------------------------------------------------------

    fn order_json(status: &str) -> Value {
        json!({
            "resourceType": "ServiceRequest",
            "id": "sr1",
            "status": status,
            "intent": "order",
            "category": [{"coding": [{"system": "http://snomed.info/sct", "code": "108252007", "display": "Laboratory procedure"}]}],
            "code": {"coding": [{"system": "http://loinc.org", "code": "2823-3", "display": "Potassium [Moles/volume] in Serum or Plasma"}]},
            "subject": {"reference": "Patient/p1"},
            "encounter": {"reference": "Encounter/e1"},
            "authoredOn": "2026-11-25T08:00:00Z",
            "requester": {"reference": "Practitioner/dr1"},
            "priority": "routine"
        })
    }

    #[test]
    fn order_created_is_placed() {
        assert_eq!(
            created("ServiceRequest", &order_json("active")),
            vec![ev(EventType::OrderPlaced, &[P1])]
        );
    }

    #[test]
    fn order_created_already_revoked_is_cancelled() {
        assert_eq!(
            created("ServiceRequest", &order_json("revoked")),
            vec![ev(EventType::OrderCancelled, &[P1])]
        );
    }

    #[test]
    fn order_revoked_or_entered_in_error_is_cancelled() {
        for status in ["revoked", "entered-in-error"] {
            assert_eq!(
                updated("ServiceRequest", &order_json("active"), &order_json(status)),
                vec![ev(EventType::OrderCancelled, &[P1])],
                "{status}"
            );
        }
    }

    #[test]
    fn order_deleted_is_cancelled() {
        assert_eq!(
            deleted("ServiceRequest", &order_json("active")),
            vec![ev(EventType::OrderCancelled, &[P1])]
        );
    }

    #[test]
    fn order_other_change_is_updated() {
        let prev = order_json("active");
        let next = with(&prev, "priority", json!("stat"));
        assert_eq!(
            updated("ServiceRequest", &prev, &next),
            vec![ev(EventType::OrderUpdated, &[P1])]
        );
        let completed = order_json("completed");
        assert_eq!(
            updated("ServiceRequest", &prev, &completed),
            vec![ev(EventType::OrderUpdated, &[P1])]
        );
        let revoked = order_json("revoked");
        assert_eq!(
            updated(
                "ServiceRequest",
                &revoked,
                &with(&revoked, "priority", json!("stat"))
            ),
            vec![ev(EventType::OrderUpdated, &[P1])]
        );
    }

    #[test]
    fn order_recreated_after_delete_is_placed_again() {
        assert_eq!(
            classify(
                "ServiceRequest",
                Action::Updated,
                None,
                &order_json("active")
            ),
            vec![ev(EventType::OrderPlaced, &[P1])]
        );
    }

    // ---- Observation / DiagnosticReport ------------------------------------------------------

    fn potassium(status: &str, value: f64, interpretation: Option<&str>) -> Value {
        let mut obs = json!({
            "resourceType": "Observation",
            "id": "k1",
            "meta": {"versionId": "1", "lastUpdated": "2026-11-25T09:00:00Z"},
            "status": status,
            "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "laboratory"}]}],
            "code": {"coding": [{"system": "http://loinc.org", "code": "2823-3", "display": "Potassium [Moles/volume] in Serum or Plasma"}]},
            "subject": {"reference": "Patient/p1"},
            "encounter": {"reference": "Encounter/e1"},
            "effectiveDateTime": "2026-11-25T08:30:00Z",
            "issued": "2026-11-25T09:00:00Z",
            "valueQuantity": {"value": value, "unit": "mmol/L", "system": "http://unitsofmeasure.org", "code": "mmol/L"},
            "referenceRange": [{"low": {"value": 3.5, "unit": "mmol/L"}, "high": {"value": 5.1, "unit": "mmol/L"}}]
        });
        if let Some(code) = interpretation {
            obs["interpretation"] = json!([{"coding": [{
                "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation",
                "code": code
            }]}]);
        }
        obs
    }

    fn critical_pair() -> Vec<DerivedEvent> {
        vec![
            ev(EventType::ResultAvailable, &[P1]),
            ev(EventType::CriticalValueAlert, &[P1, FACILITY_ALERTS]),
        ]
    }

    #[test]
    fn result_created_final_is_available() {
        assert_eq!(
            created("Observation", &potassium("final", 4.2, Some("N"))),
            vec![ev(EventType::ResultAvailable, &[P1])]
        );
    }

    #[test]
    fn result_preliminary_is_a_chart_update() {
        let prelim = potassium("preliminary", 4.2, None);
        assert_eq!(
            created("Observation", &prelim),
            vec![ev(EventType::ChartUpdated, &[P1])]
        );
        assert_eq!(
            created("Observation", &potassium("registered", 4.2, None)),
            vec![ev(EventType::ChartUpdated, &[P1])]
        );
    }

    #[test]
    fn result_becoming_final_or_amended_is_available() {
        let prelim = potassium("preliminary", 4.2, None);
        let final_ = potassium("final", 4.2, Some("N"));
        assert_eq!(
            updated("Observation", &prelim, &final_),
            vec![ev(EventType::ResultAvailable, &[P1])]
        );
        let amended = potassium("amended", 4.4, Some("N"));
        assert_eq!(
            updated("Observation", &final_, &amended),
            vec![ev(EventType::ResultAvailable, &[P1])]
        );
        let corrected_value = potassium("final", 4.5, Some("N"));
        assert_eq!(
            updated("Observation", &final_, &corrected_value),
            vec![ev(EventType::ResultAvailable, &[P1])]
        );
    }

    #[test]
    fn final_result_resaved_unchanged_is_a_chart_update() {
        let final_ = potassium("final", 4.2, Some("N"));
        let resaved = with(&final_, "meta", json!({"versionId": "2"}));
        assert_eq!(
            updated("Observation", &final_, &resaved),
            vec![ev(EventType::ChartUpdated, &[P1])]
        );
    }

    #[test]
    fn critical_high_result_alerts_the_facility() {
        assert_eq!(
            created("Observation", &potassium("final", 7.1, Some("HH"))),
            critical_pair()
        );
    }

    #[test]
    fn critical_low_result_alerts_the_facility() {
        assert_eq!(
            created("Observation", &potassium("final", 2.1, Some("LL"))),
            critical_pair()
        );
    }

    #[test]
    fn critical_value_is_not_re_alerted_on_resave() {
        let first = potassium("final", 7.1, Some("HH"));
        let resaved = with(&first, "meta", json!({"versionId": "2"}));
        assert_eq!(
            updated("Observation", &first, &resaved),
            vec![ev(EventType::ChartUpdated, &[P1])]
        );
        let amended = potassium("amended", 7.3, Some("HH"));
        assert_eq!(
            updated("Observation", &first, &amended),
            vec![ev(EventType::ResultAvailable, &[P1])]
        );
    }

    #[test]
    fn critical_value_alerts_when_it_first_becomes_final_or_critical() {
        let prelim_critical = potassium("preliminary", 7.1, Some("HH"));
        assert_eq!(
            created("Observation", &prelim_critical),
            vec![ev(EventType::ChartUpdated, &[P1])]
        );
        let final_critical = potassium("final", 7.1, Some("HH"));
        assert_eq!(
            updated("Observation", &prelim_critical, &final_critical),
            critical_pair()
        );
        let normal = potassium("final", 4.2, Some("N"));
        let corrected = potassium("corrected", 7.1, Some("HH"));
        assert_eq!(updated("Observation", &normal, &corrected), critical_pair());
    }

    #[test]
    fn critical_component_interpretation_alerts() {
        let bp = json!({
            "resourceType": "Observation",
            "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "85354-9"}]},
            "subject": {"reference": "Patient/p1"},
            "component": [
                {"code": {"coding": [{"system": "http://loinc.org", "code": "8480-6"}]},
                 "valueQuantity": {"value": 232, "unit": "mm[Hg]"},
                 "interpretation": [{"coding": [{"code": "AA"}]}]},
                {"code": {"coding": [{"system": "http://loinc.org", "code": "8462-4"}]},
                 "valueQuantity": {"value": 121, "unit": "mm[Hg]"}}
            ]
        });
        assert_eq!(created("Observation", &bp), critical_pair());
    }

    fn report(status: &str, conclusion_code: &str) -> Value {
        json!({
            "resourceType": "DiagnosticReport",
            "id": "dr1",
            "status": status,
            "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0074", "code": "LAB"}]}],
            "code": {"coding": [{"system": "http://loinc.org", "code": "24323-8", "display": "Comprehensive metabolic panel"}]},
            "subject": {"reference": "Patient/p1"},
            "issued": "2026-11-25T09:05:00Z",
            "result": [{"reference": "Observation/k1"}],
            "conclusion": "See potassium.",
            "conclusionCode": [{"coding": [{"system": "http://rounds.example.org/fhir/CodeSystem/report-flag", "code": conclusion_code}]}]
        })
    }

    #[test]
    fn diagnostic_report_final_is_available_and_critical_alerts() {
        assert_eq!(
            created("DiagnosticReport", &report("final", "normal")),
            vec![ev(EventType::ResultAvailable, &[P1])]
        );
        assert_eq!(
            updated(
                "DiagnosticReport",
                &report("partial", "critical"),
                &report("final", "critical")
            ),
            critical_pair()
        );
    }

    #[test]
    fn result_cancelled_entered_in_error_or_deleted_is_a_chart_update() {
        let final_ = potassium("final", 7.1, Some("HH"));
        for status in ["cancelled", "entered-in-error"] {
            assert_eq!(
                updated(
                    "Observation",
                    &final_,
                    &with(&final_, "status", json!(status))
                ),
                vec![ev(EventType::ChartUpdated, &[P1])],
                "{status}"
            );
        }
        assert_eq!(
            deleted("Observation", &final_),
            vec![ev(EventType::ChartUpdated, &[P1])]
        );
    }

    #[test]
    fn misfiled_result_moved_to_another_patient_reaches_both_charts() {
        let misfiled = potassium("final", 4.2, Some("N"));
        let moved = with(&misfiled, "subject", json!({"reference": "Patient/p2"}));
        assert_eq!(
            updated("Observation", &misfiled, &moved),
            vec![
                ev(EventType::ResultAvailable, &["patient:p2"]),
                ev(EventType::ChartUpdated, &[P1])
            ]
        );
        let critical = potassium("final", 7.1, Some("HH"));
        let critical_moved = with(&critical, "subject", json!({"reference": "Patient/p2"}));
        assert_eq!(
            updated("Observation", &critical, &critical_moved),
            vec![
                ev(EventType::ResultAvailable, &["patient:p2"]),
                ev(
                    EventType::CriticalValueAlert,
                    &["patient:p2", FACILITY_ALERTS]
                ),
                ev(EventType::ChartUpdated, &[P1])
            ]
        );
    }

    // ---- MedicationRequest / MedicationDispense ----------------------------------------------

    fn prescription_json(status: &str) -> Value {
        json!({
            "resourceType": "MedicationRequest",
            "id": "mr1",
            "status": status,
            "intent": "order",
            "medicationCodeableConcept": {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "197361", "display": "Amlodipine 5 MG Oral Tablet"}]},
            "subject": {"reference": "Patient/p1"},
            "encounter": {"reference": "Encounter/e1"},
            "authoredOn": "2026-11-25T08:10:00Z",
            "requester": {"reference": "Practitioner/dr1"},
            "dosageInstruction": [{"text": "5 mg once daily"}]
        })
    }

    #[test]
    fn prescription_created_goes_to_the_pharmacy_queue() {
        assert_eq!(
            created("MedicationRequest", &prescription_json("active")),
            vec![ev(EventType::MedicationPrescribed, &[P1, PHARMACY_QUEUE])]
        );
    }

    #[test]
    fn prescription_changes_and_deletes_reach_the_pharmacy_queue() {
        let active = prescription_json("active");
        assert_eq!(
            updated(
                "MedicationRequest",
                &active,
                &prescription_json("cancelled")
            ),
            vec![ev(EventType::ChartUpdated, &[P1, PHARMACY_QUEUE])]
        );
        assert_eq!(
            deleted("MedicationRequest", &active),
            vec![ev(EventType::ChartUpdated, &[P1, PHARMACY_QUEUE])]
        );
    }

    #[test]
    fn prescription_without_patient_still_reaches_the_pharmacy_queue() {
        let mut orphan = prescription_json("active");
        orphan["subject"] = json!({"reference": "Group/ward-round"});
        assert_eq!(
            created("MedicationRequest", &orphan),
            vec![ev(EventType::MedicationPrescribed, &[PHARMACY_QUEUE])]
        );
    }

    fn dispense_json(status: &str) -> Value {
        json!({
            "resourceType": "MedicationDispense",
            "id": "md1",
            "status": status,
            "medicationCodeableConcept": {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "197361"}]},
            "subject": {"reference": "Patient/p1"},
            "authorizingPrescription": [{"reference": "MedicationRequest/mr1"}],
            "whenHandedOver": "2026-11-25T11:00:00Z"
        })
    }

    #[test]
    fn dispense_recorded_or_completed_is_dispensed() {
        let dispensed = vec![ev(EventType::MedicationDispensed, &[P1, PHARMACY_QUEUE])];
        assert_eq!(
            created("MedicationDispense", &dispense_json("completed")),
            dispensed
        );
        assert_eq!(
            updated(
                "MedicationDispense",
                &dispense_json("in-progress"),
                &dispense_json("completed")
            ),
            dispensed
        );
    }

    #[test]
    fn dispense_other_change_is_a_chart_update_for_the_queue() {
        let done = dispense_json("completed");
        let chart = vec![ev(EventType::ChartUpdated, &[P1, PHARMACY_QUEUE])];
        assert_eq!(
            updated(
                "MedicationDispense",
                &done,
                &with(&done, "whenHandedOver", json!("2026-11-25T11:05:00Z"))
            ),
            chart
        );
        assert_eq!(
            updated(
                "MedicationDispense",
                &done,
                &dispense_json("entered-in-error")
            ),
            chart
        );
        assert_eq!(deleted("MedicationDispense", &done), chart);
    }

    // ---- Task --------------------------------------------------------------------------------

    fn verification(status: &str) -> Value {
        json!({
            "resourceType": "Task",
            "id": "t1",
            "status": status,
            "intent": "order",
            "code": {"coding": [{"system": fhir::TASK_CODE_SYSTEM, "code": fhir::APPROVE}]},
            "focus": {"reference": "MedicationRequest/mr1"},
            "for": {"reference": "Patient/p1"},
            "owner": {"reference": "Practitioner/rx1"},
            "authoredOn": "2026-11-25T08:11:00Z",
            "lastModified": "2026-11-25T08:40:00Z"
        })
    }

    fn acknowledgement(status: &str, focus: &str) -> Value {
        json!({
            "resourceType": "Task",
            "id": "t2",
            "status": status,
            "intent": "order",
            "code": {"coding": [{"system": fhir::ROUNDS_TASK_SYSTEM, "code": fhir::ACKNOWLEDGE}]},
            "focus": {"reference": focus},
            "for": {"reference": "Patient/p1"},
            "owner": {"reference": "Practitioner/dr1"}
        })
    }

    #[test]
    fn verification_task_completed_verifies_the_prescription() {
        let verified = vec![ev(EventType::PrescriptionVerified, &[P1, PHARMACY_QUEUE])];
        assert_eq!(created("Task", &verification("completed")), verified);
        assert_eq!(
            updated(
                "Task",
                &verification("in-progress"),
                &verification("completed")
            ),
            verified
        );
    }

    #[test]
    fn verification_task_other_changes_are_task_updates() {
        assert_eq!(
            created("Task", &verification("requested")),
            vec![ev(EventType::TaskUpdated, &[P1])]
        );
        let done = verification("completed");
        assert_eq!(
            updated(
                "Task",
                &done,
                &with(&done, "lastModified", json!("2026-11-25T08:45:00Z"))
            ),
            vec![ev(EventType::TaskUpdated, &[P1])]
        );
    }

    #[test]
    fn withdrawn_verification_tells_the_pharmacy_queue() {
        let done = verification("completed");
        assert_eq!(
            updated("Task", &done, &verification("entered-in-error")),
            vec![ev(EventType::TaskUpdated, &[P1, PHARMACY_QUEUE])]
        );
        assert_eq!(
            deleted("Task", &done),
            vec![ev(EventType::TaskUpdated, &[P1, PHARMACY_QUEUE])]
        );
    }

    #[test]
    fn acknowledgement_task_completed_acknowledges_the_alert() {
        let acknowledged = vec![ev(EventType::AlertAcknowledged, &[P1, FACILITY_ALERTS])];
        assert_eq!(
            created("Task", &acknowledgement("completed", "Observation/k1")),
            acknowledged
        );
        assert_eq!(
            updated(
                "Task",
                &acknowledgement("requested", "Flag/f1"),
                &acknowledgement("completed", "Flag/f1")
            ),
            acknowledged
        );
        assert_eq!(
            created(
                "Task",
                &acknowledgement("completed", "DiagnosticReport/dr1")
            ),
            acknowledged
        );
    }

    #[test]
    fn acknowledgement_resaved_or_withdrawn() {
        let done = acknowledgement("completed", "Observation/k1");
        assert_eq!(
            updated(
                "Task",
                &done,
                &with(&done, "note", json!([{"text": "called Dr A"}]))
            ),
            vec![ev(EventType::TaskUpdated, &[P1])]
        );
        assert_eq!(
            updated(
                "Task",
                &done,
                &acknowledgement("cancelled", "Observation/k1")
            ),
            vec![ev(EventType::TaskUpdated, &[P1, FACILITY_ALERTS])]
        );
    }

    #[test]
    fn other_task_changes_are_task_updates() {
        let chore = json!({
            "resourceType": "Task",
            "status": "requested",
            "intent": "order",
            "code": {"coding": [{"system": fhir::TASK_CODE_SYSTEM, "code": "fulfill"}]},
            "focus": {"reference": "ServiceRequest/sr1"},
            "for": {"reference": "Patient/p1"}
        });
        assert_eq!(
            created("Task", &chore),
            vec![ev(EventType::TaskUpdated, &[P1])]
        );
        let done = with(&chore, "status", json!("completed"));
        assert_eq!(
            updated("Task", &chore, &done),
            vec![ev(EventType::TaskUpdated, &[P1])]
        );
        assert_eq!(
            deleted("Task", &done),
            vec![ev(EventType::TaskUpdated, &[P1])]
        );
    }

    // ---- Flag --------------------------------------------------------------------------------

    fn flag_json(status: &str) -> Value {
        json!({
            "resourceType": "Flag",
            "id": "f1",
            "status": status,
            "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/flag-category", "code": "safety"}]}],
            "code": {"text": "Fall risk"},
            "subject": {"reference": "Patient/p1"},
            "period": {"start": "2026-11-25T07:00:00Z"}
        })
    }

    #[test]
    fn flag_becoming_active_triggers_a_clinical_alert() {
        let triggered = vec![ev(
            EventType::ClinicalAlertTriggered,
            &[P1, FACILITY_ALERTS],
        )];
        assert_eq!(created("Flag", &flag_json("active")), triggered);
        assert_eq!(
            updated("Flag", &flag_json("inactive"), &flag_json("active")),
            triggered
        );
    }

    #[test]
    fn flag_clearing_reaches_the_facility() {
        let cleared = vec![ev(EventType::ChartUpdated, &[P1, FACILITY_ALERTS])];
        assert_eq!(
            updated("Flag", &flag_json("active"), &flag_json("inactive")),
            cleared
        );
        assert_eq!(deleted("Flag", &flag_json("active")), cleared);
    }

    #[test]
    fn flag_other_changes_are_chart_updates() {
        let chart = vec![ev(EventType::ChartUpdated, &[P1])];
        let active = flag_json("active");
        assert_eq!(
            updated(
                "Flag",
                &active,
                &with(&active, "code", json!({"text": "High fall risk"}))
            ),
            chart
        );
        assert_eq!(created("Flag", &flag_json("inactive")), chart);
        assert_eq!(deleted("Flag", &flag_json("inactive")), chart);
    }

    // ---- DocumentReference -------------------------------------------------------------------

    fn note_json(doc_status: &str) -> Value {
        json!({
            "resourceType": "DocumentReference",
            "id": "n1",
            "status": "current",
            "docStatus": doc_status,
            "type": {"coding": [{"system": "http://loinc.org", "code": "11506-3", "display": "Progress note"}]},
            "category": [{"coding": [{"system": "http://hl7.org/fhir/us/core/CodeSystem/us-core-documentreference-category", "code": "clinical-note"}]}],
            "subject": {"reference": "Patient/p1"},
            "date": "2026-11-25T10:00:00Z",
            "author": [{"reference": "Practitioner/dr1"}],
            "content": [{"attachment": {"contentType": "text/plain", "data": "U09BUDogc3RhYmxl"}}],
            "context": {"encounter": [{"reference": "Encounter/e1"}]}
        })
    }

    #[test]
    fn note_created_and_signed() {
        assert_eq!(
            created("DocumentReference", &note_json("preliminary")),
            vec![ev(EventType::NoteCreated, &[P1])]
        );
        assert_eq!(
            created("DocumentReference", &note_json("final")),
            vec![
                ev(EventType::NoteCreated, &[P1]),
                ev(EventType::NoteSigned, &[P1])
            ]
        );
        assert_eq!(
            updated(
                "DocumentReference",
                &note_json("preliminary"),
                &note_json("final")
            ),
            vec![ev(EventType::NoteSigned, &[P1])]
        );
    }

    #[test]
    fn note_other_changes_are_chart_updates() {
        let signed = note_json("final");
        assert_eq!(
            updated("DocumentReference", &signed, &note_json("amended")),
            vec![ev(EventType::ChartUpdated, &[P1])]
        );
        assert_eq!(
            updated(
                "DocumentReference",
                &signed,
                &with(&signed, "date", json!("2026-11-25T10:05:00Z"))
            ),
            vec![ev(EventType::ChartUpdated, &[P1])]
        );
        assert_eq!(
            deleted("DocumentReference", &signed),
            vec![ev(EventType::ChartUpdated, &[P1])]
        );
    }

    // ---- Encounter ---------------------------------------------------------------------------

    fn stay(status: &str, wards: &[(&str, &str)]) -> Value {
        let location: Vec<Value> = wards
            .iter()
            .map(|(ward, ward_status)| {
                json!({
                    "location": {"reference": format!("Location/{ward}")},
                    "status": ward_status,
                    "physicalType": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/location-physical-type", "code": "wa", "display": "Ward"}]}
                })
            })
            .collect();
        json!({
            "resourceType": "Encounter",
            "id": "e1",
            "status": status,
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "IMP", "display": "inpatient encounter"},
            "subject": {"reference": "Patient/p1"},
            "period": {"start": "2026-11-24T22:00:00Z"},
            "location": location,
            "serviceProvider": {"reference": "Organization/hosp"}
        })
    }

    #[test]
    fn encounter_arriving_on_a_unit_is_an_admission() {
        let admitted = vec![ev(EventType::PatientAdmitted, &["unit:w1", P1])];
        assert_eq!(
            updated(
                "Encounter",
                &stay("planned", &[("w1", "planned")]),
                &stay("in-progress", &[("w1", "active")])
            ),
            admitted
        );
        assert_eq!(
            created("Encounter", &stay("in-progress", &[("w1", "active")])),
            admitted
        );
    }

    #[test]
    fn encounter_moving_unit_is_a_transfer_both_units_see() {
        assert_eq!(
            updated(
                "Encounter",
                &stay("in-progress", &[("w1", "active")]),
                &stay("in-progress", &[("w1", "completed"), ("w2", "active")])
            ),
            vec![ev(
                EventType::PatientTransferred,
                &["unit:w1", "unit:w2", P1]
            )]
        );
    }

    #[test]
    fn encounter_leaving_its_unit_tells_the_old_unit() {
        let on_ward = stay("in-progress", &[("w1", "active")]);
        let left = vec![ev(EventType::ChartUpdated, &["unit:w1", P1])];
        assert_eq!(
            updated(
                "Encounter",
                &on_ward,
                &stay("finished", &[("w1", "completed")])
            ),
            left
        );
        assert_eq!(
            updated(
                "Encounter",
                &on_ward,
                &stay("entered-in-error", &[("w1", "active")])
            ),
            left
        );
        assert_eq!(deleted("Encounter", &on_ward), left);
    }

    #[test]
    fn encounter_other_changes_are_chart_updates() {
        let on_ward = stay("in-progress", &[("w1", "active")]);
        assert_eq!(
            updated(
                "Encounter",
                &on_ward,
                &with(&on_ward, "period", json!({"start": "2026-11-24T21:55:00Z"}))
            ),
            vec![ev(EventType::ChartUpdated, &[P1])]
        );
        assert_eq!(
            created("Encounter", &stay("planned", &[("w1", "planned")])),
            vec![ev(EventType::ChartUpdated, &[P1])]
        );
        let outpatient = json!({"resourceType": "Encounter", "status": "in-progress",
            "subject": {"reference": "Patient/p1"},
            "location": [{"location": {"reference": "Location/clinic-3"}, "status": "active"}]});
        assert_eq!(
            created("Encounter", &outpatient),
            vec![ev(EventType::ChartUpdated, &[P1])]
        );
    }

    // ---- Patient, other chart resources, resources about no patient ---------------------------

    #[test]
    fn patient_changes_are_patient_updates() {
        let patient = json!({
            "resourceType": "Patient",
            "id": "p1",
            "identifier": [{"system": "http://rounds.example.org/mrn", "value": "MRN-0001"}],
            "active": true,
            "name": [{"use": "official", "family": "Okafor", "given": ["Ada"]}],
            "gender": "female",
            "birthDate": "1957-03-14"
        });
        let expected = vec![ev(EventType::PatientUpdated, &[P1])];
        assert_eq!(created("Patient", &patient), expected);
        assert_eq!(
            updated("Patient", &patient, &with(&patient, "active", json!(false))),
            expected
        );
        assert_eq!(deleted("Patient", &patient), expected);
    }

    #[test]
    fn other_chart_resources_are_chart_updates() {
        let resources = [
            json!({
                "resourceType": "Condition",
                "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}]},
                "code": {"coding": [{"system": "http://snomed.info/sct", "code": "38341003", "display": "Hypertension"}]},
                "subject": {"reference": "Patient/p1"}
            }),
            json!({
                "resourceType": "AllergyIntolerance",
                "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical", "code": "active"}]},
                "type": "allergy",
                "category": ["medication"],
                "criticality": "high",
                "code": {"coding": [{"system": "http://snomed.info/sct", "code": "91936005", "display": "Allergy to penicillin"}]},
                "patient": {"reference": "Patient/p1"}
            }),
            json!({
                "resourceType": "CareTeam",
                "status": "active",
                "subject": {"reference": "Patient/p1"},
                "participant": [{"member": {"reference": "Practitioner/dr1"}, "role": [{"text": "attending"}]}]
            }),
        ];
        for resource in resources {
            let resource_type = fhir::resource_type(&resource)
                .unwrap_or_default()
                .to_owned();
            let expected = vec![ev(EventType::ChartUpdated, &[P1])];
            assert_eq!(
                created(&resource_type, &resource),
                expected,
                "{resource_type}"
            );
            assert_eq!(
                updated(&resource_type, &resource, &resource),
                expected,
                "{resource_type}"
            );
            assert_eq!(
                deleted(&resource_type, &resource),
                expected,
                "{resource_type}"
            );
        }
    }

    #[test]
    fn resources_about_no_patient_are_resource_changes_to_no_room() {
        let practitioner = json!({
            "resourceType": "Practitioner",
            "id": "dr1",
            "identifier": [{"system": "http://hl7.org/fhir/sid/us-npi", "value": "1234567893"}],
            "active": true,
            "name": [{"family": "Adeyemi", "given": ["Tunde"]}]
        });
        let location = json!({"resourceType": "Location", "id": "w1", "status": "active", "name": "Ward 4B",
            "physicalType": {"coding": [{"code": "wa"}]}});
        let subscription = json!({"resourceType": "Subscription", "status": "active",
            "criteria": "Observation?subject=Patient/p1", "channel": {"type": "websocket"}});
        let expected = vec![ev(EventType::ResourceChanged, &[])];
        for (resource_type, resource) in [
            ("Practitioner", practitioner),
            ("Location", location),
            ("Subscription", subscription),
        ] {
            assert_eq!(created(resource_type, &resource), expected);
            assert_eq!(updated(resource_type, &resource, &resource), expected);
            assert_eq!(deleted(resource_type, &resource), expected);
        }
        let unlinked_obs = with(&potassium("final", 4.2, None), "subject", json!(null));
        assert_eq!(created("Observation", &unlinked_obs), expected);
        assert_eq!(
            updated("Observation", &potassium("final", 4.2, None), &unlinked_obs),
            vec![ev(EventType::ChartUpdated, &[P1])],
            "the former patient's chart must drop it"
        );
    }

    #[test]
    fn rooms_within_an_event_are_deduplicated_in_order() {
        let events = resolve(
            vec![draft(
                EventType::PatientTransferred,
                vec![
                    Target::Unit("w1".into()),
                    Target::Patient,
                    Target::Unit("w1".into()),
                    Target::Patient,
                    Target::FacilityAlerts,
                    Target::FacilityAlerts,
                ],
            )],
            Some("p1"),
        );
        assert_eq!(
            events,
            vec![ev(
                EventType::PatientTransferred,
                &["unit:w1", P1, FACILITY_ALERTS]
            )]
        );
        assert_eq!(
            classify(
                "Observation",
                Action::Updated,
                Some(&potassium("final", 4.2, None)),
                &potassium("final", 4.3, None)
            ),
            vec![ev(EventType::ResultAvailable, &[P1])]
        );
    }

    #[test]
    fn classify_never_returns_nothing_and_never_panics() {
        let actions = [Action::Created, Action::Updated, Action::Deleted];
        let mut types: Vec<&str> = fhir::RESOURCE_TYPES.to_vec();
        types.extend(["Basic", ""]);
        for resource_type in types {
            let bodies = [
                json!({"resourceType": resource_type, "id": "x1"}),
                json!(42),
                json!(null),
                json!("Patient/p1"),
                json!([{"status": "final"}]),
                json!({"status": 7}),
                json!({
                    "resourceType": resource_type,
                    "status": ["final"],
                    "subject": "Patient/p1",
                    "patient": {"reference": 7},
                    "for": {"reference": "Patient/"},
                    "location": {"location": "Location/w1"},
                    "interpretation": {"coding": "HH"},
                    "component": [7, null, {"interpretation": 3}],
                    "conclusionCode": [{"coding": [7]}],
                    "code": {"coding": {"code": "approve"}},
                    "focus": [],
                    "docStatus": false,
                    "meta": {"security": 1}
                }),
                json!({
                    "resourceType": resource_type,
                    "id": "x1",
                    "status": "in-progress",
                    "subject": {"reference": "Patient/p1"},
                    "location": [7, {"location": 7, "physicalType": {"coding": [{"code": "wa"}]}}]
                }),
            ];
            for next in &bodies {
                for prev in bodies.iter().map(Some).chain([None]) {
                    for action in actions {
                        let events = classify(resource_type, action, prev, next);
                        assert!(
                            !events.is_empty(),
                            "{resource_type} {action} {prev:?} -> {next}"
                        );
                        for event in &events {
                            assert_eq!(
                                event.rooms.is_empty(),
                                event.event_type == EventType::ResourceChanged,
                                "{resource_type} {action} {prev:?} -> {next}"
                            );
                            for room in &event.rooms {
                                assert!(parse_room(room).is_ok(), "{room}");
                            }
                        }
                    }
                }
            }
        }
    }

    // ---- Names -------------------------------------------------------------------------------

    #[test]
    fn event_type_names_match_serde_and_parse_back() {
        for event_type in EventType::ALL {
            let wire = serde_json::to_value(event_type).expect("serialises");
            assert_eq!(wire, json!(event_type.as_str()));
            assert_eq!(event_type.as_str().parse::<EventType>(), Ok(event_type));
            assert_eq!(event_type.to_string(), event_type.as_str());
        }
        assert_eq!(
            EventType::CriticalValueAlert.as_str(),
            "CRITICAL_VALUE_ALERT"
        );
        assert!("order_placed".parse::<EventType>().is_err());
        let err = "NOPE".parse::<EventType>().expect_err("unknown");
        assert_eq!(err.to_string(), "unknown event type \"NOPE\"");
    }

    #[test]
    fn action_names_match_serde_and_parse_back() {
        for action in [Action::Created, Action::Updated, Action::Deleted] {
            assert_eq!(
                serde_json::to_value(action).expect("serialises"),
                json!(action.as_str())
            );
            assert_eq!(action.as_str().parse::<Action>(), Ok(action));
        }
        assert!("Created".parse::<Action>().is_err());
    }

    #[test]
    fn parse_room_accepts_the_four_forms_and_round_trips() {
        let good = [
            ("patient:p1", Room::Patient("p1".into())),
            ("patient:A-1.b", Room::Patient("A-1.b".into())),
            ("unit:w1", Room::Unit("w1".into())),
            (PHARMACY_QUEUE, Room::PharmacyQueue),
            (FACILITY_ALERTS, Room::FacilityAlerts),
        ];
        for (name, room) in good {
            assert_eq!(parse_room(name), Ok(room.clone()), "{name}");
            assert_eq!(room.to_string(), name);
            assert_eq!(name.parse::<Room>(), Ok(room));
        }
        assert_eq!(patient_room("p1"), "patient:p1");
        assert_eq!(unit_room("w1"), "unit:w1");
    }

    #[test]
    fn parse_room_rejects_everything_else_clearly() {
        for name in [
            "",
            "patient",
            "pharmacy",
            "pharmacy:queue2",
            "Pharmacy:queue",
            "facility:alert",
            "ward:w1",
            "Patient:p1",
            ":p1",
        ] {
            assert_eq!(parse_room(name), Err(RoomError::Unknown), "{name:?}");
        }
        let long = format!("patient:{}", "a".repeat(65));
        for name in [
            "patient:",
            "patient:p 1",
            "patient:p1:extra",
            "patient:p/1",
            long.as_str(),
        ] {
            assert_eq!(
                parse_room(name),
                Err(RoomError::InvalidId { kind: "patient" }),
                "{name:?}"
            );
        }
        assert_eq!(
            parse_room("unit:ward_4"),
            Err(RoomError::InvalidId { kind: "unit" })
        );
        assert!(RoomError::Unknown.to_string().contains("pharmacy:queue"));
        assert!(RoomError::InvalidId { kind: "unit" }
            .to_string()
            .starts_with("invalid unit id"));
    }
}
