//! The access policy: who may see and change which patient's data. One rule, one module.
//!
//! **The rule.** An admin sees every patient. A physician or nurse sees a patient when they are
//! a member of the patient's active CareTeam (through their Practitioner) or work on the unit
//! where the patient's current Encounter is. A pharmacist sees the patients with a prescription
//! the pharmacy still has to act on (active, on-hold or draft MedicationRequest), and of those
//! only what verifying and dispensing needs (`PHARMACY_TYPES`). Security-labelled resources
//! (`app::fhir::security_restricted`) are visible only to physicians on the patient's care team
//! (and admins). Resources about no patient (Practitioner, Location) are visible to every
//! signed-in user.
//!
//! Reads of a patient's data outside the rule answer 403; a restricted resource the user may
//! not see answers 404, because its very existence is sensitive.
//!
//! Callers: the FHIR API (every read, search and write), server functions, every room join and
//! every delivery (live, replay, long poll, FHIR Subscription notifications: [`may_deliver`],
//! with the per-user [`AccessCache`]). The store applies a `Visibility` in SQL; nothing here
//! touches SQL.

use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, Instant},
};

use app::events::Room;
use serde_json::Value;

use crate::{
    auth::identity::{AuthUser, Role},
    fhir::error::FhirError,
    store::{EventRecord, Store, Stored, Visibility},
};

/// What a pharmacist may read of a patient's record.
pub const PHARMACY_TYPES: &[&str] = &[
    "Patient",
    "Encounter",
    "MedicationRequest",
    "MedicationDispense",
    "Task",
    "AllergyIntolerance",
    "Condition",
    "Observation",
];

/// The patients `user` may see now: a change of care team, unit or prescriptions takes effect
/// at once. On one node it is remembered until a write of [`ACCESS_TYPES`] commits (the store's
/// write mark, moved before that write is answered), so that requests do not recompute it;
/// where other nodes share the database it is computed for every request.
pub async fn visibility(store: &Store, user: &AuthUser) -> Result<Visibility, FhirError> {
    if user.role == Role::Admin {
        return Ok(Visibility::everything());
    }
    // Everything the computation reads of the user is in the key: a changed unit list or
    // practitioner is another entry.
    let key = format!(
        "{}\u{1f}{}\u{1f}{}\u{1f}{}",
        user.id,
        user.role.as_str(),
        user.practitioner_id.as_deref().unwrap_or(""),
        user.units.join("\u{1e}")
    );
    // Read before the database is: a write committed meanwhile leaves this entry stale.
    let mark = store.write_mark(ACCESS_TYPES);
    if let Some(known) = mark.and_then(|mark| store.remembered_visibility(&key, mark)) {
        return Ok(Visibility::clone(&known));
    }
    let computed = compute_visibility(store, user).await?;
    if let Some(mark) = mark {
        store.remember_visibility(key, mark, Arc::new(computed.clone()));
    }
    Ok(computed)
}

async fn compute_visibility(store: &Store, user: &AuthUser) -> Result<Visibility, FhirError> {
    Ok(match user.role {
        Role::Admin => Visibility::everything(),
        Role::Physician | Role::Nurse => {
            let care_team = match &user.practitioner_id {
                Some(practitioner) => store.care_team_patients(practitioner).await?,
                None => Vec::new(),
            };
            let mut patients = care_team.clone();
            patients.extend(store.unit_patients(&user.units).await?);
            patients.sort();
            patients.dedup();
            Visibility {
                all_patients: false,
                patient_ids: patients,
                restricted_all: false,
                restricted_patient_ids: if user.role == Role::Physician {
                    care_team
                } else {
                    Vec::new()
                },
            }
        }
        Role::Pharmacist => Visibility {
            all_patients: false,
            patient_ids: store.prescription_patients().await?,
            restricted_all: false,
            restricted_patient_ids: Vec::new(),
        },
    })
}

impl Visibility {
    /// Narrows the visibility to what `user` may see of resources of `resource_type`.
    pub fn for_type(mut self, user: &AuthUser, resource_type: &str) -> Self {
        if user.role == Role::Pharmacist && !PHARMACY_TYPES.contains(&resource_type) {
            self.all_patients = false;
            self.patient_ids.clear();
        }
        self
    }

    pub fn allows_patient(&self, patient_id: &str) -> bool {
        self.all_patients || self.patient_ids.iter().any(|id| id == patient_id)
    }

