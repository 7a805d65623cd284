//! The realtime hub over real WebSockets: who receives what, replay at the seam, slow consumers,
//! expiry, revocation and bad input. Absence is proven with a later sentinel event, never a sleep.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use reqwest::StatusCode;
use rounds::auth::Purpose;
use serde_json::{json, Value};
use tokio::io::AsyncReadExt;
use tokio_tungstenite::tungstenite::{
    client::IntoClientRequest,
    protocol::{frame::coding::CloseCode, CloseFrame},
    Message,
};

use crate::helpers::{
    next_json_where, okafor_joins_a_team, okafor_leaves_the_team, order, spawn_app, spawn_with,
    visible_patients, TestApp, WAIT,
};

pub struct Ws {
    stream: crate::helpers::Socket,
}

/// How a socket ended.
#[derive(Debug, PartialEq)]
pub enum Ended {
    Closed(u16),
    /// The connection dropped without a close frame.
    Dropped,
}

impl Ws {
    /// Opens `/ws` with a bearer token and reads the `welcome`.
    pub async fn connect(app: &TestApp, token: &str) -> (Ws, Value) {
        let mut request = format!("ws://{}/ws", app.base.trim_start_matches("http://"))
            .into_client_request()
            .unwrap();
        request
            .headers_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
        let mut ws = Self::open(request).await;
        let welcome = ws.next_json().await;
        assert_eq!(welcome["type"], "welcome", "{welcome}");
        (ws, welcome)
    }

    pub async fn open(request: impl IntoClientRequest + Unpin) -> Ws {
        let (stream, _) = tokio_tungstenite::connect_async(request)
            .await
            .expect("the WebSocket handshake succeeds");
        Ws { stream }
    }

    pub async fn send(&mut self, value: Value) {
        self.stream
            .send(Message::text(value.to_string()))
            .await
            .unwrap();
    }

    pub async fn send_raw(&mut self, message: Message) {
        self.stream.send(message).await.unwrap();
    }

    /// The next text frame that is not a heartbeat.
    pub async fn next_json(&mut self) -> Value {
        next_json_where(&mut self.stream, |v| v["type"] == "heartbeat").await
    }

    /// The next `update`.
    pub async fn next_update(&mut self) -> Value {
        let value = self.next_json().await;
        assert_eq!(value["type"], "update", "{value}");
        value["data"].clone()
    }

    /// Subscribes and returns the `subscribed` answer.
    pub async fn subscribe(&mut self, data: Value) -> Value {
        self.send(json!({"type": "subscription", "data": data}))
            .await;
        let answer = self.next_json().await;
        assert_eq!(answer["type"], "subscribed", "{answer}");
        answer["data"].clone()
    }

    /// Reads until the socket ends, returning how.
    pub async fn ended(&mut self) -> Ended {
        loop {
            match tokio::time::timeout(WAIT, self.stream.next())
                .await
                .expect("the socket ends in time")
            {
                Some(Ok(Message::Close(Some(frame)))) => return Ended::Closed(frame.code.into()),
                Some(Ok(Message::Close(None))) | None | Some(Err(_)) => return Ended::Dropped,
                Some(Ok(_)) => continue,
            }
        }
    }
}

fn ws_url(app: &TestApp) -> String {
    format!("ws://{}/ws", app.base.trim_start_matches("http://"))
}

/// Creates an order for `patient` and returns its id.
pub async fn place_order(app: &TestApp, token: &str, patient: &str) -> String {
    let response = app
        .post(token, "/fhir/R4/ServiceRequest", &order(patient))
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let body: Value = response.json().await.unwrap();
    body["id"].as_str().unwrap().to_owned()
}

