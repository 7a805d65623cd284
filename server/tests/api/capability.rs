//! The CapabilityStatement, claim by claim: this test reads `GET /fhir/R4/metadata` and
//! exercises everything it declares, so a claim the server cannot honour fails here. For every
//! `rest.resource[]`: each `interaction` against a resource of that type (created by the test
//! where the type is writable, an existing one where it is read-only), the `versioning`,
//! `readHistory` and `updateCreate` flags, each `searchParam` (the resource found by a value
//! taken from it, and not found by a value it does not have), each `searchInclude` (the
//! referenced row included), and each `operation` (2xx for the owner). Anything declared that
//! the test does not know how to exercise fails it too: a new claim needs a new check.
//!
//! Where a parameter's value sits in a resource comes from the server's parameter table
//! (`rounds::fhir::params`); whether a search by it works is asked over HTTP.

use std::collections::HashMap;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{entries, spawn_app, TestApp};
use rounds::fhir::params;

/// The claims of one `rest.resource[]` entry this test exercises; any other key fails it.
const KNOWN_KEYS: &[&str] = &[
    "type",
    "interaction",
    "versioning",
    "readHistory",
    "updateCreate",
    "conditionalCreate",
    "conditionalUpdate",
    "conditionalDelete",
    "searchParam",
    "searchInclude",
    "operation",
    "supportedProfile",
    "extension",
    "documentation",
];

