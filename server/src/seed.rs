//! First-start seeding: the demo data set, loaded through the FHIR store (so every resource has
//! history and events like any other write), and the demo accounts.
//!
//! Runs only into an empty database and only when demo seeding is on; never touches real data.

use chrono::{DurationRound, TimeDelta, Utc};

use crate::{
    auth::password,
    demo::{self, DEMO_PASSWORD, DEMO_USERS},
    fhir::{date::format_instant, error::FhirError},
    store::{accounts::UserRow, Actor, Store, WriteOp},
};

/// Demo resources handed to the writer at once.
const SEED_PART: usize = 512;

/// Demo passwords hashed at once.
const HASHES_AT_ONCE: usize = 2;

/// The acting user recorded on seeded writes.
pub const SEED_ACTOR: &str = "system:seed";

/// Loads the demo data set and accounts if this database has never been seeded and holds no
/// users. Returns whether it seeded.
pub async fn seed_demo(store: &Store) -> Result<bool, FhirError> {
    if store.setting("demo_seeded_at").await?.is_some()
        || store.user_by_username("admin").await?.is_some()
    {
        return Ok(false);
    }
    let anchor = Utc::now()
        .duration_trunc(TimeDelta::hours(1))
        .unwrap_or_else(|_| Utc::now());
    let actor = Actor {
        user_id: Some(SEED_ACTOR.to_owned()),
        source: None,
    };
    let resources = demo::demo_resources(anchor);
    let count = resources.len();
    let mut writes = Vec::with_capacity(count);
    for resource in resources {
        let (Some(rtype), Some(id)) = (
            resource
                .get("resourceType")
                .and_then(|v| v.as_str())
                .map(str::to_owned),
            resource
                .get("id")
                .and_then(|v| v.as_str())
                .map(str::to_owned),
        ) else {
            return Err(FhirError::Internal(
                "a demo resource lacks resourceType or id".into(),
            ));
        };
        crate::fhir::validate::validate(
            &rtype,
            &resource,
            crate::fhir::validate::Intent::Update,
            Some(&id),
        )
        .map_err(|issues| {
            FhirError::Internal(format!("demo {rtype}/{id} is invalid: {issues:?}"))
        })?;
        writes.push((
            rtype,
            WriteOp::Update { id, if_match: None },
            Some(resource),
        ));
    }
    // Handed to the writer a few hundred at a time, in order (references point backwards): the
    // group commit stores each such part in one or two transactions instead of one per resource,
    // and only one part's versions are held in memory at once.
    let mut writes = writes.into_iter().peekable();
    while writes.peek().is_some() {
        let part: Vec<_> = writes.by_ref().take(SEED_PART).collect();
        for result in store.write_all(&actor, part).await {
            result?;
        }
    }
    // Hash the demo passwords a few at a time: each takes tens of milliseconds by design.
    let hashes = futures_hashes().await?;
    let now = format_instant(Utc::now());
    for (user, hash) in DEMO_USERS.iter().zip(hashes) {
        store
            .insert_user(
                &UserRow {
                    id: user.username.to_owned(),
                    username: user.username.to_owned(),
                    name: user.name.to_owned(),
                    role: user.role.to_owned(),
                    password_hash: hash,
                    practitioner_id: Some(user.practitioner_id.to_owned()),
                    active: true,
                    units: user.units.iter().map(|u| u.to_string()).collect(),
                },
                &now,
            )
            .await?;
    }
    store
        .set_setting("demo_seeded_at", &format_instant(anchor))
        .await?;
    tracing::info!(
        resources = count,
        users = DEMO_USERS.len(),
        "demo data seeded"
    );
    Ok(true)
}

async fn futures_hashes() -> Result<Vec<String>, FhirError> {
    let mut hashes = Vec::with_capacity(DEMO_USERS.len());
    // Two at a time: each hash holds 19 MiB while it runs, and this machine class has 2 cores.
    for pair in DEMO_USERS.chunks(HASHES_AT_ONCE) {
        let tasks: Vec<_> = pair
            .iter()
            .map(|_| tokio::spawn(password::hash_password(DEMO_PASSWORD.to_owned())))
            .collect();
        for task in tasks {
            hashes.push(
                task.await
                    .map_err(|e| FhirError::Internal(e.to_string()))??,
            );
        }
    }
    Ok(hashes)
}
