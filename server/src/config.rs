//! Typed configuration: command-line flags over environment variables over defaults.
//!
//! Read once at start-up, before anything is bound or opened. A bad value stops start-up with one
//! line that names the flag or variable; secrets are never printed (see `Config`'s `Debug`).

use std::{
    fmt,
    net::{IpAddr, SocketAddr},
    path::PathBuf,
    str::FromStr,
    time::Duration,
};

/// The JWT secret used when none is configured. Development only: start-up logs a warning.
pub const DEV_JWT_SECRET: &str = "rounds-development-secret-do-not-use-in-production";

/// Everything the server needs to start.
#[derive(Clone)]
pub struct Config {
    /// Address to listen on; port 0 picks a free port (tests do this).
    pub listen: SocketAddr,
    /// `sqlite://path/to/file.db` (created when missing) or `postgres://user@host/db` (several
    /// nodes on one database).
    pub database_url: String,
    /// This node's name in metrics and logs (several nodes on one PostgreSQL).
    pub node_id: String,
    /// HMAC key for access tokens. Never logged.
    pub jwt_secret: String,
    /// Whether `jwt_secret` is the built-in development default.
    pub jwt_secret_is_default: bool,
    /// Load the demo data set into an empty database at start-up.
    pub seed_demo: bool,
    /// Where cargo-leptos put the compiled site (`pkg/`, CSS, assets).
    pub site_root: PathBuf,
    /// Largest request body accepted by the FHIR API, in bytes.
    pub max_body_bytes: usize,
    /// How long graceful shutdown waits for in-flight requests.
    pub shutdown_grace: Duration,
    /// How long a just-rotated refresh token is still accepted (tabs refreshing together).
    pub refresh_grace: Duration,
    /// How long an access token (and its cookie) lives; the browser refreshes it when it expires.
    pub access_token_ttl: Duration,
    /// Mark session cookies `Secure` (served over TLS). Requests forwarded with
    /// `X-Forwarded-Proto: https` get `Secure` cookies either way.
    pub secure_cookies: bool,
    /// How often a WebSocket gets a `heartbeat` (and a ping); two unanswered ones close it.
    pub heartbeat: Duration,
    /// How long the event log keeps events for replay; an older `after_seq` answers `reset`.
    pub event_retention: Duration,
    /// Frames that may wait for one WebSocket before it is closed as too slow (4408).
    pub ws_queue_frames: usize,
    /// Active FHIR Subscriptions one user may hold.
    pub max_subscriptions_per_user: usize,
    /// How often the sessions behind this node's sockets and held polls are re-checked in the
    /// database: the longest a socket outlives its session when every notice of the end is lost.
    pub session_recheck: Duration,
    /// Password verifications that may run at once (each holds 19 MiB while it runs).
    pub hash_concurrency: usize,
    /// Proxies whose `X-Forwarded-For` names the client; from any other peer the header is
    /// ignored and the TCP peer address is the client.
    pub trusted_proxies: Vec<IpAddr>,
    /// A bearer token that opens `/metrics` to a scraper without an account. Never logged.
    pub metrics_token: Option<String>,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("listen", &self.listen)
            .field("database_url", &redact_password(&self.database_url))
            .field("node_id", &self.node_id)
            .field("jwt_secret", &"<redacted>")
            .field("jwt_secret_is_default", &self.jwt_secret_is_default)
            .field("seed_demo", &self.seed_demo)
            .field("site_root", &self.site_root)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("shutdown_grace", &self.shutdown_grace)
            .field("refresh_grace", &self.refresh_grace)
            .field("access_token_ttl", &self.access_token_ttl)
            .field("secure_cookies", &self.secure_cookies)
            .field("heartbeat", &self.heartbeat)
            .field("event_retention", &self.event_retention)
            .field("ws_queue_frames", &self.ws_queue_frames)
            .field(
                "max_subscriptions_per_user",
                &self.max_subscriptions_per_user,
            )
            .field("session_recheck", &self.session_recheck)
            .field("hash_concurrency", &self.hash_concurrency)
            .field("trusted_proxies", &self.trusted_proxies)
            .field(
                "metrics_token",
                &self.metrics_token.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 3000)),
            database_url: "sqlite://data/rounds.db".to_owned(),
            node_id: default_node_id(),
            jwt_secret: DEV_JWT_SECRET.to_owned(),
            jwt_secret_is_default: true,
            seed_demo: true,
            site_root: PathBuf::from("target/site"),
            max_body_bytes: 1024 * 1024,
            shutdown_grace: Duration::from_secs(10),
            refresh_grace: Duration::from_secs(30),
            access_token_ttl: Duration::from_secs(900),
            secure_cookies: false,
            heartbeat: Duration::from_secs(30),
            event_retention: Duration::from_secs(7 * 24 * 3600),
            ws_queue_frames: 4096,
            max_subscriptions_per_user: 25,
            session_recheck: Duration::from_secs(5),
            hash_concurrency: crate::auth::password::DEFAULT_CONCURRENCY,
            trusted_proxies: Vec::new(),
            metrics_token: None,
        }
    }
}

