//! Store write throughput without HTTP: sequential creates through `Store::write`, to separate
//! the database transaction's cost from the HTTP layer's.
//!
//!     cargo run --release -p server --example bench_store -- --writes 5000

use std::time::Instant;

use rounds::store::{Actor, Store, WriteOp};
use serde_json::json;

#[tokio::main]
async fn main() {
    let writes: usize = std::env::args()
        .skip_while(|a| a != "--writes")
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(5000);
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(&format!("sqlite://{}/bench.db", dir.path().display()))
        .await
        .expect("open");
    let actor = Actor {
        user_id: Some("bench".into()),
        source: None,
    };
    store
        .write(
            &actor,
            "Patient",
            WriteOp::Update {
                id: "p1".into(),
                if_match: None,
            },
            Some(json!({"resourceType": "Patient", "id": "p1"})),
        )
        .await
        .unwrap();
    let body = json!({
        "resourceType": "ServiceRequest", "status": "active", "intent": "order",
        "code": {"coding": [{"system": "http://loinc.org", "code": "58410-2"}]},
        "subject": {"reference": "Patient/p1"}, "authoredOn": "2026-11-25T08:00:00Z"
    });
    let started = Instant::now();
    for _ in 0..writes {
        store
            .write(
                &actor,
                "ServiceRequest",
                WriteOp::Create,
                Some(body.clone()),
            )
            .await
            .unwrap();
    }
    let elapsed = started.elapsed();
    println!(
        "{writes} sequential creates in {:.2} s: {:.0} creates/s, {:.0} µs each",
        elapsed.as_secs_f64(),
        writes as f64 / elapsed.as_secs_f64(),
        elapsed.as_micros() as f64 / writes as f64
    );
}