/// A resource of `rtype` with a value for every search parameter of the type, referring to what
/// the test created before (`made`: type → id) or to the demo's unit `unit-4w`.
fn sample(rtype: &str, made: &HashMap<String, String>) -> Value {
    let to = |target: &str| {
        let id = made
            .get(target)
            .unwrap_or_else(|| panic!("{rtype}'s sample needs a {target} made first"));
        json!({"reference": format!("{target}/{id}")})
    };
    let concept = |system: &str, code: &str| json!({"coding": [{"system": system, "code": code}], "text": code});
    let local = "http://rounds.example.org/fhir/CodeSystem/capability-test";
    let when = "2026-11-25T08:00:00Z";
    let period = json!({"start": "2026-11-24T08:00:00Z", "end": "2026-11-25T08:00:00Z"});
    match rtype {
        "Patient" => json!({
            "identifier": [{"system": "urn:rounds:mrn", "value": "CAP-0001"}],
            "active": true,
            "name": [{"family": "Capability", "given": ["Claire"]}],
            "gender": "female",
            "birthDate": "1961-04-02",
        }),
        "Practitioner" => json!({
            "identifier": [{"system": "urn:rounds:npi", "value": "CAP-PR-1"}],
            "active": true,
            "name": [{"family": "Statement", "given": ["Sam"], "prefix": ["Dr."]}],
        }),
        "Location" => json!({
            "name": "Capability Room",
            "status": "active",
            "mode": "instance",
            "physicalType": concept("http://terminology.hl7.org/CodeSystem/location-physical-type", "ro"),
            "partOf": {"reference": "Location/unit-4w"},
        }),
        "Encounter" => json!({
            "status": "finished",
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "IMP"},
            "subject": to("Patient"),
            "period": period,
            "location": [{"location": to("Location")}],
            "participant": [{"individual": to("Practitioner")}],
        }),
        "CareTeam" => json!({
            "status": "proposed",
            "subject": to("Patient"),
            "period": period,
            "participant": [{"member": to("Practitioner")}],
        }),
        "Condition" => json!({
            "clinicalStatus": concept("http://terminology.hl7.org/CodeSystem/condition-clinical", "active"),
            "category": [concept("http://terminology.hl7.org/CodeSystem/condition-category", "problem-list-item")],
            "code": concept("http://snomed.info/sct", "38341003"),
            "subject": to("Patient"),
            "encounter": to("Encounter"),
            "recordedDate": when,
        }),
        "AllergyIntolerance" => json!({
            "clinicalStatus": concept("http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical", "active"),
            "category": ["medication"],
            "criticality": "high",
            "code": concept("http://www.nlm.nih.gov/research/umls/rxnorm", "7980"),
            "patient": to("Patient"),
            "recordedDate": when,
        }),
        "ServiceRequest" => json!({
            "status": "active",
            "intent": "order",
            "category": [concept("http://snomed.info/sct", "108252007")],
            "code": concept("http://loinc.org", "58410-2"),
            "subject": to("Patient"),
            "encounter": to("Encounter"),
            "requester": to("Practitioner"),
            "authoredOn": when,
        }),
        "Observation" => json!({
            "status": "final",
            "category": [concept("http://terminology.hl7.org/CodeSystem/observation-category", "laboratory")],
            "code": concept("http://loinc.org", "2823-3"),
            "subject": to("Patient"),
            "encounter": to("Encounter"),
            "basedOn": [to("ServiceRequest")],
            "effectiveDateTime": when,
            "valueQuantity": {"value": 4.1, "unit": "mmol/L", "system": "http://unitsofmeasure.org", "code": "mmol/L"},
        }),
        "DiagnosticReport" => json!({
            "status": "final",
            "category": [concept("http://terminology.hl7.org/CodeSystem/v2-0074", "LAB")],
            "code": concept("http://loinc.org", "24323-8"),
            "subject": to("Patient"),
            "encounter": to("Encounter"),
            "basedOn": [to("ServiceRequest")],
            "result": [to("Observation")],
            "effectiveDateTime": when,
        }),
        "MedicationRequest" => json!({
            "status": "active",
            "intent": "order",
            "category": [concept("http://terminology.hl7.org/CodeSystem/medicationrequest-category", "inpatient")],
            "medicationCodeableConcept": concept("http://www.nlm.nih.gov/research/umls/rxnorm", "197361"),
            "subject": to("Patient"),
            "encounter": to("Encounter"),
            "requester": to("Practitioner"),
            "authoredOn": when,
        }),
        "MedicationDispense" => json!({
            "status": "completed",
            "medicationCodeableConcept": concept("http://www.nlm.nih.gov/research/umls/rxnorm", "197361"),
            "subject": to("Patient"),
            "authorizingPrescription": [to("MedicationRequest")],
            "whenHandedOver": when,
        }),
        "DocumentReference" => json!({
            "status": "current",
            "type": concept("http://loinc.org", "11506-3"),
            "category": [concept(local, "clinical-note")],
            "subject": to("Patient"),
            "date": when,
            "author": [to("Practitioner")],
            "content": [{"attachment": {"contentType": "text/plain", "data": "U3RhYmxlLg=="}}],
            "context": {"encounter": [to("Encounter")]},
        }),
        "Flag" => json!({
            "status": "active",
            "category": [concept("http://terminology.hl7.org/CodeSystem/flag-category", "safety")],
            "code": {"text": "Fall risk"},
            "subject": to("Patient"),
            "period": period,
            "encounter": to("Encounter"),
        }),
        "Task" => json!({
            "status": "requested",
            "intent": "order",
            "code": concept("http://hl7.org/fhir/CodeSystem/task-code", "fulfill"),
            "focus": to("ServiceRequest"),
            "for": to("Patient"),
            "owner": to("Practitioner"),
            "authoredOn": when,
        }),
        "Subscription" => json!({
            "status": "requested",
            "reason": "capability test",
            "criteria": format!("Observation?patient={}", made["Patient"]),
            "channel": {"type": "websocket"},
        }),
        other => panic!("the test has no sample {other}: it cannot exercise its create"),
    }
}

/// Writable types in an order where each refers only to types made before it.
const MAKE_ORDER: &[&str] = &[
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
];