/// A configuration value that could not be used; `Display` is the one line printed at start-up.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ConfigError {
    #[error("invalid value {value:?} for {source_name}: {reason}")]
    Invalid {
        source_name: String,
        value: String,
        reason: String,
    },
    #[error("unknown argument {0:?} (try --help)")]
    UnknownArgument(String),
    #[error("{0} needs a value")]
    MissingValue(String),
    #[error("help requested")]
    HelpRequested,
}

/// The options, for `--help` and for the mapping flag ⇄ environment variable.
const OPTIONS: &[(&str, &str, &str)] = &[
    (
        "--listen",
        "ROUNDS_LISTEN",
        "address to listen on [127.0.0.1:3000]",
    ),
    (
        "--database-url",
        "ROUNDS_DATABASE_URL",
        "sqlite://FILE or postgres://USER@HOST:PORT/DB [sqlite://data/rounds.db]",
    ),
    (
        "--node-id",
        "ROUNDS_NODE_ID",
        "this node's name in metrics and logs [the host name]",
    ),
    (
        "--seed-demo",
        "ROUNDS_SEED_DEMO",
        "true|false: load demo data into an empty database [true]",
    ),
    (
        "--secure-cookies",
        "ROUNDS_SECURE_COOKIES",
        "true|false: mark session cookies Secure (behind TLS) [false]",
    ),
    (
        "--site-root",
        "ROUNDS_SITE_ROOT",
        "directory of the compiled site [target/site]",
    ),
    (
        "--max-body-bytes",
        "ROUNDS_MAX_BODY_BYTES",
        "largest accepted request body [1048576]",
    ),
    (
        "--shutdown-grace-secs",
        "ROUNDS_SHUTDOWN_GRACE_SECS",
        "seconds to finish requests on shutdown [10]",
    ),
    (
        "--access-token-secs",
        "ROUNDS_ACCESS_TOKEN_SECS",
        "seconds an access token lives before the browser refreshes it [900]",
    ),
    (
        "--heartbeat-ms",
        "ROUNDS_HEARTBEAT_MS",
        "WebSocket heartbeat period in ms; two missed pongs close the socket [30000]",
    ),
    (
        "--event-retention-hours",
        "ROUNDS_EVENT_RETENTION_HOURS",
        "hours the event log keeps events for replay [168]",
    ),
    (
        "--ws-queue-frames",
        "ROUNDS_WS_QUEUE_FRAMES",
        "frames queued per WebSocket before it is closed as too slow [4096]",
    ),
    (
        "--max-subscriptions-per-user",
        "ROUNDS_MAX_SUBSCRIPTIONS_PER_USER",
        "active FHIR Subscriptions one user may hold [25]",
    ),
    (
        "--session-recheck-ms",
        "ROUNDS_SESSION_RECHECK_MS",
        "ms between re-checks of the sessions behind open sockets; the longest a socket outlives its session [5000]",
    ),
    (
        "--hash-concurrency",
        "ROUNDS_HASH_CONCURRENCY",
        "password verifications at once, 19 MiB each; more wait, then 503 [4]",
    ),
    (
        "--trusted-proxies",
        "ROUNDS_TRUSTED_PROXIES",
        "comma-separated proxy IPs whose X-Forwarded-For is believed [none]",
    ),
];

