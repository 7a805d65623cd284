//! FHIR Subscriptions over WebSocket: validation, binding, real event numbers, catch-up with
//! `$events` and re-binding, durability across a restart, access rights and bad input.

use std::time::Duration;

use futures_util::SinkExt;
use reqwest::StatusCode;
use rounds::{auth::Purpose, Application, Config};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

use crate::{
    helpers::{
        close_code, next_json_where, order, spawn_app, spawn_with, visible_patients, TestApp,
        PASSWORD, SECRET,
    },
    realtime::{Ended, Ws},
};

pub(crate) struct SubSocket {
    pub(crate) stream: crate::helpers::Socket,
}

impl SubSocket {
    pub(crate) async fn open(url: &str) -> Self {
        let (stream, _) = tokio_tungstenite::connect_async(url)
            .await
            .expect("handshake");
        Self { stream }
    }

    pub(crate) async fn send(&mut self, value: Value) {
        self.stream
            .send(Message::text(value.to_string()))
            .await
            .unwrap();
    }

    /// The next JSON message that is not a heartbeat Bundle.
    pub(crate) async fn next(&mut self) -> Value {
        next_json_where(&mut self.stream, |v| {
            v["entry"][0]["resource"]["type"] == "heartbeat"
        })
        .await
    }

    pub(crate) async fn bind(&mut self, token: &str, since: Option<i64>) -> Value {
        let mut payload = json!({"token": token});
        if let Some(since) = since {
            payload["eventsSinceNumber"] = json!(since);
        }
        self.send(json!({"type": "bind-with-token", "payload": payload}))
            .await;
        self.next().await
    }
}

pub(crate) fn status(bundle: &Value) -> &Value {
    &bundle["entry"][0]["resource"]
}

/// (event number, focus reference) of a notification Bundle.
pub(crate) fn notified(bundle: &Value) -> (String, String) {
    let status = status(bundle);
    assert_eq!(bundle["resourceType"], "Bundle");
    assert_eq!(bundle["type"], "history");
    assert_eq!(status["type"], "event-notification", "{bundle}");
    let event = &status["notificationEvent"][0];
    assert_eq!(
        status["eventsSinceSubscriptionStart"], event["eventNumber"],
        "a live notification is the latest"
    );
    assert_eq!(
        bundle["entry"][1]["resource"]["id"]
            .as_str()
            .map(|id| format!(
                "{}/{id}",
                bundle["entry"][1]["resource"]["resourceType"]
                    .as_str()
                    .unwrap()
            )),
        event["focus"]["reference"].as_str().map(str::to_owned),
        "the focus resource rides along"
    );
    (
        event["eventNumber"].as_str().unwrap().to_owned(),
        event["focus"]["reference"].as_str().unwrap().to_owned(),
    )
}

pub(crate) async fn subscribe(app: &TestApp, token: &str, criteria: &str) -> String {
    let response = app
        .post(
            token,
            "/fhir/R4/Subscription",
            &json!({
                "resourceType": "Subscription", "status": "requested",
                "reason": "integration test", "criteria": criteria,
                "channel": {"type": "websocket"}
            }),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], "active");
    body["id"].as_str().unwrap().to_owned()
}

