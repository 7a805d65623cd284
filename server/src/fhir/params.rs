//! The search parameters Rounds supports, per resource type, and how their values are extracted.
//!
//! This table is the single source for three things that must agree: what the store indexes on
//! every write, what a search may ask for, and what the CapabilityStatement advertises. It is pure
//! (no I/O) and must never panic on any JSON.

use serde_json::Value;

/// How a parameter matches (FHIR search parameter types we implement).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Token,
    Reference,
    Date,
    String,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Token => "token",
            Kind::Reference => "reference",
            Kind::Date => "date",
            Kind::String => "string",
        }
    }
}

/// One search parameter of one resource type.
#[derive(Debug, Clone, Copy)]
pub struct Param {
    pub name: &'static str,
    pub kind: Kind,
    /// Dotted element paths, each walked through arrays; choice types are listed explicitly.
    pub paths: &'static [&'static str],
    /// For reference parameters: the only target type accepted (None = any of ours).
    pub target: Option<&'static str>,
    /// A token computed from the whole resource rather than read at `paths`: indexed as
    /// `true` or `false`.
    pub derive: Option<fn(&Value) -> bool>,
}

const fn p(name: &'static str, kind: Kind, paths: &'static [&'static str]) -> Param {
    Param {
        name,
        kind,
        paths,
        target: None,
        derive: None,
    }
}

/// `critical`: whether a result carries a critical interpretation (`app::fhir::is_critical`),
/// so that open criticals are found by a query, not by reading every result.
const CRITICAL: Param = Param {
    name: "critical",
    kind: Kind::Token,
    paths: &[],
    target: None,
    derive: Some(app::fhir::is_critical),
};

/// The canonical URL of each search parameter Rounds defines itself.
pub fn own_definition(resource_type: &str, name: &str) -> Option<String> {
    (name == CRITICAL.name && matches!(resource_type, "Observation" | "DiagnosticReport"))
        .then(|| format!("http://rounds.example.org/fhir/SearchParameter/{resource_type}-{name}"))
}

const fn patient(paths: &'static [&'static str]) -> Param {
    Param {
        name: "patient",
        kind: Kind::Reference,
        paths,
        target: Some("Patient"),
        derive: None,
    }
}

use Kind::{Date, Reference, String as Str, Token};

