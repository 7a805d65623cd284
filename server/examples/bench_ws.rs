//! Realtime load: N authenticated WebSocket clients in one room, writes at a chosen rate through
//! the FHIR API, and what arrives.
//!
//! Starts the release server binary (`target/release/rounds`, or `--server PATH`) as a child
//! process on 127.0.0.1 with a fresh temporary database, so its RSS is its own. Opens `--clients`
//! sockets (one signed-in admin session, bearer auth), subscribes them all to one patient room,
//! then PUTs Observations with client-chosen ids at `--rate` writes/s (0: as fast as `--writers`
//! concurrent writers can) for `--seconds`. Each client notes when every update arrives; the write
//! time is taken just before the PUT is sent, so the latency printed is write-to-client, an upper
//! bound of commit-to-client. The server's own commit-to-socket histogram is printed beside it.
//!
//!     cargo run --release -p server --example bench_ws -- --clients 1000 --rate 100 --seconds 10
//!     cargo run --release -p server --example bench_ws -- --clients 1000 --rate 0 --writers 8
//!     cargo run --release -p server --example bench_ws -- --idle 10000
//!     cargo run --release -p server --example bench_ws -- --subscriptions 100 --rate 100
//!     cargo run --release -p server --example bench_ws -- --catch-up 10000
//!     cargo run --release -p server --example bench_ws -- --reconnect 1000 --missed 200
//!     ... --database-url postgres://postgres@127.0.0.1:5432/bench   (an empty database)
//!
//! With `--subscriptions N` the receivers are N FHIR Subscriptions (`Observation?subject=…`),
//! each bound on its own `/ws/subscriptions-r4` socket, instead of `/ws` room clients.
//!
//! With `--catch-up N` one client leaves the room, N writes are made to it, and the client comes
//! back with `after_seq`: printed is how long until it has every missed update. With
//! `--reconnect N` the server is killed (SIGKILL) and started again on the same database and
//! port, `--missed` writes are made, and N clients reconnect at once with `after_seq`: printed is
//! how long until every one has every missed update, and then a new write's latency to all.
//!
//! With `--nodes 2` (PostgreSQL only) a second server is started on the same database: the
//! clients are on it, the writes go to the first, so the latency printed is across nodes.
//!
//! Loopback only; every loop is bounded by `--seconds` or a deadline.

use std::{
    net::TcpListener,
    process::{Child, Command, Stdio},
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::{client::IntoClientRequest, Message};

fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn arg_str(name: &str) -> Option<String> {
    std::env::args().skip_while(|a| a != name).nth(1)
}

/// Resident set size of a process, in MiB.
fn rss_mib(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// CPU seconds (user + system) a process has used so far.
fn cpu_seconds(pid: u32) -> f64 {
    let ticks = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            // Fields after the ")" that ends the command name; utime and stime are 14 and 15.
            let rest = stat.rsplit_once(')')?.1.to_owned();
            let fields: Vec<&str> = rest.split_whitespace().collect();
            Some(fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?)
        })
        .unwrap_or(f64::NAN);
    // SAFETY: sysconf only reads a system constant.
    ticks / unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64
}

/// Lifts this process's open-file limit to its hard limit (the server child inherits it).
fn raise_fd_limit() -> u64 {
    // SAFETY: getrlimit/setrlimit only read and write the struct we pass.
    unsafe {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
        limit.rlim_cur
    }
}

