//! Open criticals are found by a query for exactly them: the `critical` search parameter of
//! Observation and DiagnosticReport (computed by `app::fhir::is_critical` on every write), and a
//! database indexed before it existed is re-indexed once at start.

use reqwest::{Client, StatusCode};
use serde_json::{json, Value};

use crate::{helpers::PASSWORD, subscriptions::run_separately};

fn observation(patient: &str, interpretation: &str, in_component: bool) -> Value {
    let coded = json!([{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation", "code": interpretation}]}]);
    let mut resource = json!({
        "resourceType": "Observation", "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "2823-3"}]},
        "subject": {"reference": format!("Patient/{patient}")},
        "valueQuantity": {"value": 5.0, "unit": "mmol/L"},
    });
    if in_component {
        resource["component"] = json!([{"code": {"text": "K"}, "interpretation": coded}]);
    } else {
        resource["interpretation"] = coded;
    }
    resource
}

struct Api {
    base: String,
    client: Client,
    token: String,
}

impl Api {
    async fn sign_in(base: String) -> Self {
        let client = Client::new();
        let body: Value = client
            .post(format!("{base}/auth/login"))
            .json(&json!({"username": "admin", "password": PASSWORD}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let token = body["access_token"].as_str().unwrap().to_owned();
        Self {
            base,
            client,
            token,
        }
    }

    async fn create(&self, resource: &Value) -> String {
        let response = self
            .client
            .post(format!(
                "{}/fhir/R4/{}",
                self.base,
                resource["resourceType"].as_str().unwrap()
            ))
            .bearer_auth(&self.token)
            .header("content-type", "application/fhir+json")
            .body(resource.to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::CREATED);
        response.json::<Value>().await.unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// The ids among `ids` that `rtype?critical=value` finds.
    async fn found(&self, rtype: &str, value: &str, ids: &[&str]) -> Vec<String> {
        let bundle: Value = self
            .client
            .get(format!(
                "{}/fhir/R4/{rtype}?critical={value}&_id={}&_sort=_id",
                self.base,
                ids.join(",")
            ))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let mut found: Vec<String> = bundle["entry"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|e| e["resource"]["id"].as_str().unwrap().to_owned())
            .collect();
        found.sort();
        found
    }
}

/// The critical ones are found by `critical=true`, the normal one by `critical=false`.
async fn check(api: &Api, high: &str, in_component: &str, normal: &str, report: &str) {
    let ids = [high, in_component, normal];
    let mut criticals = vec![high.to_owned(), in_component.to_owned()];
    criticals.sort();
    assert_eq!(api.found("Observation", "true", &ids).await, criticals);
    assert_eq!(
        api.found("Observation", "false", &ids).await,
        vec![normal.to_owned()]
    );
    assert_eq!(
        api.found("DiagnosticReport", "true", &[report]).await,
        vec![report.to_owned()]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn criticals_are_searchable_and_an_older_database_is_reindexed_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let url = crate::helpers::database_url(dir.path()).await;
    let (base, stop, thread) = run_separately(url.clone(), dir.path().join("site"));
    let api = Api::sign_in(base).await;
    let high = api.create(&observation("pat-001", "HH", false)).await;
    let in_component = api.create(&observation("pat-001", "LL", true)).await;
    let normal = api.create(&observation("pat-001", "N", false)).await;
    let report = api
        .create(&json!({
            "resourceType": "DiagnosticReport", "status": "final",
            "code": {"text": "Panel"}, "subject": {"reference": "Patient/pat-001"},
            "conclusionCode": [{"coding": [{"code": "critical"}]}],
        }))
        .await;
    check(&api, &high, &in_component, &normal, &report).await;
    stop.send(()).unwrap();
    tokio::task::spawn_blocking(move || thread.join().unwrap())
        .await
        .unwrap();

    // As a database written before the parameter existed: no such index rows, an older version.
    let forget = [
        "DELETE FROM search_index WHERE param = 'critical'",
        "UPDATE settings SET value = '1' WHERE key = 'index.version'",
    ];
    if crate::POSTGRES {
        let pool = sqlx::PgPool::connect(&url).await.unwrap();
        for sql in forget {
            sqlx::query(sql).execute(&pool).await.unwrap();
        }
        pool.close().await;
    } else {
        let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
        for sql in forget {
            sqlx::query(sql).execute(&pool).await.unwrap();
        }
        pool.close().await;
    }
    let (base, stop, thread) = run_separately(url, dir.path().join("site"));
    let api = Api::sign_in(base).await;
    check(&api, &high, &in_component, &normal, &report).await;
    stop.send(()).unwrap();
    tokio::task::spawn_blocking(move || thread.join().unwrap())
        .await
        .unwrap();
}
