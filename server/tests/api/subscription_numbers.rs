//! FHIR Subscription numbering and operations to the letter of the Backport IG: numbers never
//! repeat (off and on again), one Subscription that cannot be committed never stalls the others,
//! `$events` bounds are inclusive, `$status` exists and every operation answers POST, and a bind
//! streams a backlog larger than any queue. On SQLite and on PostgreSQL.

use futures_util::StreamExt;
use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

use crate::{
    helpers::{close_code, next_json_where, spawn_app, visible_patients, TestApp, WAIT},
    subscriptions::{binding, notified, place, status, subscribe, SubSocket},
};

/// Runs one statement on the test app's database from outside the server, as an operator (or a
/// bug) would.
async fn execute(app: &TestApp, sql: &str) {
    let url = &app.state.config.database_url;
    if crate::POSTGRES {
        let pool = sqlx::PgPool::connect(url).await.unwrap();
        sqlx::query(sql).execute(&pool).await.unwrap();
        pool.close().await;
    } else {
        let pool = sqlx::SqlitePool::connect(url).await.unwrap();
        sqlx::query(sql).execute(&pool).await.unwrap();
        pool.close().await;
    }
}

async fn read_subscription(app: &TestApp, token: &str, id: &str) -> Value {
    let (code, body) = app
        .get_json(token, &format!("/fhir/R4/Subscription/{id}"))
        .await;
    assert_eq!(code, StatusCode::OK, "{body}");
    body
}