/// Usage text for `--help`.
pub fn usage() -> String {
    let mut text = String::from(
        "rounds — the Rounds clinical workspace server\n\nOptions (each also read from its environment variable):\n",
    );
    for (flag, env, help) in OPTIONS {
        text.push_str(&format!("  {flag:<24} {env:<28} {help}\n"));
    }
    text.push_str(
        "  (environment only)       ROUNDS_JWT_SECRET            signing key for access tokens\n",
    );
    text.push_str(
        "  (environment only)       ROUNDS_METRICS_TOKEN         bearer token for /metrics scrapers\n",
    );
    text.push_str("  (environment only)       RUST_LOG                     log filter [info]\n");
    text
}

impl Config {
    /// Reads the process's arguments and environment.
    pub fn from_env_and_args() -> Result<Self, ConfigError> {
        Self::from_sources(std::env::args().skip(1), |key| std::env::var(key).ok())
    }

    /// Builds a configuration from arguments and an environment lookup (tests pass their own).
    pub fn from_sources(
        args: impl IntoIterator<Item = String>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        // Environment first, then flags override it.
        let mut values: Vec<(String, String, String)> = Vec::new();
        for (flag, var, _) in OPTIONS {
            if let Some(value) = env(var) {
                values.push((flag.to_string(), var.to_string(), value));
            }
        }
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            if arg == "--help" || arg == "-h" {
                return Err(ConfigError::HelpRequested);
            }
            let (flag, inline) = match arg.split_once('=') {
                Some((flag, value)) => (flag.to_owned(), Some(value.to_owned())),
                None => (arg.clone(), None),
            };
            if !OPTIONS.iter().any(|(known, _, _)| *known == flag) {
                return Err(ConfigError::UnknownArgument(arg));
            }
            let value = match inline {
                Some(value) => value,
                None => args
                    .next()
                    .ok_or_else(|| ConfigError::MissingValue(flag.clone()))?,
            };
            values.push((flag.clone(), flag, value));
        }

        let mut config = Config::default();
        for (flag, source_name, value) in values {
            let invalid = |reason: &str| ConfigError::Invalid {
                source_name: source_name.clone(),
                value: value.clone(),
                reason: reason.to_owned(),
            };
            match flag.as_str() {
                "--listen" => {
                    config.listen = value
                        .parse()
                        .map_err(|_| invalid("expected HOST:PORT, e.g. 127.0.0.1:3000"))?
                }
                "--database-url" => {
                    if !["sqlite:", "postgres://", "postgresql://"]
                        .iter()
                        .any(|scheme| value.starts_with(scheme))
                    {
                        return Err(invalid(
                            "expected sqlite://FILE or postgres://USER@HOST:PORT/DATABASE",
                        ));
                    }
                    config.database_url = value
                }
                "--node-id" => {
                    if value.is_empty()
                        || value.len() > 64
                        || !value
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
                    {
                        return Err(invalid("expected 1-64 letters, digits, '-', '_' or '.'"));
                    }
                    config.node_id = value
                }
                "--seed-demo" => {
                    config.seed_demo =
                        parse_bool(&value).ok_or_else(|| invalid("expected true or false"))?
                }
                "--secure-cookies" => {
                    config.secure_cookies =
                        parse_bool(&value).ok_or_else(|| invalid("expected true or false"))?
                }
                "--site-root" => config.site_root = PathBuf::from(&value),
                "--max-body-bytes" => {
                    config.max_body_bytes = parse_positive(&value)
                        .ok_or_else(|| invalid("expected a positive integer"))?
                }
                "--shutdown-grace-secs" => {
                    config.shutdown_grace = Duration::from_secs(
                        parse_positive(&value)
                            .ok_or_else(|| invalid("expected a positive integer"))?
                            as u64,
                    )
                }
                "--access-token-secs" => {
                    config.access_token_ttl = Duration::from_secs(
                        parse_positive(&value)
                            .filter(|secs| *secs <= 24 * 3600)
                            .ok_or_else(|| invalid("expected 1 to 86400 seconds"))?
                            as u64,
                    )
                }
                "--heartbeat-ms" => {
                    config.heartbeat = Duration::from_millis(
                        parse_positive(&value)
                            .filter(|ms| *ms >= 100)
                            .ok_or_else(|| invalid("expected milliseconds, at least 100"))?
                            as u64,
                    )
                }
                "--event-retention-hours" => {
                    config.event_retention = Duration::from_secs(
                        3600 * parse_positive(&value)
                            .ok_or_else(|| invalid("expected a positive number of hours"))?
                            as u64,
                    )
                }
                "--ws-queue-frames" => {
                    config.ws_queue_frames = parse_positive(&value)
                        .filter(|n| *n >= 16)
                        .ok_or_else(|| invalid("expected an integer of at least 16"))?
                }
                "--max-subscriptions-per-user" => {
                    config.max_subscriptions_per_user = parse_positive(&value)
                        .ok_or_else(|| invalid("expected a positive integer"))?
                }
                "--session-recheck-ms" => {
                    config.session_recheck = Duration::from_millis(
                        parse_positive(&value)
                            .filter(|ms| *ms >= 100)
                            .ok_or_else(|| invalid("expected milliseconds, at least 100"))?
                            as u64,
                    )
                }
                "--hash-concurrency" => {
                    config.hash_concurrency = parse_positive(&value)
                        .filter(|n| *n <= 256)
                        .ok_or_else(|| invalid("expected an integer from 1 to 256"))?
                }
                "--trusted-proxies" => {
                    config.trusted_proxies = parse_addresses(&value)
                        .ok_or_else(|| invalid("expected comma-separated IP addresses"))?
                }
                _ => unreachable!("flags are checked against OPTIONS above"),
            }
        }

