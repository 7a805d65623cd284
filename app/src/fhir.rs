//! Typed views of the FHIR R4 resources Rounds reads, and the pure helpers that answer the questions
//! the event path asks of a resource: which patient is it about, which unit is the patient on, is it a
//! critical value, is it restricted, is this Task a verification or an acknowledgement.
//!
//! Where it sits: shared by the server and the browser. The store keeps each resource's full JSON as
//! the truth (step 2 of the event path); `events::classify` calls the helpers here on that JSON to derive
//! events and rooms; the UI deserialises the views to render what arrives in `update` messages.
//!
//! What it must never do:
//! - Stand in for the stored JSON. A view holds only the fields Rounds reads, so writing a view back in
//!   place of the resource would silently drop everything else. Views are for reading.
//! - Panic, on any JSON at all. Every helper takes `&serde_json::Value` and answers `None`/`false` for
//!   anything it does not recognise; deserialising a view from malformed JSON returns an error.
//! - Depend on anything but `serde` and `serde_json`, or on the clock or threads: it is compiled to
//!   wasm32 for the browser as well.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Every resource type the Rounds FHIR API serves. The store rejects others, and the event classifier
/// is tested against each of these.
pub const RESOURCE_TYPES: &[&str] = &[
    "Patient",
    "Practitioner",
    "Location",
    "Encounter",
    "CareTeam",
    "Condition",
    "AllergyIntolerance",
    "ServiceRequest",
    "Observation",
    "DiagnosticReport",
    "MedicationRequest",
    "MedicationDispense",
    "DocumentReference",
    "Flag",
    "Task",
    "Subscription",
    "AuditEvent",
];

/// The HL7 code system for `meta.security` confidentiality labels.
pub const CONFIDENTIALITY_SYSTEM: &str = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality";

/// The HL7 code system of R4 `Task.code` (`http://hl7.org/fhir/task-code`'s CodeSystem URL).
///
/// A pharmacist's verification of a prescription is written as a Task with `code` = this system and
/// [`APPROVE`], `focus` = `MedicationRequest/{id}`, `for` = the Patient, `intent` = `order`, and
/// `status` = `completed`. "approve" is the standard R4 code for "approve the focal resource", which is
/// exactly what a verification is, so no local vocabulary is needed.
pub const TASK_CODE_SYSTEM: &str = "http://hl7.org/fhir/CodeSystem/task-code";

/// The R4 task code meaning "approve the focal resource"; see [`TASK_CODE_SYSTEM`].
pub const APPROVE: &str = "approve";

/// Rounds' own code system for Task codes that R4's task-code system does not have.
///
/// An acknowledgement of an alert (a critical Observation or DiagnosticReport, or a Flag) is written as
/// a Task with `code` = this system and [`ACKNOWLEDGE`], `focus` = the Observation, DiagnosticReport or
/// Flag, `for` = the Patient, and `status` = `completed`. R4 binds `Task.code` to its value set with
/// strength *example*, so a local code is conformant; none of the standard codes means "I have seen
/// this alert".
pub const ROUNDS_TASK_SYSTEM: &str = "http://rounds.example.org/fhir/CodeSystem/task-code";

/// The Rounds task code for acknowledging an alert; see [`ROUNDS_TASK_SYSTEM`].
pub const ACKNOWLEDGE: &str = "acknowledge";

/// Resource types whose `subject` names the patient the resource is about.
const SUBJECT_TYPES: &[&str] = &[
    "Encounter",
    "ServiceRequest",
    "Observation",
    "DiagnosticReport",
    "MedicationRequest",
    "MedicationDispense",
    "DocumentReference",
    "Flag",
    "CareTeam",
    "Condition",
];

/// Encounter statuses during which the patient is physically somewhere in the facility.
const PRESENT_ENCOUNTER_STATUSES: &[&str] = &["in-progress", "arrived", "triaged", "onleave"];

/// Interpretation codes (v3 ObservationInterpretation) that mean "critical": critically high,
/// critically low, critically abnormal. Compared case-sensitively because v3 codes are case-sensitive
/// and `hh`/`ll` are not codes at all.
const CRITICAL_INTERPRETATIONS: &[&str] = &["HH", "LL", "AA"];

/// Why a field is left out when serialising a view: FHIR JSON forbids `null` and empty arrays, so a
/// view written with them would not be valid FHIR for any client that reads it back.
trait Absent {
    fn absent(&self) -> bool;
}

impl<T> Absent for Option<T> {
    fn absent(&self) -> bool {
        self.is_none()
    }
}

impl<T> Absent for Vec<T> {
    fn absent(&self) -> bool {
        self.is_empty()
    }
}