struct Server {
    child: Child,
    base: String,
    port: u16,
    dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The operator token the benchmark's server is started with, to read `/metrics`.
const METRICS_TOKEN: &str = "benchmark-metrics-token-0000";

async fn start_server() -> Server {
    let dir = tempfile::tempdir().expect("temp dir");
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let child = launch(&dir, port).await;
    Server {
        child,
        base: format!("http://127.0.0.1:{port}"),
        port,
        dir,
    }
}

impl Server {
    /// Kills the server (no shutdown of its own) and starts it again on the same database and
    /// port.
    async fn restart(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.child = launch(&self.dir, self.port).await;
    }
}

/// Starts the server binary on `port` with its database in `dir`, and waits until it answers.
async fn launch(dir: &tempfile::TempDir, port: u16) -> Child {
    let binary = arg_str("--server").unwrap_or_else(|| "target/release/rounds".into());
    let child = Command::new(&binary)
        .env("ROUNDS_LISTEN", format!("127.0.0.1:{port}"))
        .env(
            "ROUNDS_DATABASE_URL",
            arg_str("--database-url")
                .unwrap_or_else(|| format!("sqlite://{}/bench.db", dir.path().display())),
        )
        .env(
            "ROUNDS_JWT_SECRET",
            "benchmark-secret-benchmark-secret-0000",
        )
        .env("ROUNDS_SITE_ROOT", dir.path().join("site"))
        .env("ROUNDS_WS_QUEUE_FRAMES", "65536")
        .env("ROUNDS_MAX_SUBSCRIPTIONS_PER_USER", "100000")
        .env("ROUNDS_METRICS_TOKEN", METRICS_TOKEN)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot start {binary}: {e} (build it with cargo leptos build --release)")
        });
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Ok(response) = http.get(format!("{base}/health")).send().await {
            if response.status().is_success() {
                break;
            }
        }
        assert!(Instant::now() < deadline, "the server did not start");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    child
}

async fn login(base: &str) -> String {
    let body: Value = reqwest::Client::new()
        .post(format!("{base}/auth/login"))
        .json(&json!({"username": "admin", "password": "rounds-demo"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    body["access_token"].as_str().unwrap().to_owned()
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn open(base: &str, token: &str, room: &str) -> Socket {
    let (mut ws, _) = connect(base, token).await;
    subscribe(&mut ws, room, None).await;
    // subscribed
    while !matches!(ws.next().await, Some(Ok(Message::Text(_)))) {}
    ws
}

/// Opens `/ws` with bearer auth and reads the welcome: the socket and the log's head then.
async fn connect(base: &str, token: &str) -> (Socket, i64) {
    let mut request = format!("ws://{}/ws", base.trim_start_matches("http://"))
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(request)
        .await
        .expect("handshake");
    loop {
        if let Some(Ok(Message::Text(text))) = ws.next().await {
            let welcome: Value = serde_json::from_str(&text).unwrap_or_default();
            return (ws, welcome["data"]["seq"].as_i64().expect("a welcome"));
        }
    }
}

async fn subscribe(ws: &mut Socket, room: &str, after_seq: Option<i64>) {
    let mut data = json!({"subscription_id": "bench", "rooms": [room]});
    if let Some(after) = after_seq {
        data["after_seq"] = json!(after);
    }
    let frame = json!({"type": "subscription", "data": data});
    ws.send(Message::text(frame.to_string())).await.unwrap();
}

/// A heart-rate Observation `bench-<n>` of `subject`.
fn observation(subject: &str, n: usize) -> String {
    json!({
        "resourceType": "Observation", "id": format!("bench-{n}"), "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4", "display": "Heart rate"}]},
        "subject": {"reference": subject},
        "effectiveDateTime": "2026-11-25T10:00:00Z",
        "valueQuantity": {"value": 60 + (n % 40), "unit": "/min", "system": "http://unitsofmeasure.org", "code": "/min"}
    })
    .to_string()
}

/// PUTs Observations `bench-<n>` for every n of `range` to pat-001, 16 at a time.
async fn write_observations(base: &str, token: &str, range: std::ops::Range<usize>) {
    let http = reqwest::Client::new();
    let next = Arc::new(AtomicU64::new(range.start as u64));
    let writers = (0..16).map(|_| {
        let (http, next) = (http.clone(), next.clone());
        async move {
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed) as usize;
                if n >= range.end {
                    return;
                }
                let response = http
                    .put(format!("{base}/fhir/R4/Observation/bench-{n}"))
                    .bearer_auth(token)
                    .header("content-type", "application/fhir+json")
                    .header("prefer", "return=minimal")
                    .body(observation("Patient/pat-001", n))
                    .send()
                    .await
                    .expect("a write");
                assert!(
                    response.status().is_success(),
                    "write {n}: {}",
                    response.status()
                );
            }
        }
    });
    futures_util::future::join_all(writers).await;
}

