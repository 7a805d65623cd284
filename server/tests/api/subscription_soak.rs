//! A hundred Subscriptions of five users, set off and on at random while orders flow, the server
//! restarted midway: every Subscription gets every event that matched while it was active,
//! exactly once, numbered 1, 2, 3, … with no gap, and `$events` lists the same.
//!
//! The model is the rule itself, in a few lines: an order for patient P matches Subscription S
//! when S watches P and is active at that moment (writes and status changes are made one at a
//! time, so "that moment" is exact).

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use futures_util::{stream::SplitSink, SinkExt, StreamExt};
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

use crate::{
    helpers::{order, Socket, PASSWORD, WAIT},
    subscriptions::run_separately,
};

const USERS: [&str; 5] = [
    "admin",
    "dr.chen",
    "dr.okafor",
    "nurse.patel",
    "nurse.garcia",
];
const PER_USER: usize = 20;
const STEPS: usize = 160;

/// Stops a server and waits for it to end (blocking).
type Stop = Box<dyn FnOnce() + Send>;

/// What each Subscription received: subscription id → (event number, focus) in arrival order.
type Received = Arc<Mutex<HashMap<String, Vec<(i64, String)>>>>;

struct Server {
    base: String,
    client: Client,
    tokens: HashMap<&'static str, String>,
    sockets: HashMap<&'static str, SplitSink<Socket, Message>>,
    readers: Vec<tokio::task::JoinHandle<()>>,
}

impl Server {
    async fn start(url: &str, site: std::path::PathBuf) -> (Self, Stop) {
        let (base, stop, thread) = run_separately(url.to_owned(), site);
        let client = Client::new();
        let mut tokens = HashMap::new();
        for user in USERS {
            let body: Value = client
                .post(format!("{base}/auth/login"))
                .json(&json!({"username": user, "password": PASSWORD}))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            tokens.insert(user, body["access_token"].as_str().unwrap().to_owned());
        }
        let server = Self {
            base,
            client,
            tokens,
            sockets: HashMap::new(),
            readers: Vec::new(),
        };
        let stop: Stop = Box::new(move || {
            stop.send(()).unwrap();
            thread.join().unwrap();
        });
        (server, stop)
    }

    async fn send(
        &self,
        user: &str,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> Value {
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.tokens[user]);
        if let Some(body) = body {
            request = request
                .header("content-type", "application/fhir+json")
                .body(body.to_string());
        }
        let response = request.send().await.unwrap();
        assert!(
            response.status().is_success(),
            "{path}: {}",
            response.status()
        );
        response.json().await.unwrap()
    }

    /// Opens one subscription socket per user; frames are recorded into `received`.
    async fn open_sockets(&mut self, received: &Received) {
        let url = self.base.replace("http://", "ws://") + "/ws/subscriptions-r4";
        for user in USERS {
            let (stream, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
            let (sink, mut frames) = stream.split();
            self.sockets.insert(user, sink);
            let received = received.clone();
            self.readers.push(tokio::spawn(async move {
                while let Some(Ok(frame)) = frames.next().await {
                    let Message::Text(text) = frame else { continue };
                    let Ok(bundle) = serde_json::from_str::<Value>(&text) else {
                        continue;
                    };
                    let status = &bundle["entry"][0]["resource"];
                    if status["type"] != "event-notification" {
                        continue;
                    }
                    let id = status["subscription"]["reference"]
                        .as_str()
                        .unwrap()
                        .trim_start_matches("Subscription/")
                        .to_owned();
                    let event = &status["notificationEvent"][0];
                    let number = event["eventNumber"].as_str().unwrap().parse().unwrap();
                    let focus = event["focus"]["reference"].as_str().unwrap().to_owned();
                    received
                        .lock()
                        .unwrap()
                        .entry(id)
                        .or_default()
                        .push((number, focus));
                }
            }));
        }
    }

    /// Binds `id` on its owner's socket, catching up after the last number it received.
    async fn bind(&mut self, user: &'static str, id: &str, received: &Received) {
        let parameters = self
            .send(
                user,
                reqwest::Method::GET,
                &format!("/fhir/R4/Subscription/{id}/$get-ws-binding-token"),
                None,
            )
            .await;
        let token = parameters["parameter"][0]["valueString"].as_str().unwrap();
        let since = received
            .lock()
            .unwrap()
            .get(id)
            .and_then(|got| got.last().map(|(n, _)| *n))
            .unwrap_or(0);
        let frame = json!({"type": "bind-with-token", "payload": {"token": token, "eventsSinceNumber": since}});
        self.sockets
            .get_mut(user)
            .unwrap()
            .send(Message::text(frame.to_string()))
            .await
            .unwrap();
    }
}

/// A small deterministic generator (the seed is printed, so a failure can be replayed).
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 33) as usize) % n
    }
}

