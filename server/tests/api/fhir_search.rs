use futures_util::StreamExt;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{entries, order, spawn_app, TestApp};

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

/// `POST /{type}/_search` with `form` as the body: (status, answer).
async fn search_post(app: &TestApp, token: &str, rtype: &str, form: String) -> (StatusCode, Value) {
    let response = app
        .client
        .post(app.url(&format!("/fhir/R4/{rtype}/_search")))
        .bearer_auth(token)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form)
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// The diagnostics of an OperationOutcome answer.
fn diagnostics(outcome: &Value) -> &str {
    assert_eq!(outcome["resourceType"], "OperationOutcome", "{outcome}");
    outcome["issue"][0]["diagnostics"]
        .as_str()
        .unwrap_or_default()
}

/// `n` comma-separated values `prefix0,prefix1,…`.
fn values(prefix: &str, n: usize) -> String {
    (0..n)
        .map(|i| format!("{prefix}{i}"))
        .collect::<Vec<_>>()
        .join(",")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_bodies_includes_and_values_are_bounded_with_400s_that_name_the_limit() {
    let app = spawn_app().await;
    let token = app.token("admin").await;

    // The form body: 64 KiB at most.
    let padding =
        |len: usize| format!("_count=1&note={}", "x".repeat(len - "_count=1&note=".len()));
    let (status, bundle) = search_post(&app, &token, "Patient", padding(64 * 1024)).await;
    assert_eq!(status, StatusCode::OK, "{bundle}");
    let (status, outcome) = search_post(&app, &token, "Patient", padding(64 * 1024 + 1)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(diagnostics(&outcome).contains("65536"), "{outcome}");

    // Repeats of one _include count once; an eleventh distinct one is refused.
    let repeated = "_include=Observation:based-on&".repeat(1500);
    let (status, bundle) = search_post(&app, &token, "Observation", repeated).await;
    assert_eq!(status, StatusCode::OK, "{bundle}");
    let distinct: String = (0..11)
        .map(|i| format!("_include=Observation:based-on:T{i}&"))
        .collect();
    let (status, outcome) = search_post(&app, &token, "Observation", distinct).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(diagnostics(&outcome).contains("at most 10"), "{outcome}");

    // 100 ORed values in one parameter and 500 across the query are answered; more are 400s.
    let (status, bundle) = app
        .get_json(
            &token,
            &format!("/fhir/R4/Observation?code={}", values("c", 100)),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{bundle}");
    let (status, outcome) = app
        .get_json(
            &token,
            &format!("/fhir/R4/Observation?code={}", values("c", 600)),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(diagnostics(&outcome).contains("at most 100"), "{outcome}");
    let ids = values("id-", 100);
    let five = format!("_id={ids}&").repeat(5);
    for user in ["admin", "nurse.patel"] {
        let token = app.token(user).await;
        let (status, bundle) = search_post(&app, &token, "Observation", five.clone()).await;
        assert_eq!(status, StatusCode::OK, "{user}: {bundle}");
    }
    let (status, outcome) =
        search_post(&app, &token, "Observation", format!("{five}status=final")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(diagnostics(&outcome).contains("500"), "{outcome}");
    // As many ids as fit in the body limit.
    let (status, outcome) = search_post(
        &app,
        &token,
        "Observation",
        format!("_id={}", values("", 10_000)),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(diagnostics(&outcome).contains("at most 100"), "{outcome}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn included_rows_per_page_are_bounded_with_a_400_that_names_the_limit() {
    let app = spawn_app().await;
    let token = app.token("dr.chen").await;
    // 1001 orders, all the basis of one Observation.
    let orders: Vec<Value> = futures_util::stream::iter(0..1001)
        .map(|_| async {
            let response = app
                .post(&token, "/fhir/R4/ServiceRequest", &order("pat-001"))
                .await;
            assert_eq!(response.status(), StatusCode::CREATED);
            let created: Value = response.json().await.unwrap();
            json!({"reference": format!("ServiceRequest/{}", created["id"].as_str().unwrap())})
        })
        .buffer_unordered(16)
        .collect()
        .await;
    let observation = |based_on: &[Value]| {
        json!({
            "resourceType": "Observation", "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "718-7"}]},
            "subject": {"reference": "Patient/pat-001"},
            "effectiveDateTime": "2026-11-25T08:00:00Z",
            "basedOn": based_on,
        })
    };
    let mut ids = Vec::new();
    for based_on in [&orders[..1000], &orders[..]] {
        let response = app
            .post(&token, "/fhir/R4/Observation", &observation(based_on))
            .await;
        assert_eq!(response.status(), StatusCode::CREATED);
        ids.push(
            response.json::<Value>().await.unwrap()["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }

    let (status, bundle) = app
        .get_json(
            &token,
            &format!(
                "/fhir/R4/Observation?_id={}&_include=Observation:based-on",
                ids[0]
            ),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{bundle}");
    assert_eq!(entries(&bundle, "include").len(), 1000);
    let (status, outcome) = app
        .get_json(
            &token,
            &format!(
                "/fhir/R4/Observation?_id={}&_include=Observation:based-on",
                ids[1]
            ),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(diagnostics(&outcome).contains("1000"), "{outcome}");
}

/// Issue 16, defect 6: `self` (and `next`) show only the parameters the search applied; what it
/// ignored is reported in the OperationOutcome entry instead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_self_link_shows_only_the_parameters_used() {
    let app = spawn_app().await;
    let token = app.token("admin").await;
    let (status, bundle) = app
        .get_json(
            &token,
            "/fhir/R4/Patient?foo=bar&_elements=id&gender=female&_pretty=true&_count=1",
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let link = |relation: &str| {
        bundle["link"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["relation"] == relation)
            .map(|l| l["url"].as_str().unwrap().to_owned())
    };
    let self_link = link("self").unwrap();
    assert!(
        self_link.ends_with("/fhir/R4/Patient?gender=female&_count=1"),
        "{self_link}"
    );
    let next = link("next").expect("more than one female patient");
    assert!(
        next.ends_with("/fhir/R4/Patient?gender=female&_count=1&_offset=1"),
        "{next}"
    );
    let outcome = entries(&bundle, "outcome");
    let reported = outcome[0]["issue"].to_string();
    assert!(
        reported.contains("foo") && reported.contains("_elements"),
        "{reported}"
    );
}

/// Creates a Patient with `family` as written; returns its id.
async fn patient_named(app: &TestApp, token: &str, family: &str, given: &str) -> String {
    let response = app
        .post(
            token,
            "/fhir/R4/Patient",
            &json!({"resourceType": "Patient", "name": [{"family": family, "given": [given]}]}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let body: Value = response.json().await.unwrap();
    body["id"].as_str().unwrap().to_owned()
}

/// The ids of every match of `query`, following `next` links, and the first page's total.
async fn all_matches(app: &TestApp, token: &str, query: &str) -> (i64, Vec<String>) {
    let (status, mut bundle) = app.get_json(token, query).await;
    assert_eq!(status, StatusCode::OK, "{query}");
    let total = bundle["total"].as_i64().unwrap();
    let mut ids = Vec::new();
    loop {
        ids.extend(
            entries(&bundle, "match")
                .iter()
                .map(|r| r["id"].as_str().unwrap().to_owned()),
        );
        let next = bundle["link"].as_array().and_then(|links| {
            links
                .iter()
                .find(|l| l["relation"] == "next")
                .map(|l| l["url"].as_str().unwrap().to_owned())
        });
        let Some(next) = next else { break };
        let path = next[next.find("/fhir/R4").unwrap()..].to_owned();
        bundle = app.get_json(token, &path).await.1;
    }
    ids.sort();
    (total, ids)
}

/// Issue 16, defect 7: `:exact` is case-sensitive, filtered in SQL, so totals and pages are right.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exact_string_search_matches_case_in_sql_with_right_totals_and_pages() {
    let app = spawn_app().await;
    let token = app.token("admin").await;
    let mut upper = Vec::new();
    for given in ["Ada", "Bea", "Cleo"] {
        upper.push(patient_named(&app, &token, "Quillfeather", given).await);
    }
    upper.sort();
    let mut lower = Vec::new();
    for given in ["dora", "eve"] {
        lower.push(patient_named(&app, &token, "quillfeather", given).await);
    }
    lower.sort();

    let (total, ids) = all_matches(
        &app,
        &token,
        "/fhir/R4/Patient?family:exact=Quillfeather&_count=2",
    )
    .await;
    assert_eq!((total, &ids), (3, &upper));
    let (total, ids) = all_matches(
        &app,
        &token,
        "/fhir/R4/Patient?family:exact=quillfeather&_count=1",
    )
    .await;
    assert_eq!((total, &ids), (2, &lower));
    let (total, _) = all_matches(&app, &token, "/fhir/R4/Patient?family:exact=QUILLFEATHER").await;
    assert_eq!(total, 0);
    let (total, _) = all_matches(&app, &token, "/fhir/R4/Patient?family:exact=Quill").await;
    assert_eq!(total, 0, ":exact is not a prefix match");
    // The default search still ignores case and matches prefixes.
    let (total, _) = all_matches(&app, &token, "/fhir/R4/Patient?family=QUILL&_count=1").await;
    assert_eq!(total, 5);
    // given and name (every part of a HumanName) likewise.
    let (total, _) = all_matches(&app, &token, "/fhir/R4/Patient?given:exact=Ada").await;
    assert_eq!(total, 1);
    let (total, _) = all_matches(&app, &token, "/fhir/R4/Patient?given:exact=ada").await;
    assert_eq!(total, 0);
    let (total, _) = all_matches(&app, &token, "/fhir/R4/Patient?name:exact=eve").await;
    assert_eq!(total, 1);
}

/// Issue 16, defect 7: a database written before the exact-case rows existed gets them from the
/// migration (its rows removed and the migration forgotten, then the server started again).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_migration_gives_existing_databases_their_exact_case_rows() {
    let app = spawn_app().await;
    let token = app.token("admin").await;
    patient_named(&app, &token, "Quillfeather", "Ada").await;
    let url = app.state.config.database_url.clone();
    let forget = [
        "DELETE FROM search_index WHERE system = 'exact'",
        "DELETE FROM _sqlx_migrations WHERE description = 'exact string index'",
    ];
    if crate::POSTGRES {
        let pool = sqlx::PgPool::connect(&url).await.unwrap();
        for statement in forget {
            sqlx::query(statement).execute(&pool).await.unwrap();
        }
    } else {
        let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
        for statement in forget {
            sqlx::query(statement).execute(&pool).await.unwrap();
        }
    }
    let exact = "/fhir/R4/Patient?family:exact=Quillfeather&_summary=count";
    let location = "/fhir/R4/Location?name:exact=4 West Medical&_summary=count";
    assert_eq!(app.get_json(&token, exact).await.1["total"], 0);
    assert_eq!(app.get_json(&token, location).await.1["total"], 0);
    // `app` stays up: its temporary directory holds the SQLite file.

    let again = crate::helpers::spawn_with(|config| {
        config.database_url = url;
        config.seed_demo = false;
    })
    .await;
    let token = again.token("admin").await;
    assert_eq!(again.get_json(&token, exact).await.1["total"], 1);
    assert_eq!(again.get_json(&token, location).await.1["total"], 1);
    let (_, practitioners) = again
        .get_json(
            &token,
            "/fhir/R4/Practitioner?name:exact=Chen&_summary=count",
        )
        .await;
    assert_eq!(practitioners["total"], 1);
}
