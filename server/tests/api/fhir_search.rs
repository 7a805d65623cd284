use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{entries, order, spawn_app};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_by_patient_code_status_category_and_date() {
    let app = spawn_app().await;
    let token = app.token("admin").await;

    let (status, bundle) = app
        .get_json(
            &token,
            "/fhir/R4/Observation?patient=pat-001&category=vital-signs&_count=1000",
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(bundle["type"], "searchset");
    let vitals = entries(&bundle, "match");
    assert!(!vitals.is_empty());
    assert!(vitals
        .iter()
        .all(|o| o["subject"]["reference"] == "Patient/pat-001"));
    assert_eq!(bundle["total"].as_i64().unwrap() as usize, vitals.len());

    // Token with system, without system, and system only.
    let (_, with_system) = app
        .get_json(
            &token,
            "/fhir/R4/Observation?code=http://loinc.org|8867-4&_summary=count",
        )
        .await;
    let (_, code_only) = app
        .get_json(&token, "/fhir/R4/Observation?code=8867-4&_summary=count")
        .await;
    let (_, wrong_system) = app
        .get_json(
            &token,
            "/fhir/R4/Observation?code=http://snomed.info/sct|8867-4&_summary=count",
        )
        .await;
    assert!(with_system["total"].as_i64().unwrap() > 0);
    assert_eq!(with_system["total"], code_only["total"]);
    assert_eq!(wrong_system["total"], 0);

    // Date prefixes partition the vitals of pat-001.
    let (_, all) = app
        .get_json(
            &token,
            "/fhir/R4/Observation?patient=pat-001&_summary=count",
        )
        .await;
    let (_, newest) = app
        .get_json(
            &token,
            "/fhir/R4/Observation?patient=pat-001&_sort=-date&_count=1",
        )
        .await;
    let newest_date = entries(&newest, "match")[0]["effectiveDateTime"]
        .as_str()
        .unwrap()
        .to_owned();
    let (_, before) = app
        .get_json(
            &token,
            &format!(
                "/fhir/R4/Observation?patient=pat-001&date=lt{}&_summary=count",
                newest_date.replace('+', "%2B")
            ),
        )
        .await;
    let (_, at_or_after) = app
        .get_json(
            &token,
            &format!(
                "/fhir/R4/Observation?patient=pat-001&date=ge{}&_summary=count",
                newest_date.replace('+', "%2B")
            ),
        )
        .await;
    assert_eq!(
        before["total"].as_i64().unwrap() + at_or_after["total"].as_i64().unwrap(),
        all["total"].as_i64().unwrap()
    );
    assert!(at_or_after["total"].as_i64().unwrap() >= 1);

    // Sorting by date descending really is descending.
    let (_, sorted) = app
        .get_json(
            &token,
            "/fhir/R4/Observation?patient=pat-002&_sort=-date&_count=50",
        )
        .await;
    let dates: Vec<String> = entries(&sorted, "match")
        .iter()
        .filter_map(|o| o["effectiveDateTime"].as_str().map(str::to_owned))
        .collect();
    let mut expected = dates.clone();
    expected.sort_by(|a, b| b.cmp(a));
    assert_eq!(dates, expected);

    // Status and encounter and location.
    let (_, active) = app
        .get_json(
            &token,
            "/fhir/R4/Encounter?status=in-progress&_summary=count",
        )
        .await;
    assert_eq!(active["total"], 40);
    let (_, on_unit) = app
        .get_json(
            &token,
            "/fhir/R4/Encounter?location=Location/unit-icu&status=in-progress&_summary=count",
        )
        .await;
    assert!(on_unit["total"].as_i64().unwrap() > 0);
    assert!(on_unit["total"].as_i64().unwrap() < 40);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paging_follows_next_links_without_overlap() {
    let app = spawn_app().await;
    let token = app.token("admin").await;
    let mut url = format!("{}/fhir/R4/Patient?_count=15&_sort=_id", app.base);
    let mut seen: Vec<String> = Vec::new();
    for _ in 0..10 {
        let response = app
            .client
            .get(&url)
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        let bundle: Value = response.json().await.unwrap();
        seen.extend(
            entries(&bundle, "match")
                .iter()
                .map(|p| p["id"].as_str().unwrap().to_owned()),
        );
        match bundle["link"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["relation"] == "next")
        {
            Some(next) => url = next["url"].as_str().unwrap().to_owned(),
            None => break,
        }
    }
    assert_eq!(seen.len(), 40);
    let mut unique = seen.clone();
    unique.dedup();
    assert_eq!(unique, seen);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn include_unknown_parameters_and_last_updated() {
    let app = spawn_app().await;
    let token = app.token("admin").await;
    let (status, bundle) = app.get_json(&token, "/fhir/R4/Encounter?patient=pat-003&status=in-progress&_include=Encounter:location&_include=Encounter:patient").await;
    assert_eq!(status, StatusCode::OK);
    let included = entries(&bundle, "include");
    assert!(included.iter().any(|r| r["resourceType"] == "Location"));
    assert!(included
        .iter()
        .any(|r| r["resourceType"] == "Patient" && r["id"] == "pat-003"));

    let (status, bundle) = app
        .get_json(&token, "/fhir/R4/Patient?shoe-size=42&_count=1")
        .await;
    assert_eq!(status, StatusCode::OK);
    let outcome = entries(&bundle, "outcome");
    assert_eq!(outcome.len(), 1);
    assert!(outcome[0]["issue"][0]["diagnostics"]
        .as_str()
        .unwrap()
        .contains("shoe-size"));

    let response = app
        .client
        .get(app.url("/fhir/R4/Patient?shoe-size=42"))
        .bearer_auth(&token)
        .header("prefer", "handling=strict")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);

    // _lastUpdated finds exactly what was written after a moment.
    let (_, created) = (
        (),
        app.post(&token, "/fhir/R4/ServiceRequest", &order("pat-004"))
            .await
            .json::<Value>()
            .await
            .unwrap(),
    );
    let stamp = created["meta"]["lastUpdated"].as_str().unwrap();
    let (_, recent) = app
        .get_json(
            &token,
            &format!("/fhir/R4/ServiceRequest?_lastUpdated=ge{stamp}"),
        )
        .await;
    let ids: Vec<&str> = entries(&recent, "match")
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![created["id"].as_str().unwrap()]);
}