/// The value of parameter `name` of `rtype` in `resource` as a search value that must find it,
/// and one that must not; None when the resource holds no value for it.
fn values_for(rtype: &str, name: &str, kind: &str, resource: &Value) -> Option<(String, String)> {
    match name {
        "_id" => return Some((resource["id"].as_str()?.to_owned(), "no-such-id".into())),
        "_lastUpdated" => {
            let at = resource["meta"]["lastUpdated"].as_str()?;
            return Some((format!("eq{at}"), "lt1900-01-01".into()));
        }
        _ => {}
    }
    let param = params::find(rtype, name)
        .unwrap_or_else(|| panic!("{rtype} advertises {name}, which the server does not define"));
    assert_eq!(param.kind.as_str(), kind, "{rtype}.{name}'s declared type");
    // A token the server computes from the whole resource (`critical`): the subject's own value
    // finds it, the other one does not.
    if let Some(derive) = param.derive {
        let value = derive(resource);
        return Some((value.to_string(), (!value).to_string()));
    }
    // A reference parameter with a target type (`patient`) only ever names that type.
    let of_target = |value: &&Value| match (param.target, value["reference"].as_str()) {
        (Some(target), Some(reference)) => reference.starts_with(&format!("{target}/")),
        _ => true,
    };
    let value = param
        .paths
        .iter()
        .flat_map(|path| params::values_at(resource, path))
        .find(of_target)?;
    let first_coding = |v: &Value| -> Option<String> {
        let coding = v.get("coding").and_then(|c| c.get(0)).unwrap_or(v);
        let code = coding.get("code").or(coding.get("value"))?.as_str()?;
        Some(match coding.get("system").and_then(Value::as_str) {
            Some(system) => format!("{system}|{code}"),
            None => code.to_owned(),
        })
    };
    Some(match kind {
        "token" => {
            let found = match value {
                Value::String(code) => code.clone(),
                Value::Bool(flag) => flag.to_string(),
                other => first_coding(other)?,
            };
            (found, "urn:rounds:no-such-system|no-such-code".into())
        }
        "reference" => {
            let reference = value["reference"].as_str()?;
            let (target, _) = reference.split_once('/')?;
            (reference.to_owned(), format!("{target}/no-such-id"))
        }
        "string" => {
            let text = match value {
                Value::String(text) => text.clone(),
                name => name["family"]
                    .as_str()
                    .or(name["text"].as_str())?
                    .to_owned(),
            };
            (text, "zzzz-no-such-text".into())
        }
        "date" => {
            let found = match value {
                Value::String(at) => format!("eq{at}"),
                period => format!("ge{}", period["start"].as_str()?),
            };
            (found, "lt1900-01-01".into())
        }
        other => panic!("{rtype}.{name}: the test cannot exercise parameters of type {other}"),
    })
}

/// `GET /fhir/R4/{rtype}` with `query`, strict (an ignored parameter would be a 400).
async fn search(app: &TestApp, token: &str, rtype: &str, query: &[(&str, &str)]) -> Value {
    let response = app
        .client
        .get(app.url(&format!("/fhir/R4/{rtype}")))
        .query(query)
        .bearer_auth(token)
        .header("prefer", "handling=strict")
        .send()
        .await
        .unwrap();
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, StatusCode::OK, "{rtype}?{query:?}: {body}");
    assert_eq!(body["type"], "searchset");
    body
}

