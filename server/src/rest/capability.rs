//! The CapabilityStatement: generated from the same tables the API runs on, so it says exactly
//! what is supported and nothing more.

use serde_json::{json, Value};

use crate::fhir::params::{self, params_for, writable};

pub fn capability_statement(base_url: &str, software_version: &str, published: &str) -> Value {
    let resources: Vec<Value> = app::fhir::RESOURCE_TYPES
        .iter()
        .map(|rtype| {
            let mut interactions = vec!["read", "vread", "history-instance", "search-type"];
            if writable(rtype) {
                interactions.extend(["create", "update", "delete"]);
            }
            let mut search_params = vec![
                json!({"name": "_id", "type": "token", "definition": "http://hl7.org/fhir/SearchParameter/Resource-id"}),
                json!({"name": "_lastUpdated", "type": "date", "definition": "http://hl7.org/fhir/SearchParameter/Resource-lastUpdated"}),
            ];
            if *rtype == "AuditEvent" {
                search_params.retain(|p| p["name"] == "_id");
                search_params.push(json!({"name": "patient", "type": "reference"}));
            } else {
                search_params.extend(
                    params_for(rtype)
                        .iter()
                        .map(|param| {
                            let mut declared = json!({"name": param.name, "type": param.kind.as_str()});
                            if let Some(url) = params::own_definition(rtype, param.name) {
                                declared["definition"] = json!(url);
                            }
                            declared
                        }),
                );
            }
            let includes: Vec<String> = params_for(rtype)
                .iter()
                .filter(|param| param.kind == params::Kind::Reference && *rtype != "AuditEvent")
                .map(|param| format!("{rtype}:{}", param.name))
                .collect();
            let mut resource = json!({
                "type": rtype,
                "interaction": interactions.iter().map(|code| json!({"code": code})).collect::<Vec<_>>(),
                "versioning": "versioned-update",
                "readHistory": true,
                "updateCreate": writable(rtype),
                "conditionalCreate": false,
                "conditionalUpdate": false,
                "conditionalDelete": "not-supported",
                "searchParam": search_params,
            });
            if !includes.is_empty() {
                resource["searchInclude"] = json!(includes);
            }
            if *rtype == "Subscription" {
                subscription_claims(&mut resource);
            }
            resource
        })
        .collect();
    json!({
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": published,
        "publisher": "Rounds",
        "kind": "instance",
        "software": {"name": "Rounds", "version": software_version},
        "implementation": {"description": "Rounds clinical workspace FHIR R4 server", "url": base_url},
        "instantiates": [BACKPORT_SERVER],
        "fhirVersion": "4.0.1",
        "format": ["application/fhir+json", "json"],
        "rest": [{
            "mode": "server",
            "documentation": "Search parameters outside the list are ignored and reported in an OperationOutcome entry of the searchset Bundle (Prefer: handling=strict turns them into a 400). Paging: _count (default 50, at most 1000) and _offset, with next/previous links. _sort: _lastUpdated, _id and the type's date parameter, each optionally descending with '-'.",
            "security": {
                "cors": false,
                "description": "Bearer JWT access tokens from POST /auth/login, or the HttpOnly session cookie set by it.",
            },
            "resource": resources,
        }],
    })
}

/// The Subscriptions Backport IG's R4 server CapabilityStatement, which this one conforms to.
const BACKPORT_SERVER: &str =
    "http://hl7.org/fhir/uv/subscriptions-backport/CapabilityStatement/backport-subscription-server-r4";

/// What the Subscription entry claims beyond CRUD and search: the IG's profile, its topics (the
/// event catalogue), its operations, and the one channel (websocket).
fn subscription_claims(resource: &mut Value) {
    use crate::subscriptions::topics::{self, TOPICS};
    let operation = |name: &str, definition: &str| {
        json!({
            "name": name,
            "definition": format!("http://hl7.org/fhir/uv/subscriptions-backport/OperationDefinition/{definition}"),
        })
    };
    resource["supportedProfile"] = json!([topics::SUBSCRIPTION_PROFILE]);
    resource["extension"] = TOPICS
        .iter()
        .map(|topic| {
            json!({
                "url": "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/capabilitystatement-subscriptiontopic-canonical",
                "valueCanonical": topic.canonical(),
            })
        })
        .collect();
    resource["operation"] = json!([
        operation("$status", "backport-subscription-status"),
        operation("$events", "backport-subscription-events"),
        operation(
            "$get-ws-binding-token",
            "backport-subscription-get-ws-binding-token"
        ),
    ]);
    resource["documentation"] = json!(
        "Channel: websocket only (bind at /ws/subscriptions-r4 with a token from $get-ws-binding-token). Criteria: Type?params with the search's semantics, or one of the topics above narrowed by backport-filter-criteria. Payload: Medplum's R4B SubscriptionStatus by default; the IG's R4 Parameters (backport-subscription-status-r4) for topic-based Subscriptions, for those declaring the backport-subscription profile and for those asking a backport-payload-content (empty, id-only, full-resource)."
    );
}
