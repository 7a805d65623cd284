//! What a resource version contributes to the search indexes: computed once per write from the
//! parameter table in `fhir::params`, backend-independent, pure.

use serde_json::Value;

use crate::fhir::{
    date::element_range,
    params::{self, Kind},
};

/// The version of what [`index_entries`] computes: raise it whenever that changes, and the
/// store re-indexes every current resource once, at start (`Store::reindex_if_stale`).
pub const INDEX_VERSION: &str = "2";

/// Index rows of one resource version.
#[derive(Debug, Default, PartialEq)]
pub struct IndexEntries {
    /// (param, system, value) for token, string and reference parameters. A string value has
    /// two rows: system `""` with the lower-cased text (prefix search) and system
    /// [`EXACT_SYSTEM`] with the text as written (`:exact`).
    pub values: Vec<(&'static str, String, String)>,
    /// (param, start, end) inclusive UTC ranges for date parameters.
    pub dates: Vec<(&'static str, String, String)>,
    /// The start of the type's first date parameter, for `_sort=date`.
    pub sort_date: Option<String>,
}

/// The internal index parameter holding a Subscription's server-stamped owner, so that a search
/// can keep to one owner's Subscriptions in SQL. Clients cannot name it: it is no search
/// parameter of `fhir::params`.
pub const OWNER_PARAM: &str = "_owner";

/// The `system` of a string parameter's row that holds the text as written, for `:exact`; the
/// row with system `""` holds it lower-cased. (String parameters have no system of their own.)
pub const EXACT_SYSTEM: &str = "exact";

/// The extension a Subscription's owner is stamped in by the server: the user whose rights the
/// subscription runs with.
pub const OWNER_EXTENSION: &str =
    "http://rounds.example.org/fhir/StructureDefinition/subscription-owner";

/// The owner stamped on a stored Subscription.
pub fn owner_of(resource: &Value) -> Option<&str> {
    resource
        .get("extension")?
        .as_array()?
        .iter()
        .find(|extension| extension["url"] == OWNER_EXTENSION)?["valueString"]
        .as_str()
}

pub fn index_entries(resource_type: &str, resource: &Value) -> IndexEntries {
    let mut entries = IndexEntries::default();
    if resource_type == "Subscription" {
        if let Some(owner) = owner_of(resource) {
            entries
                .values
                .push((OWNER_PARAM, String::new(), owner.to_owned()));
        }
    }
    for param in params::params_for(resource_type) {
        if let Some(derive) = param.derive.filter(|_| resource.is_object()) {
            let value = derive(resource).to_string();
            entries.values.push((param.name, String::new(), value));
        }
        for path in param.paths {
            for value in params::values_at(resource, path) {
                match param.kind {
                    Kind::Token => entries.values.extend(
                        params::tokens_of(value)
                            .into_iter()
                            .map(|(system, code)| (param.name, system, code)),
                    ),
                    Kind::String => {
                        entries.values.extend(
                            params::strings_of(value)
                                .into_iter()
                                .map(|text| (param.name, String::new(), text)),
                        );
                        entries.values.extend(
                            params::strings_as_written(value)
                                .into_iter()
                                .map(|text| (param.name, EXACT_SYSTEM.to_owned(), text.to_owned())),
                        );
                    }
                    Kind::Reference => {
                        if let Some((rtype, id)) = params::reference_of(value) {
                            entries.values.push((param.name, rtype, id));
                        }
                    }
                    Kind::Date => {
                        if let Some((start, end)) = element_range(value) {
                            entries.dates.push((param.name, start, end));
                        }
                    }
                }
            }
        }
    }
    entries.values.sort();
    entries.values.dedup();
    if let Some(param) = params::sort_date_param(resource_type) {
        entries.sort_date = entries
            .dates
            .iter()
            .filter(|(name, _, _)| *name == param.name)
            .map(|(_, start, _)| start.clone())
            .min();
    }
    entries
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn observation_is_indexed_by_every_parameter() {
        let observation = json!({
            "resourceType": "Observation", "status": "final",
            "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "laboratory"}]}],
            "code": {"coding": [{"system": "http://loinc.org", "code": "2823-3"}]},
            "subject": {"reference": "Patient/pat-001"},
            "effectiveDateTime": "2026-11-24T08:00:00Z"
        });
        let entries = index_entries("Observation", &observation);
        assert!(entries
            .values
            .contains(&("status", String::new(), "final".into())));
        assert!(entries
            .values
            .contains(&("code", "http://loinc.org".into(), "2823-3".into())));
        assert!(entries
            .values
            .contains(&("patient", "Patient".into(), "pat-001".into())));
        assert_eq!(entries.dates.len(), 1);
        assert_eq!(
            entries.sort_date.as_deref(),
            Some("2026-11-24T08:00:00.000Z")
        );
    }

    #[test]
    fn strings_are_indexed_lower_cased_and_as_written() {
        let patient = json!({"resourceType": "Patient",
            "name": [{"family": "Whitfield", "given": ["Ada", "Mae"]}]});
        let entries = index_entries("Patient", &patient);
        for (system, text) in [("", "whitfield"), (EXACT_SYSTEM, "Whitfield")] {
            assert!(entries
                .values
                .contains(&("family", system.into(), text.into())));
        }
        assert!(entries
            .values
            .contains(&("given", EXACT_SYSTEM.into(), "Mae".into())));
        assert!(!entries
            .values
            .contains(&("family", EXACT_SYSTEM.into(), "whitfield".into())));
    }

    #[test]
    fn a_subscription_is_indexed_by_its_owner() {
        let subscription = json!({
            "resourceType": "Subscription", "status": "active",
            "extension": [{"url": OWNER_EXTENSION, "valueString": "u-1"}]
        });
        assert!(index_entries("Subscription", &subscription)
            .values
            .contains(&(OWNER_PARAM, String::new(), "u-1".into())));
    }

    #[test]
    fn garbage_indexes_nothing_but_what_is_derived() {
        assert_eq!(
            index_entries("Observation", &json!({"code": 5, "subject": "x"})),
            IndexEntries {
                values: vec![("critical", String::new(), "false".into())],
                ..IndexEntries::default()
            }
        );
        assert_eq!(
            index_entries("Observation", &json!([1, 2])),
            IndexEntries::default()
        );
    }

    #[test]
    fn criticals_are_indexed_as_such() {
        let critical = json!({"resourceType": "Observation", "interpretation": [{"coding": [{"code": "HH"}]}]});
        assert!(index_entries("Observation", &critical).values.contains(&(
            "critical",
            String::new(),
            "true".into()
        )));
    }
}