/// Reads updates until `wanted` `bench-` updates have come, or, with a `probe`, until the
/// update for `bench-<probe>` does (at most 60 s): how many came (the probe not counted), when
/// the `wanted`-th did and when the probe did.
async fn read_until(
    ws: &mut Socket,
    wanted: usize,
    probe: Option<usize>,
) -> (usize, Option<Instant>, Option<Instant>) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let (mut count, mut caught_up) = (0, None);
    while let Ok(Some(Ok(message))) = tokio::time::timeout_at(deadline, ws.next()).await {
        let Message::Text(text) = message else {
            continue;
        };
        match bench_number(&text) {
            Some(n) if Some(n) == probe => return (count, caught_up, Some(Instant::now())),
            Some(_) => {
                count += 1;
                if count == wanted {
                    caught_up = Some(Instant::now());
                    if probe.is_none() {
                        break;
                    }
                }
            }
            None => {}
        }
    }
    (count, caught_up, None)
}

/// One client misses `missed` writes to its room and comes back with `after_seq`.
async fn catch_up(server: &Server, token: &str, missed: usize) {
    let (mut ws, head) = connect(&server.base, token).await;
    ws.close(None).await.ok();
    let started = Instant::now();
    write_observations(&server.base, token, 0..missed + 1).await;
    println!(
        "{} writes made while the client was away, in {:.1} s",
        missed + 1,
        started.elapsed().as_secs_f64()
    );
    let started = Instant::now();
    let (mut ws, _) = connect(&server.base, token).await;
    subscribe(&mut ws, "patient:pat-001", Some(head)).await;
    let (count, caught_up, _) = read_until(&mut ws, missed + 1, None).await;
    match caught_up {
        Some(at) => println!(
            "caught up on {count} missed updates in {:.0} ms after connecting ({:.0} updates/s)",
            (at - started).as_secs_f64() * 1e3,
            count as f64 / (at - started).as_secs_f64()
        ),
        None => println!("NOT caught up: {count} of {} updates in 60 s", missed + 1),
    }
}

/// The server dies and comes back; `clients` reconnect at once and resume.
async fn reconnect_storm(server: &mut Server, token: &str, clients: usize, missed: usize) {
    let (_, head) = connect(&server.base, token).await;
    let mut sockets = Vec::with_capacity(clients);
    for chunk in 0..clients.div_ceil(250) {
        let batch = (clients - chunk * 250).min(250);
        sockets.extend(
            futures_util::future::join_all(
                (0..batch).map(|_| open(&server.base, token, "patient:pat-001")),
            )
            .await,
        );
    }
    let restarted = Instant::now();
    server.restart().await;
    drop(sockets);
    let up = restarted.elapsed();
    write_observations(&server.base, token, 0..missed).await;
    println!(
        "{clients} clients were in patient:pat-001; the server was killed and answered again in {:.2} s; {missed} writes made",
        up.as_secs_f64()
    );
    let started = Instant::now();
    // How many clients have every missed update.
    let ready = Arc::new(tokio::sync::watch::Sender::new(0usize));
    let reconnects = (0..clients).map(|_| {
        let (base, token, ready) = (server.base.clone(), token.to_owned(), ready.clone());
        async move {
            let (mut ws, _) = connect(&base, &token).await;
            subscribe(&mut ws, "patient:pat-001", Some(head)).await;
            let (count, caught, _) = read_until(&mut ws, missed, None).await;
            ready.send_modify(|n| *n += 1);
            let (_, _, seen) = read_until(&mut ws, usize::MAX, Some(missed)).await;
            (ws, (count, caught, seen))
        }
    });
    let mut tasks: Vec<_> = reconnects.map(tokio::spawn).collect();
    // Once every client has caught up (or 30 s passed), one more write: its arrival says each
    // is live.
    let probe = {
        let (base, token) = (server.base.clone(), token.to_owned());
        let mut ready = ready.subscribe();
        tokio::spawn(async move {
            let all = ready.wait_for(|n| *n == clients);
            let _ = tokio::time::timeout(Duration::from_secs(30), all).await;
            let sent = Instant::now();
            write_observations(&base, &token, missed..missed + 1).await;
            sent
        })
    };
    let mut caught_up = Vec::with_capacity(clients);
    let mut live = Vec::with_capacity(clients);
    let mut short = 0;
    for task in tasks.drain(..) {
        let (_ws, (count, caught, seen)) = task.await.expect("a client");
        if count < missed {
            short += 1;
        }
        caught_up.extend(caught.map(|at| at - started));
        live.extend(seen);
    }
    let sent = probe.await.expect("the probe");
    caught_up.sort();
    let mut probe_ms: Vec<u64> = live
        .iter()
        .map(|at| (*at - sent).as_micros() as u64)
        .collect();
    probe_ms.sort_unstable();
    println!(
        "caught up: {} of {clients} clients, the last {:.2} s after they all began to reconnect (p50 {:.2} s); {short} short of {missed} updates",
        caught_up.len(),
        caught_up.last().map_or(f64::NAN, Duration::as_secs_f64),
        caught_up.get(caught_up.len() / 2).map_or(f64::NAN, Duration::as_secs_f64),
    );
    println!(
        "live: {} of {clients} got the next write; its latency p50 {:.2} ms, max {:.2} ms",
        live.len(),
        percentile(&probe_ms, 0.5),
        percentile(&probe_ms, 1.0),
    );
}