    pub fn allows_restricted(&self, patient_id: Option<&str>) -> bool {
        self.restricted_all
            || patient_id.is_some_and(|p| self.restricted_patient_ids.iter().any(|id| id == p))
    }
}

/// What the rule looks at in one resource version: its type, its patient, its label and, for a
/// Subscription, its owner. Nothing else about a version decides who may see it.
#[derive(Debug, Clone, PartialEq)]
pub struct Facts {
    pub resource_type: String,
    pub patient_id: Option<String>,
    pub restricted: bool,
    /// The owner stamped on a Subscription (None for every other type).
    pub owner: Option<String>,
}

impl Facts {
    pub fn of(resource_type: &str, resource: &Value) -> Self {
        Self {
            resource_type: resource_type.to_owned(),
            patient_id: app::fhir::patient_id(resource),
            restricted: app::fhir::security_restricted(resource),
            owner: (resource_type == "Subscription")
                .then(|| crate::store::index::owner_of(resource).map(str::to_owned))
                .flatten(),
        }
    }

    /// The facts of a stored version. JSON that does not parse (never written by the store) is
    /// judged restricted, so it reaches admins only.
    pub fn of_json(resource_type: &str, json: &str) -> Self {
        match serde_json::from_str::<Value>(json) {
            Ok(resource) => Self::of(resource_type, &resource),
            Err(_) => Self {
                resource_type: resource_type.to_owned(),
                patient_id: None,
                restricted: true,
                owner: None,
            },
        }
    }

    pub fn of_stored(stored: &Stored) -> Self {
        Self::of_json(&stored.resource_type, &stored.json)
    }
}

/// The facts of an event's version and of its resource's newest version (read with the event),
/// worked out once per event however many recipients it has.
#[derive(Debug, Clone)]
pub struct EventFacts {
    pub version: Facts,
    pub newest: Facts,
}

impl EventFacts {
    pub fn of(event: &EventRecord) -> Self {
        let mut version = Facts::of_json(&event.resource_type, &event.resource_json);
        version.patient_id = event.patient_id.clone();
        let newest = Facts {
            patient_id: event.newest.patient_id.clone(),
            restricted: event.newest.restricted,
            ..version.clone()
        };
        Self { version, newest }
    }

    /// Whether either version carries a restricting label.
    pub fn restricted(&self) -> bool {
        self.version.restricted || self.newest.restricted
    }
}

/// The verdict on one version for one user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Allowed,
    /// About a patient the user may not see (a read answers 403).
    Forbidden {
        patient_id: String,
    },
    /// Restricted, or a Subscription of someone else: even its existence is not revealed (404).
    Hidden,
}

impl Verdict {
    /// The stricter of two verdicts: hidden over forbidden over allowed.
    fn and(self, other: Verdict) -> Verdict {
        match (self, other) {
            (Verdict::Hidden, _) | (_, Verdict::Hidden) => Verdict::Hidden,
            (forbidden @ Verdict::Forbidden { .. }, _)
            | (_, forbidden @ Verdict::Forbidden { .. }) => forbidden,
            _ => Verdict::Allowed,
        }
    }

    pub fn allowed(&self) -> bool {
        *self == Verdict::Allowed
    }

    /// The answer a read gives for this verdict: the 403 names the patient, the 404 is exactly
    /// what an id that does not exist answers.
    pub fn into_result(self, resource_type: &str, id: &str) -> Result<(), FhirError> {
        match self {
            Verdict::Allowed => Ok(()),
            Verdict::Forbidden { patient_id } => Err(FhirError::Forbidden(format!(
                "you have no access to Patient/{patient_id}: not on their care team or unit"
            ))),
            Verdict::Hidden => Err(not_known(resource_type, id)),
        }
    }
}

/// The answer for a resource that does not exist, word for word.
pub fn not_known(resource_type: &str, id: &str) -> FhirError {
    FhirError::NotFound(format!("{resource_type}/{id} is not known"))
}

