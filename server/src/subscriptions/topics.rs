//! Topic-based Subscriptions (Subscriptions Backport IG, R4) and the shape of what they receive.
//!
//! The event catalogue as topics: each topic is a canonical URL naming a kind of clinical event
//! (orders, results, critical values, medications, alerts, notes, admissions) and the
//! criteria, in the REST search's syntax, that select its resource versions. A Subscription whose
//! `criteria` is a topic canonical narrows it with the IG's `backport-filter-criteria`
//! extensions (`Observation?patient=Patient/p1`), each ANDed with the topic's criteria of the
//! same type; the matcher then evaluates plain [`Criteria`], exactly as for a criteria-based
//! Subscription.
//!
//! The shape: a Subscription that is topic-based, declares the IG's `backport-subscription`
//! profile, or asks for a payload content with the IG's `backport-payload-content` extension,
//! receives the IG's R4 notifications (a `Parameters` status, profile
//! `backport-subscription-status-r4`, with `full-resource`, `id-only` or `empty` content);
//! every other one gets Medplum's R4B `SubscriptionStatus`, which `@medplum/core` expects.

use serde_json::Value;

use super::criteria::Criteria;

const IG: &str = "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/";
/// Where Rounds' topics live: `{TOPIC_BASE}{slug}`.
pub const TOPIC_BASE: &str = "http://rounds.example.org/fhir/SubscriptionTopic/";
pub const FILTER_EXTENSION: &str =
    "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-filter-criteria";
pub const PAYLOAD_EXTENSION: &str =
    "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-payload-content";
pub const SUBSCRIPTION_PROFILE: &str =
    "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-subscription";
pub const STATUS_PROFILE: &str =
    "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-subscription-status-r4";
pub const NOTIFICATION_PROFILE: &str =
    "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-subscription-notification-r4";

/// One topic of the catalogue.
#[derive(Debug)]
pub struct Topic {
    pub slug: &'static str,
    pub title: &'static str,
    pub description: &'static str,
    /// The versions it is about, as criteria (`Type` or `Type?params`).
    pub triggers: &'static [&'static str],
}

impl Topic {
    pub fn canonical(&self) -> String {
        format!("{TOPIC_BASE}{}", self.slug)
    }

    fn types(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.triggers
            .iter()
            .map(|t| t.split_once('?').map_or(*t, |(rtype, _)| rtype))
    }
}

/// The catalogue.
pub const TOPICS: &[Topic] = &[
    Topic {
        slug: "orders",
        title: "Orders",
        description: "A lab or imaging order is placed, changed, completed or cancelled.",
        triggers: &["ServiceRequest"],
    },
    Topic {
        slug: "results",
        title: "Results",
        description: "A result or report is final (or amended, or corrected).",
        triggers: &[
            "Observation?status=final,amended,corrected",
            "DiagnosticReport?status=final,amended,corrected",
        ],
    },
    Topic {
        slug: "critical-results",
        title: "Critical results",
        description: "A final result or report carries a critical interpretation.",
        triggers: &[
            "Observation?critical=true&status=final,amended,corrected",
            "DiagnosticReport?critical=true&status=final,amended,corrected",
        ],
    },
    Topic {
        slug: "medications",
        title: "Medications",
        description: "A prescription is written or changes, or the pharmacy dispenses.",
        triggers: &["MedicationRequest", "MedicationDispense"],
    },
    Topic {
        slug: "alerts",
        title: "Alerts",
        description: "A clinical alert (Flag) is raised, changed or resolved.",
        triggers: &["Flag"],
    },
    Topic {
        slug: "notes",
        title: "Notes",
        description: "A clinical note is written, signed or amended.",
        triggers: &["DocumentReference"],
    },
    Topic {
        slug: "admissions",
        title: "Admissions, transfers and discharges",
        description: "An encounter begins, moves to another unit or bed, or ends.",
        triggers: &["Encounter"],
    },
];

/// The topic a canonical URL names (a `|version` suffix is ignored).
pub fn topic(canonical: &str) -> Option<&'static Topic> {
    let canonical = canonical.split('|').next().unwrap_or_default();
    TOPICS.iter().find(|t| t.canonical() == canonical)
}

/// How notifications are rendered for one Subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shape {
    /// The topic canonical, for a topic-based Subscription.
    pub topic: Option<String>,
    /// The IG's R4 notifications (`Parameters`), rather than Medplum's R4B SubscriptionStatus.
    pub r4: bool,
    pub content: Content,
}

/// `backport-payload-content`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Content {
    Empty,
    IdOnly,
    FullResource,
}

impl Default for Shape {
    fn default() -> Self {
        Self {
            topic: None,
            r4: false,
            content: Content::FullResource,
        }
    }
}

fn extensions<'a>(element: &'a Value, url: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
    element["extension"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(move |e| e["url"] == url)
}

