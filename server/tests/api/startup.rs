use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{spawn_app, spawn_with};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_answers_ok_and_unknown_paths_404() {
    let app = spawn_app().await;
    let response = app.client.get(app.url("/health")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body, serde_json::json!({"status": "ok"}));

    let response = app
        .client
        .get(app.url("/no-such-path"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_data_is_seeded_through_the_store_once() {
    let app = spawn_app().await;
    let store = &app.state.store;
    assert_eq!(store.count("Patient").await.unwrap(), 40);
    assert!(store.count("Location").await.unwrap() >= 3);
    // Loaded through the store: every resource has a history row and at least one event.
    let history = store
        .versions_below("Patient", "pat-001", i64::MAX, 10)
        .await
        .unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].version_id, 1);
    let events = store.events_after(0, 100_000).await.unwrap();
    let total: i64 = [
        "Patient",
        "Encounter",
        "Observation",
        "ServiceRequest",
        "Location",
        "Practitioner",
    ]
    .iter()
    .map(|t| events.iter().filter(|e| e.resource_type == *t).count() as i64)
    .sum();
    assert!(total > 40);
    assert!(events
        .iter()
        .any(|e| e.event_type == app::events::EventType::CriticalValueAlert));
    // A second start on the same database seeds nothing more.
    let head = store.head();
    assert!(!rounds::seed::seed_demo(store).await.unwrap());
    assert_eq!(store.head(), head);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unopenable_database_is_a_clear_error() {
    let result = rounds::Application::build(rounds::Config {
        database_url: "sqlite:///proc/no-such-dir/rounds.db".into(),
        listen: "127.0.0.1:0".parse().unwrap(),
        ..rounds::Config::default()
    })
    .await;
    let error = result.err().expect("the build fails").to_string();
    assert!(error.contains("/proc/no-such-dir"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_database_without_seeding_has_no_patients() {
    let app = spawn_with(|config| config.seed_demo = false).await;
    assert_eq!(app.state.store.count("Patient").await.unwrap(), 0);
}
