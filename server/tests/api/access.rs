//! The access matrix: role × (own patient, other patient, restricted resource) × (read, search,
//! write), each cell asserted allow or deny.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{entries, spawn_app, visible_patients, TestApp};

fn vital(patient: &str) -> Value {
    json!({
        "resourceType": "Observation", "status": "final",
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "vital-signs"}]}],
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4", "display": "Heart rate"}]},
        "subject": {"reference": format!("Patient/{patient}")},
        "effectiveDateTime": "2026-11-25T10:00:00Z",
        "valueQuantity": {"value": 88, "unit": "/min", "system": "http://unitsofmeasure.org", "code": "/min"}
    })
}

fn restricted_note(patient: &str) -> Value {
    json!({
        "resourceType": "DocumentReference", "status": "current", "docStatus": "final",
        "meta": {"security": [{"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "R"}]},
        "type": {"coding": [{"system": "http://loinc.org", "code": "11506-3", "display": "Progress note"}]},
        "subject": {"reference": format!("Patient/{patient}")},
        "date": "2026-11-25T10:00:00Z",
        "content": [{"attachment": {"contentType": "text/plain", "data": "UHN5Y2hpYXRyeSBub3Rl"}}]
    })
}

async fn dispense_for(app: &TestApp, admin: &str, patient: &str) -> Value {
    let (_, requests) = app
        .get_json(
            admin,
            &format!("/fhir/R4/MedicationRequest?patient={patient}&_count=1"),
        )
        .await;
    let request = entries(&requests, "match")[0].clone();
    json!({
        "resourceType": "MedicationDispense", "status": "completed",
        "medicationCodeableConcept": request["medicationCodeableConcept"],
        "subject": {"reference": format!("Patient/{patient}")},
        "authorizingPrescription": [{"reference": format!("MedicationRequest/{}", request["id"].as_str().unwrap())}],
        "whenHandedOver": "2026-11-25T10:00:00Z"
    })
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Expect {
    Allow,
    Deny(StatusCode),
}
use Expect::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn role_by_patient_by_operation_matrix() {
    let app = spawn_app().await;
    let admin = app.token("admin").await;
    let tokens = [
        ("dr.chen", app.token("dr.chen").await),
        ("nurse.patel", app.token("nurse.patel").await),
        ("pharm.nguyen", app.token("pharm.nguyen").await),
        ("admin", admin.clone()),
    ];

    // "Own": a patient every role can see (chen's care team, on patel's unit, with prescriptions).
    let mut shared = visible_patients(&app, &tokens[0].1).await;
    for (_, token) in &tokens[1..3] {
        let theirs = visible_patients(&app, token).await;
        shared.retain(|p| theirs.contains(p));
    }
    let own = shared
        .first()
        .expect("a patient visible to physician, nurse and pharmacist")
        .clone();

    // "Other": a new patient with no care team, no encounter and no prescription.
    let other = "pat-matrix-other";
    let response = app.put(&admin, &format!("/fhir/R4/Patient/{other}"), &json!({"resourceType": "Patient", "id": other, "name": [{"family": "Outside", "given": ["Olga"]}]})).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let other_obs: Value = app
        .post(&admin, "/fhir/R4/Observation", &vital(other))
        .await
        .json()
        .await
        .unwrap();
    let own_obs: Value = app
        .post(&admin, "/fhir/R4/Observation", &vital(&own))
        .await
        .json()
        .await
        .unwrap();
    let note: Value = app
        .post(&admin, "/fhir/R4/DocumentReference", &restricted_note(&own))
        .await
        .json()
        .await
        .unwrap();
    let note_id = note["id"].as_str().unwrap().to_owned();

    let forbidden = Deny(StatusCode::FORBIDDEN);
    let hidden = Deny(StatusCode::NOT_FOUND);
    // (user, target) → (read, search, write)
    let matrix = [
        ("dr.chen", "own", (Allow, Allow, Allow)),
        ("dr.chen", "other", (forbidden, forbidden, forbidden)),
        ("dr.chen", "restricted", (Allow, Allow, Allow)),
        ("nurse.patel", "own", (Allow, Allow, Allow)),
        ("nurse.patel", "other", (forbidden, forbidden, forbidden)),
        // Changing a note she may not know of answers as for an unknown id (the gate hides it).
        ("nurse.patel", "restricted", (hidden, hidden, hidden)),
        ("pharm.nguyen", "own", (Allow, Allow, Allow)),
        ("pharm.nguyen", "other", (forbidden, forbidden, forbidden)),
        ("pharm.nguyen", "restricted", (hidden, hidden, forbidden)),
        ("admin", "own", (Allow, Allow, Allow)),
        ("admin", "other", (Allow, Allow, Allow)),
        ("admin", "restricted", (Allow, Allow, Allow)),
    ];
    for (user, target, (read, search, write)) in matrix {
        let token = &tokens.iter().find(|(name, _)| *name == user).unwrap().1;
        let cell = format!("{user} × {target}");

        // Read.
        let path = match target {
            "own" => format!("/fhir/R4/Observation/{}", own_obs["id"].as_str().unwrap()),
            "other" => format!("/fhir/R4/Observation/{}", other_obs["id"].as_str().unwrap()),
            _ => format!("/fhir/R4/DocumentReference/{note_id}"),
        };
        let status = app.get(token, &path).await.status();
        match read {
            Allow => assert_eq!(status, StatusCode::OK, "{cell} read"),
            Deny(expected) => assert_eq!(status, expected, "{cell} read"),
        }

        // Search: allowed means the resource is in the results, denied means it is silently absent.
        let (path, wanted) = match target {
            "own" => (
                format!("/fhir/R4/Observation?patient={own}&_count=1000"),
                own_obs["id"].clone(),
            ),
            "other" => (
                format!("/fhir/R4/Observation?patient={other}&_count=1000"),
                other_obs["id"].clone(),
            ),
            _ => (
                format!("/fhir/R4/DocumentReference?patient={own}&_count=1000"),
                note["id"].clone(),
            ),
        };
        let (status, bundle) = app.get_json(token, &path).await;
        assert_eq!(status, StatusCode::OK, "{cell} search");
        let found = entries(&bundle, "match").iter().any(|r| r["id"] == wanted);
        assert_eq!(found, search == Allow, "{cell} search");

        // Write: the write that fits the role (a vital sign; a dispense for the pharmacist;
        // changing the note for the restricted column).
        let response = match (target, user) {
            ("restricted", _) => {
                let mut changed = note.clone();
                changed["description"] = json!(format!("reviewed by {user}"));
                app.put(
                    token,
                    &format!("/fhir/R4/DocumentReference/{note_id}"),
                    &changed,
                )
                .await
            }
            (patient, "pharm.nguyen") => {
                let patient = if patient == "own" {
                    own.as_str()
                } else {
                    other
                };
                let body = if patient == other {
                    json!({"resourceType": "MedicationDispense", "status": "completed", "medicationCodeableConcept": {"text": "Paracetamol 500 mg"}, "subject": {"reference": format!("Patient/{other}")}})
                } else {
                    dispense_for(&app, &admin, patient).await
                };
                app.post(token, "/fhir/R4/MedicationDispense", &body).await
            }
            (patient, _) => {
                app.post(
                    token,
                    "/fhir/R4/Observation",
                    &vital(if patient == "own" { &own } else { other }),
                )
                .await
            }
        };
        let status = response.status();
        match write {
            Allow => assert!(
                status.is_success(),
                "{cell} write: {status} {}",
                response.text().await.unwrap()
            ),
            Deny(expected) => assert_eq!(status, expected, "{cell} write"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roles_see_only_their_patients_and_never_restricted_notes() {
    let app = spawn_app().await;
    let chen = visible_patients(&app, &app.token("dr.chen").await).await;
    let okafor = visible_patients(&app, &app.token("dr.okafor").await).await;
    let patel = visible_patients(&app, &app.token("nurse.patel").await).await;
    let garcia = visible_patients(&app, &app.token("nurse.garcia").await).await;
    let admin_token = app.token("admin").await;
    let all = visible_patients(&app, &admin_token).await;
    assert_eq!(all.len(), 40);
    for (name, seen) in [
        ("chen", &chen),
        ("okafor", &okafor),
        ("patel", &patel),
        ("garcia", &garcia),
    ] {
        assert!(
            !seen.is_empty() && seen.len() < 40,
            "{name} sees {} patients",
            seen.len()
        );
    }
    assert_ne!(patel, garcia);

    // Nurses see exactly the patients whose active encounter is on their unit (plus care teams).
    let (_, icu) = app
        .get_json(
            &admin_token,
            "/fhir/R4/Encounter?location=Location/unit-icu&status=in-progress&_count=100",
        )
        .await;
    for encounter in entries(&icu, "match") {
        let patient = encounter["subject"]["reference"]
            .as_str()
            .unwrap()
            .trim_start_matches("Patient/");
        assert!(
            garcia.iter().any(|p| p == patient),
            "garcia misses {patient}"
        );
    }

    // No restricted note in any nurse's or pharmacist's search, even with _include.
    for user in ["nurse.patel", "nurse.garcia", "pharm.nguyen"] {
        let token = app.token(user).await;
        let (_, notes) = app
            .get_json(&token, "/fhir/R4/DocumentReference?_count=1000")
            .await;
        assert!(
            entries(&notes, "match")
                .iter()
                .all(|n| !app::fhir::security_restricted(n)),
            "{user}"
        );
    }
    let (_, notes) = app
        .get_json(&admin_token, "/fhir/R4/DocumentReference?_count=1000")
        .await;
    assert_eq!(
        entries(&notes, "match")
            .iter()
            .filter(|n| app::fhir::security_restricted(n))
            .count(),
        2
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_follows_care_team_changes_at_once() {
    let app = spawn_app().await;
    let admin = app.token("admin").await;
    let okafor = app.token("dr.okafor").await;
    let before = visible_patients(&app, &okafor).await;
    let outsider = visible_patients(&app, &admin)
        .await
        .into_iter()
        .find(|p| !before.contains(p))
        .unwrap();
    let (_, teams) = app
        .get_json(&admin, &format!("/fhir/R4/CareTeam?patient={outsider}"))
        .await;
    let mut team = entries(&teams, "match")[0].clone();
    team["participant"]
        .as_array_mut()
        .unwrap()
        .push(json!({"member": {"reference": "Practitioner/pr-okafor"}}));
    let id = team["id"].as_str().unwrap().to_owned();
    assert_eq!(
        app.put(&admin, &format!("/fhir/R4/CareTeam/{id}"), &team)
            .await
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        app.get(&okafor, &format!("/fhir/R4/Patient/{outsider}"))
            .await
            .status(),
        StatusCode::OK
    );
    assert!(visible_patients(&app, &okafor).await.contains(&outsider));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_admins_read_the_audit_trail_and_reads_are_in_it() {
    let app = spawn_app().await;
    let nurse = app.token("nurse.patel").await;
    let patient = visible_patients(&app, &nurse).await.remove(0);
    assert_eq!(
        app.get(&nurse, &format!("/fhir/R4/Patient/{patient}"))
            .await
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        app.get(&nurse, "/fhir/R4/AuditEvent").await.status(),
        StatusCode::FORBIDDEN
    );
    let admin = app.token("admin").await;
    let (status, bundle) = app
        .get_json(
            &admin,
            &format!("/fhir/R4/AuditEvent?patient={patient}&_count=50"),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let events = entries(&bundle, "match");
    let read = events
        .iter()
        .find(|e| {
            e["subtype"][0]["code"] == "read"
                && e["agent"][0]["who"]["identifier"]["value"] == "nurse.patel"
        })
        .expect("the nurse's read is audited");
    assert_eq!(read["action"], "R");
    let id = read["id"].as_str().unwrap();
    let (status, single) = app
        .get_json(&admin, &format!("/fhir/R4/AuditEvent/{id}"))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(single["id"], *id);
    assert_eq!(single["meta"]["versionId"], "1");
    let response = app.get(&admin, &format!("/fhir/R4/AuditEvent/{id}")).await;
    assert_eq!(response.headers()["etag"], "W/\"1\"");
}
