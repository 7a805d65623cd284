use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{order, spawn_app};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_read_update_delete_with_versions_and_headers() {
    let app = spawn_app().await;
    let token = app.token("dr.chen").await;

    // Create: 201, Location, ETag, server id and meta.
    let response = app
        .post(&token, "/fhir/R4/ServiceRequest", &order("pat-001"))
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(response.headers()["etag"], "W/\"1\"");
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/fhir+json"));
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let created: Value = response.json().await.unwrap();
    let id = created["id"].as_str().unwrap().to_owned();
    assert!(
        location.ends_with(&format!("/fhir/R4/ServiceRequest/{id}/_history/1")),
        "{location}"
    );
    assert_eq!(created["meta"]["versionId"], "1");
    assert!(created["meta"]["lastUpdated"]
        .as_str()
        .unwrap()
        .ends_with('Z'));

    // Read.
    let response = app
        .get(&token, &format!("/fhir/R4/ServiceRequest/{id}"))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["etag"], "W/\"1\"");
    assert!(response.headers().contains_key("last-modified"));

    // Update with the right If-Match, then a stale one → 412.
    let mut changed = created.clone();
    changed["priority"] = json!("urgent");
    let response = app
        .client
        .put(app.url(&format!("/fhir/R4/ServiceRequest/{id}")))
        .bearer_auth(&token)
        .header("content-type", "application/fhir+json")
        .header("if-match", "W/\"1\"")
        .body(changed.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let updated: Value = response.json().await.unwrap();
    assert_eq!(updated["meta"]["versionId"], "2");
    assert_eq!(updated["priority"], "urgent");
    let response = app
        .client
        .put(app.url(&format!("/fhir/R4/ServiceRequest/{id}")))
        .bearer_auth(&token)
        .header("content-type", "application/fhir+json")
        .header("if-match", "W/\"1\"")
        .body(changed.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::PRECONDITION_FAILED);
    let outcome: Value = response.json().await.unwrap();
    assert_eq!(outcome["resourceType"], "OperationOutcome");

    // vread of both versions.
    let (status, v1) = app
        .get_json(&token, &format!("/fhir/R4/ServiceRequest/{id}/_history/1"))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(v1.get("priority").is_none());
    let (status, _) = app
        .get_json(&token, &format!("/fhir/R4/ServiceRequest/{id}/_history/9"))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Delete, then reads answer 410 and history shows three versions.
    let response = app
        .delete(&token, &format!("/fhir/R4/ServiceRequest/{id}"))
        .await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let (status, outcome) = app
        .get_json(&token, &format!("/fhir/R4/ServiceRequest/{id}"))
        .await;
    assert_eq!(status, StatusCode::GONE);
    assert_eq!(outcome["issue"][0]["code"], "deleted");
    let (status, history) = app
        .get_json(&token, &format!("/fhir/R4/ServiceRequest/{id}/_history"))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(history["type"], "history");
    assert_eq!(history["total"], 3);
    assert_eq!(history["entry"][0]["request"]["method"], "DELETE");
    assert!(history["entry"][0].get("resource").is_none());
    assert_eq!(history["entry"][2]["resource"]["meta"]["versionId"], "1");
    // Deleting again is idempotent; deleting what never existed is 404.
    let response = app
        .delete(&token, &format!("/fhir/R4/ServiceRequest/{id}"))
        .await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let response = app
        .delete(&token, "/fhir/R4/ServiceRequest/never-was")
        .await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_can_create_with_a_client_id_and_prefer_controls_the_body() {
    let app = spawn_app().await;
    let token = app.token("dr.chen").await;
    let mut body = order("pat-001");
    body["id"] = json!("my-order-1");
    let response = app
        .put(&token, "/fhir/R4/ServiceRequest/my-order-1", &body)
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    assert!(response.headers().contains_key("location"));

    let response = app
        .client
        .post(app.url("/fhir/R4/ServiceRequest"))
        .bearer_auth(&token)
        .header("content-type", "application/fhir+json")
        .header("prefer", "return=minimal")
        .body(order("pat-001").to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    assert!(response.headers().contains_key("location"));
    assert!(response.bytes().await.unwrap().is_empty());

    let response = app
        .client
        .post(app.url("/fhir/R4/ServiceRequest"))
        .bearer_auth(&token)
        .header("content-type", "application/fhir+json")
        .header("prefer", "return=OperationOutcome")
        .body(order("pat-001").to_string())
        .send()
        .await
        .unwrap();
    let outcome: Value = response.json().await.unwrap();
    assert_eq!(outcome["resourceType"], "OperationOutcome");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_capability_statement_lists_every_type_and_its_parameters() {
    let app = spawn_app().await;
    let response = app
        .client
        .get(app.url("/fhir/R4/metadata"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let statement: Value = response.json().await.unwrap();
    assert_eq!(statement["resourceType"], "CapabilityStatement");
    assert_eq!(statement["fhirVersion"], "4.0.1");
    let resources = statement["rest"][0]["resource"].as_array().unwrap();
    assert_eq!(resources.len(), app::fhir::RESOURCE_TYPES.len());
    let observation = resources
        .iter()
        .find(|r| r["type"] == "Observation")
        .unwrap();
    let names: Vec<&str> = observation["searchParam"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    for expected in [
        "_id",
        "_lastUpdated",
        "patient",
        "code",
        "category",
        "date",
        "status",
        "encounter",
    ] {
        assert!(
            names.contains(&expected),
            "{expected} missing from {names:?}"
        );
    }
    let audit = resources
        .iter()
        .find(|r| r["type"] == "AuditEvent")
        .unwrap();
    assert!(!audit["interaction"]
        .as_array()
        .unwrap()
        .iter()
        .any(|i| i["code"] == "create"));
}

/// Issue 16, defect 5: an AuditEvent has the vread, `_history` and `_id` search the
/// CapabilityStatement claims, decided by the read's own rule (admins only).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_events_answer_vread_history_and_id_search_as_advertised() {
    let app = spawn_app().await;
    let admin = app.token("admin").await;
    let nurse = app.token("nurse.patel").await;
    assert_eq!(
        app.get(&admin, "/fhir/R4/Patient/pat-001").await.status(),
        StatusCode::OK
    );
    let (status, page) = app
        .get_json(&admin, "/fhir/R4/AuditEvent?patient=pat-001&_count=2")
        .await;
    assert_eq!(status, StatusCode::OK);
    let events: Vec<Value> = page["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["resource"].clone())
        .collect();
    assert_eq!(events.len(), 2);
    let id = events[0]["id"].as_str().unwrap();
    let other = events[1]["id"].as_str().unwrap();
    let version = events[0]["meta"]["versionId"].as_str().unwrap();

    // vread of the version it reports, and of no other.
    let response = app
        .get(
            &admin,
            &format!("/fhir/R4/AuditEvent/{id}/_history/{version}"),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["etag"], format!("W/\"{version}\""));
    let read: Value = response.json().await.unwrap();
    assert_eq!(read, events[0]);
    let (status, outcome) = app
        .get_json(&admin, &format!("/fhir/R4/AuditEvent/{id}/_history/2"))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(outcome["resourceType"], "OperationOutcome");

    // A one-version history.
    let (status, history) = app
        .get_json(&admin, &format!("/fhir/R4/AuditEvent/{id}/_history"))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(history["type"], "history");
    assert_eq!(history["total"], 1);
    assert_eq!(history["entry"][0]["resource"], events[0]);
    assert_eq!(history["entry"][0]["response"]["etag"], "W/\"1\"");

    // `_id` filters in SQL: the total counts only the named events.
    let (_, one) = app
        .get_json(&admin, &format!("/fhir/R4/AuditEvent?_id={id}"))
        .await;
    assert_eq!(one["total"], 1);
    assert_eq!(
        one["entry"].as_array().unwrap().len(),
        1,
        "no warning entry"
    );
    assert_eq!(one["entry"][0]["resource"]["id"], id);
    let (_, two) = app
        .get_json(&admin, &format!("/fhir/R4/AuditEvent?_id={id},{other}"))
        .await;
    assert_eq!(two["total"], 2);
    let (_, none) = app
        .get_json(&admin, "/fhir/R4/AuditEvent?_id=not-a-number")
        .await;
    assert_eq!(none["total"], 0);
    let (_, both) = app
        .get_json(
            &admin,
            &format!("/fhir/R4/AuditEvent?_id={id}&patient=pat-002"),
        )
        .await;
    assert_eq!(both["total"], 0, "_id and patient are ANDed");

    // Whoever may not read the audit trail may not vread it or walk its history either.
    for path in [
        format!("/fhir/R4/AuditEvent/{id}"),
        format!("/fhir/R4/AuditEvent/{id}/_history/1"),
        format!("/fhir/R4/AuditEvent/{id}/_history"),
        format!("/fhir/R4/AuditEvent?_id={id}"),
    ] {
        let (status, outcome) = app.get_json(&nurse, &path).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}");
        assert_eq!(outcome["resourceType"], "OperationOutcome");
    }
    for path in [
        "/fhir/R4/AuditEvent/999999999/_history",
        "/fhir/R4/AuditEvent/999999999/_history/1",
    ] {
        assert_eq!(
            app.get(&admin, path).await.status(),
            StatusCode::NOT_FOUND,
            "{path}"
        );
    }
}

/// Updates `patient` until the stored version's lastUpdated is later than `after` (two writes
/// in one millisecond share it); returns the new version's (versionId, lastUpdated).
async fn update_after(
    app: &crate::helpers::TestApp,
    token: &str,
    patient: &mut Value,
    after: &str,
) -> (String, String) {
    loop {
        let id = patient["id"].as_str().unwrap().to_owned();
        let response = app
            .put(token, &format!("/fhir/R4/Patient/{id}"), patient)
            .await;
        assert_eq!(response.status(), StatusCode::OK);
        *patient = response.json().await.unwrap();
        let stamp = patient["meta"]["lastUpdated"].as_str().unwrap().to_owned();
        if stamp.as_str() > after {
            return (
                patient["meta"]["versionId"].as_str().unwrap().to_owned(),
                stamp,
            );
        }
    }
}

/// The version ids of a history Bundle, newest first, and its total.
fn versions_of(history: &Value) -> (i64, Vec<String>) {
    let ids = history["entry"]
        .as_array()
        .map(|entries| {
            entries
                .iter()
                .map(|e| {
                    e["resource"]["meta"]["versionId"]
                        .as_str()
                        .unwrap()
                        .to_owned()
                })
                .collect()
        })
        .unwrap_or_default();
    (history["total"].as_i64().unwrap(), ids)
}

async fn history_of(
    app: &crate::helpers::TestApp,
    token: &str,
    id: &str,
    query: String,
) -> (i64, Vec<String>) {
    let (status, bundle) = app
        .get_json(token, &format!("/fhir/R4/Patient/{id}/_history?{query}"))
        .await;
    assert_eq!(status, StatusCode::OK, "{query}: {bundle}");
    versions_of(&bundle)
}

/// Issue 16, defect 10: `_history` honours `_since` (lastUpdated at or after it) and `_at`
/// (the versions current at that instant or during that period), selected in SQL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_since_and_at_select_the_versions_of_their_window() {
    let app = spawn_app().await;
    let admin = app.token("admin").await;
    let response = app
        .post(
            &admin,
            "/fhir/R4/Patient",
            &json!({"resourceType": "Patient", "name": [{"family": "Since"}]}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let mut patient: Value = response.json().await.unwrap();
    let id = patient["id"].as_str().unwrap().to_owned();
    let t1 = patient["meta"]["lastUpdated"].as_str().unwrap().to_owned();
    let (v2, t2) = update_after(&app, &admin, &mut patient, &t1).await;
    let (v3, t3) = update_after(&app, &admin, &mut patient, &t2).await;
    let history = |query: String| history_of(&app, &admin, &id, query);
    let (total, all) = history(String::new()).await;
    assert_eq!(total, all.len() as i64);

    assert_eq!(
        history(format!("_since={t2}")).await,
        (2, vec![v3.clone(), v2.clone()])
    );
    assert_eq!(history(format!("_since={t3}")).await, (1, vec![v3.clone()]));
    let after_t3 =
        chrono::DateTime::parse_from_rfc3339(&t3).unwrap() + chrono::Duration::milliseconds(1);
    let after_t3 = after_t3
        .to_utc()
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string();
    assert_eq!(history(format!("_since={after_t3}")).await, (0, vec![]));
    // Paging within the window.
    assert_eq!(
        history(format!("_since={t1}&_count=1&_offset=1")).await,
        (all.len() as i64, vec![all[1].clone()])
    );

    // `_at` an instant: the one version current then.
    assert_eq!(history(format!("_at={t2}")).await, (1, vec![v2.clone()]));
    assert_eq!(
        history(format!("_at={after_t3}")).await,
        (1, vec![v3.clone()])
    );
    assert_eq!(history("_at=2000-01-01".into()).await, (0, vec![]));
    // `_at` a period: every version current at some point in it.
    assert_eq!(
        history(format!("_at={}", &t1[..4])).await,
        (all.len() as i64, all.clone())
    );
    // Both: current during the year, and written since t2.
    assert_eq!(
        history(format!("_at={}&_since={t2}", &t1[..4])).await,
        (2, vec![v3, v2])
    );

    for bad in ["_since=yesterday", "_at=soon"] {
        let (status, outcome) = app
            .get_json(&admin, &format!("/fhir/R4/Patient/{id}/_history?{bad}"))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
        assert_eq!(outcome["resourceType"], "OperationOutcome");
    }
}