/// (token, websocket-url) from `$get-ws-binding-token`.
pub(crate) async fn binding(app: &TestApp, token: &str, id: &str) -> (String, String) {
    let (status, parameters) = app
        .get_json(
            token,
            &format!("/fhir/R4/Subscription/{id}/$get-ws-binding-token"),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{parameters}");
    assert_eq!(parameters["resourceType"], "Parameters");
    let value = |name: &str, kind: &str| {
        parameters["parameter"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .and_then(|p| p[kind].as_str())
            .unwrap_or_else(|| panic!("{name} missing in {parameters}"))
            .to_owned()
    };
    assert!(value("expiration", "valueDateTime").ends_with('Z'));
    (
        value("token", "valueString"),
        value("websocket-url", "valueUrl"),
    )
}

pub(crate) async fn place(app: &TestApp, token: &str, patient: &str) -> String {
    let response = app
        .post(token, "/fhir/R4/ServiceRequest", &order(patient))
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    format!(
        "ServiceRequest/{}",
        response.json::<Value>().await.unwrap()["id"]
            .as_str()
            .unwrap()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_subscriptions_are_refused_with_an_operation_outcome() {
    let app = spawn_app().await;
    let token = app.token("dr.chen").await;
    for (criteria, channel) in [
        ("Observation?nonsense=1", "websocket"),
        ("Banana?x=1", "websocket"),
        ("Observation?_count=5", "websocket"),
        ("Observation?date=yesterday", "websocket"),
        ("Observation?patient=p1", "rest-hook"),
    ] {
        let response = app
            .post(
                &token,
                "/fhir/R4/Subscription",
                &json!({"resourceType": "Subscription", "status": "requested", "reason": "x", "criteria": criteria, "channel": {"type": channel}}),
            )
            .await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{criteria}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["resourceType"], "OperationOutcome");
    }
    assert_eq!(app.state.store.count("Subscription").await.unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notifications_carry_real_increasing_event_numbers_and_catch_up_works() {
    let app = spawn_app().await;
    let chen = app.token("dr.chen").await;
    let patients = visible_patients(&app, &chen).await;
    let (mine, other) = (&patients[0], &patients[1]);
    let id = subscribe(&app, &chen, &format!("ServiceRequest?patient={mine}")).await;
    let (token, url) = binding(&app, &chen, &id).await;
    assert!(
        url.starts_with("ws://") && url.ends_with("/ws/subscriptions-r4"),
        "{url}"
    );

    let mut socket = SubSocket::open(&url).await;
    let handshake = socket.bind(&token, None).await;
    assert_eq!(status(&handshake)["type"], "handshake");
    assert_eq!(
        status(&handshake)["subscription"]["reference"],
        format!("Subscription/{id}")
    );
    assert_eq!(status(&handshake)["eventsSinceSubscriptionStart"], "0");

    let first = place(&app, &chen, mine).await;
    place(&app, &chen, other).await; // does not match
    let second = place(&app, &chen, mine).await;
    assert_eq!(notified(&socket.next().await), ("1".into(), first));
    assert_eq!(notified(&socket.next().await), ("2".into(), second));
    drop(socket);

    // Missed while disconnected: 50 matching events (and some that do not match).
    let mut missed = Vec::new();
    for i in 0..50 {
        missed.push(place(&app, &chen, mine).await);
        if i % 10 == 0 {
            place(&app, &chen, other).await;
        }
    }
    let (code, events) = app
        .get_json(
            &chen,
            &format!("/fhir/R4/Subscription/{id}/$events?eventsSinceNumber=3"),
        )
        .await;
    assert_eq!(code, StatusCode::OK, "{events}");
    assert_eq!(status(&events)["type"], "query-event");
    assert_eq!(status(&events)["eventsSinceSubscriptionStart"], "52");
    let listed: Vec<(String, String)> = status(&events)["notificationEvent"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["eventNumber"].as_str().unwrap().to_owned(),
                e["focus"]["reference"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let expected: Vec<(String, String)> = missed
        .iter()
        .enumerate()
        .map(|(i, focus)| ((i + 3).to_string(), focus.clone()))
        .collect();
    assert_eq!(listed, expected, "exactly the 50 missed, in order");
    assert_eq!(events["entry"].as_array().unwrap().len(), 51);
    let (_, until) = app
        .get_json(
            &chen,
            &format!("/fhir/R4/Subscription/{id}/$events?eventsSinceNumber=0&eventsUntilNumber=1"),
        )
        .await;
    assert_eq!(
        status(&until)["notificationEvent"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // Re-binding with eventsSinceNumber replays the gap first, then goes live: no gap, no repeat.
    let (token, url) = binding(&app, &chen, &id).await;
    let mut socket = SubSocket::open(&url).await;
    assert_eq!(
        status(&socket.bind(&token, Some(2)).await)["type"],
        "handshake"
    );
    let live = place(&app, &chen, mine).await;
    let mut got = Vec::new();
    for _ in 0..51 {
        got.push(notified(&socket.next().await));
    }
    missed.push(live);
    let expected: Vec<(String, String)> = missed
        .into_iter()
        .enumerate()
        .map(|(i, focus)| ((i + 3).to_string(), focus))
        .collect();
    assert_eq!(got, expected);

    // Ping works alongside.
    socket.send(json!({"type": "ping"})).await;
    assert_eq!(socket.next().await, json!({"type": "pong"}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notifications_respect_the_owners_access_and_interaction_filter() {
    let app = spawn_app().await;
    let admin = app.token("admin").await;
    let okafor = app.token("dr.okafor").await;
    let seen = visible_patients(&app, &okafor).await;
    let his = seen[0].clone();
    let not_his = visible_patients(&app, &admin)
        .await
        .into_iter()
        .find(|p| !seen.contains(p))
        .unwrap();
    // Created only (Medplum's interaction extension).
    let response = app
        .post(
            &okafor,
            "/fhir/R4/Subscription",
            &json!({
                "resourceType": "Subscription", "status": "active", "reason": "orders",
                "criteria": "ServiceRequest",
                "channel": {"type": "websocket"},
                "extension": [{"url": "https://medplum.com/fhir/StructureDefinition/subscription-supported-interaction", "valueCode": "create"}]
            }),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let id = response.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (token, url) = binding(&app, &okafor, &id).await;
    let mut socket = SubSocket::open(&url).await;
    socket.bind(&token, None).await;

    place(&app, &admin, &not_his).await; // he may not see it
    let first = place(&app, &admin, &his).await;
    // An update is not a create.
    let (_, current) = app.get_json(&admin, &format!("/fhir/R4/{first}")).await;
    let mut revised = current.clone();
    revised["priority"] = json!("urgent");
    assert_eq!(
        app.put(&admin, &format!("/fhir/R4/{first}"), &revised)
            .await
            .status(),
        StatusCode::OK
    );
    let second = place(&app, &admin, &his).await;
    assert_eq!(notified(&socket.next().await), ("1".into(), first));
    assert_eq!(notified(&socket.next().await), ("2".into(), second));

    // Nobody else sees his Subscription.
    let chen = app.token("dr.chen").await;
    assert_eq!(
        app.get(&chen, &format!("/fhir/R4/Subscription/{id}"))
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.get(
            &chen,
            &format!("/fhir/R4/Subscription/{id}/$get-ws-binding-token")
        )
        .await
        .status(),
        StatusCode::NOT_FOUND
    );
    let (_, search) = app.get_json(&chen, "/fhir/R4/Subscription").await;
    assert_eq!(search["total"], 0);
    let (_, search) = app.get_json(&okafor, "/fhir/R4/Subscription").await;
    assert_eq!(search["total"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_tokens_and_garbage_get_an_operation_outcome_and_no_binding() {
    let app = spawn_app().await;
    let chen = app.token("dr.chen").await;
    let patient = visible_patients(&app, &chen).await.remove(0);
    let id = subscribe(&app, &chen, &format!("ServiceRequest?patient={patient}")).await;
    let (token, url) = binding(&app, &chen, &id).await;
    let foreign = rounds::auth::AuthKeys::new(
        "some-other-server-secret-0123456789abcdef",
        false,
        Duration::from_secs(30),
    );
    let claims = app
        .state
        .auth
        .verify(&token, rounds::auth::Purpose::Bind)
        .unwrap();
    let user = app::auth::UserInfo {
        id: claims.sub.clone(),
        name: claims.name.clone(),
        role: claims.role,
    };
    let forged = foreign
        .issue_bind(&user, &claims.sid, &id, Duration::from_secs(60))
        .unwrap();
    let mut socket = SubSocket::open(&url).await;
    for message in [
        json!({"type": "bind-with-token", "payload": {"token": "garbage"}}),
        json!({"type": "bind-with-token", "payload": {"token": chen}}),
        json!({"type": "bind-with-token", "payload": {"token": forged}}),
        json!({"type": "bind-with-token", "payload": {}}),
        json!({"type": "bind-with-token", "payload": {"token": token, "eventsSinceNumber": "soon"}}),
        json!({"type": "dance"}),
    ] {
        socket.send(message).await;
        let answer = socket.next().await;
        assert_eq!(answer["resourceType"], "OperationOutcome", "{answer}");
    }
    socket
        .stream
        .send(Message::text("{not json"))
        .await
        .unwrap();
    assert_eq!(socket.next().await["resourceType"], "OperationOutcome");
    // Nothing was bound: the next event notifies nobody here, and the socket still works.
    place(&app, &chen, &patient).await;
    socket.send(json!({"type": "ping"})).await;
    assert_eq!(socket.next().await, json!({"type": "pong"}));
    // A correct bind still works on the same socket and numbers start after the earlier event.
    assert_eq!(
        status(&socket.bind(&token, None).await)["eventsSinceSubscriptionStart"],
        "1"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_may_hold_at_most_the_cap() {
    let app = crate::helpers::spawn_with(|config| config.max_subscriptions_per_user = 5).await;
    let nurse = app.token("nurse.patel").await;
    for i in 0..5 {
        subscribe(
            &app,
            &nurse,
            &format!("Observation?code=http://loinc.org|{i}"),
        )
        .await;
    }
    let response = app
        .post(
            &nurse,
            "/fhir/R4/Subscription",
            &json!({"resourceType": "Subscription", "status": "requested", "reason": "x", "criteria": "Observation", "channel": {"type": "websocket"}}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
}

/// `total` of a search answer that must succeed.
async fn total(app: &TestApp, token: &str, path: &str) -> i64 {
    let (status, bundle) = app.get_json(token, path).await;
    assert_eq!(status, StatusCode::OK, "{path}: {bundle}");
    bundle["total"].as_i64().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn searches_count_and_page_only_the_users_own_subscriptions() {
    let app = spawn_app().await;
    let (nurse, chen, admin) = (
        app.token("nurse.patel").await,
        app.token("dr.chen").await,
        app.token("admin").await,
    );
    let mut hers = vec![
        subscribe(&app, &nurse, "Observation?code=http://loinc.org|718-7").await,
        subscribe(&app, &nurse, "ServiceRequest?patient=pat-001").await,
    ];
    hers.sort();
    for i in 0..3 {
        subscribe(
            &app,
            &chen,
            &format!("Observation?code=http://loinc.org|{i}"),
        )
        .await;
    }

    let count = "/fhir/R4/Subscription?_summary=count";
    let prefixed = "/fhir/R4/Subscription?criteria=Observation&_summary=count";
    assert_eq!(total(&app, &nurse, count).await, 2);
    assert_eq!(total(&app, &nurse, prefixed).await, 1);
    assert_eq!(total(&app, &chen, count).await, 3);
    assert_eq!(total(&app, &chen, prefixed).await, 3);
    assert_eq!(total(&app, &admin, count).await, 5);

    // Page by page she meets exactly her own, and the paging knows when they end.
    let mut seen = Vec::new();
    let mut path = "/fhir/R4/Subscription?_count=1&_sort=_id".to_owned();
    loop {
        let (status, page) = app.get_json(&nurse, &path).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        assert_eq!(page["total"], 2);
        seen.extend(
            crate::helpers::entries(&page, "match")
                .iter()
                .map(|s| s["id"].as_str().unwrap().to_owned()),
        );
        let next = page["link"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["relation"] == "next")
            .map(|l| l["url"].as_str().unwrap().to_owned());
        match next {
            Some(url) => {
                path = url
                    .split_once("/fhir/R4")
                    .map(|(_, p)| format!("/fhir/R4{p}"))
                    .unwrap()
            }
            None => break,
        }
    }
    assert_eq!(seen, hers);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriptions_written_before_the_owner_index_are_found_by_their_owner() {
    let app = spawn_app().await;
    let nurse = app.token("nurse.patel").await;
    subscribe(&app, &nurse, "ServiceRequest?patient=pat-001").await;
    assert_eq!(
        total(&app, &nurse, "/fhir/R4/Subscription?_summary=count").await,
        1
    );

    // As a database from before the owner index: no such rows, and the migration not applied.
    let url = app.state.config.database_url.clone();
    let unapplied = [
        "DELETE FROM search_index WHERE param = '_owner'",
        "DELETE FROM _sqlx_migrations WHERE description = 'subscription owner index'",
    ];
    if crate::POSTGRES {
        let pool = sqlx::PgPool::connect(&url).await.unwrap();
        for statement in unapplied {
            sqlx::query(statement).execute(&pool).await.unwrap();
        }
    } else {
        let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
        for statement in unapplied {
            sqlx::query(statement).execute(&pool).await.unwrap();
        }
    }
    assert_eq!(
        total(&app, &nurse, "/fhir/R4/Subscription?_summary=count").await,
        0
    );

    // Opening the database again indexes them.
    rounds::store::Store::open(&url).await.unwrap();
    assert_eq!(
        total(&app, &nurse, "/fhir/R4/Subscription?_summary=count").await,
        1
    );
    assert_eq!(
        total(
            &app,
            &app.token("dr.chen").await,
            "/fhir/R4/Subscription?_summary=count"
        )
        .await,
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cap_holds_for_every_write_that_makes_a_subscription_active() {
    let app = crate::helpers::spawn_with(|config| config.max_subscriptions_per_user = 2).await;
    let nurse = app.token("nurse.patel").await;
    let body = |status: &str, id: Option<&str>| {
        let mut body = json!({
            "resourceType": "Subscription", "status": status, "reason": "cap",
            "criteria": "ServiceRequest?patient=pat-001", "channel": {"type": "websocket"}
        });
        if let Some(id) = id {
            body["id"] = json!(id);
        }
        body
    };
    let put = |id: &str, status: &str| {
        let (app, nurse, body) = (&app, &nurse, body(status, Some(id)));
        let path = format!("/fhir/R4/Subscription/{id}");
        async move { app.put(nurse, &path, &body).await.status() }
    };
    let first = subscribe(&app, &nurse, "ServiceRequest?patient=pat-001").await;
    let second = subscribe(&app, &nurse, "ServiceRequest?patient=pat-002").await;

    // At the cap: create-on-update is refused, an update that stays active is not.
    assert_eq!(
        put("client-chosen-1", "requested").await,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(put("client-chosen-2", "off").await, StatusCode::CREATED);
    assert_eq!(put(&second, "active").await, StatusCode::OK);

    // Off frees a place; the next POST takes it; off → requested or active is then refused.
    assert_eq!(put(&first, "off").await, StatusCode::OK);
    subscribe(&app, &nurse, "ServiceRequest?patient=pat-003").await;
    assert_eq!(
        put(&first, "requested").await,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(
        put("client-chosen-2", "active").await,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    let (_, stored) = app
        .get_json(&nurse, &format!("/fhir/R4/Subscription/{first}"))
        .await;
    assert_eq!(stored["status"], "off", "a refused write changes nothing");
    assert_eq!(
        total(
            &app,
            &nurse,
            "/fhir/R4/Subscription?status=active&_summary=count"
        )
        .await,
        2
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_binds_another_users_subscription() {
    let app = spawn_app().await;
    let chen = app.token("dr.chen").await;
    let admin = app.token("admin").await;
    let patients = visible_patients(&app, &chen).await;
    let id = subscribe(
        &app,
        &chen,
        &format!("ServiceRequest?patient={}", patients[0]),
    )
    .await;
    let (token, url) = binding(&app, &admin, &id).await;
    let mut socket = SubSocket::open(&url).await;
    let handshake = socket.bind(&token, None).await;
    assert_eq!(status(&handshake)["type"], "handshake", "{handshake}");
    assert_eq!(
        status(&handshake)["subscription"]["reference"],
        format!("Subscription/{id}")
    );
    let placed = place(&app, &chen, &patients[0]).await;
    assert_eq!(notified(&socket.next().await), ("1".into(), placed));
}

/// Runs an app on `database_url` in its own runtime (so stopping it stops its background
/// tasks too); returns its base URL and a stopper.
pub(crate) fn run_separately(
    database_url: String,
    site: std::path::PathBuf,
) -> (
    String,
    std::sync::mpsc::Sender<()>,
    std::thread::JoinHandle<()>,
) {
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let (stop_tx, stop_rx) = std::sync::mpsc::channel::<()>();
    let thread = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let app = Application::build(Config {
                listen: "127.0.0.1:0".parse().unwrap(),
                database_url,
                jwt_secret: SECRET.into(),
                jwt_secret_is_default: false,
                seed_demo: true,
                site_root: site,
                ..Config::default()
            })
            .await
            .unwrap();
            ready_tx
                .send(format!("http://{}", app.local_addr()))
                .unwrap();
            let (done_tx, done_rx) = tokio::sync::oneshot::channel();
            std::thread::spawn(move || {
                let _ = stop_rx.recv();
                let _ = done_tx.send(());
            });
            app.run_until(async move {
                let _ = done_rx.await;
            })
            .await
            .unwrap();
        });
    });
    (ready_rx.recv().unwrap(), stop_tx, thread)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriptions_and_their_numbering_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let url = crate::helpers::database_url(dir.path()).await;
    let client = reqwest::Client::new();
    let login = |base: String| {
        let client = client.clone();
        async move {
            let body: Value = client
                .post(format!("{base}/auth/login"))
                .json(&json!({"username": "admin", "password": PASSWORD}))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            body["access_token"].as_str().unwrap().to_owned()
        }
    };
    let post = |base: String, token: String, path: &'static str, body: Value| {
        let client = client.clone();
        async move {
            let response = client
                .post(format!("{base}{path}"))
                .bearer_auth(token)
                .header("content-type", "application/fhir+json")
                .body(body.to_string())
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), StatusCode::CREATED);
            response.json::<Value>().await.unwrap()
        }
    };

    let (base, stop, thread) = run_separately(url.clone(), dir.path().join("site"));
    let token = login(base.clone()).await;
    let subscription = post(
        base.clone(),
        token.clone(),
        "/fhir/R4/Subscription",
        json!({"resourceType": "Subscription", "status": "requested", "reason": "x", "criteria": "ServiceRequest?patient=pat-001", "channel": {"type": "websocket"}}),
    )
    .await;
    let id = subscription["id"].as_str().unwrap().to_owned();
    for _ in 0..2 {
        post(
            base.clone(),
            token.clone(),
            "/fhir/R4/ServiceRequest",
            order("pat-001"),
        )
        .await;
    }
    stop.send(()).unwrap();
    tokio::task::spawn_blocking(move || thread.join().unwrap())
        .await
        .unwrap();

    let (base, stop, thread) = run_separately(url, dir.path().join("site"));
    let token = login(base.clone()).await;
    let parameters: Value = client
        .get(format!(
            "{base}/fhir/R4/Subscription/{id}/$get-ws-binding-token"
        ))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let find = |name: &str, kind: &str| {
        parameters["parameter"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .unwrap()[kind]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let mut socket = SubSocket::open(&find("websocket-url", "valueUrl")).await;
    let handshake = socket.bind(&find("token", "valueString"), None).await;
    assert_eq!(status(&handshake)["eventsSinceSubscriptionStart"], "2");
    let placed = post(
        base.clone(),
        token.clone(),
        "/fhir/R4/ServiceRequest",
        order("pat-001"),
    )
    .await;
    assert_eq!(
        notified(&socket.next().await),
        (
            "3".into(),
            format!("ServiceRequest/{}", placed["id"].as_str().unwrap())
        )
    );
    stop.send(()).unwrap();
    tokio::task::spawn_blocking(move || thread.join().unwrap())
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_oauth_token_endpoint_and_profile_serve_api_clients() {
    let app = spawn_app().await;
    let response = app
        .client
        .post(app.url("/oauth2/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "dr.chen"),
            ("client_secret", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let tokens: Value = response.json().await.unwrap();
    let access = tokens["access_token"].as_str().unwrap();
    let claims = app
        .state
        .auth
        .verify(access, rounds::auth::Purpose::Access)
        .unwrap();
    assert_eq!(claims.client_id.as_deref(), Some("dr.chen"));
    assert_eq!(claims.login_id.as_deref(), Some(claims.sid.as_str()));
    assert_eq!(tokens["profile"]["reference"], "Practitioner/pr-chen");
    let (status, me) = app.get_json(access, "/auth/me").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me["profile"]["resourceType"], "Practitioner");
    assert_eq!(me["profile"]["id"], "pr-chen");

    for form in [
        vec![
            ("grant_type", "client_credentials"),
            ("client_id", "dr.chen"),
            ("client_secret", "wrong"),
        ],
        vec![("grant_type", "authorization_code"), ("code", "x")],
        vec![("grant_type", "password"), ("username", "dr.chen")],
    ] {
        let response = app
            .client
            .post(app.url("/oauth2/token"))
            .form(&form)
            .send()
            .await
            .unwrap();
        assert!(response.status().is_client_error(), "{form:?}");
        let body: Value = response.json().await.unwrap();
        assert!(body["error"].is_string());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeats_arrive_at_the_subscriptions_period() {
    let app = spawn_app().await;
    let chen = app.token("dr.chen").await;
    let response = app
        .post(
            &chen,
            "/fhir/R4/Subscription",
            &json!({
                "resourceType": "Subscription", "status": "requested", "reason": "beats",
                "criteria": "Flag",
                "channel": {"type": "websocket", "extension": [{
                    "url": "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-heartbeat-period",
                    "valueUnsignedInt": 1
                }]}
            }),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let id = response.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (token, url) = binding(&app, &chen, &id).await;
    let mut socket = SubSocket::open(&url).await;
    socket.bind(&token, None).await;
    let mut arrivals = Vec::new();
    while arrivals.len() < 3 {
        let beat = next_json_where(&mut socket.stream, |_| false).await;
        assert_eq!(status(&beat)["type"], "heartbeat", "{beat}");
        assert_eq!(
            status(&beat)["subscription"]["reference"],
            format!("Subscription/{id}")
        );
        arrivals.push(tokio::time::Instant::now());
    }
    for pair in arrivals.windows(2) {
        let gap = pair[1] - pair[0];
        assert!(
            gap >= Duration::from_millis(500) && gap <= Duration::from_millis(4000),
            "heartbeats {gap:?} apart for a 1 s period"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_out_closes_the_sessions_subscription_sockets_with_4401() {
    let app = spawn_app().await;
    let chen = app.token("dr.chen").await;
    let mine = visible_patients(&app, &chen).await.remove(0);
    let id = subscribe(&app, &chen, &format!("ServiceRequest?patient={mine}")).await;
    let (token, url) = binding(&app, &chen, &id).await;
    let mut socket = SubSocket::open(&url).await;
    assert_eq!(
        status(&socket.bind(&token, None).await)["type"],
        "handshake"
    );
    // The same user signed in a second time, bound to the same subscription elsewhere.
    let again = app.token("dr.chen").await;
    let (other_token, _) = binding(&app, &again, &id).await;
    let mut other = SubSocket::open(&url).await;
    assert_eq!(
        status(&other.bind(&other_token, None).await)["type"],
        "handshake"
    );
    let first = place(&app, &chen, &mine).await;
    assert_eq!(notified(&socket.next().await), ("1".into(), first.clone()));
    assert_eq!(notified(&other.next().await), ("1".into(), first));

    let out = app
        .client
        .post(app.url("/auth/logout"))
        .bearer_auth(&chen)
        .send()
        .await
        .unwrap();
    assert!(out.status().is_success());
    let told = socket.next().await;
    assert_eq!(told["resourceType"], "OperationOutcome", "{told}");
    assert_eq!(told["issue"][0]["code"], "security", "{told}");
    assert_eq!(close_code(&mut socket.stream).await, Some(4401));

    // Only that session ended: the other one's socket gets what follows.
    let admin = app.token("admin").await;
    let second = place(&app, &admin, &mine).await;
    assert_eq!(notified(&other.next().await), ("2".into(), second));
    // And the ended session's binding token binds nothing any more.
    let mut late = SubSocket::open(&url).await;
    let refused = late.bind(&token, None).await;
    assert_eq!(refused["resourceType"], "OperationOutcome", "{refused}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_ended_unheard_closes_all_its_sockets_within_the_recheck_period() {
    let recheck = Duration::from_millis(500);
    let app = spawn_with(|config| config.session_recheck = recheck).await;
    let chen = app.token("dr.chen").await;
    let sid = app.state.auth.verify(&chen, Purpose::Access).unwrap().sid;
    let mine = visible_patients(&app, &chen).await.remove(0);
    let id = subscribe(&app, &chen, &format!("ServiceRequest?patient={mine}")).await;
    let (token, url) = binding(&app, &chen, &id).await;
    let mut bound = SubSocket::open(&url).await;
    assert_eq!(status(&bound.bind(&token, None).await)["type"], "handshake");
    let (mut live, _) = Ws::connect(&app, &chen).await;

    // Revoked in the database only, as by a node whose notice never arrived here.
    let now = rounds::fhir::date::format_instant(chrono::Utc::now());
    app.state
        .store
        .revoke_session(&sid, &now, "revoked behind this node's back")
        .await
        .unwrap();
    let revoked = std::time::Instant::now();
    assert_eq!(live.ended().await, Ended::Closed(4401));
    let told = bound.next().await;
    assert_eq!(told["resourceType"], "OperationOutcome", "{told}");
    assert_eq!(close_code(&mut bound.stream).await, Some(4401));
    let took = revoked.elapsed();
    assert!(
        took < recheck + Duration::from_secs(2),
        "closed {took:?} after the revocation"
    );
}