/// Creates a FHIR Subscription for `criteria`, binds it on its own `/ws/subscriptions-r4`
/// socket and reads the handshake.
async fn open_subscription(base: &str, token: &str, criteria: &str) -> Socket {
    let http = reqwest::Client::new();
    let created: Value = http
        .post(format!("{base}/fhir/R4/Subscription"))
        .bearer_auth(token)
        .header("content-type", "application/fhir+json")
        .body(json!({"resourceType": "Subscription", "status": "requested", "reason": "bench", "criteria": criteria, "channel": {"type": "websocket"}}).to_string())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = created["id"].as_str().expect("a subscription id");
    let parameters: Value = http
        .get(format!(
            "{base}/fhir/R4/Subscription/{id}/$get-ws-binding-token"
        ))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let value = |name: &str, kind: &str| {
        parameters["parameter"]
            .as_array()
            .and_then(|list| list.iter().find(|p| p["name"] == name))
            .and_then(|p| p[kind].as_str())
            .expect("binding parameters")
            .to_owned()
    };
    let (mut ws, _) = tokio_tungstenite::connect_async(value("websocket-url", "valueUrl"))
        .await
        .expect("handshake");
    let bind =
        json!({"type": "bind-with-token", "payload": {"token": value("token", "valueString")}});
    ws.send(Message::text(bind.to_string())).await.unwrap();
    while !matches!(ws.next().await, Some(Ok(Message::Text(_)))) {}
    ws
}

/// n of the `bench-<n>` resource a frame carries (an update's `resource_id`, or a FHIR
/// notification's focus), found without parsing the whole frame.
fn bench_number(frame: &str) -> Option<usize> {
    let marker = [
        "\"resource_id\":\"bench-",
        "\"reference\":\"Observation/bench-",
    ]
    .into_iter()
    .find_map(|marker| frame.find(marker).map(|at| at + marker.len()))?;
    let digits = &frame[marker..];
    let end = digits.find('"')?;
    digits[..end].parse().ok()
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)] as f64 / 1000.0
}

/// Approximate quantile of a Prometheus histogram from its cumulative buckets.
fn histogram_quantile(metrics: &str, name: &str, q: f64) -> Option<f64> {
    let mut buckets: Vec<(f64, f64)> = metrics
        .lines()
        .filter(|l| l.starts_with(&format!("{name}_bucket")))
        .filter_map(|l| {
            let le = l.split("le=\"").nth(1)?.split('"').next()?;
            let bound = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().ok()?
            };
            let count: f64 = l.rsplit(' ').next()?.parse().ok()?;
            Some((bound, count))
        })
        .collect();
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    let total = buckets.last()?.1;
    if total == 0.0 {
        return None;
    }
    buckets
        .iter()
        .find(|(_, count)| *count >= q * total)
        .map(|(bound, _)| *bound)
}