struct Sub {
    id: String,
    owner: &'static str,
    patient: String,
    active: bool,
    /// The model: the foci it must receive, in order.
    expected: Vec<String>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_subscriptions_toggled_and_restarted_get_every_matching_event_exactly_once() {
    let seed = std::env::var("SOAK_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    println!("SOAK_SEED={seed}");
    let mut random = Lcg(seed);
    let dir = tempfile::tempdir().unwrap();
    let url = crate::helpers::database_url(dir.path()).await;
    let received: Received = Arc::default();

    let (mut server, stop) = Server::start(&url, dir.path().join("site")).await;
    // Three patients each user sees; orders go to the union, so some match nobody's.
    let mut pool: Vec<String> = Vec::new();
    let mut seen: HashMap<&str, Vec<String>> = HashMap::new();
    for user in USERS {
        let bundle = server
            .send(
                user,
                reqwest::Method::GET,
                "/fhir/R4/Patient?_count=3&_sort=_id",
                None,
            )
            .await;
        let ids: Vec<String> = bundle["entry"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["resource"]["id"].as_str().unwrap().to_owned())
            .collect();
        assert!(!ids.is_empty(), "{user} sees patients");
        pool.extend(ids.iter().cloned());
        seen.insert(user, ids);
    }
    pool.sort();
    pool.dedup();
    let mut subs: Vec<Sub> = Vec::new();
    for user in USERS {
        for i in 0..PER_USER {
            let patient = seen[user][i % seen[user].len()].clone();
            let created = server
                .send(
                    user,
                    reqwest::Method::POST,
                    "/fhir/R4/Subscription",
                    Some(&json!({
                        "resourceType": "Subscription", "status": "requested", "reason": "soak",
                        "criteria": format!("ServiceRequest?patient={patient}"),
                        "channel": {"type": "websocket"}
                    })),
                )
                .await;
            subs.push(Sub {
                id: created["id"].as_str().unwrap().to_owned(),
                owner: user,
                patient,
                active: true,
                expected: Vec::new(),
            });
        }
    }
    server.open_sockets(&received).await;
    for sub in &subs {
        server.bind(sub.owner, &sub.id, &received).await;
    }

    let mut stop = Some(stop);
    for step in 0..STEPS {
        if step == STEPS / 2 {
            // Those set off have all they will get before the restart (an inactive one is not
            // re-bound); the active ones may have frames in flight, which the restart loses.
            wait_for(&received, subs.iter().filter(|s| !s.active)).await;
            // Restart: the sockets end with the server; the client re-binds every active one
            // with the last number it received.
            let halt = stop.take().unwrap();
            tokio::task::spawn_blocking(halt).await.unwrap();
            for reader in server.readers.drain(..) {
                reader.await.unwrap();
            }
            let (next, next_stop) = Server::start(&url, dir.path().join("site")).await;
            server = next;
            stop = Some(next_stop);
            server.open_sockets(&received).await;
            for sub in subs.iter().filter(|s| s.active) {
                server.bind(sub.owner, &sub.id, &received).await;
            }
        }
        if random.below(3) == 0 {
            let sub = &mut subs[random.below(PER_USER * USERS.len())];
            let path = format!("/fhir/R4/Subscription/{}", sub.id);
            let mut body = server
                .send(sub.owner, reqwest::Method::GET, &path, None)
                .await;
            sub.active = !sub.active;
            body["status"] = json!(if sub.active { "requested" } else { "off" });
            server
                .send(sub.owner, reqwest::Method::PUT, &path, Some(&body))
                .await;
            if sub.active {
                let (owner, id) = (sub.owner, sub.id.clone());
                server.bind(owner, &id, &received).await;
            }
        } else {
            let patient = pool[random.below(pool.len())].clone();
            let placed = server
                .send(
                    "admin",
                    reqwest::Method::POST,
                    "/fhir/R4/ServiceRequest",
                    Some(&order(&patient)),
                )
                .await;
            let focus = format!("ServiceRequest/{}", placed["id"].as_str().unwrap());
            for sub in subs.iter_mut().filter(|s| s.active && s.patient == patient) {
                sub.expected.push(focus.clone());
            }
        }
    }

    wait_for(&received, subs.iter()).await;
    let got = received.lock().unwrap().clone();
    let mut matched = 0;
    for sub in &subs {
        let list = got.get(&sub.id).cloned().unwrap_or_default();
        let numbers: Vec<i64> = list.iter().map(|(n, _)| *n).collect();
        let foci: Vec<String> = list.into_iter().map(|(_, f)| f).collect();
        let expected_numbers: Vec<i64> = (1..=sub.expected.len() as i64).collect();
        assert_eq!(
            numbers, expected_numbers,
            "{} (seed {seed}): numbers",
            sub.id
        );
        assert_eq!(
            foci, sub.expected,
            "{} (seed {seed}): every match once",
            sub.id
        );
        matched += foci.len();
        let events = server
            .send(
                sub.owner,
                reqwest::Method::GET,
                &format!(
                    "/fhir/R4/Subscription/{}/$events?eventsSinceNumber=1",
                    sub.id
                ),
                None,
            )
            .await;
        let listed: Vec<String> = events["entry"][0]["resource"]["notificationEvent"]
            .as_array()
            .map(|list| {
                list.iter()
                    .map(|e| e["focus"]["reference"].as_str().unwrap().to_owned())
                    .collect()
            })
            .unwrap_or_default();
        assert_eq!(listed, sub.expected, "{} (seed {seed}): $events", sub.id);
    }
    assert!(
        matched > 100,
        "the run exercised the matcher ({matched} notifications)"
    );
    let status = server
        .client
        .get(format!("{}/health", server.base))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, StatusCode::OK);
    let halt = stop.take().unwrap();
    tokio::task::spawn_blocking(halt).await.unwrap();
}

/// Waits until each of `subs` has received as many notifications as the model expects (or a
/// while has passed: the comparison that follows then says what is missing).
async fn wait_for<'a>(received: &Received, subs: impl Iterator<Item = &'a Sub> + Clone) {
    let deadline = Instant::now() + WAIT;
    loop {
        let complete = {
            let got = received.lock().unwrap();
            subs.clone()
                .all(|s| got.get(&s.id).map_or(0, Vec::len) >= s.expected.len())
        };
        if complete || Instant::now() > deadline {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
