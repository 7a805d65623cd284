//! Basic FHIR R4 validation of an incoming resource, before anything touches the store.
//!
//! Checks the JSON rules of the FHIR format (no nulls, no empty values), `resourceType` and `id`,
//! that every element is one R4 defines for the type (`elements`), the element types the typed views in `app::fhir` read, the required elements (cardinality
//! 1..) and the required value sets of status-like codes. Pure; never panics on input. Whether
//! references resolve is the store's business (inside the write transaction).

use serde::de::DeserializeOwned;
use serde_json::Value;

use super::{error::Issue, params::is_valid_id};

/// What the body of a write must look like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Intent {
    /// POST: the server assigns the id; an id in the body is ignored (FHIR R4 §3.1.0.1.5).
    Create,
    /// PUT: the body's id must equal the URL's.
    Update,
}

/// Validates `body` as a resource of `resource_type` for `intent` with URL id `url_id`.
pub fn validate(
    resource_type: &str,
    body: &Value,
    intent: Intent,
    url_id: Option<&str>,
) -> Result<(), Vec<Issue>> {
    let Value::Object(map) = body else {
        return Err(vec![Issue::new(
            "structure",
            "the body must be a JSON object holding one resource",
            None,
        )]);
    };
    let mut issues = Vec::new();
    match map.get("resourceType") {
        None => issues.push(Issue::new(
            "required",
            "resourceType is missing",
            Some("resourceType"),
        )),
        Some(Value::String(given)) if given == resource_type => {}
        Some(Value::String(given)) => issues.push(Issue::new(
            "invalid",
            format!("resourceType is {given:?} but the URL is for {resource_type}"),
            Some("resourceType"),
        )),
        Some(_) => issues.push(Issue::new(
            "structure",
            "resourceType must be a string",
            Some("resourceType"),
        )),
    }
    if intent == Intent::Update {
        match (map.get("id"), url_id) {
            (Some(Value::String(id)), Some(url_id)) if id == url_id => {}
            (Some(Value::String(id)), Some(url_id)) => issues.push(Issue::new(
                "invalid",
                format!("the id in the body ({id:?}) differs from the id in the URL ({url_id:?})"),
                Some("id"),
            )),
            (None, _) => issues.push(Issue::new(
                "required",
                "an update must carry the resource's id",
                Some("id"),
            )),
            _ => issues.push(Issue::new("structure", "id must be a string", Some("id"))),
        }
    }
    if let Some(id) = map.get("id") {
        if intent == Intent::Update && !id.as_str().is_some_and(is_valid_id) {
            issues.push(Issue::new(
                "invalid",
                "id must match [A-Za-z0-9-.]{1,64}",
                Some("id"),
            ));
        }
    }
    json_rules(body, resource_type, &mut issues);
    // An element R4 does not define would be stored and served back to clients that refuse it.
    issues.extend(super::elements::unknown_elements(resource_type, body));
    if !issues.is_empty() {
        return Err(issues);
    }
    type_rules(resource_type, body, &mut issues);
    date_rules(resource_type, body, &mut issues);
    if issues.is_empty() {
        Ok(())
    } else {
        Err(issues)
    }
}

/// FHIR JSON forbids nulls, empty strings, empty objects and empty arrays.
fn json_rules(value: &Value, path: &str, issues: &mut Vec<Issue>) {
    if issues.len() >= 20 {
        return;
    }
    match value {
        Value::Null => issues.push(Issue::new(
            "structure",
            "null is not allowed in FHIR JSON",
            Some(path),
        )),
        Value::String(text) if text.is_empty() => issues.push(Issue::new(
            "structure",
            "empty strings are not allowed",
            Some(path),
        )),
        Value::Array(items) if items.is_empty() => issues.push(Issue::new(
            "structure",
            "empty arrays are not allowed",
            Some(path),
        )),
        Value::Object(map) if map.is_empty() => issues.push(Issue::new(
            "structure",
            "empty objects are not allowed",
            Some(path),
        )),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                json_rules(item, &format!("{path}[{i}]"), issues);
            }
        }
        Value::Object(map) => {
            for (key, child) in map {
                json_rules(child, &format!("{path}.{key}"), issues);
            }
        }
        _ => {}
    }
}

