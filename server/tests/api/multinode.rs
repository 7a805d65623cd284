//! Several nodes on one PostgreSQL: each node a real `rounds` process (so SIGKILL is real), all
//! on one database of the test binary's cluster.

use std::{
    collections::BTreeSet,
    time::{Duration, Instant},
};

use futures_util::{SinkExt, StreamExt};
use reqwest::StatusCode;
use serde_json::{json, Value};
use sqlx::{Connection, PgConnection};
use tokio_tungstenite::tungstenite::{client::IntoClientRequest, Message};

use crate::{
    helpers::{close_code, order, ServerProcess, Socket, PASSWORD, WAIT},
    pg_cluster::fresh_database,
};

/// One `rounds` process.
type Node = ServerProcess;

impl Node {
    /// Starts node `name` on `database_url` and waits until it answers `/health`.
    async fn named(database_url: &str, name: &str) -> Node {
        ServerProcess::start(Some(database_url), &[("ROUNDS_NODE_ID", name)]).await
    }

    async fn token(&self, username: &str) -> String {
        let body: Value = reqwest::Client::new()
            .post(self.url("/auth/login"))
            .json(&json!({"username": username, "password": PASSWORD}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        body["access_token"].as_str().unwrap().to_owned()
    }

    /// Opens a socket subscribed to `pat-001`'s room from `after_seq`; returns it and the head
    /// its `welcome` announced.
    async fn subscribe(&self, token: &str, after_seq: Option<i64>) -> (Socket, i64) {
        let mut request = format!("ws://{}/ws", self.base.trim_start_matches("http://"))
            .into_client_request()
            .unwrap();
        request
            .headers_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
        let (mut ws, _) = tokio_tungstenite::connect_async(request).await.unwrap();
        let welcome = next_text(&mut ws).await.expect("welcome");
        assert_eq!(welcome["type"], "welcome");
        let mut data = json!({"subscription_id": "s", "patient_ids": ["pat-001"], "resource_types": [], "rooms": []});
        if let Some(after) = after_seq {
            data["after_seq"] = json!(after);
        }
        ws.send(Message::text(
            json!({"type": "subscription", "data": data}).to_string(),
        ))
        .await
        .unwrap();
        loop {
            let frame = next_text(&mut ws).await.expect("subscribed");
            if frame["type"] == "subscribed" {
                assert_eq!(frame["data"]["denied"], json!([]));
                break;
            }
        }
        (ws, welcome["data"]["seq"].as_i64().unwrap())
    }
}

/// The next text frame as JSON; `None` when the socket closes or fails (its node died).
async fn next_text(ws: &mut Socket) -> Option<Value> {
    loop {
        let frame = tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("a frame arrives in time");
        match frame {
            Some(Ok(Message::Text(text))) => return serde_json::from_str(&text).ok(),
            Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return None,
            Some(Ok(_)) => {}
        }
    }
}

/// The next `update`, or `None` when the socket ended.
async fn next_update(ws: &mut Socket) -> Option<Value> {
    loop {
        let frame = next_text(ws).await?;
        if frame["type"] == "update" {
            return Some(frame["data"].clone());
        }
    }
}

/// Creates an order on `base`; its id when the node answered 201.
async fn create(client: &reqwest::Client, base: &str, token: &str) -> Option<String> {
    let response = client
        .post(format!("{base}/fhir/R4/ServiceRequest"))
        .bearer_auth(token)
        .header("content-type", "application/fhir+json")
        .body(order("pat-001").to_string())
        .send()
        .await
        .ok()?;
    if response.status() != StatusCode::CREATED {
        return None;
    }
    let body: Value = response.json().await.ok()?;
    body["id"].as_str().map(str::to_owned)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_on_one_node_receives_what_is_written_on_another() {
    let database = fresh_database().await;
    let a = Node::named(&database, "node-a").await;
    let b = Node::named(&database, "node-b").await;
    let token = a.token("dr.chen").await;
    let (mut on_a, _) = a.subscribe(&token, None).await;

    // The token was issued by A; B shares the database and the key, so it accepts it too.
    let id = create(&reqwest::Client::new(), &b.base, &token)
        .await
        .expect("B creates the order");

    let update = next_update(&mut on_a).await.expect("A delivers B's write");
    assert_eq!(update["resource_id"], id.as_str());
    assert_eq!(update["event_type"], "ORDER_PLACED");

    // Notifications only wake readers: with every node's LISTEN connection cut, a write on B
    // still reaches A's client (re-LISTEN and re-read, or the once-a-second poll of the log).
    let mut admin = PgConnection::connect(&database).await.unwrap();
    let cut: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
         WHERE datname = current_database() AND query ILIKE 'LISTEN%'",
    )
    .fetch_all(&mut admin)
    .await
    .unwrap();
    assert!(
        cut.len() >= 2,
        "each node holds a LISTEN connection: {cut:?}"
    );
    let id = create(&reqwest::Client::new(), &b.base, &token)
        .await
        .expect("B creates the order");
    let update = next_update(&mut on_a).await.expect("A delivers B's write");
    assert_eq!(update["resource_id"], id.as_str());

    // Each node reports itself in its metrics.
    for (node, name) in [(&a, "node-a"), (&b, "node-b")] {
        let metrics = reqwest::Client::new()
            .get(node.url("/metrics"))
            .bearer_auth(node.token("admin").await)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            metrics.contains(&format!(
                "rounds_node_info{{node=\"{name}\",backend=\"postgres\"}} 1"
            )),
            "{metrics}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_on_two_nodes_give_every_client_one_gap_free_order() {
    let database = fresh_database().await;
    let a = Node::named(&database, "node-a").await;
    let b = Node::named(&database, "node-b").await;
    let token = a.token("dr.chen").await;
    let (mut on_a, head) = a.subscribe(&token, None).await;
    let (mut on_b, _) = b.subscribe(&token, Some(head)).await;

    const WRITERS: usize = 16;
    const EACH: usize = 10;
    let client = reqwest::Client::new();
    let mut writers = Vec::new();
    for writer in 0..WRITERS {
        let base = if writer % 2 == 0 {
            a.base.clone()
        } else {
            b.base.clone()
        };
        let (client, token) = (client.clone(), token.clone());
        writers.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            for _ in 0..EACH {
                ids.push(
                    create(&client, &base, &token)
                        .await
                        .expect("a create succeeds"),
                );
            }
            ids
        }));
    }
    let mut created = BTreeSet::new();
    for writer in writers {
        created.extend(writer.await.unwrap());
    }
    assert_eq!(created.len(), WRITERS * EACH);