impl Absent for Reference {
    fn absent(&self) -> bool {
        self.reference.is_none() && self.display.is_none()
    }
}

/// Declares a view: every field takes its default when the JSON lacks it (so a view reads any resource
/// the store accepted, however sparse) and is left out of the output when absent (see [`Absent`]).
/// Unknown fields are ignored on purpose: views read resources that carry far more than they name.
macro_rules! view {
    (
        $(#[$attr:meta])*
        pub struct $name:ident {
            $(
                $(#[$field_attr:meta])*
                pub $field:ident : $ty:ty,
            )*
        }
    ) => {
        $(#[$attr])*
        #[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
        #[serde(default, rename_all = "camelCase")]
        pub struct $name {
            $(
                $(#[$field_attr])*
                #[serde(skip_serializing_if = "Absent::absent")]
                pub $field: $ty,
            )*
        }
    };
}

// ---------------------------------------------------------------------------------------------------
// Datatypes
// ---------------------------------------------------------------------------------------------------

view! {
    /// A code from a code system.
    pub struct Coding {
        pub system: Option<String>,
        pub code: Option<String>,
        pub display: Option<String>,
    }
}

view! {
    /// A concept as codes from any number of systems, plus the text the user saw.
    pub struct CodeableConcept {
        pub coding: Vec<Coding>,
        pub text: Option<String>,
    }
}

view! {
    /// A link to another resource. Use [`reference_id`] to read the target id rather than splitting
    /// `reference` by hand: references may be absolute or versioned.
    pub struct Reference {
        pub reference: Option<String>,
        pub display: Option<String>,
    }
}

view! {
    /// A time range; either end may be open. Kept as FHIR dateTime strings, since this crate has no
    /// clock or date library.
    pub struct Period {
        pub start: Option<String>,
        pub end: Option<String>,
    }
}

view! {
    /// Resource metadata the store maintains.
    pub struct Meta {
        /// The version the store assigned; the `ETag` and `If-Match` value.
        pub version_id: Option<String>,
        pub last_updated: Option<String>,
        /// Security labels; see [`security_restricted`].
        pub security: Vec<Coding>,
        pub tag: Vec<Coding>,
    }
}

view! {
    /// A measured amount.
    pub struct Quantity {
        pub value: Option<f64>,
        pub unit: Option<String>,
        pub system: Option<String>,
        pub code: Option<String>,
    }
}

view! {
    /// A person's name.
    pub struct HumanName {
        pub family: Option<String>,
        pub given: Vec<String>,
        pub text: Option<String>,
        /// usual | official | temp | nickname | anonymous | old | maiden.
        #[serde(rename = "use")]
        pub use_: Option<String>,
    }
}

view! {
    /// A business identifier (MRN, licence number) as opposed to the server's logical id.
    pub struct Identifier {
        pub system: Option<String>,
        pub value: Option<String>,
    }
}

// ---------------------------------------------------------------------------------------------------
// Resource views
// ---------------------------------------------------------------------------------------------------

view! {
    /// View of a Patient.
    pub struct Patient {
        pub id: Option<String>,
        pub meta: Option<Meta>,
        pub name: Vec<HumanName>,
        pub gender: Option<String>,
        pub birth_date: Option<String>,
        pub identifier: Vec<Identifier>,
        pub active: Option<bool>,
    }
}

view! {
    /// View of an Encounter: the stay that puts a patient on a unit (see [`encounter_unit`]).
    pub struct Encounter {
        pub id: Option<String>,
        pub meta: Option<Meta>,
        pub status: Option<String>,
        pub class: Option<Coding>,
        pub subject: Option<Reference>,
        pub period: Option<Period>,
        pub location: Vec<EncounterLocation>,
        pub service_provider: Option<Reference>,
    }
}

view! {
    /// One place an Encounter has been. Its `physical_type` tells a ward from a room or bed.
    pub struct EncounterLocation {
        /// Required by FHIR, so not optional here; a missing one reads as an empty Reference.
        pub location: Reference,
        /// planned | active | reserved | completed; absent means active.
        pub status: Option<String>,
        pub physical_type: Option<CodeableConcept>,
        pub period: Option<Period>,
    }
}

view! {
    /// View of a ServiceRequest: an order.
    pub struct ServiceRequest {
        pub id: Option<String>,
        pub meta: Option<Meta>,
        pub status: Option<String>,
        pub intent: Option<String>,
        pub category: Vec<CodeableConcept>,
        pub code: Option<CodeableConcept>,
        pub subject: Option<Reference>,
        pub encounter: Option<Reference>,
        pub authored_on: Option<String>,
        pub requester: Option<Reference>,
        pub priority: Option<String>,
    }
}

view! {
    /// View of an Observation: a result. Reference ranges are not read; the interpretation carries
    /// what Rounds acts on.
    pub struct Observation {
        pub id: Option<String>,
        pub meta: Option<Meta>,
        pub status: Option<String>,
        pub category: Vec<CodeableConcept>,
        pub code: Option<CodeableConcept>,
        pub subject: Option<Reference>,
        pub encounter: Option<Reference>,
        pub effective_date_time: Option<String>,
        pub effective_period: Option<Period>,
        pub issued: Option<String>,
        pub value_quantity: Option<Quantity>,
        pub value_string: Option<String>,
        pub value_codeable_concept: Option<CodeableConcept>,
        pub interpretation: Vec<CodeableConcept>,
    }
}

view! {
    /// View of a DiagnosticReport: a report grouping results.
    pub struct DiagnosticReport {
        pub id: Option<String>,
        pub meta: Option<Meta>,
        pub status: Option<String>,
        pub category: Vec<CodeableConcept>,
        pub code: Option<CodeableConcept>,
        pub subject: Option<Reference>,
        pub encounter: Option<Reference>,
        pub effective_date_time: Option<String>,
        pub issued: Option<String>,
        pub result: Vec<Reference>,
        pub conclusion: Option<String>,
    }
}

view! {
    /// View of a MedicationRequest: a prescription. Dosage is not read here; the UI shows it from the
    /// full resource.
    pub struct MedicationRequest {
        pub id: Option<String>,
        pub meta: Option<Meta>,
        pub status: Option<String>,
        pub intent: Option<String>,
        pub medication_codeable_concept: Option<CodeableConcept>,
        pub subject: Option<Reference>,
        pub encounter: Option<Reference>,
        pub authored_on: Option<String>,
        pub requester: Option<Reference>,
    }
}

view! {
    /// View of a MedicationDispense: the pharmacy handing a prescription over.
    pub struct MedicationDispense {
        pub id: Option<String>,
        pub meta: Option<Meta>,
        pub status: Option<String>,
        pub medication_codeable_concept: Option<CodeableConcept>,
        pub subject: Option<Reference>,
        /// The prescriptions this dispense fulfils.
        pub authorizing_prescription: Vec<Reference>,
        pub when_handed_over: Option<String>,
    }
}

view! {
    /// View of a DocumentReference: a clinical note. `doc_status` `final` means signed.
    pub struct DocumentReference {
        pub id: Option<String>,
        pub meta: Option<Meta>,
        pub status: Option<String>,
        pub doc_status: Option<String>,
        #[serde(rename = "type")]
        pub type_: Option<CodeableConcept>,
        pub category: Vec<CodeableConcept>,
        pub subject: Option<Reference>,
        pub date: Option<String>,
        pub author: Vec<Reference>,
        pub context: Option<DocumentReferenceContext>,
    }
}

view! {
    /// Where a note was written.
    pub struct DocumentReferenceContext {
        pub encounter: Vec<Reference>,
    }
}

view! {
    /// View of a Flag: a clinical alert shown as a banner while `status` is `active`.
    pub struct Flag {
        pub id: Option<String>,
        pub meta: Option<Meta>,
        pub status: Option<String>,
        pub category: Vec<CodeableConcept>,
        pub code: Option<CodeableConcept>,
        pub subject: Option<Reference>,
        pub period: Option<Period>,
        pub encounter: Option<Reference>,
    }
}

view! {
    /// View of a Task: work items, and how verifications and acknowledgements are recorded (see
    /// [`task_kind`]).
    pub struct Task {
        pub id: Option<String>,
        pub meta: Option<Meta>,
        pub status: Option<String>,
        pub intent: Option<String>,
        pub code: Option<CodeableConcept>,
        /// What the task acts on: the prescription verified, the alert acknowledged.
        pub focus: Option<Reference>,
        /// The patient the task is for.
        #[serde(rename = "for")]
        pub for_: Option<Reference>,
        pub owner: Option<Reference>,
        pub requester: Option<Reference>,
        pub authored_on: Option<String>,
        pub last_modified: Option<String>,
        pub business_status: Option<CodeableConcept>,
    }
}

view! {
    /// View of a CareTeam: one of the two ways a user gains access to a patient.
    pub struct CareTeam {
        pub id: Option<String>,
        pub meta: Option<Meta>,
        pub status: Option<String>,
        pub subject: Option<Reference>,
        pub participant: Vec<CareTeamParticipant>,
        pub period: Option<Period>,
    }
}

view! {
    /// A member of a care team and their roles on it.
    pub struct CareTeamParticipant {
        pub member: Option<Reference>,
        pub role: Vec<CodeableConcept>,
    }
}

view! {
    /// View of a Condition: a problem or diagnosis.
    pub struct Condition {
        pub id: Option<String>,
        pub meta: Option<Meta>,
        pub clinical_status: Option<CodeableConcept>,
        pub verification_status: Option<CodeableConcept>,
        pub category: Vec<CodeableConcept>,
        pub code: Option<CodeableConcept>,
        pub subject: Option<Reference>,
        pub encounter: Option<Reference>,
        pub onset_date_time: Option<String>,
        pub recorded_date: Option<String>,
    }
}

view! {
    /// View of an AllergyIntolerance. Note the patient is `patient`, not `subject`.
    pub struct AllergyIntolerance {
        pub id: Option<String>,
        pub meta: Option<Meta>,
        pub clinical_status: Option<CodeableConcept>,
        pub verification_status: Option<CodeableConcept>,
        /// allergy | intolerance.
        #[serde(rename = "type")]
        pub type_: Option<String>,
        /// food | medication | environment | biologic.
        pub category: Vec<String>,
        pub criticality: Option<String>,
        pub code: Option<CodeableConcept>,
        pub patient: Option<Reference>,
        pub recorded_date: Option<String>,
    }
}

view! {
    /// View of a Location: a unit (ward), room or bed.
    pub struct Location {
        pub id: Option<String>,
        pub meta: Option<Meta>,
        pub status: Option<String>,
        pub name: Option<String>,
        pub physical_type: Option<CodeableConcept>,
        /// The enclosing location: a bed's room, a room's ward.
        pub part_of: Option<Reference>,
    }
}

view! {
    /// View of a Practitioner: a user's clinical identity.
    pub struct Practitioner {
        pub id: Option<String>,
        pub meta: Option<Meta>,
        pub name: Vec<HumanName>,
        pub identifier: Vec<Identifier>,
        pub active: Option<bool>,
    }
}

// ---------------------------------------------------------------------------------------------------
// Helpers on raw JSON
// ---------------------------------------------------------------------------------------------------

/// What a Task records, as far as the event catalogue is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TaskKind {
    /// A pharmacist's verification of a prescription (see [`TASK_CODE_SYSTEM`]).
    Verification,
    /// A clinician's acknowledgement of an alert (see [`ROUNDS_TASK_SYSTEM`]).
    Acknowledgement,
    /// Any other Task.
    Other,
}

/// Whether `s` is a valid FHIR logical id: 1 to 64 of `A-Z a-z 0-9 - .`. Room names embed ids, so
/// anything else must never reach one.
pub fn is_fhir_id(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

/// The `resourceType` of a resource, if it has one.
pub fn resource_type(resource: &Value) -> Option<&str> {
    str_at(resource, "resourceType")
}

/// The id a reference points to, if it points to a resource of `expected_type`.
///
/// Accepts the forms a FHIR server meets in practice: relative (`Patient/p1`), absolute
/// (`https://host/fhir/R4/Patient/p1`) and either with a version (`.../_history/3`), which is ignored
/// because routing is by resource, not by version. Contained (`#p1`), conditional (`Patient?...`),
/// `urn:` and malformed references give `None`, as does an id that is not valid FHIR id syntax.
pub fn reference_id<'a>(reference: &'a str, expected_type: &str) -> Option<&'a str> {
    let mut path = reference;
    if let Some((before, version)) = path.rsplit_once('/') {
        if let Some(unversioned) = before.strip_suffix("/_history") {
            if !is_fhir_id(version) {
                return None;
            }
            path = unversioned;
        }
    }
    let (rest, id) = path.rsplit_once('/')?;
    let (base, type_name) = match rest.rsplit_once('/') {
        Some((base, type_name)) => (Some(base), type_name),
        None => (None, rest),
    };
    if type_name.is_empty() || type_name != expected_type || !is_fhir_id(id) {
        return None;
    }
    match base {
        None => Some(id),
        // Extra leading segments are only meaningful as a server base URL.
        Some(base) if base.contains("://") => Some(id),
        Some(_) => None,
    }
}

/// The id of the patient a resource is about, which decides its `patient:{id}` room and who may see
/// it. `None` for resources about no patient (Practitioner, Location, ...) and for resources whose
/// patient reference is missing or points elsewhere (e.g. a Group).
pub fn patient_id(resource: &Value) -> Option<String> {
    let field = match resource_type(resource)? {
        "Patient" => {
            return str_at(resource, "id")
                .filter(|id| is_fhir_id(id))
                .map(str::to_owned)
        }
        "AllergyIntolerance" => "patient",
        "Task" => "for",
        other if SUBJECT_TYPES.contains(&other) => "subject",
        _ => return None,
    };
    let reference = str_at(resource.get(field)?, "reference")?;
    reference_id(reference, "Patient").map(str::to_owned)
}

/// The id of the Location of the unit (ward) an Encounter currently has its patient on, which decides
/// the `unit:{id}` room admissions and transfers go to.
///
/// Only an Encounter in progress (in-progress, arrived, triaged, onleave) has a current unit; a
/// finished, cancelled or planned one has none. The unit is the last `location` entry that is active
/// (or has no status) and whose `physicalType` is a ward (code `wa`): entries without a physicalType
/// may be rooms or beds, so they are never taken for a unit. If that last ward entry's reference is not
/// a readable Location reference the answer is `None` rather than an earlier ward, because an earlier
/// ward is where the patient was, not where they are.
pub fn encounter_unit(resource: &Value) -> Option<String> {
    if resource_type(resource) != Some("Encounter") {
        return None;
    }
    if !str_at(resource, "status").is_some_and(|s| PRESENT_ENCOUNTER_STATUSES.contains(&s)) {
        return None;
    }
    let ward = array_at(resource, "location").iter().rfind(|entry| {
        matches!(str_at(entry, "status"), None | Some("active"))
            && entry
                .get("physicalType")
                .is_some_and(|concept| codings(concept).any(|c| str_at(c, "code") == Some("wa")))
    })?;
    let reference = str_at(ward.get("location")?, "reference")?;
    reference_id(reference, "Location").map(str::to_owned)
}

/// Whether a result carries a critical interpretation, which raises a CRITICAL_VALUE_ALERT facility-wide.
///
/// Observation: any `interpretation` (or any `component[].interpretation`) coding with code HH, LL or
/// AA (case-sensitive, any system), or `critical` (any case, any system, since it is not a v3 code
/// and local vocabularies spell it differently). DiagnosticReport: the same codes in `conclusionCode`.
/// Every other resource is never critical.
pub fn is_critical(resource: &Value) -> bool {
    match resource_type(resource) {
        Some("Observation") => {
            array_at(resource, "interpretation")
                .iter()
                .any(is_critical_concept)
                || array_at(resource, "component").iter().any(|component| {
                    array_at(component, "interpretation")
                        .iter()
                        .any(is_critical_concept)
                })
        }
        Some("DiagnosticReport") => array_at(resource, "conclusionCode")
            .iter()
            .any(is_critical_concept),
        _ => false,
    }
}

/// Whether a resource must be withheld from users not cleared for restricted content.
///
/// Two rules:
/// - the standard one: `meta.security` carries the v3 Confidentiality label `R` (restricted) or `V`
///   (very restricted);
/// - the sensitive-note category: a DocumentReference whose `category` or `type` has a coding with
///   code `sensitive` (any system). Notes on e.g. mental or sexual health are often filed without a
///   security label by the authoring tool, but their category says what they are; treating that as a
///   label keeps them out of general view without relying on every writer labelling correctly.
pub fn security_restricted(resource: &Value) -> bool {
    let labelled = resource.get("meta").is_some_and(|meta| {
        array_at(meta, "security").iter().any(|coding| {
            str_at(coding, "system") == Some(CONFIDENTIALITY_SYSTEM)
                && matches!(str_at(coding, "code"), Some("R" | "V"))
        })
    });
    let sensitive_note = resource_type(resource) == Some("DocumentReference")
        && array_at(resource, "category")
            .iter()
            .chain(resource.get("type"))
            .any(|concept| codings(concept).any(|c| str_at(c, "code") == Some("sensitive")));
    labelled || sensitive_note
}

/// Whether a Task is a prescription verification, an alert acknowledgement, or something else.
///
/// The code alone is not enough: the focus must be of the right type too, so that an "approve" Task
/// about, say, a ServiceRequest is never announced to the pharmacy as a verified prescription. Status
/// is not considered here; the classifier decides what a status change means.
pub fn task_kind(resource: &Value) -> TaskKind {
    if resource_type(resource) != Some("Task") {
        return TaskKind::Other;
    }
    let has_code = |system: &str, code: &str| {
        resource.get("code").is_some_and(|concept| {
            codings(concept)
                .any(|c| str_at(c, "system") == Some(system) && str_at(c, "code") == Some(code))
        })
    };
    let focus = resource
        .get("focus")
        .and_then(|focus| str_at(focus, "reference"));
    let focus_is = |type_name: &str| focus.and_then(|r| reference_id(r, type_name)).is_some();
    if has_code(TASK_CODE_SYSTEM, APPROVE) && focus_is("MedicationRequest") {
        TaskKind::Verification
    } else if has_code(ROUNDS_TASK_SYSTEM, ACKNOWLEDGE)
        && ["Observation", "DiagnosticReport", "Flag"]
            .into_iter()
            .any(focus_is)
    {
        TaskKind::Acknowledgement
    } else {
        TaskKind::Other
    }
}

fn is_critical_concept(concept: &Value) -> bool {
    codings(concept).any(|coding| {
        str_at(coding, "code").is_some_and(|code| {
            CRITICAL_INTERPRETATIONS.contains(&code) || code.eq_ignore_ascii_case("critical")
        })
    })
}

fn str_at<'a>(value: &'a Value, key: &str) -> Option<&'a str> {
    value.get(key)?.as_str()
}