/// **The rule**, for one version on its own: may `user`, who sees `visibility` now, see it?
pub fn judge(user: &AuthUser, visibility: &Visibility, facts: &Facts) -> Verdict {
    if facts.resource_type == "Subscription" {
        // Its criteria names the patients it watches: only its owner (and admins) may see it.
        return if user.role == Role::Admin || facts.owner.as_deref() == Some(user.id.as_str()) {
            Verdict::Allowed
        } else {
            Verdict::Hidden
        };
    }
    let patient = facts.patient_id.as_deref();
    if facts.restricted && !visibility.allows_restricted(patient) {
        return Verdict::Hidden;
    }
    match patient {
        Some(patient)
            if !visibility.allows_patient(patient)
                || (user.role == Role::Pharmacist
                    && !PHARMACY_TYPES.contains(&facts.resource_type.as_str())) =>
        {
            Verdict::Forbidden {
                patient_id: patient.to_owned(),
            }
        }
        _ => Verdict::Allowed,
    }
}

/// **The exit gate.** Every resource version that leaves the server — a read, a vread, each
/// `_history` entry, each search match and `_include`d row, each socket frame, poll answer,
/// Subscription notification and UI loader row — passes here: it leaves only when the version
/// itself *and* the resource as it is now (`newest`, a deletion's tombstone included) pass the
/// rule. A version filed on another patient, or a note labelled restricted later, therefore
/// never leaks through an older version; one labelled earlier never leaks through a newer one.
pub fn release(
    user: &AuthUser,
    visibility: &Visibility,
    version: &Facts,
    newest: Option<&Facts>,
) -> Verdict {
    let verdict = judge(user, visibility, version);
    match newest {
        Some(newest) if newest != version => verdict.and(judge(user, visibility, newest)),
        _ => verdict,
    }
}

/// The gate bound to one user for one request: their visibility computed once, now.
pub struct Gate<'a> {
    pub user: &'a AuthUser,
    pub visibility: Visibility,
}

impl<'a> Gate<'a> {
    pub async fn open(store: &Store, user: &'a AuthUser) -> Result<Gate<'a>, FhirError> {
        Ok(Gate {
            user,
            visibility: visibility(store, user).await?,
        })
    }

    /// The visibility the store pushes into a search of `resource_type` (the same rule in SQL,
    /// so pages and totals are right; every row is still judged here on its way out).
    pub fn for_type(&self, resource_type: &str) -> Visibility {
        self.visibility.clone().for_type(self.user, resource_type)
    }

    pub fn release(&self, version: &Facts, newest: Option<&Facts>) -> Verdict {
        release(self.user, &self.visibility, version, newest)
    }

    /// A stored version whose resource's newest version is `newest`.
    pub fn release_stored(&self, version: &Stored, newest: &Stored) -> Verdict {
        let facts = Facts::of_stored(version);
        if version.version_id == newest.version_id {
            return self.release(&facts, None);
        }
        self.release(&facts, Some(&Facts::of_stored(newest)))
    }
}

/// Whether `user` may join `room`, given their current `visibility`; `Err` carries the reason
/// sent back in `subscribed.denied`. Facility alerts are open to every signed-in user, though each
/// alert still reaches only those who may see its patient (see [`may_receive`]).
pub fn may_join(user: &AuthUser, visibility: &Visibility, room: &Room) -> Result<(), &'static str> {
    match room {
        Room::FacilityAlerts => Ok(()),
        Room::PharmacyQueue => match user.role {
            Role::Pharmacist | Role::Admin => Ok(()),
            _ => Err("only pharmacists may join the pharmacy queue"),
        },
        Room::Unit(unit) => {
            if user.role == Role::Admin || user.units.iter().any(|u| u == unit) {
                Ok(())
            } else {
                Err("you do not work on this unit")
            }
        }
        Room::Patient(patient) => {
            if visibility.allows_patient(patient) {
                Ok(())
            } else {
                Err("you have no access to this patient")
            }
        }
    }
}

/// Whether one event's version may be delivered to `user`: the exit gate on the event's version
/// and its resource's newest version, applied on every delivery so that a revoked access stops
/// the flow without a reconnect.
pub fn may_receive(user: &AuthUser, visibility: &Visibility, facts: &EventFacts) -> bool {
    release(user, visibility, &facts.version, Some(&facts.newest)).allowed()
}

/// The hand-off: an Encounter event in the `unit:{id}` room of a unit the user works on reaches
/// them even when the change itself takes the patient off that unit (a discharge, a transfer out).
/// Unit staff saw the patient a moment before and must see them leave, or their panel would keep a
/// patient who is gone; what they receive is that one Encounter version, nothing after it.
/// Restricted Encounters are never handed off.
pub fn unit_handoff(
    user: &AuthUser,
    resource_type: &str,
    rooms: &[String],
    restricted: bool,
) -> bool {
    resource_type == "Encounter"
        && !restricted
        && matches!(user.role, Role::Nurse | Role::Physician | Role::Admin)
        && rooms.iter().any(|room| {
            room.strip_prefix("unit:")
                .is_some_and(|unit| user.units.iter().any(|u| u == unit))
        })
}