/// Elements of type date, dateTime or instant in the resources we host (top level).
const DATE_ELEMENTS: &[&str] = &[
    "authoredOn",
    "effectiveDateTime",
    "effectiveInstant",
    "issued",
    "date",
    "recordedDate",
    "birthDate",
    "whenHandedOver",
    "whenPrepared",
    "onsetDateTime",
    "abatementDateTime",
    "lastModified",
    "occurrenceDateTime",
    "recorded",
];
/// Elements of type Period (top level).
const PERIOD_ELEMENTS: &[&str] = &[
    "period",
    "effectivePeriod",
    "occurrencePeriod",
    "executionPeriod",
];

/// A date that does not parse would be stored but never found by a date search: refuse it.
fn date_rules(resource_type: &str, body: &Value, issues: &mut Vec<Issue>) {
    let bad = |element: &str, issues: &mut Vec<Issue>| {
        issues.push(Issue::new(
            "value",
            format!("{resource_type}.{element} is not a valid FHIR date, dateTime or instant"),
            Some(&format!("{resource_type}.{element}")),
        ))
    };
    for element in DATE_ELEMENTS {
        if let Some(value) = body.get(element) {
            if value
                .as_str()
                .is_none_or(|text| super::date::parse_range(text).is_none())
            {
                bad(element, issues);
            }
        }
    }
    for element in PERIOD_ELEMENTS {
        if let Some(period) = body.get(element) {
            for bound in ["start", "end"] {
                if let Some(value) = period.get(bound) {
                    if value
                        .as_str()
                        .is_none_or(|text| super::date::parse_range(text).is_none())
                    {
                        bad(&format!("{element}.{bound}"), issues);
                    }
                }
            }
        }
    }
}

fn typed<T: DeserializeOwned>(resource_type: &str, body: &Value, issues: &mut Vec<Issue>) {
    if let Err(error) = T::deserialize(body) {
        issues.push(Issue::new(
            "structure",
            format!("{resource_type} has an element of the wrong type: {error}"),
            Some(resource_type),
        ));
    }
}

fn required(body: &Value, resource_type: &str, elements: &[&str], issues: &mut Vec<Issue>) {
    for element in elements {
        // `medication[x]`: any of the choices.
        let present = match element.strip_suffix("[x]") {
            Some(stem) => body.as_object().is_some_and(|map| {
                map.keys()
                    .any(|key| key.starts_with(stem) && key.len() > stem.len())
            }),
            None => element
                .split('.')
                .try_fold(body, |value, step| value.get(step))
                .is_some(),
        };
        if !present {
            issues.push(Issue::new(
                "required",
                format!("{resource_type}.{element} is required"),
                Some(&format!("{resource_type}.{element}")),
            ));
        }
    }
}

fn coded(
    body: &Value,
    resource_type: &str,
    element: &str,
    allowed: &[&str],
    issues: &mut Vec<Issue>,
) {
    let value = element
        .split('.')
        .try_fold(body, |value, step| value.get(step));
    if let Some(code) = value.and_then(Value::as_str) {
        if !allowed.contains(&code) {
            issues.push(Issue::new(
                "code-invalid",
                format!(
                    "{resource_type}.{element} {code:?} is not one of {}",
                    allowed.join(", ")
                ),
                Some(&format!("{resource_type}.{element}")),
            ));
        }
    }
}

const REQUEST_INTENTS: &[&str] = &[
    "proposal",
    "plan",
    "directive",
    "order",
    "original-order",
    "reflex-order",
    "filler-order",
    "instance-order",
    "option",
];

