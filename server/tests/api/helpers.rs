//! Spawning isolated Rounds instances for the integration tests: each on its own port with its
//! own fresh database, stopped when the `TestApp` is dropped. The `api` test binary runs on
//! SQLite; `api_pg` runs the same suites on PostgreSQL (`crate::POSTGRES`), each test with a
//! database of its own on one throwaway cluster (`pg_cluster`).

use std::{
    process::{Child, Command, Stdio},
    sync::OnceLock,
    time::{Duration, Instant},
};

use futures_util::StreamExt;
use tokio::net::TcpStream;
use tokio_tungstenite::{tungstenite::Message, MaybeTlsStream, WebSocketStream};

use reqwest::{Client, Method, Response, StatusCode};
use rounds::{state::AppState, Application, Config};
use serde_json::{json, Value};
use tempfile::TempDir;
use tokio::sync::oneshot;

pub const PASSWORD: &str = "rounds-demo";
pub const SECRET: &str = "integration-test-secret-0123456789abcdef";

pub struct TestApp {
    pub base: String,
    pub client: Client,
    pub state: AppState,
    stop: Option<oneshot::Sender<()>>,
    _dir: TempDir,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

fn tracing_once() {
    static INIT: OnceLock<()> = OnceLock::new();
    INIT.get_or_init(|| {
        if std::env::var_os("TEST_LOG").is_some() {
            tracing_subscriber::fmt().with_env_filter("info").init();
        }
    });
}

/// A fresh, empty database for one test: a SQLite file in `dir`, or a new database on the test
/// binary's PostgreSQL cluster.
pub async fn database_url(dir: &std::path::Path) -> String {
    if crate::POSTGRES {
        crate::pg_cluster::fresh_database().await
    } else {
        format!("sqlite://{}/rounds.db", dir.display())
    }
}

/// An app with the demo data set and accounts.
pub async fn spawn_app() -> TestApp {
    spawn_with(|_| {}).await
}

/// An app whose configuration `adjust` may change first.
pub async fn spawn_with(adjust: impl FnOnce(&mut Config)) -> TestApp {
    tracing_once();
    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        database_url: database_url(dir.path()).await,
        jwt_secret: SECRET.into(),
        jwt_secret_is_default: false,
        seed_demo: true,
        site_root: dir.path().join("site"),
        ..Config::default()
    };
    adjust(&mut config);
    let app = Application::build(config).await.expect("the app builds");
    let base = format!("http://{}", app.local_addr());
    let state = app.state().clone();
    let (stop_tx, stop_rx) = oneshot::channel();
    tokio::spawn(app.run_until(async move {
        let _ = stop_rx.await;
    }));
    TestApp {
        base,
        client: Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
        state,
        stop: Some(stop_tx),
        _dir: dir,
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Signs in and returns the access token.
    pub async fn token(&self, username: &str) -> String {
        let response = self
            .client
            .post(self.url("/auth/login"))
            .json(&json!({"username": username, "password": PASSWORD}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "login of {username}");
        let body: Value = response.json().await.unwrap();
        body["access_token"].as_str().unwrap().to_owned()
    }

    pub async fn request(
        &self,
        method: Method,
        token: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Response {
        let mut request = self
            .client
            .request(method, self.url(path))
            .bearer_auth(token);
        if let Some(body) = body {
            request = request
                .header("content-type", "application/fhir+json")
                .body(body.to_string());
        }
        request.send().await.unwrap()
    }

    pub async fn get(&self, token: &str, path: &str) -> Response {
        self.request(Method::GET, token, path, None).await
    }

    pub async fn get_json(&self, token: &str, path: &str) -> (StatusCode, Value) {
        let response = self.get(token, path).await;
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    pub async fn post(&self, token: &str, path: &str, body: &Value) -> Response {
        self.request(Method::POST, token, path, Some(body)).await
    }

    pub async fn put(&self, token: &str, path: &str, body: &Value) -> Response {
        self.request(Method::PUT, token, path, Some(body)).await
    }

    pub async fn delete(&self, token: &str, path: &str) -> Response {
        self.request(Method::DELETE, token, path, None).await
    }

    /// Counts of what a write leaves behind: (resources of `rtype`, event log head, audit rows).
    pub async fn footprint(&self, rtype: &str) -> (i64, i64, i64) {
        let store = &self.state.store;
        store.flush_audit().await.unwrap();
        (
            store.count(rtype).await.unwrap(),
            store
                .events_after(0, usize::MAX >> 1)
                .await
                .unwrap()
                .last()
                .map_or(0, |e| e.seq),
            store.audit_rows(None, 0, 0).await.unwrap().0,
        )
    }
}

/// A real `rounds` process (the release binary), for what only a process shows: its memory, a
/// SIGKILL. Killed when dropped.
pub struct ServerProcess {
    pub child: Child,
    pub base: String,
    _dir: TempDir,
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl ServerProcess {
    /// Starts the binary with `env` on top of the test settings, on `database` (several
    /// servers may share one PostgreSQL database) or else on a fresh one, and waits until it
    /// answers `/health`.
    pub async fn start(database: Option<&str>, env: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let database_url = match database {
            Some(url) => url.to_owned(),
            None => database_url(dir.path()).await,
        };
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .unwrap()
            .port();
        let log = std::fs::File::create(dir.path().join("log")).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_rounds"))
            .env("ROUNDS_LISTEN", format!("127.0.0.1:{port}"))
            .env("ROUNDS_DATABASE_URL", &database_url)
            .env("ROUNDS_JWT_SECRET", SECRET)
            .env("ROUNDS_SITE_ROOT", dir.path().join("site"))
            .env("RUST_LOG", "warn")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("the rounds binary starts");
        let server = ServerProcess {
            child,
            base: format!("http://127.0.0.1:{port}"),
            _dir: dir,
        };
        let http = Client::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(response) = http.get(server.url("/health")).send().await {
                if response.status().is_success() {
                    return server;
                }
            }
            assert!(Instant::now() < deadline, "the server did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }
}

/// A valid order for `patient`.
pub fn order(patient: &str) -> Value {
    json!({
        "resourceType": "ServiceRequest",
        "status": "active",
        "intent": "order",
        "category": [{"coding": [{"system": "http://snomed.info/sct", "code": "108252007", "display": "Laboratory procedure"}]}],
        "code": {"coding": [{"system": "http://loinc.org", "code": "58410-2", "display": "CBC panel"}], "text": "CBC"},
        "subject": {"reference": format!("Patient/{patient}")},
        "authoredOn": "2026-11-25T08:00:00Z"
    })
}

/// Entries of a Bundle with the given search mode.
pub fn entries<'a>(bundle: &'a Value, mode: &str) -> Vec<&'a Value> {
    bundle["entry"]
        .as_array()
        .map(|entries| {
            entries
                .iter()
                .filter(|e| e["search"]["mode"] == mode)
                .map(|e| &e["resource"])
                .collect()
        })
        .unwrap_or_default()
}

/// The ids of the patients `username` sees in a Patient search.
pub async fn visible_patients(app: &TestApp, token: &str) -> Vec<String> {
    let (status, bundle) = app.get_json(token, "/fhir/R4/Patient?_count=1000").await;
    assert_eq!(status, StatusCode::OK);
    let mut ids: Vec<String> = entries(&bundle, "match")
        .iter()
        .map(|p| p["id"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    ids
}

/// Dr. Okafor put on the care team of a patient he could not see (see [`okafor_joins_a_team`]).
pub struct TeamChange {
    /// A patient he saw already.
    pub own: String,
    /// The patient he sees now.
    pub outsider: String,
    /// The CareTeam's id, and the team as it was before.
    pub team: String,
    pub original: Value,
}

/// Adds Dr. Okafor (`okafor`: his token) to the care team of a patient he cannot see yet.
pub async fn okafor_joins_a_team(app: &TestApp, admin: &str, okafor: &str) -> TeamChange {
    let before = visible_patients(app, okafor).await;
    let own = before[0].clone();
    let outsider = visible_patients(app, admin)
        .await
        .into_iter()
        .find(|p| !before.contains(p))
        .unwrap();
    let (_, teams) = app
        .get_json(admin, &format!("/fhir/R4/CareTeam?patient={outsider}"))
        .await;
    let original = entries(&teams, "match")[0].clone();
    let team = original["id"].as_str().unwrap().to_owned();
    let mut with_okafor = original.clone();
    with_okafor["participant"]
        .as_array_mut()
        .unwrap()
        .push(json!({"member": {"reference": "Practitioner/pr-okafor"}}));
    let put = app
        .put(admin, &format!("/fhir/R4/CareTeam/{team}"), &with_okafor)
        .await;
    assert_eq!(put.status(), StatusCode::OK);
    TeamChange {
        own,
        outsider,
        team,
        original,
    }
}

/// Puts the team back as it was: Dr. Okafor is off it again.
pub async fn okafor_leaves_the_team(app: &TestApp, admin: &str, change: &TeamChange) {
    let mut without = change.original.clone();
    without.as_object_mut().unwrap().remove("meta");
    let put = app
        .put(
            admin,
            &format!("/fhir/R4/CareTeam/{}", change.team),
            &without,
        )
        .await;
    assert_eq!(put.status(), StatusCode::OK);
}

/// A client WebSocket.
pub type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// How long any single expected frame may take before a test fails.
pub const WAIT: Duration = Duration::from_secs(15);

/// The next text frame as JSON, passing over those `skip` says to; panics on a close, an error
/// or a timeout.
pub async fn next_json_where(stream: &mut Socket, skip: impl Fn(&Value) -> bool) -> Value {
    loop {
        let frame = tokio::time::timeout(WAIT, stream.next())
            .await
            .expect("a frame arrives in time")
            .expect("the socket is open")
            .expect("the frame is readable");
        match frame {
            Message::Text(text) => {
                let value: Value = serde_json::from_str(&text).unwrap();
                if !skip(&value) {
                    return value;
                }
            }
            Message::Close(close) => panic!("closed unexpectedly: {close:?}"),
            _ => {}
        }
    }
}

/// Reads until the socket ends and returns its close code, passing over every frame before the
/// close; `None` when it ends without a close code.
pub async fn close_code(stream: &mut Socket) -> Option<u16> {
    loop {
        let frame = tokio::time::timeout(WAIT, stream.next())
            .await
            .expect("the socket ends in time");
        match frame {
            Some(Ok(Message::Close(close))) => return close.map(|c| c.code.into()),
            Some(Ok(_)) => {}
            Some(Err(_)) | None => return None,
        }
    }
}