/// Which roles may write which types (before the per-patient check).
fn role_may_write(
    role: Role,
    resource_type: &str,
    resource: Option<&Value>,
    creating: bool,
) -> bool {
    use Role::*;
    match resource_type {
        "Practitioner" | "Location" => role == Admin,
        "Patient" if creating => role == Admin,
        "MedicationRequest" if creating => matches!(role, Physician | Admin),
        "MedicationRequest" => matches!(role, Physician | Pharmacist | Admin),
        "MedicationDispense" => matches!(role, Pharmacist | Admin),
        "ServiceRequest" | "CareTeam" => matches!(role, Physician | Admin),
        "Task" => match resource.map(app::fhir::task_kind) {
            Some(app::fhir::TaskKind::Verification) => matches!(role, Pharmacist | Admin),
            _ => true,
        },
        "Subscription" => true,
        "AuditEvent" => false,
        _ => matches!(role, Physician | Nurse | Admin),
    }
}

/// What a write replaces: the stored resource as it is now — its live version, or a deletion's
/// tombstone (which holds the deleted content).
pub struct Overwritten<'a> {
    pub id: &'a str,
    pub resource: &'a Value,
    /// False for a tombstone: the write re-creates the resource.
    pub live: bool,
}

/// Checks that `user` may replace `before` by `after` (either may be None: create / delete).
///
/// What is overwritten is judged like a read (a tombstone included, so re-creating a deleted
/// resource needs access to the patient it was about): one the user may not see at all answers
/// exactly as an id that does not exist. What is written is judged by the rule too: moving a
/// resource to another patient needs access to both. Every reference of what is written must
/// name a live resource the user may see (a resource may refer to itself, by `id`). One gate
/// decides all of it, so the user's access is computed once per write.
pub async fn check_write(
    store: &Store,
    user: &AuthUser,
    resource_type: &str,
    id: Option<&str>,
    before: Option<Overwritten<'_>>,
    after: Option<&Value>,
) -> Result<(), FhirError> {
    let live = before.as_ref().filter(|b| b.live).map(|b| b.resource);
    if !role_may_write(user.role, resource_type, after.or(live), live.is_none()) {
        return Err(FhirError::Forbidden(format!(
            "a {} may not {} {resource_type} resources",
            user.role.label().to_lowercase(),
            if live.is_none() { "create" } else { "change" }
        )));
    }
    if user.role == Role::Admin {
        return Ok(());
    }
    let gate = Gate::open(store, user).await?;
    if let Some(before) = &before {
        gate.release(&Facts::of(resource_type, before.resource), None)
            .into_result(resource_type, before.id)?;
    }
    // A new Subscription's owner is stamped after this check (subscriptions::prepare).
    if let Some(after) = after.filter(|_| resource_type != "Subscription") {
        match gate.release(&Facts::of(resource_type, after), None) {
            Verdict::Allowed => {}
            Verdict::Forbidden { patient_id } => {
                return Err(FhirError::Forbidden(format!(
                    "you have no access to Patient/{patient_id}: not on their care team or unit"
                )))
            }
            Verdict::Hidden => {
                return Err(FhirError::Forbidden(
                    "only physicians on the patient's care team may write restricted records"
                        .into(),
                ))
            }
        }
    }
    match after {
        Some(after) => check_references(store, &gate, resource_type, id, after).await,
        None => Ok(()),
    }
}

/// Checks that every resource `resource` refers to may be seen by the writer: a reference to one
/// they may not see is answered exactly as a reference to one that does not exist (422), so a
/// write cannot probe for a restricted note.
async fn check_references(
    store: &Store,
    gate: &Gate<'_>,
    resource_type: &str,
    id: Option<&str>,
    resource: &Value,
) -> Result<(), FhirError> {
    let references = crate::store::literal_references(resource);
    if references.iter().all(|(rtype, _)| rtype.is_empty()) {
        return Ok(());
    }
    // The same list, in the same order, as the store's own check names.
    let mut missing = Vec::new();
    for (rtype, target) in references {
        if rtype.is_empty() {
            missing.push(target);
            continue;
        }
        if rtype == resource_type && Some(target.as_str()) == id {
            continue;
        }
        let visible = match store.newest(&rtype, &target).await? {
            Some(stored) if !stored.deleted => gate.release_stored(&stored, &stored).allowed(),
            _ => false,
        };
        if !visible {
            missing.push(format!("{rtype}/{target}"));
        }
    }
    if missing.is_empty() {
        Ok(())
    } else {
        Err(crate::store::StoreError::UnresolvedReferences(missing).into())
    }
}

