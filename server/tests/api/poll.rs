//! `POST /ws/poll`, the long-poll fallback of the realtime rooms, against a real server: replay,
//! a held poll woken by a write, access on join and on delivery, reset, bad input; and the
//! per-user socket gauge. Nothing waits for time to pass: held polls are observed through
//! `rounds_poll_waiting`, absence is proven with a later sentinel event.

use std::time::Duration;

use app::wire::PollResponse;
use futures_util::future::BoxFuture;
use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::{
    protocol::{frame::coding::CloseCode, CloseFrame},
    Message,
};

use crate::{
    helpers::{
        okafor_joins_a_team, okafor_leaves_the_team, spawn_app, visible_patients, TestApp, WAIT,
    },
    realtime::{patients, place_order, Ended, Ws},
};

/// Posts `body` (raw text) to `/ws/poll` with an optional bearer token.
async fn poll_raw(app: &TestApp, token: Option<&str>, body: String) -> (StatusCode, Value) {
    let mut request = app
        .client
        .post(app.url("/ws/poll"))
        .header("content-type", "application/json")
        .body(body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text:?}")),
    )
}

/// A successful poll's answer; it must also read as the shared wire type.
async fn poll(app: &TestApp, token: &str, body: Value) -> Value {
    let (status, answer) = tokio::time::timeout(WAIT, poll_raw(app, Some(token), body.to_string()))
        .await
        .expect("the poll answers in time");
    assert_eq!(status, StatusCode::OK, "{answer}");
    serde_json::from_value::<PollResponse>(answer.clone())
        .unwrap_or_else(|error| panic!("{error}: {answer}"));
    answer
}

fn frames<'a>(answer: &'a Value, kind: &str) -> Vec<&'a Value> {
    answer["frames"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|frame| frame["type"] == kind)
        .map(|frame| &frame["data"])
        .collect()
}

fn seq(answer: &Value) -> i64 {
    answer["seq"].as_i64().unwrap()
}

fn update_ids(answer: &Value) -> Vec<String> {
    frames(answer, "update")
        .iter()
        .map(|update| update["resource_id"].as_str().unwrap().to_owned())
        .collect()
}

