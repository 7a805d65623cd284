//! The event log: written in the same transaction as the resource, gap-free under concurrency.

use app::events::{Action, EventType};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{order, spawn_app};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_produce_exactly_their_events_gap_free() {
    let app = spawn_app().await;
    let token = app.token("dr.chen").await;
    let head = app.state.store.head();
    const WRITERS: usize = 16;
    const EACH: usize = 10;
    let mut tasks = Vec::new();
    for _ in 0..WRITERS {
        let client = app.client.clone();
        let url = app.url("/fhir/R4/ServiceRequest");
        let token = token.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..EACH {
                let response = client
                    .post(&url)
                    .bearer_auth(&token)
                    .header("content-type", "application/fhir+json")
                    .body(order("pat-001").to_string())
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status(), StatusCode::CREATED);
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let events = app.state.store.events_after(head, 10_000).await.unwrap();
    assert_eq!(events.len(), WRITERS * EACH);
    for (i, event) in events.iter().enumerate() {
        assert_eq!(
            event.seq,
            head + 1 + i as i64,
            "seq has a gap or a duplicate"
        );
        assert_eq!(event.event_type, EventType::OrderPlaced);
        assert_eq!(event.action, Action::Created);
        assert_eq!(event.rooms, vec!["patient:pat-001".to_owned()]);
        assert_eq!(event.user_id.as_deref(), Some("dr.chen"));
    }
    assert_eq!(app.state.store.head(), head + (WRITERS * EACH) as i64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_carry_the_version_they_concern_and_follow_the_catalogue() {
    let app = spawn_app().await;
    let token = app.token("admin").await;
    let head = app.state.store.head();

    let critical = json!({
        "resourceType": "Observation", "status": "final",
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "laboratory"}]}],
        "code": {"coding": [{"system": "http://loinc.org", "code": "2823-3", "display": "Potassium"}]},
        "subject": {"reference": "Patient/pat-002"},
        "effectiveDateTime": "2026-11-25T09:00:00Z",
        "valueQuantity": {"value": 7.1, "unit": "mmol/L", "system": "http://unitsofmeasure.org", "code": "mmol/L"},
        "interpretation": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation", "code": "HH"}]}]
    });
    let created: Value = app
        .post(&token, "/fhir/R4/Observation", &critical)
        .await
        .json()
        .await
        .unwrap();
    let id = created["id"].as_str().unwrap();
    let events = app.state.store.events_after(head, 100).await.unwrap();
    let kinds: Vec<(EventType, Vec<String>)> = events
        .iter()
        .map(|e| (e.event_type, e.rooms.clone()))
        .collect();
    assert_eq!(
        kinds,
        vec![
            (
                EventType::ResultAvailable,
                vec!["patient:pat-002".to_owned()]
            ),
            (
                EventType::CriticalValueAlert,
                vec!["patient:pat-002".to_owned(), "facility:alerts".to_owned()]
            ),
        ]
    );
    let resource: Value = serde_json::from_str(&events[0].resource_json).unwrap();
    assert_eq!(resource["id"], id);
    assert_eq!(resource["meta"]["versionId"], "1");
    assert_eq!(events[0].patient_id.as_deref(), Some("pat-002"));

    // Acknowledging it (a Task, see README) is ALERT_ACKNOWLEDGED to the same rooms.
    let head = app.state.store.head();
    let ack = json!({
        "resourceType": "Task", "status": "completed", "intent": "order",
        "code": {"coding": [{"system": app::fhir::ROUNDS_TASK_SYSTEM, "code": app::fhir::ACKNOWLEDGE}]},
        "focus": {"reference": format!("Observation/{id}")},
        "for": {"reference": "Patient/pat-002"}
    });
    assert_eq!(
        app.post(&token, "/fhir/R4/Task", &ack).await.status(),
        StatusCode::CREATED
    );
    let events = app.state.store.events_after(head, 100).await.unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].event_type, EventType::AlertAcknowledged);
    assert!(events[0].rooms.contains(&"facility:alerts".to_owned()));

    // A delete is an event too, carrying the deleted version.
    let head = app.state.store.head();
    let order_id = app
        .post(&token, "/fhir/R4/ServiceRequest", &order("pat-002"))
        .await
        .json::<Value>()
        .await
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        app.delete(&token, &format!("/fhir/R4/ServiceRequest/{order_id}"))
            .await
            .status(),
        StatusCode::NO_CONTENT
    );
    let events = app.state.store.events_after(head, 100).await.unwrap();
    let types: Vec<EventType> = events.iter().map(|e| e.event_type).collect();
    assert_eq!(
        types,
        vec![EventType::OrderPlaced, EventType::OrderCancelled]
    );
    assert_eq!(events[1].action, Action::Deleted);
    assert_eq!(events[1].version_id, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_write_leaves_neither_resource_nor_event_nor_audit() {
    let app = spawn_app().await;
    let token = app.token("admin").await;
    let before = app.footprint("ServiceRequest").await;
    let mut dangling = order("pat-001");
    dangling["requester"] = json!({"reference": "Practitioner/nobody"});
    let response = app.post(&token, "/fhir/R4/ServiceRequest", &dangling).await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    // A stale If-Match fails inside the transaction, after the resource was read.
    let mut existing: Value = app.get_json(&token, "/fhir/R4/Patient/pat-001").await.1;
    existing["active"] = json!(false);
    let response = app
        .client
        .put(app.url("/fhir/R4/Patient/pat-001"))
        .bearer_auth(&token)
        .header("content-type", "application/fhir+json")
        .header("if-match", "W/\"99\"")
        .body(existing.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::PRECONDITION_FAILED);
    let after = app.footprint("ServiceRequest").await;
    assert_eq!((before.0, before.1), (after.0, after.1));
    // The only audit rows added are the reads of pat-001 above.
    let rows = app
        .state
        .store
        .audit_rows(None, (after.2 - before.2) as usize, 0)
        .await
        .unwrap()
        .1;
    assert!(
        rows.iter().all(|row| row.record.operation == "read"),
        "{rows:?}"
    );
    let (_, patient) = app.get_json(&token, "/fhir/R4/Patient/pat-001").await;
    assert_eq!(patient["meta"]["versionId"], "1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_after_reads_a_large_log_in_order_quickly() {
    let app = spawn_app().await;
    let head = app.state.store.head();
    assert!(head > 1000, "the demo data should already make a long log");
    let started = std::time::Instant::now();
    let mut after = 0;
    let mut count = 0;
    loop {
        let page = app.state.store.events_after(after, 500).await.unwrap();
        let Some(last) = page.last() else { break };
        assert_eq!(page[0].seq, after + 1);
        after = last.seq;
        count += page.len();
    }
    assert_eq!(count as i64, head);
    eprintln!("read {count} events in {:?}", started.elapsed());
}
