//! `rounds`: read the configuration, build the application, serve until a signal.

use std::process::ExitCode;

use rounds::{
    config::{usage, ConfigError},
    demo::{DEMO_PASSWORD, DEMO_USERS},
    Application, Config,
};
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> ExitCode {
    let config = match Config::from_env_and_args() {
        Ok(config) => config,
        Err(ConfigError::HelpRequested) => {
            print!("{}", usage());
            return ExitCode::SUCCESS;
        }
        Err(error) => {
            eprintln!("rounds: {error}");
            return ExitCode::from(2);
        }
    };
    let filter = match EnvFilter::try_from_default_env() {
        Ok(filter) => filter,
        Err(_) if std::env::var_os("RUST_LOG").is_some() => {
            eprintln!("rounds: invalid value for RUST_LOG (e.g. info, rounds=debug)");
            return ExitCode::from(2);
        }
        Err(_) => EnvFilter::new("info"),
    };
    tracing_subscriber::fmt().with_env_filter(filter).init();
    if config.jwt_secret_is_default {
        tracing::warn!(
            "ROUNDS_JWT_SECRET is not set: using the built-in DEVELOPMENT secret. Never run like this with real patients."
        );
    }
    tracing::info!(?config, "starting");

    let app = match Application::build(config.clone()).await {
        Ok(app) => app,
        Err(error) => {
            eprintln!("rounds: {error}");
            return ExitCode::FAILURE;
        }
    };
    let url = format!("http://{}", app.local_addr());
    // Tests and scripts wait for exactly this line.
    println!("Rounds listening on {url}");
    if config.seed_demo {
        println!("Demo sign-ins (development data only; password for all: {DEMO_PASSWORD}):");
        for user in DEMO_USERS {
            println!("  {:<14} {:<11} {}", user.username, user.role, user.name);
        }
    }
    match app.run_until_stopped().await {
        Ok(()) => {
            tracing::info!("stopped");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("rounds: server error: {error}");
            ExitCode::FAILURE
        }
    }
}
