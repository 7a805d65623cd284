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
//! Callers: the FHIR API (every read, search and write), server functions, and later every room
//! join and every delivery. The store applies a `Visibility` in SQL; nothing here touches SQL.

use app::events::Room;
use serde_json::Value;

use crate::{
    auth::{AuthUser, Role},
    fhir::error::FhirError,
    state::AppState,
    store::{Stored, Visibility},
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

/// The patients `user` may see now (computed per request, so a change of care team or unit
/// takes effect at once).
pub async fn visibility(state: &AppState, user: &AuthUser) -> Result<Visibility, FhirError> {
    let store = &state.store;
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

    /// Whether one resource (its patient and its label) is visible.
    pub fn allows(&self, patient_id: Option<&str>, restricted: bool) -> bool {
        (!restricted || self.allows_restricted(patient_id))
            && patient_id.is_none_or(|p| self.allows_patient(p))
    }
}

/// Checks that `user` may read `stored`; returns the patient it is about (for the audit).
pub async fn check_read(
    state: &AppState,
    user: &AuthUser,
    stored: &Stored,
) -> Result<Option<String>, FhirError> {
    let resource: Value = serde_json::from_str(&stored.json).unwrap_or(Value::Null);
    if stored.resource_type == "Subscription" && !crate::subscriptions::may_use(user, &resource) {
        // Its criteria names the patients it watches: only its owner (and admins) may see it.
        return Err(FhirError::NotFound(format!(
            "{}/{} is not known",
            stored.resource_type, stored.id
        )));
    }
    let patient = app::fhir::patient_id(&resource);
    let restricted = app::fhir::security_restricted(&resource);
    if patient.is_none() && !restricted {
        return Ok(None);
    }
    let visibility = visibility(state, user)
        .await?
        .for_type(user, &stored.resource_type);
    if restricted && !visibility.allows_restricted(patient.as_deref()) {
        return Err(FhirError::NotFound(format!(
            "{}/{} is not known",
            stored.resource_type, stored.id
        )));
    }
    if let Some(patient) = &patient {
        if !visibility.allows_patient(patient) {
            return Err(FhirError::Forbidden(format!(
                "you have no access to Patient/{patient}: not on their care team or unit"
            )));
        }
    }
    Ok(patient)
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

/// Whether one event's resource may be delivered to `user`: the same rule as a read, applied on
/// every delivery so that a revoked access stops the flow without a reconnect.
pub fn may_receive(
    user: &AuthUser,
    visibility: &Visibility,
    resource_type: &str,
    patient_id: Option<&str>,
    restricted: bool,
) -> bool {
    if patient_id.is_some()
        && user.role == Role::Pharmacist
        && !PHARMACY_TYPES.contains(&resource_type)
    {
        return false;
    }
    visibility.allows(patient_id, restricted)
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

/// Checks that `user` may replace `previous` by `next` (either may be None: create / delete).
pub async fn check_write(
    state: &AppState,
    user: &AuthUser,
    resource_type: &str,
    previous: Option<&Value>,
    next: Option<&Value>,
) -> Result<(), FhirError> {
    if !role_may_write(
        user.role,
        resource_type,
        next.or(previous),
        previous.is_none(),
    ) {
        return Err(FhirError::Forbidden(format!(
            "a {} may not {} {resource_type} resources",
            user.role.label().to_lowercase(),
            if previous.is_none() {
                "create"
            } else {
                "change"
            }
        )));
    }
    let mut visibility = None;
    for resource in [previous, next].into_iter().flatten() {
        let patient = app::fhir::patient_id(resource);
        let restricted = app::fhir::security_restricted(resource);
        if patient.is_none() && !restricted {
            continue;
        }
        if visibility.is_none() {
            visibility = Some(
                self::visibility(state, user)
                    .await?
                    .for_type(user, resource_type),
            );
        }
        let Some(visibility) = &visibility else {
            continue;
        };
        if let Some(patient) = &patient {
            if !visibility.allows_patient(patient) {
                return Err(FhirError::Forbidden(format!(
                    "you have no access to Patient/{patient}: not on their care team or unit"
                )));
            }
        }
        if restricted && !visibility.allows_restricted(patient.as_deref()) {
            return Err(FhirError::Forbidden(
                "only physicians on the patient's care team may write restricted records".into(),
            ));
        }
    }
    Ok(())
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

    #[test]
    fn visibility_combines_patient_and_label() {
        let visibility = Visibility {
            all_patients: false,
            patient_ids: vec!["p1".into(), "p2".into()],
            restricted_all: false,
            restricted_patient_ids: vec!["p1".into()],
        };
        assert!(visibility.allows(Some("p1"), true));
        assert!(visibility.allows(Some("p2"), false));
        assert!(!visibility.allows(Some("p2"), true));
        assert!(!visibility.allows(Some("p3"), false));
        assert!(visibility.allows(None, false));
        assert!(!visibility.allows(None, true));
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
