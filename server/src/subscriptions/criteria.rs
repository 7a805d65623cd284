//! A Subscription's `criteria` (`Type?params`): parsed once, then matched against one resource
//! version in memory with exactly the semantics the REST search applies in SQL.
//!
//! Where it sits: beside the event path. The subscription matcher asks it, for each event of the
//! log, whether the version the event concerns matches. Values are compared through the same
//! index extraction (`store::index::index_entries`) that fills the search tables, so a criteria
//! string selects in a notification exactly what it selects in a search.
//!
//! What it must never do: accept a criteria it cannot evaluate faithfully (result parameters,
//! unknown parameters) — those are refused when the Subscription is written.

use serde_json::Value;

use crate::{
    fhir::search::{Clause, DateValue, Prefix, SearchQuery},
    store::index::{index_entries, IndexEntries, EXACT_SYSTEM},
};

/// Parameters that shape a result page and mean nothing for a notification.
const RESULT_PARAMETERS: &[&str] = &[
    "_count", "_offset", "_sort", "_include", "_summary", "_total", "_format", "_pretty",
];

/// A parsed criteria.
#[derive(Debug, Clone, PartialEq)]
pub struct Criteria {
    pub resource_type: String,
    pub query: SearchQuery,
}

impl Criteria {
    /// Parses `Type?params` (or a bare `Type`). Errors are safe to show to the client.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let (resource_type, query) = text.split_once('?').unwrap_or((text, ""));
        if resource_type.is_empty() {
            return Err(
                "criteria must start with a resource type, e.g. Observation?patient=p1".into(),
            );
        }
        if !app::fhir::RESOURCE_TYPES.contains(&resource_type) || resource_type == "AuditEvent" {
            return Err(format!(
                "criteria resource type {resource_type:?} is not one Rounds can notify about"
            ));
        }
        let pairs: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        for (key, _) in &pairs {
            let name = key.split(':').next().unwrap_or_default();
            if RESULT_PARAMETERS.contains(&name) {
                return Err(format!(
                    "{key} shapes search results and is not allowed in a subscription criteria"
                ));
            }
        }
        let query = SearchQuery::parse(resource_type, &pairs).map_err(|e| e.to_string())?;
        if let Some(warning) = query.warnings.first() {
            return Err(warning.clone());
        }
        Ok(Self {
            resource_type: resource_type.to_owned(),
            query,
        })
    }

    /// Whether `resource` (of type `resource_type`, id `id`) matches.
    pub fn matches(&self, resource_type: &str, id: &str, resource: &Value) -> bool {
        self.matches_facts(resource_type, id, &Facts::of(resource_type, resource))
    }

    /// The same, with the resource's search facts extracted once for many criteria.
    pub fn matches_facts(&self, resource_type: &str, id: &str, facts: &Facts) -> bool {
        if resource_type != self.resource_type {
            return false;
        }
        self.query.clauses.iter().all(|clause| {
            clause_matches(
                clause,
                id,
                facts.patient.as_deref(),
                facts.last_updated.as_deref(),
                &facts.entries,
            )
        })
    }
}

/// What criteria look at in one resource version: its index entries, patient and lastUpdated.
pub struct Facts {
    entries: IndexEntries,
    patient: Option<String>,
    last_updated: Option<String>,
}

impl Facts {
    pub fn of(resource_type: &str, resource: &Value) -> Self {
        Self {
            entries: index_entries(resource_type, resource),
            patient: app::fhir::patient_id(resource),
            last_updated: resource
                .pointer("/meta/lastUpdated")
                .and_then(Value::as_str)
                .and_then(|text| crate::fhir::date::element_range(&Value::String(text.to_owned())))
                .map(|(start, _)| start),
        }
    }
}

fn clause_matches(
    clause: &Clause,
    id: &str,
    patient: Option<&str>,
    last_updated: Option<&str>,
    entries: &IndexEntries,
) -> bool {
    match clause {
        Clause::Id(ids) => ids.iter().any(|candidate| candidate == id),
        Clause::Patient(ids) => patient.is_some_and(|p| ids.iter().any(|id| id == p)),
        Clause::Token {
            param,
            values,
            negate,
        } => {
            let any = entries
                .values
                .iter()
                .filter(|(name, _, _)| name == param)
                .any(|(_, system, code)| {
                    values.iter().any(|wanted| {
                        wanted.system.as_ref().is_none_or(|s| s == system)
                            && wanted.code.as_ref().is_none_or(|c| c == code)
                    })
                });
            any != *negate
        }
        Clause::Reference { param, values } => entries
            .values
            .iter()
            .filter(|(name, _, _)| name == param)
            .any(|(_, rtype, rid)| {
                values.iter().any(|(wanted_type, wanted_id)| {
                    wanted_id == rid && wanted_type.as_ref().is_none_or(|t| t == rtype)
                })
            }),
        Clause::String {
            param,
            values,
            exact,
        } => entries
            .values
            .iter()
            .filter(|(name, _, _)| name == param)
            .any(|(_, system, text)| {
                // `:exact` compares with the text as written; otherwise a case-insensitive
                // prefix of the lower-cased rows, as in SQL.
                values.iter().any(|wanted| {
                    if *exact {
                        system == EXACT_SYSTEM && text == wanted
                    } else {
                        system.is_empty() && text.starts_with(&wanted.to_lowercase())
                    }
                })
            }),
        Clause::Date { param, values } => match param {
            Some(param) => entries
                .dates
                .iter()
                .filter(|(name, _, _)| name == param)
                .any(|(_, start, end)| values.iter().any(|v| date_matches(start, end, v))),
            None => last_updated.is_some_and(|at| values.iter().any(|v| date_matches(at, at, v))),
        },
    }
}