    let mut seen = Vec::new();
    for ws in [&mut on_a, &mut on_b] {
        let mut updates = Vec::new();
        while updates.len() < WRITERS * EACH {
            let update = next_update(ws).await.expect("the socket stays open");
            updates.push((
                update["seq"].as_i64().unwrap(),
                update["resource_id"].as_str().unwrap().to_owned(),
            ));
        }
        // Gap-free and duplicate-free: exactly head+1, head+2, … in order.
        let seqs: Vec<i64> = updates.iter().map(|(seq, _)| *seq).collect();
        let expected: Vec<i64> = (head + 1..=head + (WRITERS * EACH) as i64).collect();
        assert_eq!(seqs, expected, "seq has a gap, a duplicate or a swap");
        let ids: BTreeSet<String> = updates.iter().map(|(_, id)| id.clone()).collect();
        assert_eq!(ids, created, "every write arrives exactly once");
        seen.push(updates);
    }
    assert_eq!(seen[0], seen[1], "both nodes deliver the same order");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_of_a_killed_node_resume_on_another_and_miss_nothing() {
    let database = fresh_database().await;
    let mut a = Node::named(&database, "node-a").await;
    let b = Node::named(&database, "node-b").await;
    let token = a.token("dr.chen").await;
    let (mut on_a, head) = a.subscribe(&token, None).await;

    // Writers on both nodes keep writing until told to stop; once A is dead, its writers go on
    // against B, as behind a load balancer.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let client = reqwest::Client::new();
    let mut writers = Vec::new();
    for writer in 0..4 {
        let mut base = if writer % 2 == 0 {
            a.base.clone()
        } else {
            b.base.clone()
        };
        let fallback = b.base.clone();
        let (client, token, stop) = (client.clone(), token.clone(), stop.clone());
        writers.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                match create(&client, &base, &token).await {
                    Some(id) => ids.push(id),
                    None => base = fallback.clone(),
                }
            }
            ids
        }));
    }

    // Receive some updates on A, then kill it mid-stream.
    let mut received: Vec<(i64, String)> = Vec::new();
    while received.len() < 20 {
        let update = next_update(&mut on_a).await.expect("A delivers");
        received.push((
            update["seq"].as_i64().unwrap(),
            update["resource_id"].as_str().unwrap().to_owned(),
        ));
    }
    a.child.kill().expect("SIGKILL node A");
    a.child.wait().unwrap();
    // Whatever A had already sent is still readable; then the socket ends.
    while let Some(update) = next_update(&mut on_a).await {
        received.push((
            update["seq"].as_i64().unwrap(),
            update["resource_id"].as_str().unwrap().to_owned(),
        ));
    }

    // The client resumes on B from the last seq it applied, while B's writers go on.
    let last = received.last().map_or(head, |(seq, _)| *seq);
    let (mut on_b, _) = b.subscribe(&token, Some(last)).await;
    let mut after_kill = 0;
    while after_kill < 30 {
        let update = next_update(&mut on_b).await.expect("B delivers");
        received.push((
            update["seq"].as_i64().unwrap(),
            update["resource_id"].as_str().unwrap().to_owned(),
        ));
        after_kill += 1;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut created = BTreeSet::new();
    for writer in writers {
        created.extend(writer.await.unwrap());
    }

    // Everything committed up to B's head arrives: read B's head from a fresh welcome.
    let (_, final_head) = b.subscribe(&token, None).await;
    while received.last().map_or(head, |(seq, _)| *seq) < final_head {
        let update = next_update(&mut on_b).await.expect("B delivers the rest");
        received.push((
            update["seq"].as_i64().unwrap(),
            update["resource_id"].as_str().unwrap().to_owned(),
        ));
    }
    let seqs: Vec<i64> = received.iter().map(|(seq, _)| *seq).collect();
    let expected: Vec<i64> = (head + 1..=final_head).collect();
    assert_eq!(seqs, expected, "a gap or a duplicate across the failover");
    let ids: BTreeSet<String> = received.iter().map(|(_, id)| id.clone()).collect();
    // A write in flight when A died may have committed without its answer: received ⊇ created.
    let missing: Vec<&String> = created.difference(&ids).collect();
    assert!(
        missing.is_empty(),
        "acknowledged writes never delivered: {missing:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_out_on_one_node_closes_the_sessions_sockets_on_every_node() {
    let database = fresh_database().await;
    let a = Node::named(&database, "node-a").await;
    let b = Node::named(&database, "node-b").await;
    let token = a.token("nurse.patel").await;
    let (mut on_b, _) = b.subscribe(&token, None).await;
    let response = reqwest::Client::new()
        .post(a.url("/auth/logout"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success());
    assert_eq!(close_code(&mut on_b).await, Some(4401));
    let response = reqwest::Client::new()
        .get(b.url("/auth/me"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

/// The default `--session-recheck-ms`: the longest a socket outlives its session once its node
/// reaches the database again.
const SESSION_RECHECK: Duration = Duration::from_secs(5);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_cut_off_from_the_database_during_a_sign_out_closes_the_socket_when_back() {
    let database = fresh_database().await;
    let mut admin = PgConnection::connect(&database).await.unwrap();
    // Node C logs in as a role of its own, so that its connections can be cut and refused.
    let role = format!("node_c_{}", database.rsplit('/').next().unwrap());
    sqlx::query(&format!("CREATE ROLE {role} LOGIN SUPERUSER"))
        .execute(&mut admin)
        .await
        .unwrap();
    let a = Node::named(&database, "node-a").await;
    let _b = Node::named(&database, "node-b").await;
    let c = Node::named(
        &database.replacen("postgres@", &format!("{role}@"), 1),
        "node-c",
    )
    .await;
    let token = a.token("nurse.patel").await;
    let (mut on_c, _) = c.subscribe(&token, None).await;
    let mut bound_on_c = bind_on(&c, &a, &token).await;

    // C loses the database: its connections are cut, new ones refused.
    sqlx::query(&format!("ALTER ROLE {role} NOLOGIN"))
        .execute(&mut admin)
        .await
        .unwrap();
    let deadline = Instant::now() + WAIT;
    loop {
        let left: Vec<bool> = sqlx::query_scalar(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1",
        )
        .bind(&role)
        .fetch_all(&mut admin)
        .await
        .unwrap();
        if left.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "C's connections outlive termination"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Meanwhile the session signs out on A, and A writes an order the session would have seen.
    let client = reqwest::Client::new();
    let out = client
        .post(a.url("/auth/logout"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert!(out.status().is_success());
    let admin_token = a.token("admin").await;
    create(&client, &a.base, &admin_token)
        .await
        .expect("A creates the order");

    // C reaches the database again: its socket of the ended session closes within the bound,
    // and the order written meanwhile never reaches it.
    sqlx::query(&format!("ALTER ROLE {role} LOGIN"))
        .execute(&mut admin)
        .await
        .unwrap();
    let restored = Instant::now();
    let (code, texts) = close_within(&mut on_c, SESSION_RECHECK).await;
    let took = restored.elapsed();
    assert_eq!(code, Some(4401));
    assert!(
        texts.iter().all(|frame| frame["type"] != "update"),
        "delivered after sign-out: {texts:?}"
    );
    let (code, texts) = close_within(&mut bound_on_c, SESSION_RECHECK).await;
    let both = restored.elapsed();
    assert_eq!(code, Some(4401));
    assert_eq!(texts.len(), 1, "only the OperationOutcome: {texts:?}");
    assert_eq!(texts[0]["resourceType"], "OperationOutcome", "{texts:?}");
    assert!(both < SESSION_RECHECK, "closed {both:?} after C was back");
    eprintln!(
        "C closed the ended session's /ws socket {took:?} and its subscription socket {both:?} \
         after its database came back"
    );
    let me = client
        .get(c.url("/auth/me"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), StatusCode::UNAUTHORIZED);
}

/// Reads `ws` until it closes, which must happen within `bound`: its close code and the text
/// frames before the close (heartbeats left out).
async fn close_within(ws: &mut Socket, bound: Duration) -> (Option<u16>, Vec<Value>) {
    let deadline = tokio::time::Instant::now() + bound;
    let mut texts = Vec::new();
    loop {
        let frame = tokio::time::timeout_at(deadline, ws.next())
            .await
            .expect("the socket closes within the bound");
        match frame {
            Some(Ok(Message::Close(close))) => return (close.map(|c| c.code.into()), texts),
            Some(Ok(Message::Text(text))) => {
                let frame: Value = serde_json::from_str(&text).unwrap();
                let heartbeat = frame["type"] == "heartbeat"
                    || frame["entry"][0]["resource"]["type"] == "heartbeat";
                if !heartbeat {
                    texts.push(frame);
                }
            }
            Some(Ok(_)) => {}
            Some(Err(_)) | None => return (None, texts),
        }
    }
}

/// A `/ws/subscriptions-r4` socket on `node`, bound to a new Subscription (watching `pat-001`'s
/// orders) made on `issuer` with `token`, whose binding token `issuer` gave.
async fn bind_on(node: &Node, issuer: &Node, token: &str) -> Socket {
    let client = reqwest::Client::new();
    let response = client
        .post(issuer.url("/fhir/R4/Subscription"))
        .bearer_auth(token)
        .header("content-type", "application/fhir+json")
        .body(
            json!({
                "resourceType": "Subscription", "status": "requested", "reason": "three nodes",
                "criteria": "ServiceRequest?patient=pat-001", "channel": {"type": "websocket"}
            })
            .to_string(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let subscription: Value = response.json().await.unwrap();
    let id = subscription["id"].as_str().unwrap();
    let parameters: Value = client
        .get(issuer.url(&format!("/fhir/R4/Subscription/{id}/$get-ws-binding-token")))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let binding = parameters["parameter"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "token")
        .and_then(|p| p["valueString"].as_str())
        .unwrap()
        .to_owned();
    let (mut ws, _) = tokio_tungstenite::connect_async(format!(
        "ws://{}/ws/subscriptions-r4",
        node.base.trim_start_matches("http://")
    ))
    .await
    .unwrap();
    ws.send(Message::text(
        json!({"type": "bind-with-token", "payload": {"token": binding}}).to_string(),
    ))
    .await
    .unwrap();
    let handshake = next_bundle(&mut ws).await;
    assert_eq!(
        handshake["entry"][0]["resource"]["type"], "handshake",
        "{handshake}"
    );
    ws
}

/// The next message of a `/ws/subscriptions-r4` socket that is not a heartbeat Bundle.
async fn next_bundle(ws: &mut Socket) -> Value {
    loop {
        let frame = next_text(ws)
            .await
            .expect("the subscription socket stays open");
        if frame["entry"][0]["resource"]["type"] != "heartbeat" {
            return frame;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fhir_subscriptions_work_on_any_node_and_outlive_the_matcher_node() {
    let database = fresh_database().await;
    // A starts first, so A wins the matcher lease.
    let mut a = Node::named(&database, "node-a").await;
    let b = Node::named(&database, "node-b").await;
    let token = a.token("admin").await;
    let client = reqwest::Client::new();

    // Created on B, its binding token asked of A, bound on B.
    let response = client
        .post(b.url("/fhir/R4/Subscription"))
        .bearer_auth(&token)
        .header("content-type", "application/fhir+json")
        .body(
            json!({
                "resourceType": "Subscription", "status": "requested", "reason": "two nodes",
                "criteria": "ServiceRequest?patient=pat-001", "channel": {"type": "websocket"}
            })
            .to_string(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let subscription: Value = response.json().await.unwrap();
    let id = subscription["id"].as_str().unwrap().to_owned();
    let parameters: Value = client
        .get(a.url(&format!("/fhir/R4/Subscription/{id}/$get-ws-binding-token")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let binding = parameters["parameter"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "token")
        .and_then(|p| p["valueString"].as_str())
        .unwrap()
        .to_owned();
    let (mut on_b, _) = tokio_tungstenite::connect_async(format!(
        "ws://{}/ws/subscriptions-r4",
        b.base.trim_start_matches("http://")
    ))
    .await
    .unwrap();
    on_b.send(Message::text(
        json!({"type": "bind-with-token", "payload": {"token": binding}}).to_string(),
    ))
    .await
    .unwrap();
    let handshake = next_bundle(&mut on_b).await;
    assert_eq!(
        handshake["entry"][0]["resource"]["type"], "handshake",
        "{handshake}"
    );

    // A write on A, numbered by A's matcher, delivered by B's follower.
    let first = create(&client, &a.base, &token).await.unwrap();
    let bundle = next_bundle(&mut on_b).await;
    let event = &bundle["entry"][0]["resource"]["notificationEvent"][0];
    assert_eq!(event["eventNumber"], "1", "{bundle}");
    assert_eq!(
        event["focus"]["reference"],
        format!("ServiceRequest/{first}")
    );

    // The matcher's node dies; B takes the lease over and numbering goes on without a gap.
    a.child.kill().unwrap();
    a.child.wait().unwrap();
    let second = create(&client, &b.base, &token).await.unwrap();
    let bundle = next_bundle(&mut on_b).await;
    let event = &bundle["entry"][0]["resource"]["notificationEvent"][0];
    assert_eq!(event["eventNumber"], "2", "{bundle}");
    assert_eq!(
        event["focus"]["reference"],
        format!("ServiceRequest/{second}")
    );

    let events: Value = client
        .get(b.url(&format!(
            "/fhir/R4/Subscription/{id}/$events?eventsSinceNumber=0"
        )))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let numbers: Vec<&str> = events["entry"][0]["resource"]["notificationEvent"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["eventNumber"].as_str().unwrap())
        .collect();
    assert_eq!(numbers, ["1", "2"], "{events}");
}

/// A FHIR JSON request to a node.
async fn fhir(
    node: &Node,
    method: reqwest::Method,
    token: &str,
    path: &str,
    body: Option<&Value>,
) -> (StatusCode, Value) {
    let mut request = reqwest::Client::new()
        .request(method, node.url(path))
        .bearer_auth(token);
    if let Some(body) = body {
        request = request
            .header("content-type", "application/fhir+json")
            .body(body.to_string());
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// The ids of the patients a token sees.
async fn patients_of(node: &Node, token: &str) -> Vec<String> {
    let (_, bundle) = fhir(
        node,
        reqwest::Method::GET,
        token,
        "/fhir/R4/Patient?_count=1000",
        None,
    )
    .await;
    bundle["entry"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["search"]["mode"] == "match")
        .map(|e| e["resource"]["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_care_team_change_on_one_node_stops_delivery_on_another() {
    let database = fresh_database().await;
    let a = Node::named(&database, "node-a").await;
    let b = Node::named(&database, "node-b").await;
    let admin = a.token("admin").await;
    let okafor = a.token("dr.okafor").await;
    let own = patients_of(&a, &okafor).await.remove(0);
    let before = patients_of(&a, &okafor).await;
    let outsider = patients_of(&a, &admin)
        .await
        .into_iter()
        .find(|p| !before.contains(p))
        .unwrap();
    let (_, teams) = fhir(
        &a,
        reqwest::Method::GET,
        &admin,
        &format!("/fhir/R4/CareTeam?patient={outsider}"),
        None,
    )
    .await;
    let original = teams["entry"][0]["resource"].clone();
    let team = original["id"].as_str().unwrap().to_owned();
    let mut with_okafor = original.clone();
    with_okafor["participant"]
        .as_array_mut()
        .unwrap()
        .push(json!({"member": {"reference": "Practitioner/pr-okafor"}}));
    let (status, _) = fhir(
        &a,
        reqwest::Method::PUT,
        &admin,
        &format!("/fhir/R4/CareTeam/{team}"),
        Some(&with_okafor),
    )
    .await;
    assert_eq!(status, StatusCode::OK);

    // Dr. Okafor listens on B; everything is written on A.
    let mut request = format!("ws://{}/ws", b.base.trim_start_matches("http://"))
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("authorization", format!("Bearer {okafor}").parse().unwrap());
    let (mut on_b, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    next_text(&mut on_b).await.expect("welcome");
    on_b.send(Message::text(
        json!({"type": "subscription", "data": {"subscription_id": "s", "patient_ids": [outsider, own]}})
            .to_string(),
    ))
    .await
    .unwrap();
    loop {
        let frame = next_text(&mut on_b).await.expect("subscribed");
        if frame["type"] == "subscribed" {
            assert_eq!(frame["data"]["denied"], json!([]));
            break;
        }
    }
    let place = |patient: String| {
        let admin = admin.clone();
        let a = &a;
        async move {
            let mut body = order(&patient);
            body["subject"] = json!({"reference": format!("Patient/{patient}")});
            let (status, created) = fhir(
                a,
                reqwest::Method::POST,
                &admin,
                "/fhir/R4/ServiceRequest",
                Some(&body),
            )
            .await;
            assert_eq!(status, StatusCode::CREATED);
            created["id"].as_str().unwrap().to_owned()
        }
    };
    let first = place(outsider.clone()).await;
    assert_eq!(
        next_update(&mut on_b).await.unwrap()["resource_id"],
        first.as_str()
    );

    let mut without = original.clone();
    without.as_object_mut().unwrap().remove("meta");
    let (status, _) = fhir(
        &a,
        reqwest::Method::PUT,
        &admin,
        &format!("/fhir/R4/CareTeam/{team}"),
        Some(&without),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    place(outsider.clone()).await;
    let sentinel = place(own.clone()).await;
    assert_eq!(
        next_update(&mut on_b).await.unwrap()["resource_id"],
        sentinel.as_str(),
        "B dropped its access cache on A's care-team change: the later order did not reach him"
    );
}
