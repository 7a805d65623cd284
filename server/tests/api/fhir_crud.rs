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
