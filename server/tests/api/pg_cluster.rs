//! A throwaway PostgreSQL cluster for the test binary: `initdb` + `pg_ctl` on a free port in a
//! temporary directory, started on first use, shared by every test of the binary (each gets a
//! database of its own), stopped and removed when the binary exits.
//!
//! It uses the server binaries installed on the machine (Debian's `postgresql` package;
//! `scripts/setup.sh test` installs it). PostgreSQL refuses to run as root, so as root the cluster
//! runs as the `postgres` system user (`runuser`), in a directory it owns. Durability is switched
//! off (`fsync=off`, …): this is for tests only. No PostgreSQL means the tests FAIL, never skip.

use std::{
    path::PathBuf,
    process::Command,
    sync::{
        atomic::{AtomicU64, Ordering},
        OnceLock,
    },
};

use sqlx::{Connection, PgConnection};

pub struct Cluster {
    pub port: u16,
    bin: PathBuf,
    base: PathBuf,
    run_as: Option<String>,
}

static CLUSTER: OnceLock<Cluster> = OnceLock::new();

/// The cluster, started on first use.
pub fn cluster() -> &'static Cluster {
    CLUSTER.get_or_init(start)
}

/// The directory holding initdb and pg_ctl: `ROUNDS_PG_BIN`, else the newest
/// `/usr/lib/postgresql/*/bin`, else `pg_config --bindir`.
fn bin_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("ROUNDS_PG_BIN") {
        return Some(PathBuf::from(dir));
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return Some(bin);
    }
    let output = Command::new("pg_config").arg("--bindir").output().ok()?;
    let dir = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
    dir.join("initdb").exists().then_some(dir)
}

impl Cluster {
    fn command(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        match &self.run_as {
            Some(user) => {
                let mut command = Command::new("runuser");
                command.arg("-u").arg(user).arg("--").arg(path);
                command
            }
            None => Command::new(path),
        }
    }

    fn data(&self) -> PathBuf {
        self.base.join("data")
    }

    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }
}

fn run(mut command: Command, what: &str) {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot run {command:?}: {e}"));
    assert!(
        output.status.success(),
        "{what} failed ({}):\n{}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// (uid, gid) of a system user, from `id`.
fn ids_of(user: &str) -> (u32, u32) {
    let id = |flag: &str| -> u32 {
        let output = Command::new("id")
            .arg(flag)
            .arg(user)
            .output()
            .expect("id runs");
        String::from_utf8_lossy(&output.stdout)
            .trim()
            .parse()
            .unwrap_or_else(|_| {
                panic!("running PostgreSQL as root needs the `{user}` system user (apt-get install postgresql creates it)")
            })
    };
    (id("-u"), id("-g"))
}

fn start() -> Cluster {
    let bin = bin_dir().expect(
        "PostgreSQL server binaries (initdb, pg_ctl) not found: install Debian's postgresql \
         package (scripts/setup.sh test does) or set ROUNDS_PG_BIN",
    );
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let run_as = root.then(|| "postgres".to_owned());
    let base = std::env::temp_dir().join(format!("rounds-pg-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    std::fs::create_dir_all(&base).expect("cluster directory");
    if root {
        let (uid, gid) = ids_of("postgres");
        std::os::unix::fs::chown(&base, Some(uid), Some(gid)).expect("chown the cluster directory");
    }
    let mut cluster = Cluster {
        port: 0,
        bin,
        base,
        run_as,
    };
    let mut initdb = cluster.command("initdb");
    initdb.arg("-D").arg(cluster.data()).args([
        "-U",
        "postgres",
        "--auth=trust",
        "--no-sync",
        "-E",
        "UTF8",
        "--locale=C",
    ]);
    run(initdb, "initdb");
    // A port taken between free_port and pg_ctl is rare; then try another.
    for attempt in 0..5 {
        cluster.port = free_port();
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -c unix_socket_directories={} -c fsync=off \
             -c synchronous_commit=off -c full_page_writes=off -c max_connections=500 \
             -c shared_buffers=64MB",
            cluster.port,
            cluster.base.display()
        );
        let mut pg_ctl = cluster.command("pg_ctl");
        pg_ctl
            .arg("-D")
            .arg(cluster.data())
            .arg("-l")
            .arg(cluster.base.join("log"))
            .args(["-w", "-t", "60", "-o", &options, "start"]);
        let output = pg_ctl.output().expect("pg_ctl runs");
        if output.status.success() {
            // SAFETY: registering a plain extern "C" fn with no captured state.
            unsafe { libc::atexit(stop_at_exit) };
            return cluster;
        }
        if attempt == 4 {
            let log = std::fs::read_to_string(cluster.base.join("log")).unwrap_or_default();
            panic!(
                "pg_ctl start failed: {}\n{log}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
    }
    unreachable!("the loop returns or panics")
}

extern "C" fn stop_at_exit() {
    if let Some(cluster) = CLUSTER.get() {
        let mut pg_ctl = cluster.command("pg_ctl");
        pg_ctl
            .arg("-D")
            .arg(cluster.data())
            .args(["-m", "immediate", "-w", "stop"]);
        let _ = pg_ctl.output();
        let _ = std::fs::remove_dir_all(&cluster.base);
    }
}

/// A new, empty database on the shared cluster; its URL.
pub async fn fresh_database() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let cluster = tokio::task::spawn_blocking(cluster)
        .await
        .expect("the cluster starts");
    let name = format!("rounds_test_{}", NEXT.fetch_add(1, Ordering::Relaxed));
    let mut admin = PgConnection::connect(&cluster.url("postgres"))
        .await
        .expect("connect to the test cluster");
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut admin)
        .await
        .expect("create a test database");
    let _ = admin.close().await;
    cluster.url(&name)
}
