//! Property test over the JSON intake: whatever arrives, the server answers (never 5xx, never a
//! panic), and a rejected body leaves nothing behind.

use proptest::{prelude::*, strategy::ValueTree, test_runner::TestRunner};
use reqwest::StatusCode;
use serde_json::{json, Map, Value};

use crate::helpers::{order, spawn_with};

fn arbitrary_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        "[a-zA-Z0-9 /|:._-]{0,12}".prop_map(Value::String),
        Just(json!("Patient/pat-001")),
        Just(json!({"reference": "Patient/pat-001"})),
        Just(json!({"reference": "Patient/ghost"})),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    Just("status".to_owned()),
                    Just("intent".to_owned()),
                    Just("subject".to_owned()),
                    Just("code".to_owned()),
                    Just("id".to_owned()),
                    Just("meta".to_owned()),
                    Just("resourceType".to_owned()),
                    "[a-z]{1,8}".prop_map(|s| s)
                ],
                inner,
                0..5
            )
            .prop_map(|m| Value::Object(m.into_iter().collect::<Map<String, Value>>())),
        ]
    })
}

/// Mutations of a valid order: each field replaced by arbitrary JSON.
fn mutated_order() -> impl Strategy<Value = Value> {
    (
        prop::sample::select(vec![
            "status",
            "intent",
            "subject",
            "code",
            "category",
            "resourceType",
            "meta",
            "id",
            "authoredOn",
        ]),
        arbitrary_json(),
    )
        .prop_map(|(field, value)| {
            let mut body = order("pat-001");
            body[field] = value;
            body
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn arbitrary_bodies_never_crash_and_rejections_leave_nothing() {
    let app = spawn_with(|config| config.seed_demo = true).await;
    let token = app.token("admin").await;
    let mut runner = TestRunner::new(proptest::test_runner::Config {
        cases: 300,
        ..Default::default()
    });
    let mut bodies = Vec::new();
    for _ in 0..150 {
        bodies.push(arbitrary_json().new_tree(&mut runner).unwrap().current());
        bodies.push(mutated_order().new_tree(&mut runner).unwrap().current());
    }
    bodies.push(json!("just a string"));
    bodies.push(Value::String("{".repeat(10_000)));
    let mut accepted = 0;
    for body in bodies {
        for raw in [
            body.to_string(),
            body.to_string().chars().take(40).collect::<String>(),
        ] {
            let before = app.footprint("ServiceRequest").await;
            let response = app
                .client
                .post(app.url("/fhir/R4/ServiceRequest"))
                .bearer_auth(&token)
                .header("content-type", "application/fhir+json")
                .body(raw.clone())
                .send()
                .await
                .unwrap();
            let status = response.status();
            assert!(!status.is_server_error(), "{status} for {raw}");
            let after = app.footprint("ServiceRequest").await;
            if status == StatusCode::CREATED {
                accepted += 1;
                assert_eq!(after.0, before.0 + 1);
                assert!(after.1 > before.1);
            } else {
                let outcome: Value = response.json().await.unwrap();
                assert_eq!(outcome["resourceType"], "OperationOutcome", "{raw}");
                assert_eq!(after, before, "rejected {raw} left something behind");
            }
        }
    }
    // Some mutations (e.g. of authoredOn into another string) are still valid orders.
    assert!(accepted > 0);
}