        if let Some(secret) = env("ROUNDS_JWT_SECRET") {
            if secret.len() < 32 {
                return Err(ConfigError::Invalid {
                    source_name: "ROUNDS_JWT_SECRET".into(),
                    value: "<redacted>".into(),
                    reason: "must be at least 32 bytes".into(),
                });
            }
            config.jwt_secret = secret;
            config.jwt_secret_is_default = false;
        }
        if let Some(token) = env("ROUNDS_METRICS_TOKEN") {
            if token.len() < 16 {
                return Err(ConfigError::Invalid {
                    source_name: "ROUNDS_METRICS_TOKEN".into(),
                    value: "<redacted>".into(),
                    reason: "must be at least 16 bytes".into(),
                });
            }
            config.metrics_token = Some(token);
        }
        Ok(config)
    }
}

/// The host name, or a random name when it cannot be read.
fn default_node_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| format!("node-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]))
}

/// A database URL with any password replaced, for logs.
pub fn redact_password(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let credentials = &url[scheme + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}{user}:<redacted>{}", &url[..scheme + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

fn parse_bool(value: &str) -> Option<bool> {
    match value.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Some(true),
        "0" | "false" | "no" | "off" => Some(false),
        _ => None,
    }
}

fn parse_positive(value: &str) -> Option<usize> {
    usize::from_str(value).ok().filter(|n| *n > 0)
}