/// The prefixes over a stored inclusive range [ts, te] and a searched range [ps, pe), as in SQL
/// (the stored forms are fixed-width UTC text, so text order is time order).
fn date_matches(ts: &str, te: &str, value: &DateValue) -> bool {
    let (ps, pe) = (value.start.as_str(), value.end.as_str());
    match value.prefix {
        Prefix::Eq => ts >= ps && te < pe,
        Prefix::Ne => !(ts >= ps && te < pe),
        Prefix::Gt => te >= pe,
        Prefix::Lt => ts < ps,
        Prefix::Ge => te >= ps,
        Prefix::Le => ts < pe,
        Prefix::Sa => ts >= pe,
        Prefix::Eb => te < ps,
        Prefix::Ap => ts < pe && te >= ps,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn exact_strings_match_case_as_the_search_does() {
        let patient = json!({"resourceType": "Patient", "name": [{"family": "Whitfield"}]});
        let matches = |criteria: &str| {
            Criteria::parse(criteria)
                .unwrap()
                .matches("Patient", "p1", &patient)
        };
        assert!(matches("Patient?family:exact=Whitfield"));
        assert!(!matches("Patient?family:exact=whitfield"));
        assert!(!matches("Patient?family:exact=Whit"));
        assert!(matches("Patient?family=whit"));
        assert!(matches("Patient?family=WHIT"));
    }

    fn potassium(patient: &str, value: f64, code: &str) -> Value {
        json!({
            "resourceType": "Observation", "id": "o1", "status": "final",
            "meta": {"versionId": "1", "lastUpdated": "2026-11-25T09:00:00.000Z"},
            "code": {"coding": [{"system": "http://loinc.org", "code": "2823-3"}]},
            "subject": {"reference": format!("Patient/{patient}")},
            "effectiveDateTime": "2026-11-25T09:00:00Z",
            "valueQuantity": {"value": value},
            "interpretation": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation", "code": code}]}]
        })
    }

    #[test]
    fn criteria_select_what_the_search_selects() {
        let critical = Criteria::parse(
            "Observation?patient=p1&code=http://loinc.org|2823-3&date=ge2026-11-25",
        )
        .unwrap();
        assert!(critical.matches("Observation", "o1", &potassium("p1", 7.1, "HH")));
        assert!(!critical.matches("Observation", "o1", &potassium("p2", 7.1, "HH")));
        assert!(!critical.matches("ServiceRequest", "o1", &potassium("p1", 7.1, "HH")));
        let before = Criteria::parse("Observation?date=lt2026-11-25").unwrap();
        assert!(!before.matches("Observation", "o1", &potassium("p1", 7.1, "HH")));
        let not_final = Criteria::parse("Observation?status:not=final").unwrap();
        assert!(!not_final.matches("Observation", "o1", &potassium("p1", 1.0, "N")));
        let by_id = Criteria::parse("Observation?_id=o1,o2").unwrap();
        assert!(by_id.matches("Observation", "o1", &potassium("p1", 1.0, "N")));
        let updated = Criteria::parse("Observation?_lastUpdated=gt2026-11-25T08:00:00Z").unwrap();
        assert!(updated.matches("Observation", "o1", &potassium("p1", 1.0, "N")));
        let everything = Criteria::parse("Observation").unwrap();
        assert!(everything.matches("Observation", "o9", &json!({})));
    }

    #[test]
    fn criteria_that_cannot_be_evaluated_faithfully_are_refused() {
        for bad in [
            "",
            "?patient=p1",
            "Banana?x=1",
            "AuditEvent",
            "Observation?_count=10",
            "Observation?_sort=date",
            "Observation?nonsense=1",
            "Observation?date=notadate",
            "Observation?code:fuzzy=1",
        ] {
            assert!(Criteria::parse(bad).is_err(), "{bad:?} was accepted");
        }
    }
}