/// Only admins may read the audit trail.
pub fn require_admin(user: &AuthUser) -> Result<(), FhirError> {
    if user.role == Role::Admin {
        Ok(())
    } else {
        Err(FhirError::Forbidden(
            "only administrators may read the audit trail".into(),
        ))
    }
}

// ---------------------------------------------------------------------------------------------
// Delivery: the check every event passes on its way to a socket, a poll or a Subscription

/// How long a cached visibility is trusted when no event has invalidated it (unit assignments
/// and account changes do not pass through the event log).
const VISIBILITY_TTL: Duration = Duration::from_secs(30);
/// Resource types whose changes can change who may see which patient.
pub const ACCESS_TYPES: &[&str] = &["CareTeam", "Encounter", "MedicationRequest"];

/// The per-delivery check of live delivery, replay and the long poll: may `user`, who sees
/// `visibility` now, receive the event whose facts are `facts`? The exit gate, or the unit
/// hand-off.
pub fn may_deliver(
    user: &AuthUser,
    visibility: &Visibility,
    event: &EventRecord,
    facts: &EventFacts,
) -> bool {
    may_receive(user, visibility, facts)
        || unit_handoff(user, &event.resource_type, &event.rooms, facts.restricted())
}

/// What each connected user may see, computed once per user and reused until invalidated.
pub struct AccessCache {
    by_user: HashMap<String, (Arc<Visibility>, Instant)>,
    everything: Arc<Visibility>,
}

impl Default for AccessCache {
    fn default() -> Self {
        Self {
            by_user: HashMap::new(),
            everything: Arc::new(Visibility::everything()),
        }
    }
}

impl AccessCache {
    pub fn clear(&mut self) {
        self.by_user.clear();
    }