/// What a Subscription resource asks for: the criteria the matcher evaluates and the shape of its
/// notifications. Errors are safe to show to the client.
pub fn matching_of(resource: &Value) -> Result<(Vec<Criteria>, Shape), String> {
    let criteria = resource["criteria"]
        .as_str()
        .ok_or("criteria is required: Type?params, or a topic canonical")?;
    let filters: Vec<&str> = extensions(&resource["_criteria"], FILTER_EXTENSION)
        .map(|e| {
            e["valueString"]
                .as_str()
                .ok_or("a backport-filter-criteria extension needs a valueString")
        })
        .collect::<Result<_, _>>()?;
    let asked = extensions(&resource["channel"]["_payload"], PAYLOAD_EXTENSION).next();
    let content = match asked.map(|e| e["valueCode"].as_str()) {
        None | Some(Some("full-resource")) => Content::FullResource,
        Some(Some("id-only")) => Content::IdOnly,
        Some(Some("empty")) => Content::Empty,
        Some(other) => {
            return Err(format!(
                "backport-payload-content must be empty, id-only or full-resource, not {other:?}"
            ))
        }
    };
    let profiled = resource["meta"]["profile"]
        .as_array()
        .is_some_and(|p| p.iter().any(|p| p == SUBSCRIPTION_PROFILE));
    if criteria.starts_with("http://") || criteria.starts_with("https://") {
        let topic = topic(criteria).ok_or_else(|| {
            format!(
                "criteria {criteria:?} is no topic of this server; the topics are {}",
                TOPICS
                    .iter()
                    .map(Topic::canonical)
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })?;
        let shape = Shape {
            topic: Some(topic.canonical()),
            r4: true,
            content,
        };
        return Ok((criteria_of(topic, &filters)?, shape));
    }
    if !filters.is_empty() {
        return Err(
            "backport-filter-criteria narrows a topic: with Type?params criteria, put the parameters in the criteria".into(),
        );
    }
    let shape = Shape {
        topic: None,
        r4: profiled || asked.is_some(),
        content,
    };
    Ok((vec![Criteria::parse(criteria)?], shape))
}

/// The shape a stored Subscription's notifications take (the default for one that no longer
/// parses: its final status still goes out).
pub fn shape_of(resource: &Value) -> Shape {
    matching_of(resource)
        .map(|(_, shape)| shape)
        .unwrap_or_default()
}

/// A topic's triggers, each ANDed with the filters for its type.
fn criteria_of(topic: &Topic, filters: &[&str]) -> Result<Vec<Criteria>, String> {
    for filter in filters {
        let rtype = filter.split_once('?').map_or(*filter, |(rtype, _)| rtype);
        if !topic.types().any(|t| t == rtype) {
            return Err(format!(
                "the filter {filter:?} is about {rtype}; topic {} is about {}",
                topic.slug,
                topic.types().collect::<Vec<_>>().join(", ")
            ));
        }
    }
    topic
        .triggers
        .iter()
        .map(|trigger| {
            let rtype = trigger.split_once('?').map_or(*trigger, |(rtype, _)| rtype);
            let mut text = (*trigger).to_owned();
            for filter in filters {
                if let Some((filter_type, params)) = filter.split_once('?') {
                    if filter_type == rtype && !params.is_empty() {
                        text.push(if text.contains('?') { '&' } else { '?' });
                        text.push_str(params);
                    }
                }
            }
            Criteria::parse(&text).map_err(|e| format!("filter for {rtype}: {e}"))
        })
        .collect()
}

/// The IG's base for its StructureDefinitions (for the CapabilityStatement).
pub fn ig_profile(name: &str) -> String {
    format!("{IG}{name}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_topic_parses_and_names_a_resolvable_canonical() {
        for each in TOPICS {
            assert!(criteria_of(each, &[]).is_ok(), "{}", each.slug);
            assert_eq!(topic(&each.canonical()).map(|t| t.slug), Some(each.slug));
        }
    }

    #[test]
    fn filters_narrow_their_type_and_are_refused_for_another() {
        let subscription = json!({
            "criteria": format!("{TOPIC_BASE}critical-results"),
            "_criteria": {"extension": [{"url": FILTER_EXTENSION, "valueString": "Observation?patient=Patient/p1"}]},
            "channel": {"_payload": {"extension": [{"url": PAYLOAD_EXTENSION, "valueCode": "id-only"}]}},
        });
        let (criteria, shape) = matching_of(&subscription).unwrap();
        assert_eq!(criteria.len(), 2);
        assert!(shape.r4);
        assert_eq!(shape.content, Content::IdOnly);
        let critical = json!({"resourceType": "Observation", "status": "final",
            "subject": {"reference": "Patient/p1"}, "interpretation": [{"coding": [{"code": "HH"}]}]});
        assert!(criteria[0].matches("Observation", "o1", &critical));
        let elsewhere = json!({"resourceType": "Observation", "status": "final",
            "subject": {"reference": "Patient/p2"}, "interpretation": [{"coding": [{"code": "HH"}]}]});
        assert!(!criteria[0].matches("Observation", "o2", &elsewhere));
        let normal = json!({"resourceType": "Observation", "status": "final",
            "subject": {"reference": "Patient/p1"}});
        assert!(!criteria[0].matches("Observation", "o3", &normal));

        let wrong = json!({
            "criteria": format!("{TOPIC_BASE}orders"),
            "_criteria": {"extension": [{"url": FILTER_EXTENSION, "valueString": "Observation?patient=p1"}]},
        });
        assert!(matching_of(&wrong)
            .unwrap_err()
            .contains("about Observation"));
        assert!(
            matching_of(&json!({"criteria": "http://x.org/SubscriptionTopic/y"}))
                .unwrap_err()
                .contains("no topic")
        );
    }

    #[test]
    fn plain_criteria_keep_medplums_shape_unless_the_ig_is_asked_for() {
        let (_, shape) = matching_of(&json!({"criteria": "Observation?patient=p1"})).unwrap();
        assert_eq!(shape, Shape::default());
        let profiled =
            json!({"criteria": "Observation", "meta": {"profile": [SUBSCRIPTION_PROFILE]}});
        assert!(matching_of(&profiled).unwrap().1.r4);
    }
}