/// Search parameters by resource type. `_id` and `_lastUpdated` apply to every type and are
/// handled by the store directly.
pub fn params_for(resource_type: &str) -> &'static [Param] {
    match resource_type {
        "Patient" => {
            const {
                &[
                    p("identifier", Token, &["identifier"]),
                    p("name", Str, &["name"]),
                    p("family", Str, &["name.family"]),
                    p("given", Str, &["name.given"]),
                    p("gender", Token, &["gender"]),
                    p("birthdate", Date, &["birthDate"]),
                    p("active", Token, &["active"]),
                ]
            }
        }
        "Practitioner" => {
            const {
                &[
                    p("identifier", Token, &["identifier"]),
                    p("name", Str, &["name"]),
                    p("active", Token, &["active"]),
                ]
            }
        }
        "Location" => {
            const {
                &[
                    p("name", Str, &["name"]),
                    p("status", Token, &["status"]),
                    p("type", Token, &["type", "physicalType"]),
                    p("partof", Reference, &["partOf"]),
                ]
            }
        }
        "Encounter" => {
            const {
                &[
                    patient(&["subject"]),
                    p("subject", Reference, &["subject"]),
                    p("status", Token, &["status"]),
                    p("class", Token, &["class"]),
                    p("date", Date, &["period"]),
                    p("location", Reference, &["location.location"]),
                    p("participant", Reference, &["participant.individual"]),
                ]
            }
        }
        "CareTeam" => {
            const {
                &[
                    patient(&["subject"]),
                    p("subject", Reference, &["subject"]),
                    p("status", Token, &["status"]),
                    p("participant", Reference, &["participant.member"]),
                    p("date", Date, &["period"]),
                ]
            }
        }
        "Condition" => {
            const {
                &[
                    patient(&["subject"]),
                    p("subject", Reference, &["subject"]),
                    p("code", Token, &["code"]),
                    p("category", Token, &["category"]),
                    p("clinical-status", Token, &["clinicalStatus"]),
                    p("encounter", Reference, &["encounter"]),
                    p("recorded-date", Date, &["recordedDate"]),
                ]
            }
        }
        "AllergyIntolerance" => {
            const {
                &[
                    patient(&["patient"]),
                    p("code", Token, &["code"]),
                    p("clinical-status", Token, &["clinicalStatus"]),
                    p("category", Token, &["category"]),
                    p("criticality", Token, &["criticality"]),
                    p("date", Date, &["recordedDate"]),
                ]
            }
        }
        "ServiceRequest" => {
            const {
                &[
                    patient(&["subject"]),
                    p("subject", Reference, &["subject"]),
                    p("status", Token, &["status"]),
                    p("intent", Token, &["intent"]),
                    p("code", Token, &["code"]),
                    p("category", Token, &["category"]),
                    p("encounter", Reference, &["encounter"]),
                    p("requester", Reference, &["requester"]),
                    p("authored", Date, &["authoredOn"]),
                ]
            }
        }
        "Observation" => {
            const {
                &[
                    patient(&["subject"]),
                    p("subject", Reference, &["subject"]),
                    p("status", Token, &["status"]),
                    p("code", Token, &["code"]),
                    p("category", Token, &["category"]),
                    p(
                        "date",
                        Date,
                        &["effectiveDateTime", "effectivePeriod", "effectiveInstant"],
                    ),
                    p("encounter", Reference, &["encounter"]),
                    p("based-on", Reference, &["basedOn"]),
                    CRITICAL,
                ]
            }
        }
        "DiagnosticReport" => {
            const {
                &[
                    patient(&["subject"]),
                    p("subject", Reference, &["subject"]),
                    p("status", Token, &["status"]),
                    p("code", Token, &["code"]),
                    p("category", Token, &["category"]),
                    p("date", Date, &["effectiveDateTime", "effectivePeriod"]),
                    p("encounter", Reference, &["encounter"]),
                    p("based-on", Reference, &["basedOn"]),
                    p("result", Reference, &["result"]),
                    CRITICAL,
                ]
            }
        }
        "MedicationRequest" => {
            const {
                &[
                    patient(&["subject"]),
                    p("subject", Reference, &["subject"]),
                    p("status", Token, &["status"]),
                    p("intent", Token, &["intent"]),
                    p("code", Token, &["medicationCodeableConcept"]),
                    p("category", Token, &["category"]),
                    p("encounter", Reference, &["encounter"]),
                    p("requester", Reference, &["requester"]),
                    p("authoredon", Date, &["authoredOn"]),
                ]
            }
        }
        "MedicationDispense" => {
            const {
                &[
                    patient(&["subject"]),
                    p("subject", Reference, &["subject"]),
                    p("status", Token, &["status"]),
                    p("code", Token, &["medicationCodeableConcept"]),
                    p("prescription", Reference, &["authorizingPrescription"]),
                    p("whenhandedover", Date, &["whenHandedOver"]),
                ]
            }
        }
        "DocumentReference" => {
            const {
                &[
                    patient(&["subject"]),
                    p("subject", Reference, &["subject"]),
                    p("status", Token, &["status"]),
                    p("type", Token, &["type"]),
                    p("category", Token, &["category"]),
                    p("date", Date, &["date"]),
                    p("encounter", Reference, &["context.encounter"]),
                    p("author", Reference, &["author"]),
                ]
            }
        }
        "Flag" => {
            const {
                &[
                    patient(&["subject"]),
                    p("subject", Reference, &["subject"]),
                    p("status", Token, &["status"]),
                    p("category", Token, &["category"]),
                    p("date", Date, &["period"]),
                    p("encounter", Reference, &["encounter"]),
                ]
            }
        }
        "Task" => {
            const {
                &[
                    patient(&["for"]),
                    p("subject", Reference, &["for"]),
                    p("status", Token, &["status"]),
                    p("intent", Token, &["intent"]),
                    p("code", Token, &["code"]),
                    p("focus", Reference, &["focus"]),
                    p("owner", Reference, &["owner"]),
                    p("authored-on", Date, &["authoredOn"]),
                ]
            }
        }
        "Subscription" => {
            const {
                &[
                    p("status", Token, &["status"]),
                    p("type", Token, &["channel.type"]),
                    p("criteria", Str, &["criteria"]),
                ]
            }
        }
        "AuditEvent" => {
            const {
                &[
                    patient(&["entity.what"]),
                    p("entity", Reference, &["entity.what"]),
                    p("agent", Reference, &["agent.who"]),
                    p("action", Token, &["action"]),
                    p("date", Date, &["recorded"]),
                ]
            }
        }
        _ => &[],
    }
}

