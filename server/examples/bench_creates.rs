//! FHIR create throughput and latency over HTTP, on SQLite (default) or PostgreSQL.
//!
//! Starts Rounds on 127.0.0.1 (port 0, a fresh temporary database with the demo data), signs in,
//! then `--clients` concurrent HTTP/1.1 clients each POST ServiceRequests for `--seconds`. Every
//! create is one transaction: resource + history + search index + event + audit. Prints creates/s
//! and the p50/p99/p99.9 latency of a create.
//!
//!     cargo run --release -p server --example bench_creates -- --clients 16 --seconds 10 [--user dr.chen]
//!         [--database-url postgres://postgres@127.0.0.1:5432/bench]   (an empty database)

use std::time::{Duration, Instant};

use rounds::{Application, Config};
use serde_json::json;

fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::main]
async fn main() {
    let clients = arg("--clients", 16) as usize;
    let seconds = arg("--seconds", 10);
    let user = std::env::args()
        .skip_while(|a| a != "--user")
        .nth(1)
        .unwrap_or_else(|| "dr.chen".to_owned());
    let dir = tempfile::tempdir().expect("temp dir");
    let config = Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        database_url: std::env::args()
            .skip_while(|a| a != "--database-url")
            .nth(1)
            .unwrap_or_else(|| format!("sqlite://{}/bench.db", dir.path().display())),
        jwt_secret: "benchmark-secret-benchmark-secret-0000".into(),
        jwt_secret_is_default: false,
        seed_demo: true,
        site_root: dir.path().join("site"),
        ..Config::default()
    };
    let app = Application::build(config).await.expect("build");
    let base = format!("http://{}", app.local_addr());
    tokio::spawn(app.run_until(std::future::pending()));

    let http = reqwest::Client::new();
    let login: serde_json::Value = http
        .post(format!("{base}/auth/login"))
        .json(&json!({"username": user, "password": "rounds-demo"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = login["access_token"].as_str().unwrap().to_owned();
    let body = json!({
        "resourceType": "ServiceRequest", "status": "active", "intent": "order",
        "code": {"coding": [{"system": "http://loinc.org", "code": "58410-2", "display": "CBC panel"}]},
        "subject": {"reference": "Patient/pat-001"}, "authoredOn": "2026-11-25T08:00:00Z"
    })
    .to_string();

    // Warm up connections and caches.
    for _ in 0..50 {
        http.post(format!("{base}/fhir/R4/ServiceRequest"))
            .bearer_auth(&token)
            .header("content-type", "application/fhir+json")
            .body(body.clone())
            .send()
            .await
            .unwrap();
    }

    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (http, base, token, body) = (
            reqwest::Client::new(),
            base.clone(),
            token.clone(),
            body.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut failures = 0u64;
            while Instant::now() < deadline {
                let sent = Instant::now();
                let response = http
                    .post(format!("{base}/fhir/R4/ServiceRequest"))
                    .bearer_auth(&token)
                    .header("content-type", "application/fhir+json")
                    .header("prefer", "return=minimal")
                    .body(body.clone())
                    .send()
                    .await;
                match response {
                    Ok(r) if r.status().as_u16() == 201 => latencies.push(sent.elapsed()),
                    _ => failures += 1,
                }
            }
            (latencies, failures)
        }));
    }
    let mut latencies = Vec::new();
    let mut failures = 0;
    for task in tasks {
        let (mine, failed) = task.await.unwrap();
        latencies.extend(mine);
        failures += failed;
    }
    let elapsed = started.elapsed();
    latencies.sort();
    let pct = |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
    println!(
        "clients: {clients}, duration: {:.1} s, creates: {}, failures: {failures}",
        elapsed.as_secs_f64(),
        latencies.len()
    );
    println!(
        "creates/s: {:.0}",
        latencies.len() as f64 / elapsed.as_secs_f64()
    );
    println!(
        "latency p50: {:.2} ms, p99: {:.2} ms, p99.9: {:.2} ms",
        pct(0.50).as_secs_f64() * 1e3,
        pct(0.99).as_secs_f64() * 1e3,
        pct(0.999).as_secs_f64() * 1e3
    );
}