/// `a, b, c` as IP addresses; empty means none.
fn parse_addresses(value: &str) -> Option<Vec<IpAddr>> {
    value
        .split(',')
        .map(str::trim)
        .filter(|part| !part.is_empty())
        .map(|part| part.parse().ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |key| {
            pairs
                .iter()
                .find(|(k, _)| *k == key)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn defaults_apply_without_sources() {
        let config = Config::from_sources(Vec::<String>::new(), env_of(&[])).unwrap();
        assert_eq!(config.listen.to_string(), "127.0.0.1:3000");
        assert!(config.jwt_secret_is_default);
        assert!(config.seed_demo);
    }

    #[test]
    fn flags_override_environment() {
        let config = Config::from_sources(
            ["--listen", "127.0.0.1:0", "--seed-demo=false"].map(String::from),
            env_of(&[
                ("ROUNDS_LISTEN", "0.0.0.0:9000"),
                ("ROUNDS_SEED_DEMO", "true"),
            ]),
        )
        .unwrap();
        assert_eq!(config.listen.port(), 0);
        assert!(!config.seed_demo);
    }

    #[test]
    fn bad_environment_value_names_the_variable() {
        let err = Config::from_sources(
            Vec::<String>::new(),
            env_of(&[("ROUNDS_LISTEN", "nowhere")]),
        )
        .unwrap_err();
        let line = err.to_string();
        assert!(line.contains("ROUNDS_LISTEN"), "{line}");
        assert!(!line.contains('\n'));
    }

    #[test]
    fn the_access_token_lifetime_is_configurable_and_bounded() {
        let config = Config::from_sources(Vec::<String>::new(), env_of(&[])).unwrap();
        assert_eq!(config.access_token_ttl, Duration::from_secs(900));
        let config = Config::from_sources(
            ["--access-token-secs", "5"].map(String::from),
            env_of(&[("ROUNDS_ACCESS_TOKEN_SECS", "60")]),
        )
        .unwrap();
        assert_eq!(config.access_token_ttl, Duration::from_secs(5));
        let config = Config::from_sources(
            Vec::<String>::new(),
            env_of(&[("ROUNDS_ACCESS_TOKEN_SECS", "60")]),
        )
        .unwrap();
        assert_eq!(config.access_token_ttl, Duration::from_secs(60));
        for bad in ["0", "-1", "ten", "86401"] {
            let err =
                Config::from_sources(["--access-token-secs", bad].map(String::from), env_of(&[]))
                    .unwrap_err();
            assert!(err.to_string().contains("--access-token-secs"), "{err}");
        }
    }

    #[test]
    fn bad_flag_and_unknown_flag_are_errors() {
        let err = Config::from_sources(["--seed-demo", "maybe"].map(String::from), env_of(&[]))
            .unwrap_err();
        assert!(err.to_string().contains("--seed-demo"));
        let err =
            Config::from_sources(["--frobnicate"].map(String::from), env_of(&[])).unwrap_err();
        assert_eq!(err, ConfigError::UnknownArgument("--frobnicate".into()));
        let err = Config::from_sources(["--listen"].map(String::from), env_of(&[])).unwrap_err();
        assert_eq!(err, ConfigError::MissingValue("--listen".into()));
    }

    #[test]
    fn short_jwt_secret_is_rejected_without_echoing_it() {
        let err = Config::from_sources(
            Vec::<String>::new(),
            env_of(&[("ROUNDS_JWT_SECRET", "short")]),
        )
        .unwrap_err();
        let line = err.to_string();
        assert!(
            line.contains("ROUNDS_JWT_SECRET") && !line.contains("short\""),
            "{line}"
        );
    }

    #[test]
    fn postgres_urls_are_accepted_and_their_passwords_never_shown() {
        let config = Config::from_sources(
            [
                "--database-url",
                "postgres://rounds:hunter2@db:5432/rounds",
                "--node-id",
                "a-1",
            ]
            .map(String::from),
            env_of(&[]),
        )
        .unwrap();
        assert_eq!(config.node_id, "a-1");
        assert!(!format!("{config:?}").contains("hunter2"));
        let err = Config::from_sources(
            ["--database-url", "mysql://x"].map(String::from),
            env_of(&[]),
        )
        .unwrap_err();
        assert!(err.to_string().contains("--database-url"));
        let err =
            Config::from_sources(["--node-id", "a b"].map(String::from), env_of(&[])).unwrap_err();
        assert!(err.to_string().contains("--node-id"));
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let config = Config::default();
        assert!(!format!("{config:?}").contains(DEV_JWT_SECRET));
    }

    #[test]
    fn trusted_proxies_hash_concurrency_and_the_metrics_token_are_read() {
        let config = Config::from_sources(
            [
                "--trusted-proxies",
                "192.0.2.1, ::1",
                "--hash-concurrency=2",
            ]
            .map(String::from),
            env_of(&[("ROUNDS_METRICS_TOKEN", "a-scraper-token-of-length")]),
        )
        .unwrap();
        assert_eq!(
            config.trusted_proxies,
            vec![
                "192.0.2.1".parse::<IpAddr>().unwrap(),
                "::1".parse().unwrap()
            ]
        );
        assert_eq!(config.hash_concurrency, 2);
        assert!(!format!("{config:?}").contains("a-scraper-token"));
        let err = Config::from_sources(
            Vec::<String>::new(),
            env_of(&[("ROUNDS_TRUSTED_PROXIES", "192.0.2.1,proxy")]),
        )
        .unwrap_err();
        assert!(err.to_string().contains("ROUNDS_TRUSTED_PROXIES"));
        let err = Config::from_sources(["--hash-concurrency", "0"].map(String::from), env_of(&[]))
            .unwrap_err();
        assert!(err.to_string().contains("--hash-concurrency"));
        let err = Config::from_sources(
            Vec::<String>::new(),
            env_of(&[("ROUNDS_METRICS_TOKEN", "short")]),
        )
        .unwrap_err();
        assert!(err.to_string().contains("ROUNDS_METRICS_TOKEN"));
    }
}