/// The parameter named `name` of `resource_type`, if we support it.
pub fn find(resource_type: &str, name: &str) -> Option<&'static Param> {
    params_for(resource_type)
        .iter()
        .find(|param| param.name == name)
}

/// Which date parameter `_sort=date` and the store's `sort_date` use for a type.
pub fn sort_date_param(resource_type: &str) -> Option<&'static Param> {
    params_for(resource_type)
        .iter()
        .find(|param| param.kind == Kind::Date)
}

/// Every element value at a dotted path, descending through arrays at each step.
pub fn values_at<'a>(resource: &'a Value, path: &str) -> Vec<&'a Value> {
    let mut current = vec![resource];
    for step in path.split('.') {
        let mut next = Vec::new();
        for value in current {
            match value.get(step) {
                Some(Value::Array(items)) => next.extend(items.iter()),
                Some(Value::Null) | None => {}
                Some(other) => next.push(other),
            }
        }
        current = next;
    }
    current
}

/// A token value as indexed: (system or "", code).
pub fn tokens_of(value: &Value) -> Vec<(String, String)> {
    match value {
        Value::String(code) => vec![(String::new(), code.clone())],
        Value::Bool(flag) => vec![(String::new(), flag.to_string())],
        Value::Object(map) => {
            if let Some(Value::Array(codings)) = map.get("coding") {
                // CodeableConcept
                codings.iter().flat_map(coding_token).collect()
            } else if map.contains_key("code") {
                coding_token(value).into_iter().collect()
            } else if let Some(Value::String(identifier)) = map.get("value") {
                let system = map.get("system").and_then(Value::as_str).unwrap_or("");
                vec![(system.to_owned(), identifier.clone())]
            } else {
                Vec::new()
            }
        }
        _ => Vec::new(),
    }
}

fn coding_token(coding: &Value) -> Option<(String, String)> {
    let code = coding.get("code")?.as_str()?;
    let system = coding.get("system").and_then(Value::as_str).unwrap_or("");
    Some((system.to_owned(), code.to_owned()))
}

/// A reference value as indexed: (target type, target id). Only relative literal references
/// (`Type/id`, optionally `/_history/n`) and absolute URLs ending in `Type/id` are indexed.
pub fn reference_of(value: &Value) -> Option<(String, String)> {
    let reference = value.get("reference")?.as_str()?;
    split_reference(reference)
}

/// Splits `Type/id`, `Type/id/_history/n` or `http://…/Type/id` into (type, id).
pub fn split_reference(reference: &str) -> Option<(String, String)> {
    let trimmed = match reference.find("/_history/") {
        Some(at) => &reference[..at],
        None => reference,
    };
    let mut parts = trimmed.rsplitn(3, '/');
    let id = parts.next()?;
    let rtype = parts.next()?;
    if !is_valid_id(id) || !rtype.chars().next().is_some_and(|c| c.is_ascii_uppercase()) {
        return None;
    }
    if !rtype.chars().all(|c| c.is_ascii_alphanumeric()) {
        return None;
    }
    Some((rtype.to_owned(), id.to_owned()))
}