#[tokio::main]
async fn main() {
    let limit = raise_fd_limit();
    let idle = arg("--idle", 0) as usize;
    let server = start_server().await;
    let pid = server.child.id();
    let token = login(&server.base).await;
    println!(
        "server pid {pid}, open-file limit {limit}, idle RSS {:.1} MiB",
        rss_mib(pid)
    );

    let catch = arg("--catch-up", 0) as usize;
    if catch > 0 {
        catch_up(&server, &token, catch).await;
        return;
    }
    let storm = arg("--reconnect", 0) as usize;
    if storm > 0 {
        let mut server = server;
        reconnect_storm(&mut server, &token, storm, arg("--missed", 200) as usize).await;
        return;
    }

    if idle > 0 {
        let before = rss_mib(pid);
        let started = Instant::now();
        let mut sockets = Vec::with_capacity(idle);
        for chunk in 0..idle.div_ceil(250) {
            let batch = (idle - chunk * 250).min(250);
            let opened = futures_util::future::join_all(
                (0..batch).map(|_| open(&server.base, &token, "facility:alerts")),
            )
            .await;
            sockets.extend(opened);
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
        let after = rss_mib(pid);
        println!(
            "{idle} idle authenticated connections (subscribed to facility:alerts) opened in {:.1} s",
            started.elapsed().as_secs_f64()
        );
        println!(
            "server RSS: {after:.1} MiB ({:.1} MiB before; {:.1} KiB per connection)",
            before,
            (after - before) * 1024.0 / idle as f64
        );
        drop(sockets);
        return;
    }

    let clients = arg("--clients", 1000) as usize;
    let rate = arg("--rate", 100);
    let writers = arg("--writers", 8) as usize;
    let seconds = arg("--seconds", 10);
    let patient = arg_str("--patient").unwrap_or_else(|| "pat-001".into());
    let room = format!("patient:{patient}");

    // The node the clients are on: the one written to, or a second one on the same database.
    let second = match arg("--nodes", 1) {
        2 => Some(start_server().await),
        _ => None,
    };
    let listen_base = second
        .as_ref()
        .map_or(&server.base, |node| &node.base)
        .clone();
    // What is measured of the server is measured on the node that delivers.
    let writer_pid = pid;
    let pid = second.as_ref().map_or(pid, |node| node.child.id());
    let subscriptions = arg("--subscriptions", 0) as usize;
    let mut sockets = Vec::with_capacity(clients.max(subscriptions));
    if subscriptions > 0 {
        let criteria = format!("Observation?subject=Patient/{patient}");
        for _ in 0..subscriptions {
            sockets.push(open_subscription(&server.base, &token, &criteria).await);
        }
        println!("{subscriptions} FHIR Subscriptions ({criteria}), each bound on its own socket");
    } else {
        for chunk in 0..clients.div_ceil(250) {
            let batch = (clients - chunk * 250).min(250);
            sockets.extend(
                futures_util::future::join_all(
                    (0..batch).map(|_| open(&listen_base, &token, &room)),
                )
                .await,
            );
        }
        println!(
            "{clients} clients subscribed to {room} on {listen_base}, writes to {}",
            server.base
        );
    }
    let clients = sockets.len();

    // Write n's send time (µs since `epoch`) is sent_at[n].
    const MAX_WRITES: usize = 2_000_000;
    let epoch = Instant::now();
    let sent_at: Arc<Vec<AtomicU64>> =
        Arc::new((0..MAX_WRITES).map(|_| AtomicU64::new(0)).collect());
    let done = Arc::new(AtomicBool::new(false));
    let mut readers = Vec::with_capacity(clients);
    for ws in sockets {
        let (sent_at, done) = (sent_at.clone(), done.clone());
        readers.push(tokio::spawn(async move {
            let (_sink, mut stream) = ws.split();
            let mut latencies_us: Vec<u64> = Vec::new();
            let mut frames = 0u64;
            loop {
                let next = tokio::time::timeout(Duration::from_millis(500), stream.next()).await;
                match next {
                    Ok(Some(Ok(Message::Text(text)))) => {
                        if let Some(n) = bench_number(&text) {
                            frames += 1;
                            let now = epoch.elapsed().as_micros() as u64;
                            let sent = sent_at[n].load(Ordering::Relaxed);
                            if sent > 0 {
                                latencies_us.push(now.saturating_sub(sent));
                            }
                        }
                    }
                    Ok(Some(Ok(_))) => {}
                    Ok(Some(Err(_))) | Ok(None) => break,
                    Err(_) => {
                        if done.load(Ordering::Relaxed) {
                            break;
                        }
                    }
                }
            }
            (frames, latencies_us)
        }));
    }

    let subject = format!("Patient/{patient}");
    let body = move |n: usize| observation(&subject, n);
    let next = Arc::new(AtomicU64::new(0));
    let server_cpu = cpu_seconds(pid);
    let writer_cpu = cpu_seconds(writer_pid);
    let bench_cpu = cpu_seconds(std::process::id());
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let writer_count = if rate == 0 { writers } else { writers.max(4) };
    let interval = if rate == 0 {
        Duration::ZERO
    } else {
        Duration::from_secs_f64(writer_count as f64 / rate as f64)
    };
    let mut tasks = Vec::new();
    for w in 0..writer_count {
        let (base, token, next, sent_at) = (
            server.base.clone(),
            token.clone(),
            next.clone(),
            sent_at.clone(),
        );
        let body = body.clone();
        tasks.push(tokio::spawn(async move {
            let http = reqwest::Client::new();
            let mut tick = started + interval.mul_f64(w as f64 / writer_count as f64);
            let mut failures = 0u64;
            while Instant::now() < deadline {
                if !interval.is_zero() {
                    tokio::time::sleep_until(tick.into()).await;
                    tick += interval;
                }
                let n = next.fetch_add(1, Ordering::Relaxed) as usize;
                if n >= MAX_WRITES {
                    break;
                }
                sent_at[n].store(epoch.elapsed().as_micros() as u64, Ordering::Relaxed);
                let response = http
                    .put(format!("{base}/fhir/R4/Observation/bench-{n}"))
                    .bearer_auth(&token)
                    .header("content-type", "application/fhir+json")
                    .header("prefer", "return=minimal")
                    .body(body(n))
                    .send()
                    .await;
                if !matches!(response, Ok(ref r) if r.status().is_success()) {
                    failures += 1;
                }
            }
            failures
        }));
    }
    let mut failures = 0;
    for task in tasks {
        failures += task.await.unwrap();
    }
    let writing = started.elapsed();
    let server_cores = (cpu_seconds(pid) - server_cpu) / writing.as_secs_f64();
    let writer_cores = (cpu_seconds(writer_pid) - writer_cpu) / writing.as_secs_f64();
    let bench_cores = (cpu_seconds(std::process::id()) - bench_cpu) / writing.as_secs_f64();
    let writes = next.load(Ordering::Relaxed).min(MAX_WRITES as u64);
    let peak_rss = rss_mib(pid);
    done.store(true, Ordering::Relaxed);
    let mut frames = 0u64;
    let mut latencies = Vec::new();
    for reader in readers {
        let (f, l) = reader.await.unwrap();
        frames += f;
        latencies.extend(l);
    }
    let delivering = started.elapsed();
    latencies.sort_unstable();
    let expected = writes.saturating_sub(failures) * clients as u64;
    println!(
        "writes: {writes} in {:.1} s ({:.0}/s), failed: {failures}",
        writing.as_secs_f64(),
        writes as f64 / writing.as_secs_f64()
    );
    println!(
        "frames delivered: {frames} of {expected} expected ({:.0} frames/s over {:.1} s)",
        frames as f64 / writing.as_secs_f64(),
        delivering.as_secs_f64()
    );
    println!(
        "write-to-client latency: p50 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms, max {:.2} ms",
        percentile(&latencies, 0.50),
        percentile(&latencies, 0.99),
        percentile(&latencies, 0.999),
        percentile(&latencies, 1.0)
    );
    let metrics = reqwest::Client::new()
        .get(format!("{listen_base}/metrics"))
        .bearer_auth(METRICS_TOKEN)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let q = |p| {
        histogram_quantile(&metrics, "rounds_ws_delivery_latency_seconds", p)
            .map_or("n/a".to_owned(), |s| format!("≤ {:.2} ms", s * 1e3))
    };
    println!(
        "server commit-to-socket (histogram bucket bounds): p50 {}, p99 {}, p99.9 {}",
        q(0.5),
        q(0.99),
        q(0.999)
    );
    let slow = metrics
        .lines()
        .find(|l| l.starts_with("rounds_ws_slow_consumer_closes_total"))
        .unwrap_or("");
    println!("server RSS at the end of writing: {peak_rss:.1} MiB; {slow}");
    println!(
        "CPU while writing: server {server_cores:.2} cores, this load client {bench_cores:.2} cores (of 2)"
    );
    if writer_pid != pid {
        println!(
            "  (the server the clients are on; the one written to used {writer_cores:.2} cores)"
        );
    }
}