/// A patient both `a` and `b` may see, and one that `c` may not.
pub async fn patients(app: &TestApp, a: &str, b: &str, c: &str) -> (String, String) {
    let seen_a = visible_patients(app, a).await;
    let seen_b = visible_patients(app, b).await;
    let seen_c = visible_patients(app, c).await;
    let shared = seen_a
        .iter()
        .find(|p| seen_b.contains(p) && !seen_c.contains(p))
        .expect("a patient a and b share and c does not see")
        .clone();
    let of_c = seen_c.first().expect("c sees somebody").clone();
    (shared, of_c)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_users_receive_an_order_and_an_outsider_receives_nothing() {
    let app = spawn_app().await;
    let chen = app.token("dr.chen").await;
    let patel = app.token("nurse.patel").await;
    let okafor = app.token("dr.okafor").await;
    let (patient, okafors) = patients(&app, &chen, &patel, &okafor).await;

    let (mut chen_ws, welcome) = Ws::connect(&app, &chen).await;
    assert_eq!(welcome["data"]["user"]["id"], "dr.chen");
    assert_eq!(welcome["data"]["seq"], app.state.store.head());
    assert_eq!(welcome["data"]["heartbeat_ms"], 30_000);
    let (mut patel_ws, _) = Ws::connect(&app, &patel).await;
    let (mut okafor_ws, _) = Ws::connect(&app, &okafor).await;
    for ws in [&mut chen_ws, &mut patel_ws] {
        let answer = ws
            .subscribe(json!({"subscription_id": "chart", "patient_ids": [patient]}))
            .await;
        assert_eq!(answer["rooms"], json!([format!("patient:{patient}")]));
        assert_eq!(answer["denied"], json!([]));
    }
    let answer = okafor_ws
        .subscribe(json!({"subscription_id": "s", "patient_ids": [patient, okafors], "rooms": ["facility:alerts", "pharmacy:queue"]}))
        .await;
    assert_eq!(
        answer["rooms"],
        json!(["facility:alerts", format!("patient:{okafors}")])
    );
    let denied: Vec<&str> = answer["denied"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["room"].as_str().unwrap())
        .collect();
    assert_eq!(
        denied,
        vec![format!("patient:{patient}").as_str(), "pharmacy:queue"]
    );

    let id = place_order(&app, &chen, &patient).await;
    for ws in [&mut chen_ws, &mut patel_ws] {
        let update = ws.next_update().await;
        assert_eq!(update["event_type"], "ORDER_PLACED");
        assert_eq!(update["action"], "created");
        assert_eq!(update["resource_type"], "ServiceRequest");
        assert_eq!(update["resource_id"], id.as_str());
        assert_eq!(update["version_id"], 1);
        assert_eq!(update["patient_id"], patient.as_str());
        assert_eq!(update["rooms"], json!([format!("patient:{patient}")]));
        assert_eq!(update["user_id"], "dr.chen");
        assert!(update["timestamp"].as_str().unwrap().ends_with('Z'));
        assert_eq!(update["resource"]["id"], id.as_str());
        assert_eq!(update["resource"]["meta"]["versionId"], "1");
        assert_eq!(update["seq"], app.state.store.head());
    }
    // Okafor's first update is the sentinel on his own patient: the order never reached him.
    let admin = app.token("admin").await;
    let sentinel = place_order(&app, &admin, &okafors).await;
    let update = okafor_ws.next_update().await;
    assert_eq!(update["resource_id"], sentinel.as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_event_in_several_of_a_connections_rooms_arrives_once() {
    let app = spawn_app().await;
    let admin = app.token("admin").await;
    let patient = visible_patients(&app, &admin).await.remove(0);
    let (mut ws, _) = Ws::connect(&app, &admin).await;
    ws.subscribe(
        json!({"subscription_id": "a", "patient_ids": [patient], "rooms": ["facility:alerts"]}),
    )
    .await;
    ws.subscribe(json!({"subscription_id": "b", "patient_ids": [patient]}))
        .await;
    let critical = json!({
        "resourceType": "Observation", "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "2823-3", "display": "Potassium"}]},
        "subject": {"reference": format!("Patient/{patient}")},
        "effectiveDateTime": "2026-11-25T09:00:00Z",
        "valueQuantity": {"value": 7.1, "unit": "mmol/L", "system": "http://unitsofmeasure.org", "code": "mmol/L"},
        "interpretation": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation", "code": "HH"}]}]
    });
    assert_eq!(
        app.post(&admin, "/fhir/R4/Observation", &critical)
            .await
            .status(),
        StatusCode::CREATED
    );
    let first = ws.next_update().await;
    let second = ws.next_update().await;
    let mut kinds = vec![
        first["event_type"].as_str().unwrap().to_owned(),
        second["event_type"].as_str().unwrap().to_owned(),
    ];
    kinds.sort();
    assert_eq!(kinds, vec!["CRITICAL_VALUE_ALERT", "RESULT_AVAILABLE"]);
    assert_eq!(second["seq"].as_i64(), first["seq"].as_i64().map(|s| s + 1));
    // Nothing more: the next update is the sentinel.
    let sentinel = place_order(&app, &admin, &patient).await;
    assert_eq!(ws.next_update().await["resource_id"], sentinel.as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resource_types_narrow_what_a_subscription_receives() {
    let app = spawn_app().await;
    let admin = app.token("admin").await;
    let patient = visible_patients(&app, &admin).await.remove(0);
    let (mut ws, _) = Ws::connect(&app, &admin).await;
    ws.subscribe(json!({"subscription_id": "orders", "patient_ids": [patient], "resource_types": ["ServiceRequest"]}))
        .await;
    let note = json!({
        "resourceType": "Flag", "status": "active",
        "code": {"text": "Fall risk"},
        "subject": {"reference": format!("Patient/{patient}")}
    });
    assert_eq!(
        app.post(&admin, "/fhir/R4/Flag", &note).await.status(),
        StatusCode::CREATED
    );
    let id = place_order(&app, &admin, &patient).await;
    let update = ws.next_update().await;
    assert_eq!(
        update["resource_id"],
        id.as_str(),
        "the Flag was filtered out"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_replays_exactly_the_missed_events_then_joins_live_without_a_seam() {
    let app = spawn_app().await;
    let admin = app.token("admin").await;
    let patient = visible_patients(&app, &admin).await.remove(0);
    let room = format!("patient:{patient}");

    let (mut ws, _) = Ws::connect(&app, &admin).await;
    ws.subscribe(json!({"subscription_id": "chart", "patient_ids": [patient]}))
        .await;
    place_order(&app, &admin, &patient).await;
    let last_seen = ws.next_update().await["seq"].as_i64().unwrap();
    drop(ws);

    // Missed while away.
    for _ in 0..20 {
        place_order(&app, &admin, &patient).await;
    }
    // Writes keep coming while the client resumes, so the seam is crossed under load.
    let writer = {
        let client = app.client.clone();
        let url = app.url("/fhir/R4/ServiceRequest");
        let (admin, patient) = (admin.clone(), patient.clone());
        tokio::spawn(async move {
            for _ in 0..30 {
                let response = client
                    .post(&url)
                    .bearer_auth(&admin)
                    .header("content-type", "application/fhir+json")
                    .body(order(&patient).to_string())
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status(), StatusCode::CREATED);
            }
        })
    };
    let (mut ws, _) = Ws::connect(&app, &admin).await;
    ws.subscribe(
        json!({"subscription_id": "chart", "patient_ids": [patient], "after_seq": last_seen}),
    )
    .await;
    writer.await.unwrap();
    let expected: Vec<i64> = app
        .state
        .store
        .events_after(last_seen, 10_000)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.rooms.contains(&room))
        .map(|e| e.seq)
        .collect();
    assert_eq!(expected.len(), 50);
    let mut received = Vec::new();
    while received.len() < expected.len() {
        received.push(ws.next_update().await["seq"].as_i64().unwrap());
    }
    assert_eq!(
        received, expected,
        "every missed and live event, once, in order"
    );
    let sentinel = place_order(&app, &admin, &patient).await;
    assert_eq!(
        ws.next_update().await["resource_id"],
        sentinel.as_str(),
        "nothing repeated after the seam"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_repeats_what_another_subscription_of_the_socket_delivered_live() {
    // One socket serves every tab of a browser: the tab that asks for this replay may not have
    // been listening when the other subscription's frame went by.
    let app = spawn_app().await;
    let admin = app.token("admin").await;
    let patient = visible_patients(&app, &admin).await.remove(0);
    let (mut ws, _) = Ws::connect(&app, &admin).await;
    ws.subscribe(json!({"subscription_id": "tab-a", "patient_ids": [patient]}))
        .await;
    let first = place_order(&app, &admin, &patient).await;
    let live = ws.next_update().await;
    assert_eq!(live["resource_id"], first.as_str());
    let seq = live["seq"].as_i64().unwrap();
    ws.subscribe(json!({
        "subscription_id": "tab-b",
        "patient_ids": [patient],
        "resource_types": ["ServiceRequest"],
        "after_seq": seq - 1,
    }))
    .await;
    let replayed = ws.next_update().await;
    assert_eq!(replayed["seq"].as_i64(), Some(seq), "replayed for tab-b");
    assert_eq!(replayed["resource_id"], first.as_str());
    let sentinel = place_order(&app, &admin, &patient).await;
    assert_eq!(
        ws.next_update().await["resource_id"],
        sentinel.as_str(),
        "live again, once per event"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gap_older_than_the_log_answers_reset() {
    let app = spawn_app().await;
    let admin = app.token("admin").await;
    let patient = visible_patients(&app, &admin).await.remove(0);
    place_order(&app, &admin, &patient).await;
    // Retention passes over everything but the newest event.
    let removed = app
        .state
        .store
        .prune_events("9999-12-31T00:00:00.000Z")
        .await
        .unwrap();
    assert!(removed > 0);
    let (mut ws, _) = Ws::connect(&app, &admin).await;
    ws.subscribe(json!({"subscription_id": "chart", "patient_ids": [patient], "after_seq": 1}))
        .await;
    let reset = ws.next_json().await;
    assert_eq!(reset["type"], "reset", "{reset}");
    assert_eq!(reset["data"]["seq"], app.state.store.head());
    // The subscription is live all the same.
    let id = place_order(&app, &admin, &patient).await;
    assert_eq!(ws.next_update().await["resource_id"], id.as_str());

    // An after_seq ahead of the log is a reset too (e.g. a database restored from backup).
    let (mut ws, _) = Ws::connect(&app, &admin).await;
    ws.subscribe(
        json!({"subscription_id": "x", "rooms": ["facility:alerts"], "after_seq": 1_000_000}),
    )
    .await;
    assert_eq!(ws.next_json().await["type"], "reset");
    let metrics = app
        .client
        .get(app.url("/metrics"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("rounds_ws_resets_total 2"), "{metrics}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_client_is_cut_off_while_a_fast_one_gets_everything() {
    let app = spawn_with(|config| config.ws_queue_frames = 16).await;
    let admin = app.token("admin").await;
    let patient = visible_patients(&app, &admin).await.remove(0);
    let (mut fast, _) = Ws::connect(&app, &admin).await;
    fast.subscribe(json!({"subscription_id": "a", "patient_ids": [patient]}))
        .await;
    let (mut stalled, _) = Ws::connect(&app, &admin).await;
    stalled
        .subscribe(json!({"subscription_id": "a", "patient_ids": [patient]}))
        .await;

    // Large notes fill the kernel's socket buffers quickly; the stalled client never reads.
    let text = "x".repeat(300 * 1024);
    let mut ids = Vec::new();
    let reader = tokio::spawn(async move {
        let mut seen = Vec::new();
        while seen.len() < 80 {
            seen.push(
                fast.next_update().await["resource_id"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
            );
        }
        seen
    });
    for i in 0..80 {
        let note = json!({
            "resourceType": "DocumentReference", "status": "current", "docStatus": "preliminary",
            "type": {"coding": [{"system": "http://loinc.org", "code": "11506-3", "display": "Progress note"}]},
            "subject": {"reference": format!("Patient/{patient}")},
            "date": "2026-11-25T10:00:00Z",
            "description": format!("{i} {text}"),
            "content": [{"attachment": {"contentType": "text/plain", "title": "note"}}]
        });
        let response = app.post(&admin, "/fhir/R4/DocumentReference", &note).await;
        assert_eq!(response.status(), StatusCode::CREATED);
        ids.push(
            response.json::<Value>().await.unwrap()["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    assert_eq!(reader.await.unwrap(), ids, "the fast client got every note");
    let ended = stalled.ended().await;
    assert!(
        matches!(ended, Ended::Closed(4408) | Ended::Dropped),
        "{ended:?}"
    );
    let metrics = app.state.metrics.slow_consumer_closes.get();
    assert_eq!(metrics, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_client_that_reads_again_gets_its_4408_close_frame() {
    let app = spawn_with(|config| config.ws_queue_frames = 16).await;
    let admin = app.token("admin").await;
    let patient = visible_patients(&app, &admin).await.remove(0);
    let (mut stalled, _) = Ws::connect(&app, &admin).await;
    stalled
        .subscribe(json!({"subscription_id": "a", "patient_ids": [patient]}))
        .await;

    // Large notes fill the socket buffers; the client reads nothing until the server gives up
    // on it.
    let text = "x".repeat(300 * 1024);
    let mut written = 0;
    while app.state.metrics.slow_consumer_closes.get() == 0 {
        assert!(written < 400, "the stalled client was never found too slow");
        let note = json!({
            "resourceType": "DocumentReference", "status": "current", "docStatus": "preliminary",
            "type": {"coding": [{"system": "http://loinc.org", "code": "11506-3", "display": "Progress note"}]},
            "subject": {"reference": format!("Patient/{patient}")},
            "date": "2026-11-25T10:00:00Z",
            "description": format!("{written} {text}"),
            "content": [{"attachment": {"contentType": "text/plain", "title": "note"}}]
        });
        let response = app.post(&admin, "/fhir/R4/DocumentReference", &note).await;
        assert_eq!(response.status(), StatusCode::CREATED);
        written += 1;
    }

    // Now it reads again, slowly (a frame each 200 ms: ~1.5 MB/s, a poor link): it takes what
    // was already on its way, and the last frame is the close that says why.
    let mut updates = 0;
    let last = loop {
        let frame = tokio::time::timeout(WAIT, stalled.stream.next())
            .await
            .expect("the socket ends in time");
        match frame {
            Some(Ok(Message::Text(_))) => {
                updates += 1;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Some(Ok(Message::Close(close))) => break Ended::Closed(close.unwrap().code.into()),
            Some(Ok(_)) => {}
            Some(Err(_)) | None => break Ended::Dropped,
        }
    };
    assert_eq!(
        last,
        Ended::Closed(4408),
        "after {updates} of {written} notes"
    );
    assert!(updates < written, "the queue it could not take was dropped");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expiring_token_closes_its_socket_with_4401() {
    let app = spawn_app().await;
    let token = app.token("nurse.patel").await;
    let claims = app.state.auth.verify(&token, Purpose::Access).unwrap();
    let user = app::auth::UserInfo {
        id: claims.sub.clone(),
        name: claims.name.clone(),
        role: claims.role,
    };
    let short = app
        .state
        .auth
        .issue(&user, &claims.sid, Purpose::Access, Duration::from_secs(2))
        .unwrap();
    let (mut ws, _) = Ws::connect(&app, &short).await;
    assert_eq!(ws.ended().await, Ended::Closed(4401));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removal_from_a_care_team_stops_delivery_mid_connection() {
    let app = spawn_app().await;
    let admin = app.token("admin").await;
    let okafor = app.token("dr.okafor").await;
    let change = okafor_joins_a_team(&app, &admin, &okafor).await;
    let (own, outsider) = (change.own.clone(), change.outsider.clone());

    let (mut ws, _) = Ws::connect(&app, &okafor).await;
    let answer = ws
        .subscribe(json!({"subscription_id": "s", "patient_ids": [outsider, own]}))
        .await;
    assert_eq!(answer["denied"], json!([]));
    let first = place_order(&app, &admin, &outsider).await;
    assert_eq!(ws.next_update().await["resource_id"], first.as_str());

    okafor_leaves_the_team(&app, &admin, &change).await;
    place_order(&app, &admin, &outsider).await;
    let sentinel = place_order(&app, &admin, &own).await;
    assert_eq!(
        ws.next_update().await["resource_id"],
        sentinel.as_str(),
        "neither the care-team change nor the later order reached him"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restricted_resources_reach_only_those_who_may_see_them() {
    let app = spawn_app().await;
    let admin = app.token("admin").await;
    let chen = app.token("dr.chen").await;
    let patel = app.token("nurse.patel").await;
    let (patient, _) = patients(&app, &chen, &patel, &app.token("dr.okafor").await).await;
    let (mut nurse_ws, _) = Ws::connect(&app, &patel).await;
    nurse_ws
        .subscribe(json!({"subscription_id": "s", "patient_ids": [patient]}))
        .await;
    let restricted = json!({
        "resourceType": "DocumentReference", "status": "current", "docStatus": "final",
        "meta": {"security": [{"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "R"}]},
        "type": {"coding": [{"system": "http://loinc.org", "code": "11506-3", "display": "Progress note"}]},
        "subject": {"reference": format!("Patient/{patient}")},
        "date": "2026-11-25T10:00:00Z",
        "content": [{"attachment": {"contentType": "text/plain", "data": "UHN5Y2hpYXRyeSBub3Rl"}}]
    });
    assert_eq!(
        app.post(&admin, "/fhir/R4/DocumentReference", &restricted)
            .await
            .status(),
        StatusCode::CREATED
    );
    let sentinel = place_order(&app, &admin, &patient).await;
    assert_eq!(
        nurse_ws.next_update().await["resource_id"],
        sentinel.as_str()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_error_frames_and_harms_nobody() {
    let app = spawn_app().await;
    let admin = app.token("admin").await;
    let patient = visible_patients(&app, &admin).await.remove(0);
    let (mut bystander, _) = Ws::connect(&app, &admin).await;
    bystander
        .subscribe(json!({"subscription_id": "s", "patient_ids": [patient]}))
        .await;
    let (mut ws, _) = Ws::connect(&app, &admin).await;

    let cases: Vec<(Message, &str)> = vec![
        (Message::text("not json"), "invalid_json"),
        (
            Message::text(r#"{"type": "shout", "data": {}}"#),
            "unknown_type",
        ),
        (
            Message::text(r#"{"type": "subscription", "data": {}}"#),
            "invalid_message",
        ),
        (
            Message::text(r#"{"type": "subscription"}"#),
            "invalid_message",
        ),
        (
            Message::text(
                r#"{"type": "subscription", "data": {"subscription_id": "s", "rooms": ["ward:1"]}}"#,
            ),
            "invalid_room",
        ),
        (
            Message::text(
                r#"{"type": "subscription", "data": {"subscription_id": "s", "patient_ids": ["../etc"]}}"#,
            ),
            "invalid_room",
        ),
        (
            Message::text(
                r#"{"type": "subscription", "data": {"subscription_id": "s", "resource_types": ["Banana"]}}"#,
            ),
            "invalid_resource_type",
        ),
        (
            Message::text(
                r#"{"type": "subscription", "data": {"subscription_id": "s", "rooms": [], "after_seq": -4}}"#,
            ),
            "invalid_message",
        ),
        (
            Message::text(r#"{"type": "unsubscribe", "data": {"subscription_id": "nope"}}"#),
            "unknown_subscription",
        ),
        (Message::binary(vec![1u8, 2, 3]), "binary_not_supported"),
    ];
    for (message, code) in cases {
        ws.send_raw(message).await;
        let answer = ws.next_json().await;
        assert_eq!(answer["type"], "error", "{answer}");
        assert_eq!(answer["data"]["code"], code, "{answer}");
        assert!(answer["data"]["message"].as_str().unwrap().len() > 5);
    }
    // A flood of subscriptions meets the per-connection cap.
    for i in 0..32 {
        ws.subscribe(json!({"subscription_id": format!("s{i}"), "rooms": ["facility:alerts"]}))
            .await;
    }
    ws.send(json!({"type": "subscription", "data": {"subscription_id": "one-too-many", "rooms": ["facility:alerts"]}}))
        .await;
    assert_eq!(
        ws.next_json().await["data"]["code"],
        "too_many_subscriptions"
    );
    ws.send(json!({"type": "ping", "data": {"n": 1}})).await;
    assert_eq!(
        ws.next_json().await,
        json!({"type": "pong", "data": {"n": 1}})
    );

    // A huge frame closes that socket with 1009.
    ws.send_raw(Message::text("x".repeat(200 * 1024))).await;
    assert_eq!(ws.ended().await, Ended::Closed(1009));

    // The bystander noticed nothing.
    let id = place_order(&app, &admin, &patient).await;
    assert_eq!(bystander.next_update().await["resource_id"], id.as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sockets_authenticate_by_bearer_cookie_or_short_token_and_refuse_the_rest() {
    let app = spawn_app().await;
    let token = app.token("nurse.patel").await;

    // No credentials, a bad token, an access token in ?token=: accepted then closed with 4401.
    for url in [
        ws_url(&app),
        format!("{}?token=not-a-jwt", ws_url(&app)),
        format!("{}?token={token}", ws_url(&app)),
    ] {
        let mut ws = Ws::open(url).await;
        assert_eq!(ws.ended().await, Ended::Closed(4401));
    }

    // A WebSocket token in ?token=.
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
    let mut ws = Ws::open(format!(
        "{}?token={}",
        ws_url(&app),
        ws_token["token"].as_str().unwrap()
    ))
    .await;
    assert_eq!(ws.next_json().await["data"]["user"]["id"], "nurse.patel");

    // The session cookie, from our own origin; a foreign Origin is refused.
    let cookie = format!("rounds_access={token}");
    let mut request = ws_url(&app).into_client_request().unwrap();
    request
        .headers_mut()
        .insert("cookie", cookie.parse().unwrap());
    request
        .headers_mut()
        .insert("origin", app.base.parse().unwrap());
    let mut ws = Ws::open(request).await;
    assert_eq!(ws.next_json().await["type"], "welcome");
    let mut request = ws_url(&app).into_client_request().unwrap();
    request
        .headers_mut()
        .insert("cookie", cookie.parse().unwrap());
    request
        .headers_mut()
        .insert("origin", "http://evil.example".parse().unwrap());
    let mut ws = Ws::open(request).await;
    assert_eq!(ws.ended().await, Ended::Closed(4403));

    // Signing out closes the session's sockets.
    let (mut ws, _) = Ws::connect(&app, &token).await;
    let response = app
        .client
        .post(app.url("/auth/logout"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success());
    assert_eq!(ws.ended().await, Ended::Closed(4401));

    // A plain GET without an upgrade is an OperationOutcome.
    let response = app.client.get(app.url("/ws")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["resourceType"], "OperationOutcome");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeats_flow_and_silent_clients_are_dropped() {
    let app = spawn_with(|config| config.heartbeat = Duration::from_millis(200)).await;
    let admin = app.token("admin").await;
    let (mut ws, welcome) = Ws::connect(&app, &admin).await;
    assert_eq!(welcome["data"]["heartbeat_ms"], 200);
    let beat = loop {
        let frame = tokio::time::timeout(WAIT, ws.stream.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        if let Message::Text(text) = frame {
            break serde_json::from_str::<Value>(&text).unwrap();
        }
    };
    assert_eq!(beat["type"], "heartbeat");
    assert_eq!(beat["data"]["seq"], app.state.store.head());

    // A client that never answers the pings is closed after two heartbeats. Its raw bytes are read
    // without a WebSocket library, so nothing answers a ping on its behalf; the test waits for the
    // close frame (and the end of the connection) rather than for time to pass.
    let (silent, _) = Ws::connect(&app, &admin).await;
    let mut raw = silent.stream.into_inner();
    let mut received = Vec::new();
    tokio::time::timeout(WAIT, raw.read_to_end(&mut received))
        .await
        .expect("the silent socket is closed in time")
        .expect("readable until the end");
    // An unmasked close frame (0x88) carrying 1008 (0x03F0).
    assert!(
        received
            .windows(4)
            .any(|w| w[0] == 0x88 && w[2] == 0x03 && w[3] == 0xF0),
        "no close frame with 1008 among {} bytes",
        received.len()
    );
    drop(ws);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_closes_sockets_with_1001() {
    let app = spawn_app().await;
    let admin = app.token("admin").await;
    let (mut ws, _) = Ws::connect(&app, &admin).await;
    drop(app);
    assert_eq!(ws.ended().await, Ended::Closed(1001));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_describe_the_hub() {
    let app = spawn_app().await;
    let admin = app.token("admin").await;
    let patient = visible_patients(&app, &admin).await.remove(0);
    let (mut ws, _) = Ws::connect(&app, &admin).await;
    ws.subscribe(
        json!({"subscription_id": "s", "patient_ids": [patient], "rooms": ["facility:alerts"]}),
    )
    .await;
    place_order(&app, &admin, &patient).await;
    ws.next_update().await;
    let scrape = || async {
        app.client
            .get(app.url("/metrics"))
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    };
    let lines = [
        "rounds_ws_connections_open 1",
        "rounds_ws_rooms 2",
        "rounds_ws_room_members{kind=\"patient\"} 1",
        "rounds_ws_updates_sent_total{mode=\"live\"} 1",
        "rounds_ws_delivery_latency_seconds_count 1",
    ];
    // The server observes a delivery once its write to the socket returns, which may be a
    // moment after the client has read the frame: scrape until it has.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut text = scrape().await;
    while !lines.iter().all(|line| text.contains(line)) && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        text = scrape().await;
    }
    for line in lines {
        assert!(text.contains(line), "missing {line:?} in\n{text}");
    }
    // Close cleanly; once the server has answered the close, its rooms are gone.
    ws.send_raw(Message::Close(Some(CloseFrame {
        code: CloseCode::Normal,
        reason: "".into(),
    })))
    .await;
    assert_eq!(ws.ended().await, Ended::Closed(1000));
    let text = scrape().await;
    assert!(
        text.contains("rounds_ws_rooms 0") && text.contains("rounds_ws_connections_open 0"),
        "rooms outlived their last member:\n{text}"
    );
}