fn etag_version(response: &reqwest::Response) -> String {
    response.headers()["etag"]
        .to_str()
        .unwrap()
        .trim_start_matches("W/")
        .trim_matches('"')
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_claim_of_the_capability_statement_is_honoured() {
    let app = spawn_app().await;
    let admin = app.token("admin").await;
    let response = app
        .client
        .get(app.url("/fhir/R4/metadata"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let statement: Value = response.json().await.unwrap();
    assert_eq!(statement["resourceType"], "CapabilityStatement");
    let rest = &statement["rest"][0];
    let declared: Vec<&Value> = rest["resource"].as_array().unwrap().iter().collect();
    let declares = |rtype: &str, code: &str| {
        declared.iter().any(|r| {
            r["type"] == rtype
                && r["interaction"]
                    .as_array()
                    .is_some_and(|i| i.iter().any(|c| c["code"] == code))
        })
    };

    // The formats it lists are served.
    for format in statement["format"].as_array().unwrap() {
        let format = format.as_str().unwrap();
        let response = app
            .client
            .get(app.url("/fhir/R4/metadata"))
            .query(&[("_format", format)])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "_format={format}");
    }
    for key in rest.as_object().unwrap().keys() {
        assert!(
            ["mode", "documentation", "security", "resource", "operation"].contains(&key.as_str()),
            "rest.{key} is declared but this test does not exercise it"
        );
    }

    // One subject per type: made through `create` where declared, else an existing one.
    let mut made: HashMap<String, String> = HashMap::new();
    let mut subjects: HashMap<String, Value> = HashMap::new();
    for rtype in MAKE_ORDER {
        if !declares(rtype, "create") {
            continue;
        }
        let mut body = sample(rtype, &made);
        body["resourceType"] = json!(rtype);
        let response = app.post(&admin, &format!("/fhir/R4/{rtype}"), &body).await;
        assert_eq!(response.status(), StatusCode::CREATED, "create {rtype}");
        let location = response.headers()["location"].to_str().unwrap().to_owned();
        let created: Value = response.json().await.unwrap();
        let id = created["id"].as_str().unwrap().to_owned();
        assert!(
            location.ends_with(&format!("/{rtype}/{id}/_history/1")),
            "{rtype}: Location {location}"
        );
        assert_eq!(created["meta"]["versionId"], "1");
        made.insert(rtype.to_string(), id);
        subjects.insert(rtype.to_string(), created);
    }
    // Reading the made Patient leaves an audit record about it, an AuditEvent to work with.
    let patient = made
        .get("Patient")
        .cloned()
        .unwrap_or_else(|| "pat-001".into());
    assert_eq!(
        app.get(&admin, &format!("/fhir/R4/Patient/{patient}"))
            .await
            .status(),
        StatusCode::OK
    );

    let mut exercised = 0;
    for resource in &declared {
        let rtype = resource["type"].as_str().unwrap();
        for key in resource.as_object().unwrap().keys() {
            assert!(
                KNOWN_KEYS.contains(&key.as_str()),
                "{rtype}.{key} is declared but this test does not exercise it"
            );
        }
        let interactions: Vec<&str> = resource["interaction"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["code"].as_str().unwrap())
            .collect();
        let search_params = resource["searchParam"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let mut subject = match subjects.get(rtype) {
            Some(subject) => subject.clone(),
            None => {
                assert!(
                    !interactions.contains(&"create"),
                    "{rtype} declares create but has no sample"
                );
                // Read-only: an existing one with a value for every parameter it declares.
                let page = search(&app, &admin, rtype, &[("_count", "50")]).await;
                entries(&page, "match")
                    .into_iter()
                    .find(|candidate| {
                        search_params.iter().all(|p| {
                            values_for(
                                rtype,
                                p["name"].as_str().unwrap(),
                                p["type"].as_str().unwrap(),
                                candidate,
                            )
                            .is_some()
                        })
                    })
                    .unwrap_or_else(|| panic!("no {rtype} with every declared parameter"))
                    .clone()
            }
        };
        let id = subject["id"].as_str().unwrap().to_owned();
        let instance = format!("/fhir/R4/{rtype}/{id}");
        let mut version = subject["meta"]["versionId"].as_str().unwrap().to_owned();

        for code in &interactions {
            match *code {
                "create" => assert!(made.contains_key(rtype), "{rtype} create"),
                "read" => {
                    let response = app.get(&admin, &instance).await;
                    assert_eq!(response.status(), StatusCode::OK, "read {instance}");
                    assert_eq!(etag_version(&response), version, "read {instance} ETag");
                    assert!(response.headers().contains_key("last-modified"));
                    let read: Value = response.json().await.unwrap();
                    assert_eq!(read["resourceType"], rtype);
                    assert_eq!(read["id"], id.as_str());
                }
                "vread" => {
                    let path = format!("{instance}/_history/{version}");
                    let (status, read) = app.get_json(&admin, &path).await;
                    assert_eq!(status, StatusCode::OK, "vread {path}: {read}");
                    assert_eq!(read["meta"]["versionId"], version.as_str());
                    assert_eq!(read["id"], id.as_str());
                }
                "history-instance" => {
                    let path = format!("{instance}/_history");
                    let (status, history) = app.get_json(&admin, &path).await;
                    assert_eq!(status, StatusCode::OK, "history {path}: {history}");
                    assert_eq!(history["type"], "history");
                    assert!(history["total"].as_i64().unwrap() >= 1, "{path}");
                    assert_eq!(history["entry"][0]["resource"]["id"], id.as_str());
                }
                "search-type" => {
                    let page = search(&app, &admin, rtype, &[("_id", &id)]).await;
                    assert_eq!(page["total"], 1, "{rtype}?_id={id}");
                }
                "update" => {
                    let response = app.put(&admin, &instance, &subject).await;
                    assert_eq!(response.status(), StatusCode::OK, "update {instance}");
                    let updated: Value = response.json().await.unwrap();
                    let next: i64 = version.parse::<i64>().unwrap() + 1;
                    assert_eq!(updated["meta"]["versionId"], next.to_string());
                    // readHistory: the version before the update still reads.
                    if resource["readHistory"] == true {
                        let path = format!("{instance}/_history/{version}");
                        assert_eq!(app.get(&admin, &path).await.status(), StatusCode::OK);
                    }
                    // versioning: an update against a stale version is refused.
                    if resource["versioning"] == "versioned-update" {
                        let response = app
                            .client
                            .put(app.url(&instance))
                            .bearer_auth(&admin)
                            .header("content-type", "application/fhir+json")
                            .header("if-match", format!("W/\"{version}\""))
                            .body(subject.to_string())
                            .send()
                            .await
                            .unwrap();
                        assert_eq!(
                            response.status(),
                            StatusCode::PRECONDITION_FAILED,
                            "{instance} If-Match"
                        );
                    }
                    // updateCreate: a PUT to a new id creates it.
                    if resource["updateCreate"] == true {
                        let mut copy = subject.clone();
                        let copy_id = format!("cap-{}", rtype.to_lowercase());
                        copy["id"] = json!(copy_id);
                        copy.as_object_mut().unwrap().remove("meta");
                        let path = format!("/fhir/R4/{rtype}/{copy_id}");
                        let response = app.put(&admin, &path, &copy).await;
                        assert_eq!(
                            response.status(),
                            StatusCode::CREATED,
                            "updateCreate {path}"
                        );
                    }
                    // What follows works with the resource as it is now.
                    version = next.to_string();
                    subject = updated;
                }
                "delete" => {
                    // Deleting the subject would orphan what refers to it: a copy is deleted.
                    let mut copy = subject.clone();
                    copy.as_object_mut().unwrap().remove("id");
                    copy.as_object_mut().unwrap().remove("meta");
                    let response = app.post(&admin, &format!("/fhir/R4/{rtype}"), &copy).await;
                    assert_eq!(response.status(), StatusCode::CREATED, "{rtype} copy");
                    let copy: Value = response.json().await.unwrap();
                    let path = format!("/fhir/R4/{rtype}/{}", copy["id"].as_str().unwrap());
                    assert_eq!(
                        app.delete(&admin, &path).await.status(),
                        StatusCode::NO_CONTENT,
                        "delete {path}"
                    );
                    assert_eq!(app.get(&admin, &path).await.status(), StatusCode::GONE);
                }
                other => panic!("{rtype} declares {other}, which this test does not exercise"),
            }
            exercised += 1;
        }
        assert!(!interactions.contains(&"update") || interactions.contains(&"read"));
        assert_eq!(
            resource["conditionalCreate"], false,
            "{rtype}: untested claim"
        );
        assert_eq!(
            resource["conditionalUpdate"], false,
            "{rtype}: untested claim"
        );
        assert_eq!(
            resource["conditionalDelete"], "not-supported",
            "{rtype}: untested claim"
        );

        // Every search parameter finds the subject by its own value, and not by another.
        for param in &search_params {
            let name = param["name"].as_str().unwrap();
            let kind = param["type"].as_str().unwrap();
            let (found, not_found) = values_for(rtype, name, kind, &subject)
                .unwrap_or_else(|| panic!("{rtype}'s subject has no value for {name}"));
            let with_id = |value: &str| {
                let mut query = vec![(name.to_owned(), value.to_owned())];
                if name != "_id" {
                    query.push(("_id".into(), id.clone()));
                }
                query
            };
            for (value, expected) in [(&found, 1), (&not_found, 0)] {
                let query = with_id(value);
                let query: Vec<(&str, &str)> = query
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .collect();
                let page = search(&app, &admin, rtype, &query).await;
                assert_eq!(page["total"], expected, "{rtype}?{query:?}");
                assert_eq!(
                    entries(&page, "match").len(),
                    expected as usize,
                    "{rtype}?{query:?}"
                );
            }
            exercised += 1;
        }

        // Every declared _include brings the row it refers to.
        for include in resource["searchInclude"]
            .as_array()
            .cloned()
            .unwrap_or_default()
        {
            let include = include.as_str().unwrap();
            let (source, name) = include.split_once(':').unwrap();
            assert_eq!(source, rtype, "{include}");
            let kind = params::find(rtype, name)
                .unwrap_or_else(|| panic!("{include} names no parameter"))
                .kind
                .as_str();
            let (reference, _) = values_for(rtype, name, kind, &subject)
                .unwrap_or_else(|| panic!("{rtype}'s subject has no value for {include}"));
            let (target_type, target_id) = reference.split_once('/').unwrap();
            let page = search(&app, &admin, rtype, &[("_id", &id), ("_include", include)]).await;
            assert!(
                entries(&page, "include")
                    .iter()
                    .any(|r| r["resourceType"] == target_type && r["id"] == target_id),
                "{rtype}?_include={include} did not include {reference}: {page}"
            );
            exercised += 1;
        }

        // Every declared operation answers 2xx for the subject's owner (who made it).
        for operation in resource["operation"]
            .as_array()
            .cloned()
            .unwrap_or_default()
        {
            let name = operation["name"].as_str().unwrap().trim_start_matches('$');
            let path = format!("{instance}/${name}");
            let mut response = app.get(&admin, &path).await;
            if response.status() == StatusCode::METHOD_NOT_ALLOWED {
                response = app
                    .request(
                        Method::POST,
                        &admin,
                        &path,
                        Some(&json!({"resourceType": "Parameters"})),
                    )
                    .await;
            }
            assert!(
                response.status().is_success(),
                "{path}: {}",
                response.status()
            );
            exercised += 1;
        }
    }
    // Subscription's own claims: each profile it declares is accepted and answered in the IG's R4
    // shape, and each topic it declares can be subscribed to and is named in the status.
    let statement_resources = rest["resource"].as_array().unwrap();
    for resource in statement_resources {
        let subscribe = |criteria: &str, profile: Option<&str>| {
            let mut body = json!({
                "resourceType": "Subscription", "status": "requested", "reason": "capability",
                "criteria": criteria, "channel": {"type": "websocket"},
            });
            if let Some(profile) = profile {
                body["meta"] = json!({"profile": [profile]});
            }
            body
        };
        let status_of = |created: Value| {
            let id = created["id"].as_str().unwrap().to_owned();
            let app = &app;
            let admin = &admin;
            async move {
                let (code, bundle) = app
                    .get_json(admin, &format!("/fhir/R4/Subscription/{id}/$status"))
                    .await;
                assert_eq!(code, StatusCode::OK, "{bundle}");
                bundle["entry"][0]["resource"].clone()
            }
        };
        let rtype = resource["type"].as_str().unwrap();
        for profile in resource["supportedProfile"]
            .as_array()
            .cloned()
            .unwrap_or_default()
        {
            assert_eq!(rtype, "Subscription", "{rtype} declares a profile");
            let body = subscribe("Observation?status=final", profile.as_str());
            let response = app.post(&admin, "/fhir/R4/Subscription", &body).await;
            assert_eq!(response.status(), StatusCode::CREATED, "{profile}");
            let status = status_of(response.json().await.unwrap()).await;
            assert_eq!(status["resourceType"], "Parameters", "{profile}: {status}");
            assert!(status["meta"]["profile"][0]
                .as_str()
                .unwrap()
                .ends_with("backport-subscription-status-r4"));
            exercised += 1;
        }
        for extension in resource["extension"]
            .as_array()
            .cloned()
            .unwrap_or_default()
        {
            assert_eq!(
                extension["url"],
                "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/capabilitystatement-subscriptiontopic-canonical",
                "{rtype} declares an extension this test does not exercise"
            );
            let topic = extension["valueCanonical"].as_str().unwrap();
            let response = app
                .post(&admin, "/fhir/R4/Subscription", &subscribe(topic, None))
                .await;
            assert_eq!(response.status(), StatusCode::CREATED, "{topic}");
            let status = status_of(response.json().await.unwrap()).await;
            let named = status["parameter"]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p["name"] == "topic" && p["valueCanonical"] == topic);
            assert!(named, "{topic}: {status}");
            exercised += 1;
        }
    }
    // System-level operations.
    for operation in rest["operation"].as_array().cloned().unwrap_or_default() {
        let name = operation["name"].as_str().unwrap().trim_start_matches('$');
        let response = app.get(&admin, &format!("/fhir/R4/${name}")).await;
        assert!(
            response.status().is_success(),
            "${name}: {}",
            response.status()
        );
        exercised += 1;
    }
    assert!(
        exercised > declared.len() * 5,
        "only {exercised} claims exercised"
    );
}