/// `/metrics`, as an admin reads it.
async fn scrape(app: &TestApp) -> String {
    let admin = app.token("admin").await;
    app.client
        .get(app.url("/metrics"))
        .bearer_auth(admin)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// Waits (checking every few milliseconds, failing after `WAIT`) until `condition` holds.
async fn wait_until<'a>(what: &str, mut condition: impl FnMut() -> BoxFuture<'a, bool>) {
    let waited = tokio::time::timeout(WAIT, async {
        while !condition().await {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    assert!(waited.is_ok(), "timed out waiting until {what}");
}

/// Waits until the server holds `n` polls.
async fn polls_held(app: &TestApp, n: i64) {
    let metrics = app.state.metrics.clone();
    wait_until(&format!("{n} poll(s) are held"), move || {
        let metrics = metrics.clone();
        Box::pin(async move { metrics.poll_waiting.get() == n })
    })
    .await;
}

fn critical_potassium(patient: &str) -> Value {
    json!({
        "resourceType": "Observation", "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "2823-3", "display": "Potassium"}]},
        "subject": {"reference": format!("Patient/{patient}")},
        "effectiveDateTime": "2026-11-25T09:00:00Z",
        "valueQuantity": {"value": 7.1, "unit": "mmol/L", "system": "http://unitsofmeasure.org", "code": "mmol/L"},
        "interpretation": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation", "code": "HH"}]}]
    })
}

fn restricted_note(patient: &str) -> Value {
    json!({
        "resourceType": "DocumentReference", "status": "current", "docStatus": "final",
        "meta": {"security": [{"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "R"}]},
        "type": {"coding": [{"system": "http://loinc.org", "code": "11506-3", "display": "Progress note"}]},
        "subject": {"reference": format!("Patient/{patient}")},
        "date": "2026-11-25T10:00:00Z",
        "content": [{"attachment": {"contentType": "text/plain", "data": "UHN5Y2hpYXRyeSBub3Rl"}}]
    })
}

async fn create(app: &TestApp, token: &str, resource: &Value) -> String {
    let path = format!("/fhir/R4/{}", resource["resourceType"].as_str().unwrap());
    let response = app.post(token, &path, resource).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    response.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poll_replays_missed_writes_once_in_order_and_the_next_poll_none_of_them() {
    let app = spawn_app().await;
    let admin = app.token("admin").await;
    let patient = visible_patients(&app, &admin).await.remove(0);
    let before = app.state.store.head();
    let mut ids = Vec::new();
    for _ in 0..5 {
        ids.push(place_order(&app, &admin, &patient).await);
    }
    // Two subscriptions that both hold the patient's room: each event still comes once.
    let answer = poll(
        &app,
        &admin,
        json!({"subscriptions": [
            {"subscription_id": "chart", "patient_ids": [patient], "after_seq": before},
            {"subscription_id": "alerts", "patient_ids": [patient], "rooms": ["facility:alerts"], "after_seq": before}
        ]}),
    )
    .await;
    let all = answer["frames"].as_array().unwrap();
    assert_eq!(all[0]["type"], "subscribed", "{answer}");
    assert_eq!(all[0]["data"]["subscription_id"], "chart");
    assert_eq!(
        all[0]["data"]["rooms"],
        json!([format!("patient:{patient}")])
    );
    assert_eq!(all[0]["data"]["denied"], json!([]));
    assert_eq!(all[1]["type"], "subscribed");
    assert_eq!(
        all[1]["data"]["rooms"],
        json!(["facility:alerts", format!("patient:{patient}")])
    );
    assert_eq!(update_ids(&answer), ids, "every write once, in order");
    let seqs: Vec<i64> = frames(&answer, "update")
        .iter()
        .map(|u| u["seq"].as_i64().unwrap())
        .collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    assert!(seqs[0] > before);
    assert!(seq(&answer) >= *seqs.last().unwrap());
    let first = frames(&answer, "update")[0];
    assert_eq!(first["event_type"], "ORDER_PLACED");
    assert_eq!(first["resource"]["id"], ids[0].as_str());
    assert_eq!(first["rooms"], json!([format!("patient:{patient}")]));

    let s = seq(&answer);
    let again = poll(
        &app,
        &admin,
        json!({"subscriptions": [
            {"subscription_id": "chart", "patient_ids": [patient], "after_seq": s},
            {"subscription_id": "alerts", "patient_ids": [patient], "rooms": ["facility:alerts"], "after_seq": s}
        ], "wait_ms": 0}),
    )
    .await;
    assert!(update_ids(&again).is_empty(), "{again}");
    assert_eq!(frames(&again, "subscribed").len(), 2);
    assert_eq!(seq(&again), app.state.store.head());
    assert!(app.state.metrics.poll_requests.get() >= 2);
    assert!(scrape(&app).await.contains("rounds_poll_requests_total 2"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_gap_is_answered_a_page_at_a_time() {
    let app = spawn_app().await;
    let admin = app.token("admin").await;
    let patient = visible_patients(&app, &admin).await.remove(0);
    let before = app.state.store.head();
    let writes = 520;
    for chunk in 0..writes / 20 {
        let orders = (0..20).map(|_| place_order(&app, &admin, &patient));
        let ids = futures_util::future::join_all(orders).await;
        assert_eq!(ids.len(), 20, "chunk {chunk}");
    }
    let expected: Vec<i64> = app
        .state
        .store
        .events_after(before, 10_000)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.seq)
        .collect();
    assert_eq!(expected.len(), writes);
    let body = |after: i64| json!({"subscriptions": [{"subscription_id": "chart", "patient_ids": [patient], "after_seq": after}]});
    let first = poll(&app, &admin, body(before)).await;
    let seqs = |answer: &Value| -> Vec<i64> {
        frames(answer, "update")
            .iter()
            .map(|u| u["seq"].as_i64().unwrap())
            .collect()
    };
    assert_eq!(seqs(&first), expected[..500], "the first page");
    assert_eq!(seq(&first), expected[499], "it covers exactly what it sent");
    let rest = poll(&app, &admin, body(seq(&first))).await;
    assert_eq!(seqs(&rest), expected[500..], "the rest");
    assert_eq!(seq(&rest), app.state.store.head());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_poll_answers_when_another_client_writes() {
    let app = spawn_app().await;
    let chen = app.token("dr.chen").await;
    let admin = app.token("admin").await;
    let patient = visible_patients(&app, &chen).await.remove(0);
    let head = app.state.store.head();
    let held = {
        let (client, url, chen, patient) = (
            app.client.clone(),
            app.url("/ws/poll"),
            chen.clone(),
            patient.clone(),
        );
        tokio::spawn(async move {
            let body = json!({"subscriptions": [{"subscription_id": "chart", "patient_ids": [patient], "after_seq": head}], "wait_ms": 30_000});
            let response = client
                .post(url)
                .bearer_auth(chen)
                .json(&body)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), StatusCode::OK);
            response.json::<Value>().await.unwrap()
        })
    };
    polls_held(&app, 1).await;
    assert!(scrape(&app).await.contains("rounds_poll_waiting 1"));
    let id = place_order(&app, &admin, &patient).await;
    // Well before the 30 s wait_ms: the write is what ends the poll.
    let answer = tokio::time::timeout(WAIT, held)
        .await
        .expect("the write wakes the held poll")
        .unwrap();
    assert_eq!(update_ids(&answer), vec![id.clone()], "{answer}");
    let update = frames(&answer, "update")[0];
    assert_eq!(update["user_id"], "admin");
    assert!(seq(&answer) >= update["seq"].as_i64().unwrap());
    assert!(update["seq"].as_i64().unwrap() > head);
    polls_held(&app, 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_ms_zero_answers_at_once_with_the_head() {
    let app = spawn_app().await;
    let admin = app.token("admin").await;
    let patient = visible_patients(&app, &admin).await.remove(0);
    place_order(&app, &admin, &patient).await;
    let head = app.state.store.head();
    // Without after_seq: from the head, so nothing to deliver; and no waiting.
    for wait in [json!(0), json!(-5)] {
        let answer = poll(
            &app,
            &admin,
            json!({"subscriptions": [{"subscription_id": "s", "patient_ids": [patient]}], "wait_ms": wait}),
        )
        .await;
        assert_eq!(seq(&answer), head, "{answer}");
        assert_eq!(answer["frames"].as_array().unwrap().len(), 1, "{answer}");
        assert_eq!(frames(&answer, "subscribed").len(), 1);
    }
    // With after_seq at the head, and with no subscription at all.
    let answer = poll(
        &app,
        &admin,
        json!({"subscriptions": [{"subscription_id": "s", "rooms": ["facility:alerts"], "after_seq": head}], "wait_ms": 0}),
    )
    .await;
    assert_eq!(seq(&answer), head);
    let answer = poll(&app, &admin, json!({"subscriptions": [], "wait_ms": 0})).await;
    assert_eq!(answer, json!({"seq": head, "frames": []}));
    assert_eq!(app.state.metrics.poll_waiting.get(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poll_checks_access_on_join_and_on_every_delivery() {
    let app = spawn_app().await;
    let admin = app.token("admin").await;
    let chen = app.token("dr.chen").await;
    let patel = app.token("nurse.patel").await;
    let okafor = app.token("dr.okafor").await;
    let (shared, okafors) = patients(&app, &chen, &patel, &okafor).await;
    let before = app.state.store.head();

    // A critical value on a patient Okafor may not see reaches facility:alerts, which he may
    // join; a restricted note on a patient the nurse sees is for the care team's physicians.
    let critical = create(&app, &admin, &critical_potassium(&shared)).await;
    let note = create(&app, &admin, &restricted_note(&shared)).await;
    let sentinel_shared = place_order(&app, &admin, &shared).await;
    let sentinel_own = place_order(&app, &admin, &okafors).await;

    let answer = poll(
        &app,
        &okafor,
        json!({"subscriptions": [{"subscription_id": "s", "patient_ids": [shared, okafors], "rooms": ["facility:alerts", "pharmacy:queue"], "after_seq": before}]}),
    )
    .await;
    let subscribed = frames(&answer, "subscribed")[0];
    assert_eq!(
        subscribed["rooms"],
        json!(["facility:alerts", format!("patient:{okafors}")])
    );
    let denied: Vec<&str> = subscribed["denied"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["room"].as_str().unwrap())
        .collect();
    assert_eq!(
        denied,
        vec![format!("patient:{shared}").as_str(), "pharmacy:queue"]
    );
    assert!(subscribed["denied"][0]["reason"].as_str().unwrap().len() > 5);
    assert_eq!(
        update_ids(&answer),
        vec![sentinel_own.clone()],
        "the alert about a patient he may not see never reached him: {answer}"
    );

    let nurse = poll(
        &app,
        &patel,
        json!({"subscriptions": [{"subscription_id": "s", "patient_ids": [shared], "after_seq": before}]}),
    )
    .await;
    let ids = update_ids(&nurse);
    assert!(
        !ids.contains(&note),
        "the restricted note reached the nurse"
    );
    assert!(
        ids.contains(&critical) && ids.contains(&sentinel_shared),
        "{nurse}"
    );
    let physician = poll(
        &app,
        &chen,
        json!({"subscriptions": [{"subscription_id": "s", "patient_ids": [shared], "resource_types": ["DocumentReference"], "after_seq": before}]}),
    )
    .await;
    // A signed note is two events (NOTE_CREATED, NOTE_SIGNED): both reach her physician.
    let kinds: Vec<&str> = frames(&physician, "update")
        .iter()
        .map(|u| u["event_type"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, vec!["NOTE_CREATED", "NOTE_SIGNED"], "{physician}");
    assert!(update_ids(&physician).iter().all(|id| *id == note));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_revoked_while_a_poll_is_held_stops_delivery() {
    let app = spawn_app().await;
    let admin = app.token("admin").await;
    let okafor = app.token("dr.okafor").await;
    let change = okafor_joins_a_team(&app, &admin, &okafor).await;
    let (own, outsider) = (change.own.clone(), change.outsider.clone());

    // Joined while he is on the team; then taken off it while the poll is held.
    let head = app.state.store.head();
    let held = {
        let (client, url, okafor, outsider, own) = (
            app.client.clone(),
            app.url("/ws/poll"),
            okafor.clone(),
            outsider.clone(),
            own.clone(),
        );
        tokio::spawn(async move {
            let body = json!({"subscriptions": [{"subscription_id": "s", "patient_ids": [outsider, own], "after_seq": head}], "wait_ms": 30_000});
            let response = client
                .post(url)
                .bearer_auth(okafor)
                .json(&body)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), StatusCode::OK);
            response.json::<Value>().await.unwrap()
        })
    };
    polls_held(&app, 1).await;
    okafor_leaves_the_team(&app, &admin, &change).await;
    place_order(&app, &admin, &outsider).await;
    let sentinel = place_order(&app, &admin, &own).await;
    let answer = tokio::time::timeout(WAIT, held)
        .await
        .expect("the sentinel ends the poll")
        .unwrap();
    assert_eq!(
        frames(&answer, "subscribed")[0]["denied"],
        json!([]),
        "joined while on the team"
    );
    assert_eq!(
        update_ids(&answer),
        vec![sentinel],
        "neither the care-team change nor the later order reached him: {answer}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_after_seq_the_log_no_longer_holds_answers_reset() {
    let app = spawn_app().await;
    let admin = app.token("admin").await;
    let patient = visible_patients(&app, &admin).await.remove(0);
    place_order(&app, &admin, &patient).await;
    let removed = app
        .state
        .store
        .prune_events("9999-12-31T00:00:00.000Z")
        .await
        .unwrap();
    assert!(removed > 0);
    let head = app.state.store.head();
    for after in [1, 1_000_000] {
        let answer = poll(
            &app,
            &admin,
            json!({"subscriptions": [{"subscription_id": "chart", "patient_ids": [patient], "after_seq": after}], "wait_ms": 25_000}),
        )
        .await;
        let all = answer["frames"].as_array().unwrap();
        assert_eq!(all.len(), 2, "{answer}");
        assert_eq!(all[0]["type"], "subscribed");
        assert_eq!(all[1]["type"], "reset");
        assert_eq!(all[1]["data"]["seq"], head);
        assert!(all[1]["data"]["reason"].as_str().unwrap().len() > 5);
        assert_eq!(seq(&answer), head);
    }
    // The client refetches and goes on from the answer's seq.
    let id = place_order(&app, &admin, &patient).await;
    let answer = poll(
        &app,
        &admin,
        json!({"subscriptions": [{"subscription_id": "chart", "patient_ids": [patient], "after_seq": head}]}),
    )
    .await;
    assert_eq!(update_ids(&answer), vec![id]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polls_authenticate_like_the_socket_and_refuse_bad_bodies() {
    let app = spawn_app().await;
    let token = app.token("nurse.patel").await;
    let good = json!({"subscriptions": [{"subscription_id": "s", "rooms": ["facility:alerts"]}], "wait_ms": 0}).to_string();

    let error = |answer: &Value, code: &str| {
        assert_eq!(answer["type"], "error", "{answer}");
        assert_eq!(answer["data"]["code"], code, "{answer}");
        assert!(answer["data"]["message"].as_str().unwrap().len() > 5);
        assert_eq!(answer.as_object().unwrap().len(), 2);
    };
    for bad in [None, Some("not-a-jwt"), Some(&token[..token.len() - 2])] {
        let (status, answer) = poll_raw(&app, bad, good.clone()).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{bad:?}");
        error(&answer, "unauthorized");
    }

    let too_many: Vec<Value> = (0..33)
        .map(|i| json!({"subscription_id": format!("s{i}"), "rooms": ["facility:alerts"]}))
        .collect();
    let cases = [
        ("not json".to_owned(), "invalid_json"),
        ("[1, 2]".to_owned(), "invalid_message"),
        ("{}".to_owned(), "invalid_message"),
        (json!({"subscriptions": {}}).to_string(), "invalid_message"),
        (
            json!({"subscriptions": [], "surprise": 1}).to_string(),
            "invalid_message",
        ),
        (
            json!({"subscriptions": [], "wait_ms": "soon"}).to_string(),
            "invalid_message",
        ),
        (
            json!({"subscriptions": [{}]}).to_string(),
            "invalid_message",
        ),
        (
            json!({"subscriptions": [{"subscription_id": "s", "after_seq": -1}]}).to_string(),
            "invalid_message",
        ),
        (
            json!({"subscriptions": [{"subscription_id": "s"}, {"subscription_id": "s"}]})
                .to_string(),
            "invalid_message",
        ),
        (
            json!({"subscriptions": [{"subscription_id": "s", "rooms": ["ward:1"]}]}).to_string(),
            "invalid_room",
        ),
        (
            json!({"subscriptions": [{"subscription_id": "s", "resource_types": ["Banana"]}]})
                .to_string(),
            "invalid_resource_type",
        ),
        (
            json!({"subscriptions": too_many}).to_string(),
            "too_many_subscriptions",
        ),
        (
            format!(
                r#"{{"subscriptions": [], "pad": "{}"}}"#,
                "x".repeat(300 * 1024)
            ),
            "too_large",
        ),
    ];
    for (body, code) in cases {
        let (status, answer) = poll_raw(&app, Some(&token), body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{code}: {answer}");
        error(&answer, code);
    }

    // The socket's other ways in: a WebSocket token in ?token=, the session cookie from our
    // own origin (a foreign one is refused).
    let ws_token: Value = app
        .client
        .post(app.url("/auth/ws-token"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let response = app
        .client
        .post(app.url(&format!(
            "/ws/poll?token={}",
            ws_token["token"].as_str().unwrap()
        )))
        .body(good.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    for (origin, status) in [
        (app.base.clone(), StatusCode::OK),
        ("http://evil.example".to_owned(), StatusCode::FORBIDDEN),
    ] {
        let response = app
            .client
            .post(app.url("/ws/poll"))
            .header("cookie", format!("rounds_access={token}"))
            .header("origin", origin)
            .body(good.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), status);
    }
}

/// Open sockets of `user`, as the operator's `/admin/sockets` reports them.
async fn sockets_of(app: &TestApp, admin: &str, user: &str) -> u64 {
    let (status, body) = app
        .get_json(admin, &format!("/admin/sockets?user={user}"))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["user"], user);
    body["sockets"].as_u64().unwrap()
}

async fn wait_for_sockets(app: &TestApp, admin: &str, user: &str, expected: u64) {
    wait_until(&format!("{user} has {expected} sockets"), move || {
        Box::pin(async move { sockets_of(app, admin, user).await == expected })
    })
    .await;
}

async fn close(ws: &mut Ws) {
    ws.send_raw(Message::Close(Some(CloseFrame {
        code: CloseCode::Normal,
        reason: "".into(),
    })))
    .await;
    assert_eq!(ws.ended().await, Ended::Closed(1000));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operators_see_each_users_sockets_and_the_metrics_name_no_one() {
    let app = spawn_app().await;
    let admin = app.token("admin").await;
    let chen = app.token("dr.chen").await;
    let patel = app.token("nurse.patel").await;
    let (mut first, welcome) = Ws::connect(&app, &chen).await;
    assert_eq!(welcome["data"]["user"]["id"], "dr.chen");
    let (second, _) = Ws::connect(&app, &chen).await;
    let (_nurse, _) = Ws::connect(&app, &patel).await;
    assert_eq!(sockets_of(&app, &admin, "dr.chen").await, 2);
    assert_eq!(sockets_of(&app, &admin, "nurse.patel").await, 1);
    let metrics = scrape(&app).await;
    assert!(metrics.contains("rounds_ws_users_connected 2"), "{metrics}");
    assert!(
        !metrics.contains("dr.chen") && !metrics.contains("nurse.patel"),
        "the metrics name no user:\n{metrics}"
    );
    // A poll is not a socket.
    poll(&app, &chen, json!({"subscriptions": [], "wait_ms": 0})).await;

    close(&mut first).await;
    wait_for_sockets(&app, &admin, "dr.chen", 1).await;
    // Dropped without a close handshake: the server notices the connection end all the same.
    drop(second);
    wait_for_sockets(&app, &admin, "dr.chen", 0).await;
    assert_eq!(sockets_of(&app, &admin, "nurse.patel").await, 1);
    assert!(scrape(&app).await.contains("rounds_ws_users_connected 1"));

    // Only operators may ask.
    let (status, _) = app.get_json(&chen, "/admin/sockets?user=dr.chen").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = app.get_json(&admin, "/admin/sockets").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}
