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
//!     ... --database-url postgres://postgres@127.0.0.1:5432/bench   (an empty database)
//!
//! With `--subscriptions N` the receivers are N FHIR Subscriptions (`Observation?subject=…`),
//! each bound on its own `/ws/subscriptions-r4` socket, instead of `/ws` room clients.
//!
//! Loopback only; every loop is bounded by `--seconds`.

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
    _dir: tempfile::TempDir,
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
    let binary = arg_str("--server").unwrap_or_else(|| "target/release/rounds".into());
    let dir = tempfile::tempdir().expect("temp dir");
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
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
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Server {
        child,
        base,
        _dir: dir,
    }
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
    let mut request = format!("ws://{}/ws", base.trim_start_matches("http://"))
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(request)
        .await
        .expect("handshake");
    let subscribe =
        json!({"type": "subscription", "data": {"subscription_id": "bench", "rooms": [room]}});
    ws.send(Message::text(subscribe.to_string())).await.unwrap();
    // welcome, subscribed
    let mut answers = 0;
    while answers < 2 {
        if let Some(Ok(Message::Text(_))) = ws.next().await {
            answers += 1;
        }
    }
    ws
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
                    (0..batch).map(|_| open(&server.base, &token, &room)),
                )
                .await,
            );
        }
        println!("{clients} clients subscribed to {room}");
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
    let body = move |n: usize| {
        json!({
            "resourceType": "Observation", "id": format!("bench-{n}"), "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4", "display": "Heart rate"}]},
            "subject": {"reference": subject},
            "effectiveDateTime": "2026-11-25T10:00:00Z",
            "valueQuantity": {"value": 60 + (n % 40), "unit": "/min", "system": "http://unitsofmeasure.org", "code": "/min"}
        })
        .to_string()
    };
    let next = Arc::new(AtomicU64::new(0));
    let server_cpu = cpu_seconds(pid);
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
        .get(format!("{}/metrics", server.base))
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
}