/// String values as indexed for the default search: lower-cased, for case-insensitive prefix
/// matching.
pub fn strings_of(value: &Value) -> Vec<String> {
    strings_as_written(value)
        .into_iter()
        .map(str::to_lowercase)
        .collect()
}

/// String values exactly as written, for `:exact` (case and accents matter).
pub fn strings_as_written(value: &Value) -> Vec<&str> {
    match value {
        Value::String(text) => vec![text.as_str()],
        Value::Object(map) => {
            // HumanName / Address-like: every string part.
            let mut out = Vec::new();
            for key in ["text", "family", "given", "prefix", "suffix"] {
                match map.get(key) {
                    Some(Value::String(text)) => out.push(text.as_str()),
                    Some(Value::Array(items)) => out.extend(items.iter().filter_map(Value::as_str)),
                    _ => {}
                }
            }
            out
        }
        _ => Vec::new(),
    }
}

/// The FHIR `id` syntax: `[A-Za-z0-9\-\.]{1,64}`.
pub fn is_valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

/// Types clients may write; AuditEvent is produced by the server and only read.
pub fn writable(resource_type: &str) -> bool {
    resource_type != "AuditEvent" && app::fhir::RESOURCE_TYPES.contains(&resource_type)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn values_at_walks_arrays() {
        let encounter = json!({"location": [
            {"location": {"reference": "Location/unit-4w"}},
            {"location": {"reference": "Location/bed-4w-01"}}
        ]});
        let found = values_at(&encounter, "location.location");
        assert_eq!(found.len(), 2);
        assert_eq!(
            reference_of(found[1]),
            Some(("Location".into(), "bed-4w-01".into()))
        );
    }

    #[test]
    fn tokens_from_codeable_concept_coding_identifier_and_code() {
        let concept = json!({"coding": [{"system": "http://loinc.org", "code": "718-7"}]});
        assert_eq!(
            tokens_of(&concept),
            vec![("http://loinc.org".into(), "718-7".into())]
        );
        let identifier = json!({"system": "urn:mrn", "value": "MRN-1"});
        assert_eq!(
            tokens_of(&identifier),
            vec![("urn:mrn".into(), "MRN-1".into())]
        );
        assert_eq!(
            tokens_of(&json!("final")),
            vec![("".into(), "final".into())]
        );
        assert!(tokens_of(&json!(12)).is_empty());
    }

    #[test]
    fn references_accept_relative_versioned_and_absolute_forms() {
        assert_eq!(
            split_reference("Patient/p1/_history/3"),
            Some(("Patient".into(), "p1".into()))
        );
        assert_eq!(
            split_reference("https://x.org/fhir/R4/Patient/p1"),
            Some(("Patient".into(), "p1".into()))
        );
        assert_eq!(split_reference("#contained"), None);
        assert_eq!(split_reference("Patient/"), None);
        assert_eq!(split_reference("patient/p1"), None);
    }

    #[test]
    fn every_type_has_a_sortable_date_or_none_and_names_are_unique() {
        for rtype in app::fhir::RESOURCE_TYPES {
            let params = params_for(rtype);
            let mut names: Vec<_> = params.iter().map(|p| p.name).collect();
            names.sort_unstable();
            names.dedup();
            assert_eq!(
                names.len(),
                params.len(),
                "{rtype} has duplicate parameters"
            );
        }
    }

    #[test]
    fn id_syntax() {
        assert!(is_valid_id("pat-001.a"));
        assert!(!is_valid_id(""));
        assert!(!is_valid_id("a b"));
        assert!(!is_valid_id(&"x".repeat(65)));
    }
}