/// An array field, or nothing: a missing or mistyped field reads as empty so callers never branch on it.
fn array_at<'a>(value: &'a Value, key: &str) -> &'a [Value] {
    value
        .get(key)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

fn codings(concept: &Value) -> impl Iterator<Item = &Value> {
    array_at(concept, "coding").iter()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reference_id_reads_relative_absolute_and_versioned_references() {
        assert_eq!(reference_id("Patient/p1", "Patient"), Some("p1"));
        assert_eq!(
            reference_id("https://rounds.example.org/fhir/R4/Patient/p1", "Patient"),
            Some("p1")
        );
        assert_eq!(reference_id("Patient/p1/_history/3", "Patient"), Some("p1"));
        assert_eq!(
            reference_id("http://h/fhir/R4/Patient/p-1.a/_history/12", "Patient"),
            Some("p-1.a")
        );
    }

    #[test]
    fn reference_id_rejects_everything_else() {
        let bad = [
            "Practitioner/p1",
            "#p1",
            "urn:uuid:2f4a6c1e-0000-4000-8000-000000000000",
            "Patient?identifier=123",
            "Patient/",
            "Patient",
            "",
            "/p1",
            "Patient/p1/",
            "Patient/p_1",
            "Patient/p1/_history/",
            "Patient/_history/2",
            "foo/Patient/p1",
            "patient/p1",
        ];
        for reference in bad {
            assert_eq!(reference_id(reference, "Patient"), None, "{reference}");
        }
        let too_long = format!("Patient/{}", "a".repeat(65));
        assert_eq!(reference_id(&too_long, "Patient"), None);
        let longest = format!("Patient/{}", "a".repeat(64));
        assert!(reference_id(&longest, "Patient").is_some());
        assert_eq!(reference_id("/p1", ""), None);
    }

    #[test]
    fn patient_id_follows_each_resource_types_patient_field() {
        let cases = [
            (json!({"resourceType": "Patient", "id": "p1"}), Some("p1")),
            (
                json!({"resourceType": "AllergyIntolerance", "patient": {"reference": "Patient/p2"}}),
                Some("p2"),
            ),
            (
                json!({"resourceType": "Task", "for": {"reference": "Patient/p3"}, "focus": {"reference": "Patient/px"}}),
                Some("p3"),
            ),
            (
                json!({"resourceType": "Observation", "subject": {"reference": "https://x/fhir/R4/Patient/p4/_history/1"}}),
                Some("p4"),
            ),
            (
                json!({"resourceType": "Encounter", "subject": {"reference": "Patient/p5"}}),
                Some("p5"),
            ),
            (
                json!({"resourceType": "Observation", "subject": {"reference": "Group/g1"}}),
                None,
            ),
            (
                json!({"resourceType": "AllergyIntolerance", "subject": {"reference": "Patient/p6"}}),
                None,
            ),
            (
                json!({"resourceType": "Practitioner", "id": "dr1", "subject": {"reference": "Patient/p7"}}),
                None,
            ),
            (json!({"resourceType": "Patient", "id": "bad id"}), None),
            (
                json!({"resourceType": "Flag", "subject": "Patient/p8"}),
                None,
            ),
            (json!({"subject": {"reference": "Patient/p9"}}), None),
            (json!(42), None),
        ];
        for (resource, expected) in cases {
            assert_eq!(patient_id(&resource).as_deref(), expected, "{resource}");
        }
    }

    fn ward(reference: &str, status: Option<&str>) -> Value {
        let mut entry = json!({
            "location": {"reference": reference},
            "physicalType": {"coding": [{
                "system": "http://terminology.hl7.org/CodeSystem/location-physical-type",
                "code": "wa"
            }]}
        });
        if let Some(status) = status {
            entry["status"] = json!(status);
        }
        entry
    }

    fn encounter(status: &str, locations: Vec<Value>) -> Value {
        json!({
            "resourceType": "Encounter",
            "id": "e1",
            "status": status,
            "subject": {"reference": "Patient/p1"},
            "location": locations
        })
    }

    #[test]
    fn encounter_unit_is_the_last_active_ward() {
        let bed = json!({
            "location": {"reference": "Location/bed-7"},
            "status": "active",
            "physicalType": {"coding": [{"code": "bd"}]}
        });
        let e = encounter(
            "in-progress",
            vec![
                ward("Location/w1", Some("completed")),
                ward("Location/w2", Some("active")),
                bed,
            ],
        );
        assert_eq!(encounter_unit(&e).as_deref(), Some("w2"));

        let both_active = encounter(
            "onleave",
            vec![
                ward("Location/w1", None),
                ward("Location/w3", Some("active")),
            ],
        );
        assert_eq!(encounter_unit(&both_active).as_deref(), Some("w3"));
    }

    #[test]
    fn encounter_unit_is_none_without_a_present_stay_on_a_ward() {
        let untyped = encounter(
            "in-progress",
            vec![json!({"location": {"reference": "Location/w1"}, "status": "active"})],
        );
        assert_eq!(encounter_unit(&untyped), None);
        for status in ["finished", "cancelled", "entered-in-error", "planned"] {
            let e = encounter(status, vec![ward("Location/w1", Some("active"))]);
            assert_eq!(encounter_unit(&e), None, "{status}");
        }
        let unreadable_last = encounter(
            "in-progress",
            vec![ward("Location/w1", None), ward("#contained", None)],
        );
        assert_eq!(encounter_unit(&unreadable_last), None);
        let not_encounter = json!({"resourceType": "EpisodeOfCare", "status": "in-progress",
            "location": [ward("Location/w1", None)]});
        assert_eq!(encounter_unit(&not_encounter), None);
        assert_eq!(
            encounter_unit(
                &json!({"resourceType": "Encounter", "status": "arrived", "location": 3})
            ),
            None
        );
    }

    #[test]
    fn is_critical_reads_interpretations_and_conclusion_codes() {
        let obs = |code: &str| {
            json!({"resourceType": "Observation", "interpretation": [{"coding": [{
                "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation",
                "code": code
            }]}]})
        };
        for code in ["HH", "LL", "AA", "critical", "Critical"] {
            assert!(is_critical(&obs(code)), "{code}");
        }
        for code in ["H", "L", "A", "N", "hh", "ll"] {
            assert!(!is_critical(&obs(code)), "{code}");
        }
        let component = json!({"resourceType": "Observation", "component": [
            {"interpretation": [{"coding": [{"code": "N"}]}]},
            {"interpretation": [{"coding": [{"code": "AA"}]}]}
        ]});
        assert!(is_critical(&component));
        let report = json!({"resourceType": "DiagnosticReport",
            "conclusionCode": [{"coding": [{"system": "http://local", "code": "critical"}]}]});
        assert!(is_critical(&report));
        let report_interpretation = json!({"resourceType": "DiagnosticReport",
            "interpretation": [{"coding": [{"code": "HH"}]}]});
        assert!(!is_critical(&report_interpretation));
        assert!(!is_critical(
            &json!({"resourceType": "Flag", "interpretation": [{"coding": [{"code": "HH"}]}]})
        ));
        assert!(!is_critical(
            &json!({"resourceType": "Observation", "interpretation": "HH"})
        ));
    }

    #[test]
    fn security_restricted_reads_confidentiality_labels_and_sensitive_notes() {
        let labelled = |system: &str, code: &str| json!({"resourceType": "Observation", "meta": {"security": [{"system": system, "code": code}]}});
        assert!(security_restricted(&labelled(CONFIDENTIALITY_SYSTEM, "R")));
        assert!(security_restricted(&labelled(CONFIDENTIALITY_SYSTEM, "V")));
        assert!(!security_restricted(&labelled(CONFIDENTIALITY_SYSTEM, "N")));
        assert!(!security_restricted(&labelled("http://other", "R")));

        let note_category = json!({"resourceType": "DocumentReference",
            "category": [{"coding": [{"system": "http://rounds.example.org/note-category", "code": "sensitive"}]}]});
        assert!(security_restricted(&note_category));
        let note_type = json!({"resourceType": "DocumentReference",
            "type": {"coding": [{"code": "sensitive"}]}});
        assert!(security_restricted(&note_type));
        let plain_note = json!({"resourceType": "DocumentReference",
            "type": {"coding": [{"system": "http://loinc.org", "code": "11506-3"}]}});
        assert!(!security_restricted(&plain_note));
        let other_type = json!({"resourceType": "Condition",
            "category": [{"coding": [{"code": "sensitive"}]}]});
        assert!(!security_restricted(&other_type));
        assert!(!security_restricted(&json!({"meta": {"security": "R"}})));
    }

    #[test]
    fn task_kind_needs_both_the_code_and_the_focus_type() {
        let task = |system: &str, code: &str, focus: &str| {
            json!({"resourceType": "Task", "status": "completed", "intent": "order",
                "code": {"coding": [{"system": system, "code": code}]},
                "focus": {"reference": focus}, "for": {"reference": "Patient/p1"}})
        };
        assert_eq!(
            task_kind(&task(TASK_CODE_SYSTEM, APPROVE, "MedicationRequest/mr1")),
            TaskKind::Verification
        );
        assert_eq!(
            task_kind(&task(TASK_CODE_SYSTEM, APPROVE, "ServiceRequest/sr1")),
            TaskKind::Other
        );
        for focus in ["Observation/o1", "DiagnosticReport/d1", "Flag/f1"] {
            assert_eq!(
                task_kind(&task(ROUNDS_TASK_SYSTEM, ACKNOWLEDGE, focus)),
                TaskKind::Acknowledgement
            );
        }
        assert_eq!(
            task_kind(&task(TASK_CODE_SYSTEM, ACKNOWLEDGE, "Flag/f1")),
            TaskKind::Other
        );
        assert_eq!(
            task_kind(&task(TASK_CODE_SYSTEM, "fulfill", "MedicationRequest/mr1")),
            TaskKind::Other
        );
        assert_eq!(task_kind(&json!(null)), TaskKind::Other);
    }

    #[test]
    fn views_read_realistic_resources_and_write_valid_fhir() {
        let json = json!({
            "resourceType": "Task",
            "id": "t1",
            "meta": {"versionId": "2", "lastUpdated": "2026-11-25T10:00:00Z"},
            "status": "completed",
            "intent": "order",
            "code": {"coding": [{"system": TASK_CODE_SYSTEM, "code": APPROVE}]},
            "focus": {"reference": "MedicationRequest/mr1"},
            "for": {"reference": "Patient/p1"},
            "authoredOn": "2026-11-25T09:58:00Z",
            "restriction": {"repetitions": 1}
        });
        let task: Task = serde_json::from_value(json).expect("valid Task");
        assert_eq!(
            task.for_.and_then(|r| r.reference).as_deref(),
            Some("Patient/p1")
        );
        assert_eq!(task.meta.and_then(|m| m.version_id).as_deref(), Some("2"));

        let note: DocumentReference = serde_json::from_value(json!({
            "resourceType": "DocumentReference", "docStatus": "final",
            "type": {"coding": [{"system": "http://loinc.org", "code": "11506-3"}], "text": "Progress note"},
            "context": {"encounter": [{"reference": "Encounter/e1"}]}
        }))
        .expect("valid DocumentReference");
        assert_eq!(note.doc_status.as_deref(), Some("final"));
        assert_eq!(
            note.type_.and_then(|t| t.text).as_deref(),
            Some("Progress note")
        );
        assert_eq!(note.context.map(|c| c.encounter.len()), Some(1));

        let obs = Observation {
            status: Some("final".into()),
            value_quantity: Some(Quantity {
                value: Some(7.1),
                unit: Some("mmol/L".into()),
                ..Quantity::default()
            }),
            ..Observation::default()
        };
        assert_eq!(
            serde_json::to_value(&obs).expect("serialises"),
            json!({"status": "final", "valueQuantity": {"value": 7.1, "unit": "mmol/L"}})
        );
        let name: HumanName = serde_json::from_value(
            json!({"use": "official", "family": "Okafor", "given": ["Ada"]}),
        )
        .expect("valid HumanName");
        assert_eq!(name.use_.as_deref(), Some("official"));

        let enc: Encounter = serde_json::from_value(json!({"location": [{"status": "active"}]}))
            .expect("sparse Encounter");
        assert_eq!(enc.location[0].location, Reference::default());
        assert_eq!(
            serde_json::to_value(&enc).expect("serialises"),
            json!({"location": [{"status": "active"}]})
        );
    }

    #[test]
    fn views_reject_malformed_json_without_panicking() {
        assert!(serde_json::from_value::<Observation>(json!({"status": 7})).is_err());
        assert!(serde_json::from_value::<Patient>(json!(42)).is_err());
        assert!(serde_json::from_value::<Quantity>(json!({"value": "high"})).is_err());
    }
}