fn type_rules(resource_type: &str, body: &Value, issues: &mut Vec<Issue>) {
    use app::fhir as f;
    let rt = resource_type;
    match rt {
        "Patient" => {
            typed::<f::Patient>(rt, body, issues);
            coded(
                body,
                rt,
                "gender",
                &["male", "female", "other", "unknown"],
                issues,
            );
        }
        "Practitioner" => typed::<f::Practitioner>(rt, body, issues),
        "Location" => {
            typed::<f::Location>(rt, body, issues);
            coded(
                body,
                rt,
                "status",
                &["active", "suspended", "inactive"],
                issues,
            );
        }
        "Encounter" => {
            typed::<f::Encounter>(rt, body, issues);
            required(body, rt, &["status", "class"], issues);
            coded(
                body,
                rt,
                "status",
                &[
                    "planned",
                    "arrived",
                    "triaged",
                    "in-progress",
                    "onleave",
                    "finished",
                    "cancelled",
                    "entered-in-error",
                    "unknown",
                ],
                issues,
            );
        }
        "CareTeam" => {
            typed::<f::CareTeam>(rt, body, issues);
            coded(
                body,
                rt,
                "status",
                &[
                    "proposed",
                    "active",
                    "suspended",
                    "inactive",
                    "entered-in-error",
                ],
                issues,
            );
        }
        "Condition" => {
            typed::<f::Condition>(rt, body, issues);
            required(body, rt, &["subject"], issues);
        }
        "AllergyIntolerance" => {
            typed::<f::AllergyIntolerance>(rt, body, issues);
            required(body, rt, &["patient"], issues);
            coded(
                body,
                rt,
                "criticality",
                &["low", "high", "unable-to-assess"],
                issues,
            );
        }
        "ServiceRequest" => {
            typed::<f::ServiceRequest>(rt, body, issues);
            required(body, rt, &["status", "intent", "subject"], issues);
            coded(
                body,
                rt,
                "status",
                &[
                    "draft",
                    "active",
                    "on-hold",
                    "revoked",
                    "completed",
                    "entered-in-error",
                    "unknown",
                ],
                issues,
            );
            coded(body, rt, "intent", REQUEST_INTENTS, issues);
            coded(
                body,
                rt,
                "priority",
                &["routine", "urgent", "asap", "stat"],
                issues,
            );
        }
        "Observation" => {
            typed::<f::Observation>(rt, body, issues);
            required(body, rt, &["status", "code"], issues);
            coded(
                body,
                rt,
                "status",
                &[
                    "registered",
                    "preliminary",
                    "final",
                    "amended",
                    "corrected",
                    "cancelled",
                    "entered-in-error",
                    "unknown",
                ],
                issues,
            );
        }
        "DiagnosticReport" => {
            typed::<f::DiagnosticReport>(rt, body, issues);
            required(body, rt, &["status", "code"], issues);
            coded(
                body,
                rt,
                "status",
                &[
                    "registered",
                    "partial",
                    "preliminary",
                    "final",
                    "amended",
                    "corrected",
                    "appended",
                    "cancelled",
                    "entered-in-error",
                    "unknown",
                ],
                issues,
            );
        }
        "MedicationRequest" => {
            typed::<f::MedicationRequest>(rt, body, issues);
            required(
                body,
                rt,
                &["status", "intent", "medication[x]", "subject"],
                issues,
            );
            coded(
                body,
                rt,
                "status",
                &[
                    "active",
                    "on-hold",
                    "cancelled",
                    "completed",
                    "entered-in-error",
                    "stopped",
                    "draft",
                    "unknown",
                ],
                issues,
            );
            coded(body, rt, "intent", REQUEST_INTENTS, issues);
        }
        "MedicationDispense" => {
            typed::<f::MedicationDispense>(rt, body, issues);
            required(body, rt, &["status", "medication[x]"], issues);
            coded(
                body,
                rt,
                "status",
                &[
                    "preparation",
                    "in-progress",
                    "cancelled",
                    "on-hold",
                    "completed",
                    "entered-in-error",
                    "stopped",
                    "declined",
                    "unknown",
                ],
                issues,
            );
        }
        "DocumentReference" => {
            typed::<f::DocumentReference>(rt, body, issues);
            required(body, rt, &["status", "content"], issues);
            coded(
                body,
                rt,
                "status",
                &["current", "superseded", "entered-in-error"],
                issues,
            );
            coded(
                body,
                rt,
                "docStatus",
                &["preliminary", "final", "amended", "entered-in-error"],
                issues,
            );
            if let Some(Value::Array(content)) = body.get("content") {
                if content.iter().any(|c| c.get("attachment").is_none()) {
                    issues.push(Issue::new(
                        "required",
                        "DocumentReference.content.attachment is required",
                        Some("DocumentReference.content.attachment"),
                    ));
                }
            }
        }
        "Flag" => {
            typed::<f::Flag>(rt, body, issues);
            required(body, rt, &["status", "code", "subject"], issues);
            coded(
                body,
                rt,
                "status",
                &["active", "inactive", "entered-in-error"],
                issues,
            );
        }
        "Task" => {
            typed::<f::Task>(rt, body, issues);
            required(body, rt, &["status", "intent"], issues);
            coded(
                body,
                rt,
                "status",
                &[
                    "draft",
                    "requested",
                    "received",
                    "accepted",
                    "rejected",
                    "ready",
                    "cancelled",
                    "in-progress",
                    "on-hold",
                    "failed",
                    "completed",
                    "entered-in-error",
                ],
                issues,
            );
            coded(
                body,
                rt,
                "intent",
                &[
                    "unknown",
                    "proposal",
                    "plan",
                    "order",
                    "original-order",
                    "reflex-order",
                    "filler-order",
                    "instance-order",
                    "option",
                ],
                issues,
            );
        }
        "Subscription" => {
            required(
                body,
                rt,
                &["status", "reason", "criteria", "channel.type"],
                issues,
            );
            coded(
                body,
                rt,
                "status",
                &["requested", "active", "error", "off"],
                issues,
            );
            coded(
                body,
                rt,
                "channel.type",
                &["rest-hook", "websocket", "email", "sms", "message"],
                issues,
            );
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn order() -> Value {
        json!({
            "resourceType": "ServiceRequest", "status": "active", "intent": "order",
            "subject": {"reference": "Patient/pat-001"},
            "code": {"coding": [{"system": "http://loinc.org", "code": "58410-2"}]}
        })
    }

    #[test]
    fn a_complete_order_passes() {
        assert_eq!(
            validate("ServiceRequest", &order(), Intent::Create, None),
            Ok(())
        );
    }

    #[test]
    fn missing_required_elements_are_named() {
        let mut body = order();
        body.as_object_mut().unwrap().remove("subject");
        body.as_object_mut().unwrap().remove("intent");
        let issues = validate("ServiceRequest", &body, Intent::Create, None).unwrap_err();
        let named: Vec<_> = issues.iter().filter_map(|i| i.expression.clone()).collect();
        assert_eq!(
            named,
            vec!["ServiceRequest.intent", "ServiceRequest.subject"]
        );
    }

    #[test]
    fn wrong_resource_type_id_mismatch_and_bad_codes_fail() {
        assert!(validate("Observation", &order(), Intent::Create, None).is_err());
        let mut body = order();
        body["id"] = json!("a");
        assert!(validate("ServiceRequest", &body, Intent::Update, Some("b")).is_err());
        body["id"] = json!("b");
        assert!(validate("ServiceRequest", &body, Intent::Update, Some("b")).is_ok());
        body["status"] = json!("approved");
        assert!(validate("ServiceRequest", &body, Intent::Update, Some("b")).is_err());
    }

    #[test]
    fn json_format_rules_and_element_types_are_enforced() {
        let mut body = order();
        body["note"] = json!([]);
        assert!(validate("ServiceRequest", &body, Intent::Create, None).is_err());
        let mut body = order();
        body["status"] = json!(7);
        assert!(validate("ServiceRequest", &body, Intent::Create, None).is_err());
        let mut body = order();
        body["subject"] = json!("Patient/pat-001");
        assert!(validate("ServiceRequest", &body, Intent::Create, None).is_err());
        assert!(validate("ServiceRequest", &json!([1, 2]), Intent::Create, None).is_err());
        assert!(validate(
            "ServiceRequest",
            &json!({"resourceType": null}),
            Intent::Create,
            None
        )
        .is_err());
    }

    #[test]
    fn dates_must_parse() {
        let mut body = order();
        body["authoredOn"] = json!("last tuesday");
        assert!(validate("ServiceRequest", &body, Intent::Create, None).is_err());
        body["authoredOn"] = json!("2026-11-25T08:00:00Z");
        assert!(validate("ServiceRequest", &body, Intent::Create, None).is_ok());
        let flag = json!({"resourceType": "Flag", "status": "active", "code": {"text": "Fall risk"},
            "subject": {"reference": "Patient/p"}, "period": {"start": "2026-13-01"}});
        assert!(validate("Flag", &flag, Intent::Create, None).is_err());
    }

    #[test]
    fn what_the_clinical_ui_writes_passes() {
        use app::{api::PractitionerRef, clinical, records::Record};
        let me = PractitionerRef {
            reference: "Practitioner/prac-chen".into(),
            display: "Dr. Maya Chen".into(),
        };
        let now = "2026-11-25T08:00:00.000Z";
        let patient = ("pat-001", "Ada Whitfield");
        let order = clinical::service_request(
            &app::catalogue::ORDERS[0],
            "routine",
            patient,
            Some(&me),
            now,
            "t1",
        );
        let prescription = clinical::medication_request(
            &app::catalogue::FORMULARY[0],
            patient,
            Some(&me),
            now,
            "t2",
        );
        let record = Record {
            resource_type: "MedicationRequest".into(),
            id: "mr-1".into(),
            version: 1,
            json: std::sync::Arc::new(prescription.clone()),
        };
        let note = clinical::note("Progress note", "Stable.", patient, Some(&me), now, "t3");
        let writes = [
            clinical::with_status(&order, "revoked"),
            order,
            prescription,
            clinical::acknowledgement_task("Observation/obs-1", "Patient/pat-001", Some(&me), now),
            clinical::verification_task(&record, Some(&me), now),
            clinical::dispense(&record, Some(&me), now),
            clinical::signed(&clinical::with_note_text(&note, "Better."), Some(&me)),
            note,
        ];
        for body in writes {
            let rtype = body["resourceType"].as_str().unwrap().to_owned();
            assert_eq!(
                validate(&rtype, &body, Intent::Create, None),
                Ok(()),
                "{body}"
            );
        }
    }

    #[test]
    fn unknown_elements_are_refused_with_their_path() {
        let mut body = order();
        body["favouriteColour"] = json!("green");
        let issues = validate("ServiceRequest", &body, Intent::Create, None).unwrap_err();
        assert_eq!(
            issues[0].expression.as_deref(),
            Some("ServiceRequest.favouriteColour")
        );
    }

    #[test]
    fn medication_choice_counts_as_present() {
        let body = json!({
            "resourceType": "MedicationRequest", "status": "active", "intent": "order",
            "subject": {"reference": "Patient/p"},
            "medicationCodeableConcept": {"text": "Heparin"}
        });
        assert!(validate("MedicationRequest", &body, Intent::Create, None).is_ok());
        let mut body = body;
        body.as_object_mut()
            .unwrap()
            .remove("medicationCodeableConcept");
        assert!(validate("MedicationRequest", &body, Intent::Create, None).is_err());
    }
}