    /// The user's visibility; `None` if it cannot be computed now (then nothing is delivered).
    pub async fn get(&mut self, store: &Store, user: &AuthUser) -> Option<Arc<Visibility>> {
        if user.role == Role::Admin {
            return Some(self.everything.clone());
        }
        if let Some((visibility, at)) = self.by_user.get(&user.id) {
            if at.elapsed() < VISIBILITY_TTL {
                return Some(visibility.clone());
            }
        }
        match visibility(store, user).await {
            Ok(visibility) => {
                let visibility = Arc::new(visibility);
                self.by_user
                    .insert(user.id.clone(), (visibility.clone(), Instant::now()));
                Some(visibility)
            }
            Err(error) => {
                tracing::warn!(%error, user = %user.id, "computing access for delivery failed");
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn role_write_table() {
        let verification = json!({"resourceType": "Task", "code": {"coding": [{"system": app::fhir::TASK_CODE_SYSTEM, "code": app::fhir::APPROVE}]}, "focus": {"reference": "MedicationRequest/m1"}});
        assert!(role_may_write(
            Role::Pharmacist,
            "Task",
            Some(&verification),
            true
        ));
        assert!(!role_may_write(
            Role::Nurse,
            "Task",
            Some(&verification),
            true
        ));
        assert!(role_may_write(Role::Nurse, "Observation", None, true));
        assert!(!role_may_write(Role::Pharmacist, "Observation", None, true));
        assert!(!role_may_write(
            Role::Nurse,
            "MedicationRequest",
            None,
            true
        ));
        assert!(role_may_write(
            Role::Pharmacist,
            "MedicationDispense",
            None,
            true
        ));
        assert!(!role_may_write(Role::Physician, "Location", None, true));
        assert!(!role_may_write(Role::Admin, "AuditEvent", None, true));
    }

    fn user(role: Role) -> AuthUser {
        AuthUser {
            id: "u1".into(),
            name: "U".into(),
            role,
            session_id: "s".into(),
            practitioner_id: None,
            units: Vec::new(),
            via_cookie: false,
        }
    }

    fn facts(resource_type: &str, patient: Option<&str>, restricted: bool) -> Facts {
        Facts {
            resource_type: resource_type.into(),
            patient_id: patient.map(str::to_owned),
            restricted,
            owner: None,
        }
    }

    #[test]
    fn the_rule_combines_patient_type_and_label() {
        let visibility = Visibility {
            all_patients: false,
            patient_ids: vec!["p1".into(), "p2".into()],
            restricted_all: false,
            restricted_patient_ids: vec!["p1".into()],
        };
        let physician = user(Role::Physician);
        let judge = |f: Facts| judge(&physician, &visibility, &f);
        assert_eq!(
            judge(facts("Observation", Some("p1"), true)),
            Verdict::Allowed
        );
        assert_eq!(
            judge(facts("Observation", Some("p2"), false)),
            Verdict::Allowed
        );
        assert_eq!(
            judge(facts("Observation", Some("p2"), true)),
            Verdict::Hidden
        );
        assert_eq!(
            judge(facts("Observation", Some("p3"), false)),
            Verdict::Forbidden {
                patient_id: "p3".into()
            }
        );
        assert_eq!(judge(facts("Location", None, false)), Verdict::Allowed);
        assert_eq!(judge(facts("Location", None, true)), Verdict::Hidden);
        let pharmacist = user(Role::Pharmacist);
        assert!(judge_allows(&pharmacist, &visibility, "Observation"));
        assert!(!judge_allows(&pharmacist, &visibility, "ServiceRequest"));
    }

    fn judge_allows(user: &AuthUser, visibility: &Visibility, resource_type: &str) -> bool {
        judge(user, visibility, &facts(resource_type, Some("p2"), false)).allowed()
    }

    #[test]
    fn a_version_leaves_only_with_the_resource_as_it_is_now() {
        let visibility = Visibility {
            all_patients: false,
            patient_ids: vec!["seen".into()],
            restricted_all: false,
            restricted_patient_ids: Vec::new(),
        };
        let nurse = user(Role::Nurse);
        let old = facts("DocumentReference", Some("seen"), false);
        let labelled_now = facts("DocumentReference", Some("seen"), true);
        assert_eq!(
            release(&nurse, &visibility, &old, Some(&labelled_now)),
            Verdict::Hidden,
            "a label added later hides the earlier version"
        );
        assert_eq!(
            release(&nurse, &visibility, &labelled_now, Some(&old)),
            Verdict::Hidden,
            "a label removed later still hides the labelled version"
        );
        let elsewhere = facts("DocumentReference", Some("other"), false);
        assert_eq!(
            release(&nurse, &visibility, &elsewhere, Some(&old)),
            Verdict::Forbidden {
                patient_id: "other".into()
            },
            "a version filed on another patient stays with that patient"
        );
        assert_eq!(
            release(&nurse, &visibility, &old, Some(&old)),
            Verdict::Allowed
        );
    }

    #[test]
    fn subscriptions_are_their_owners_alone() {
        let everything = Visibility::everything();
        let mut subscription = facts("Subscription", None, false);
        subscription.owner = Some("u1".into());
        assert!(judge(&user(Role::Nurse), &everything, &subscription).allowed());
        subscription.owner = Some("someone-else".into());
        assert_eq!(
            judge(&user(Role::Physician), &everything, &subscription),
            Verdict::Hidden
        );
        assert!(judge(&user(Role::Admin), &everything, &subscription).allowed());
    }

    #[test]
    fn only_unit_staff_get_the_hand_off_and_only_of_encounters() {
        let nurse = AuthUser {
            id: "u1".into(),
            name: "N".into(),
            role: Role::Nurse,
            session_id: "s".into(),
            practitioner_id: None,
            units: vec!["unit-4w".into()],
            via_cookie: false,
        };
        let rooms = vec!["unit:unit-4w".to_owned(), "patient:p1".to_owned()];
        assert!(unit_handoff(&nurse, "Encounter", &rooms, false));
        assert!(
            !unit_handoff(&nurse, "Encounter", &rooms, true),
            "restricted"
        );
        assert!(!unit_handoff(&nurse, "Observation", &rooms, false));
        let elsewhere = vec!["unit:unit-icu".to_owned()];
        assert!(!unit_handoff(&nurse, "Encounter", &elsewhere, false));
        let pharmacist = AuthUser {
            role: Role::Pharmacist,
            ..nurse
        };
        assert!(!unit_handoff(&pharmacist, "Encounter", &rooms, false));
    }
}