/// PUTs Subscription `id` with `status` (the rest as read).
async fn set_status(app: &TestApp, token: &str, id: &str, to: &str) -> Value {
    let mut body = read_subscription(app, token, id).await;
    body["status"] = json!(to);
    if let Some(object) = body.as_object_mut() {
        object.remove("error");
    }
    let response = app
        .put(token, &format!("/fhir/R4/Subscription/{id}"), &body)
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

/// The event numbers `$events` lists for `query` (e.g. `eventsSinceNumber=2`).
async fn listed(app: &TestApp, token: &str, id: &str, query: &str) -> Vec<i64> {
    let (code, bundle) = app
        .get_json(
            token,
            &format!("/fhir/R4/Subscription/{id}/$events?{query}"),
        )
        .await;
    assert_eq!(code, StatusCode::OK, "{bundle}");
    assert_eq!(status(&bundle)["type"], "query-event");
    status(&bundle)["notificationEvent"]
        .as_array()
        .map(|events| {
            events
                .iter()
                .map(|e| e["eventNumber"].as_str().unwrap().parse().unwrap())
                .collect()
        })
        .unwrap_or_default()
}

async fn handshake_count(app: &TestApp, token: &str, id: &str) -> (SubSocket, String) {
    let (bind, url) = binding(app, token, id).await;
    let mut socket = SubSocket::open(&url).await;
    let handshake = socket.bind(&bind, None).await;
    assert_eq!(status(&handshake)["type"], "handshake");
    let count = status(&handshake)["eventsSinceSubscriptionStart"]
        .as_str()
        .unwrap()
        .to_owned();
    (socket, count)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn numbers_carry_on_after_a_subscription_is_set_off_and_on_again() {
    let app = spawn_app().await;
    let chen = app.token("dr.chen").await;
    let patient = visible_patients(&app, &chen).await.remove(0);
    let criteria = format!("ServiceRequest?patient={patient}");
    let toggled = subscribe(&app, &chen, &criteria).await;
    let steady = subscribe(&app, &chen, &criteria).await;
    for _ in 0..3 {
        place(&app, &chen, &patient).await;
    }
    set_status(&app, &chen, &toggled, "off").await;
    place(&app, &chen, &patient).await; // matches only the steady one
    assert_eq!(
        set_status(&app, &chen, &toggled, "requested").await["status"],
        "active"
    );
    let (mut socket, count) = handshake_count(&app, &chen, &toggled).await;
    assert_eq!(count, "3", "the count carries on; it does not restart at 0");
    let (mut other, count) = handshake_count(&app, &chen, &steady).await;
    assert_eq!(count, "4");
    let placed = place(&app, &chen, &patient).await;
    assert_eq!(notified(&socket.next().await), ("4".into(), placed.clone()));
    assert_eq!(notified(&other.next().await), ("5".into(), placed));
    assert_eq!(listed(&app, &chen, &toggled, "").await, vec![1, 2, 3, 4]);
    assert_eq!(listed(&app, &chen, &steady, "").await, vec![1, 2, 3, 4, 5]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscription_that_cannot_be_committed_is_set_to_error_and_stalls_no_other() {
    let app = spawn_app().await;
    let chen = app.token("dr.chen").await;
    let admin = app.token("admin").await;
    let patient = visible_patients(&app, &chen).await.remove(0);
    let criteria = format!("ServiceRequest?patient={patient}");
    let broken = subscribe(&app, &chen, &criteria).await;
    let healthy = subscribe(&app, &chen, &criteria).await;
    place(&app, &chen, &patient).await;
    let (mut broken_socket, _) = handshake_count(&app, &chen, &broken).await;
    let (mut healthy_socket, _) = handshake_count(&app, &chen, &healthy).await;
    // Number 2 of `broken` is already taken in the store (say, by a bug of an earlier version).
    execute(
        &app,
        &format!(
            "INSERT INTO subscription_events (subscription_id, event_number, seq) VALUES ('{broken}', 2, 1)"
        ),
    )
    .await;

    let placed = place(&app, &chen, &patient).await;
    assert_eq!(
        notified(&healthy_socket.next().await),
        ("2".into(), placed.clone()),
        "the other subscription is notified"
    );
    // The broken one is told why, with its status, and its binding ends.
    // (As a heartbeat: the status as it stands, here the last one.)
    let last = next_json_where(&mut broken_socket.stream, |_| false).await;
    assert_eq!(status(&last)["type"], "heartbeat");
    assert_eq!(status(&last)["status"], "error", "{last}");
    assert!(
        status(&last)["error"][0]["text"]
            .as_str()
            .unwrap()
            .contains("number 2"),
        "{last}"
    );
    assert_eq!(
        close_code(&mut broken_socket.stream).await,
        None,
        "nothing else was bound on it: closed"
    );
    let stored = read_subscription(&app, &chen, &broken).await;
    assert_eq!(stored["status"], "error");
    assert!(stored["error"].as_str().unwrap().contains("requested"));
    let (code, statuses) = app
        .get_json(&chen, &format!("/fhir/R4/Subscription/{broken}/$status"))
        .await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(statuses["entry"][0]["resource"]["status"], "error");
    let metrics = app.get(&admin, "/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains("rounds_subscription_errors_total 1"),
        "{metrics}"
    );

    // The matcher goes on for everyone, and the broken one resumes after the taken number.
    let next = place(&app, &chen, &patient).await;
    assert_eq!(notified(&healthy_socket.next().await), ("3".into(), next));
    set_status(&app, &chen, &broken, "requested").await;
    let (mut resumed, count) = handshake_count(&app, &chen, &broken).await;
    assert_eq!(count, "2");
    let after = place(&app, &chen, &patient).await;
    assert_eq!(notified(&resumed.next().await), ("3".into(), after.clone()));
    assert_eq!(notified(&healthy_socket.next().await), ("4".into(), after));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_bounds_are_inclusive_and_every_operation_answers_get_and_post() {
    let app = spawn_app().await;
    let chen = app.token("dr.chen").await;
    let nurse = app.token("dr.okafor").await;
    let patient = visible_patients(&app, &chen).await.remove(0);
    let id = subscribe(&app, &chen, &format!("ServiceRequest?patient={patient}")).await;
    for _ in 0..5 {
        place(&app, &chen, &patient).await;
    }
    assert_eq!(
        listed(&app, &chen, &id, "eventsSinceNumber=2&eventsUntilNumber=4").await,
        vec![2, 3, 4]
    );
    assert_eq!(
        listed(&app, &chen, &id, "eventsSinceNumber=5").await,
        vec![5]
    );
    assert_eq!(
        listed(&app, &chen, &id, "eventsSinceNumber=1&eventsUntilNumber=1").await,
        vec![1]
    );
    assert_eq!(
        listed(&app, &chen, &id, "eventsSinceNumber=6").await,
        Vec::<i64>::new()
    );

    // POST with a Parameters body.
    let parameters = json!({"resourceType": "Parameters", "parameter": [
        {"name": "eventsSinceNumber", "valueString": "4"},
        {"name": "eventsUntilNumber", "valueInteger": 5},
    ]});
    let response = app
        .post(
            &chen,
            &format!("/fhir/R4/Subscription/{id}/$events"),
            &parameters,
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let bundle: Value = response.json().await.unwrap();
    let numbers: Vec<&str> = status(&bundle)["notificationEvent"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["eventNumber"].as_str().unwrap())
        .collect();
    assert_eq!(numbers, ["4", "5"]);
    assert_eq!(
        bundle["entry"].as_array().unwrap().len(),
        3,
        "with the focus"
    );

    let response = app
        .post(
            &chen,
            &format!("/fhir/R4/Subscription/{id}/$get-ws-binding-token"),
            &json!({"resourceType": "Parameters"}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let token: Value = response.json().await.unwrap();
    assert_eq!(token["parameter"][0]["name"], "token");

    // $status, instance and type level, GET and POST.
    for response in [
        app.get(&chen, &format!("/fhir/R4/Subscription/{id}/$status"))
            .await,
        app.post(
            &chen,
            &format!("/fhir/R4/Subscription/{id}/$status"),
            &json!({"resourceType": "Parameters"}),
        )
        .await,
        app.get(&chen, &format!("/fhir/R4/Subscription/$status?id={id}"))
            .await,
        app.post(
            &chen,
            "/fhir/R4/Subscription/$status",
            &json!({"resourceType": "Parameters", "parameter": [{"name": "id", "valueString": id}]}),
        )
        .await,
    ] {
        assert_eq!(response.status(), StatusCode::OK);
        let bundle: Value = response.json().await.unwrap();
        assert_eq!(bundle["type"], "searchset");
        assert_eq!(bundle["total"], 1);
        let status = &bundle["entry"][0]["resource"];
        assert_eq!(status["resourceType"], "SubscriptionStatus");
        assert_eq!(status["type"], "query-status");
        assert_eq!(status["status"], "active");
        assert_eq!(status["eventsSinceSubscriptionStart"], "5");
        assert_eq!(
            status["subscription"]["reference"],
            format!("Subscription/{id}")
        );
    }
    // Somebody else's Subscription: unknown on the instance, left out on the type.
    let (code, outcome) = app
        .get_json(&nurse, &format!("/fhir/R4/Subscription/{id}/$status"))
        .await;
    assert_eq!(code, StatusCode::NOT_FOUND);
    assert_eq!(outcome["resourceType"], "OperationOutcome");
    for operation in ["$events", "$get-ws-binding-token"] {
        let (code, outcome) = app
            .get_json(&nurse, &format!("/fhir/R4/Subscription/{id}/{operation}"))
            .await;
        assert_eq!(code, StatusCode::NOT_FOUND, "{operation}: {outcome}");
        assert!(
            !outcome.to_string().contains("ServiceRequest/"),
            "{outcome}"
        );
    }
    let (code, bundle) = app
        .get_json(&nurse, &format!("/fhir/R4/Subscription/$status?id={id}"))
        .await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(bundle["total"], 0);
    // Bad input: an OperationOutcome.
    for (path, body) in [
        (format!("/fhir/R4/Subscription/{id}/$status?foo=1"), None),
        (
            format!("/fhir/R4/Subscription/{id}/$events?eventsSinceNumber=-1"),
            None,
        ),
        (
            format!("/fhir/R4/Subscription/{id}/$events"),
            Some(json!({"resourceType": "Patient"})),
        ),
        ("/fhir/R4/Subscription/$status".to_owned(), None),
    ] {
        let response = match &body {
            Some(body) => app.post(&chen, &path, body).await,
            None => app.get(&chen, &path).await,
        };
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{path}");
        let outcome: Value = response.json().await.unwrap();
        assert_eq!(outcome["resourceType"], "OperationOutcome", "{path}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bind_streams_a_backlog_larger_than_any_queue_while_the_socket_stays_responsive() {
    // The socket's queue holds 4,096 frames; the old catch-up deadlocked beyond it.
    let backlog: usize = if crate::POSTGRES { 5_000 } else { 10_000 };
    let app = spawn_app().await;
    let chen = app.token("dr.chen").await;
    let patient = visible_patients(&app, &chen).await.remove(0);
    let id = subscribe(&app, &chen, &format!("ServiceRequest?patient={patient}")).await;
    futures_util::stream::iter(0..backlog)
        .map(|_| place(&app, &chen, &patient))
        .buffer_unordered(16)
        .collect::<Vec<_>>()
        .await;
    let (token, url) = binding(&app, &chen, &id).await;
    let mut socket = SubSocket::open(&url).await;
    assert_eq!(
        status(&socket.bind(&token, Some(0)).await)["type"],
        "handshake"
    );
    // Pings are answered while the backlog streams, and a live event comes after it.
    socket.send(json!({"type": "ping"})).await;
    let live = place(&app, &chen, &patient).await;
    let mut next_number = 1;
    let mut ponged = false;
    let mut last_focus = String::new();
    while next_number <= backlog + 1 {
        let frame = tokio::time::timeout(WAIT, socket.stream.next())
            .await
            .expect("frames keep coming")
            .expect("the socket is open")
            .expect("readable");
        let Message::Text(text) = frame else { continue };
        let value: Value = serde_json::from_str(&text).unwrap();
        if value == json!({"type": "pong"}) {
            ponged = true;
            continue;
        }
        if status(&value)["type"] == "heartbeat" {
            continue;
        }
        let (number, focus) = notified(&value);
        assert_eq!(
            number,
            next_number.to_string(),
            "in order, no gap, no repeat"
        );
        next_number += 1;
        last_focus = focus;
    }
    assert!(ponged, "the ping was answered");
    assert_eq!(last_focus, live, "the live event follows the backlog");
}

/// A parameter of an R4 status `Parameters` by name.
fn parameter<'a>(status: &'a Value, name: &str) -> &'a Value {
    status["parameter"]
        .as_array()
        .and_then(|list| list.iter().find(|p| p["name"] == name))
        .unwrap_or(&Value::Null)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_topic_based_subscription_gets_the_igs_r4_notifications_for_its_filter() {
    let app = spawn_app().await;
    let chen = app.token("dr.chen").await;
    let admin = app.token("admin").await;
    let patients = visible_patients(&app, &chen).await;
    let (mine, other) = (&patients[0], &patients[1]);
    let topic = "http://rounds.example.org/fhir/SubscriptionTopic/critical-results";
    let create = |content: &str| {
        json!({
            "resourceType": "Subscription", "status": "requested", "reason": "criticals",
            "criteria": topic,
            "_criteria": {"extension": [{
                "url": "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-filter-criteria",
                "valueString": format!("Observation?patient=Patient/{mine}"),
            }]},
            "channel": {"type": "websocket", "payload": "application/fhir+json", "_payload": {"extension": [{
                "url": "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-payload-content",
                "valueCode": content,
            }]}},
        })
    };
    let mut ids = Vec::new();
    for content in ["id-only", "empty"] {
        let response = app
            .post(&chen, "/fhir/R4/Subscription", &create(content))
            .await;
        assert_eq!(response.status(), StatusCode::CREATED);
        ids.push(
            response.json::<Value>().await.unwrap()["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    let mut sockets = Vec::new();
    for id in &ids {
        let (token, url) = binding(&app, &chen, id).await;
        let mut socket = SubSocket::open(&url).await;
        let handshake = socket.bind(&token, None).await;
        assert_eq!(handshake["meta"]["profile"][0].as_str().unwrap(), "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-subscription-notification-r4");
        let status = status(&handshake);
        assert_eq!(status["resourceType"], "Parameters");
        assert_eq!(parameter(status, "type")["valueCode"], "handshake");
        assert_eq!(parameter(status, "topic")["valueCanonical"], topic);
        sockets.push(socket);
    }
    let observation = |patient: &str, code: &str| {
        json!({
            "resourceType": "Observation", "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "2823-3"}]},
            "subject": {"reference": format!("Patient/{patient}")},
            "valueQuantity": {"value": 7.0, "unit": "mmol/L"},
            "interpretation": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation", "code": code}]}],
        })
    };
    // Not critical, and critical for another patient: neither is in the topic for this filter.
    for body in [
        observation(mine, "N"),
        observation(other, "HH"),
        observation(mine, "HH"),
    ] {
        let response = app.post(&admin, "/fhir/R4/Observation", &body).await;
        assert_eq!(response.status(), StatusCode::CREATED);
    }
    let (_, bundle) = app
        .get_json(
            &admin,
            &format!(
                "/fhir/R4/Observation?patient={mine}&critical=true&_sort=-_lastUpdated&_count=1"
            ),
        )
        .await;
    let critical = format!(
        "Observation/{}",
        bundle["entry"][0]["resource"]["id"].as_str().unwrap()
    );
    // id-only: the focus named and its entry without the resource.
    let notified = sockets[0].next().await;
    let said = status(&notified);
    assert_eq!(parameter(said, "type")["valueCode"], "event-notification");
    assert_eq!(
        parameter(said, "events-since-subscription-start")["valueString"],
        "1"
    );
    let event = &parameter(said, "notification-event")["part"];
    assert_eq!(event[0]["valueString"], "1");
    assert_eq!(event[2]["valueReference"]["reference"], critical);
    assert!(notified["entry"][1]["fullUrl"]
        .as_str()
        .unwrap()
        .ends_with(&critical));
    assert!(notified["entry"][1].get("resource").is_none(), "{notified}");
    // empty: numbered, nothing named, no focus entry.
    let notified = sockets[1].next().await;
    let event = &parameter(status(&notified), "notification-event")["part"];
    assert_eq!(event[0]["valueString"], "1");
    assert_eq!(event.as_array().unwrap().len(), 2, "no focus: {notified}");
    assert_eq!(notified["entry"].as_array().unwrap().len(), 1);
    // $events speaks the same shape, and a filter of another type is refused.
    let (_, events) = app
        .get_json(&chen, &format!("/fhir/R4/Subscription/{}/$events", ids[0]))
        .await;
    assert_eq!(status(&events)["resourceType"], "Parameters");
    let mut wrong = create("full-resource");
    wrong["_criteria"]["extension"][0]["valueString"] = json!("ServiceRequest?patient=p1");
    let response = app.post(&chen, "/fhir/R4/Subscription", &wrong).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
}
