//! The matcher and the follower: the matcher walks the event log, numbers each match and commits
//! the numbers with its position before anything is sent; every node's follower reads what was
//! committed and hands it to the sockets bound there.

use std::{collections::HashMap, time::Duration};

use app::events::Action;
use serde_json::{json, Value};

use super::{
    context::Context,
    criteria,
    notify::{bundle, load_user, notification, status_resource, OwnerAccess, Said},
    registry::{Frame, Kill, Numbering, Registered, Subscriptions},
    resource::{owner_of, Active},
    topics::{self, Content},
};
use crate::{
    access,
    access::{AccessCache, ACCESS_TYPES},
    auth::identity::AuthUser,
    event_log::Cursor,
    store::{EventRecord, ReadOutcome, SubscriptionState},
};

/// Starts the matcher, on whichever node holds the matcher lease (on SQLite: this one), and this
/// node's follower, which delivers what the matcher committed to the sockets bound here.
pub fn spawn_matcher(ctx: Context) -> tokio::task::JoinHandle<()> {
    let follower = ctx.clone();
    tokio::spawn(async move {
        loop {
            match run_follower(&follower).await {
                Ok(()) => return,
                Err(error) => {
                    tracing::error!(%error, "the subscription follower stopped; restarting");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        }
    });
    tokio::spawn(async move {
        loop {
            let mut lease = ctx.store.matcher_lease().await;
            if ctx.store.shared() {
                tracing::info!(node = %ctx.node_id, "this node now runs the subscription matcher");
            }
            tokio::select! {
                outcome = run_matcher(&ctx) => match outcome {
                    Ok(()) => return,
                    Err(error) => tracing::error!(%error, "the subscription matcher stopped; restarting"),
                },
                why = lease.lost() => {
                    tracing::warn!(%why, "the matcher lease was lost; waiting to win it again");
                }
            }
            drop(lease);
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    })
}

/// Loads the Subscriptions as the matcher last committed them: the active ones with their counts,
/// and the numbering of every other one it has ever numbered.
async fn load_registered(ctx: &Context) -> Result<Registered, crate::store::StoreError> {
    let store = &ctx.store;
    let mut registered = Registered::default();
    for row in store.subscription_states().await? {
        let numbering = Numbering {
            start_seq: row.start_seq,
            count: row.events_count,
        };
        let active = match row.active {
            true => match store.read("Subscription", &row.subscription_id).await? {
                ReadOutcome::Found(stored) => {
                    let resource: Value = serde_json::from_str(&stored.json).unwrap_or(Value::Null);
                    Active::from_resource(
                        &row.subscription_id,
                        &resource,
                        numbering.start_seq,
                        numbering.count,
                    )
                }
                _ => None,
            },
            false => None,
        };
        match active {
            Some(active) => {
                registered.active.insert(active.id.clone(), active);
            }
            None => {
                registered.dormant.insert(row.subscription_id, numbering);
            }
        }
    }
    Ok(registered)
}

/// The matcher: loads the Subscriptions as last committed, then follows the log, numbering
/// matches and committing them with its position. It sends nothing itself: the followers do.
///
/// One Subscription that cannot be committed (its numbers clash with ones already stored) never
/// holds up the others: the batch is committed without it, and it is set to `error` with the
/// reason, which its owner reads on the resource and in its status.
async fn run_matcher(ctx: &Context) -> Result<(), crate::store::StoreError> {
    let store = &ctx.store;
    let mut cursor = Cursor::after(
        store
            .setting("subscriptions.position")
            .await?
            .and_then(|v| v.parse().ok())
            .unwrap_or(0),
    );
    // The position last committed: the compare-and-set of `record_notifications` checks it.
    let mut committed = cursor.position();
    let mut registered = load_registered(ctx).await?;

    let mut head = store.subscribe_head();
    let mut access = AccessCache::default();
    let mut owners: HashMap<String, Option<AuthUser>> = HashMap::new();
    let mut saved = std::time::Instant::now();
    loop {
        head.borrow_and_update();
        loop {
            let batch = cursor.read(store, 512).await?;
            let Some(last) = batch.last().map(|e| e.seq) else {
                break;
            };
            let mut changed: HashMap<String, SubscriptionState> = HashMap::new();
            let mut numbered: Vec<(String, i64, i64)> = Vec::new();
            for event in &batch {
                if ACCESS_TYPES.contains(&event.resource_type.as_str()) {
                    access.clear();
                }
                if event.resource_type == "Subscription" {
                    let resource: Value =
                        serde_json::from_str(&event.resource_json).unwrap_or(Value::Null);
                    let row = apply_subscription_change(&mut registered, event, &resource);
                    changed.insert(row.subscription_id.clone(), row);
                    continue;
                }
                // Which subscriptions match; the resource's search facts are extracted once.
                let mut facts: Option<criteria::Facts> = None;
                let matched: Vec<(String, String)> = registered
                    .active
                    .values()
                    .filter(|s| {
                        s.criteria
                            .iter()
                            .any(|c| c.resource_type == event.resource_type)
                    })
                    .filter(|s| {
                        let facts = facts.get_or_insert_with(|| {
                            let resource: Value =
                                serde_json::from_str(&event.resource_json).unwrap_or(Value::Null);
                            criteria::Facts::of(&event.resource_type, &resource)
                        });
                        s.wants(event, facts)
                    })
                    .map(|s| (s.id.clone(), s.owner.clone()))
                    .collect();
                if matched.is_empty() {
                    continue;
                }
                let event_facts = access::EventFacts::of(event);
                for (id, owner_id) in matched {
                    let owner = match owners.get(&owner_id) {
                        Some(owner) => owner.clone(),
                        None => {
                            let owner = load_user(&ctx.store, &owner_id).await;
                            owners.insert(owner_id.clone(), owner.clone());
                            owner
                        }
                    };
                    let Some(owner) = owner else { continue };
                    let Some(visibility) = access.get(&ctx.store, &owner).await else {
                        continue;
                    };
                    if !access::may_receive(&owner, &visibility, &event_facts) {
                        continue;
                    }
                    let Some(active) = registered.active.get_mut(&id) else {
                        continue;
                    };
                    active.count += 1;
                    numbered.push((active.id.clone(), active.count, event.seq));
                    changed.insert(active.id.clone(), state_row(active, true));
                }
            }
            let mut states: Vec<SubscriptionState> = changed.into_values().collect();
            // Numbers are committed before anyone sends them. On SQLite a batch that changed
            // nothing only moves the position, saved at most once a second (the single writer
            // connection is the bottleneck; re-reading a second of log after a crash hands out no
            // number twice, those events matched nothing). On PostgreSQL every batch is
            // committed: the followers on other nodes learn the position from the database.
            if !states.is_empty()
                || !numbered.is_empty()
                || store.shared()
                || saved.elapsed() >= Duration::from_secs(1)
            {
                let mut failed = Vec::new();
                if let Err(error) = store
                    .record_notifications(committed, last, &states, &numbered)
                    .await
                {
                    // Only a matcher that still owns the position may blame a Subscription:
                    // numbers another matcher committed meanwhile clash too.
                    let owns = store
                        .setting("subscriptions.position")
                        .await?
                        .is_none_or(|at| at == committed.to_string());
                    if owns {
                        failed = clashing(ctx, &numbered).await?;
                    }
                    if failed.is_empty() {
                        return Err(error);
                    }
                    for (id, stored) in &failed {
                        tracing::error!(subscription = %id, %error, "a Subscription's event numbers clash with stored ones; setting it to error");
                        numbered.retain(|(n, _, _)| n != id);
                        states.retain(|row| &row.subscription_id != id);
                        if let Some(active) = registered.active.remove(id) {
                            let numbering = Numbering {
                                start_seq: active.start_seq,
                                count: active.count.max(*stored),
                            };
                            registered.dormant.insert(id.clone(), numbering);
                        }
                    }
                    store
                        .record_notifications(committed, last, &states, &numbered)
                        .await?;
                }
                committed = last;
                saved = std::time::Instant::now();
                for (id, stored) in failed {
                    let reason = format!(
                        "event numbers could not be committed: the store already holds up to number {stored}; set status to requested to resume"
                    );
                    set_error(ctx, &id, &reason).await?;
                }
            } else {
                store.matcher_reached(last);
            }
            cursor.advance(last);
        }
        tokio::select! {
            changed = head.changed() => {
                if changed.is_err() {
                    return Ok(());
                }
            }
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}

/// The subscriptions of a batch whose first new number is already stored, with the highest
/// number stored for each.
async fn clashing(
    ctx: &Context,
    numbered: &[(String, i64, i64)],
) -> Result<Vec<(String, i64)>, crate::store::StoreError> {
    let mut first: HashMap<&str, i64> = HashMap::new();
    for (id, number, _) in numbered {
        let at = first.entry(id.as_str()).or_insert(*number);
        *at = (*at).min(*number);
    }
    let mut clashing = Vec::new();
    for (id, first) in first {
        let stored = ctx.store.last_event_number(id).await?;
        if stored >= first {
            clashing.push((id.to_owned(), stored));
        }
    }
    Ok(clashing)
}

/// Sets Subscription `id` to `error` with `reason` (a new version, written by the server).
async fn set_error(ctx: &Context, id: &str, reason: &str) -> Result<(), crate::store::StoreError> {
    ctx.metrics.subscription_errors.inc();
    let ReadOutcome::Found(stored) = ctx.store.read("Subscription", id).await? else {
        return Ok(());
    };
    let mut resource: Value = serde_json::from_str(&stored.json).unwrap_or(Value::Null);
    if !resource.is_object() {
        return Ok(());
    }
    resource["status"] = json!("error");
    resource["error"] = json!(reason);
    let actor = crate::store::Actor {
        user_id: None,
        source: Some("subscription-matcher".into()),
    };
    let op = crate::store::WriteOp::Update {
        id: id.to_owned(),
        if_match: Some(stored.version_id),
    };
    match ctx
        .store
        .write(&actor, "Subscription", op, Some(resource))
        .await
    {
        // Changed meanwhile by its owner: their write decides.
        Ok(_) | Err(crate::store::StoreError::VersionConflict { .. }) => Ok(()),
        Err(error) => Err(error),
    }
}

fn state_row(active: &Active, is_active: bool) -> SubscriptionState {
    SubscriptionState {
        subscription_id: active.id.clone(),
        owner_id: active.owner.clone(),
        start_seq: active.start_seq,
        events_count: active.count,
        active: is_active,
    }
}

/// The follower, on every node: keeps this node's registry of active subscriptions in step with
/// the log and delivers to the sockets bound here every notification the matcher has committed,
/// in `seq` order, as the matcher's position moves (woken locally or by `LISTEN`, and polled).
async fn run_follower(ctx: &Context) -> Result<(), crate::store::StoreError> {
    let store = &ctx.store;
    let registry = &ctx.registry;
    let mut matcher = store.subscribe_matcher();
    // Live from where the matcher stands; earlier notifications are replayed on request.
    let mut position = *matcher.borrow_and_update();
    registry.lock().registered = load_registered(ctx).await?;
    registry.position.send_replace(position);
    let base = ctx.base.clone();
    loop {
        let target = *matcher.borrow_and_update();
        if target > position {
            let changes = store.subscription_writes(position, target).await?;
            let notifications = store.notifications_between(position, target).await?;
            if !notifications.is_empty() && !store.hears_revocations() {
                // A sign-out may have gone unheard: the sessions that ended are closed first.
                ctx.sessions.recheck(&ctx.store).await?;
            }
            let mut changes = changes.into_iter().peekable();
            let mut focus: HashMap<(String, i64, Content), Option<String>> = HashMap::new();
            let mut owners: HashMap<String, Option<OwnerAccess>> = HashMap::new();
            for (id, number, event) in &notifications {
                // Subscription writes before this event apply first (a Subscription event
                // itself is never a notification).
                while let Some(change) = changes.next_if(|c| c.seq < event.seq) {
                    apply_change(ctx, &change).await?;
                }
                let active = {
                    let mut inner = registry.lock();
                    let Some(active) = inner.registered.active.get_mut(id) else {
                        continue;
                    };
                    active.count = active.count.max(*number);
                    active.clone()
                };
                let text = {
                    if !owners.contains_key(&active.owner) {
                        let owner = OwnerAccess::load(&ctx.store, &active.owner).await;
                        owners.insert(active.owner.clone(), owner);
                    }
                    let entry = focus
                        .entry((active.owner.clone(), event.seq, active.shape.content))
                        .or_insert_with(|| {
                            owners.get(&active.owner).and_then(|owner| {
                                owner.as_ref()?.focus(event, &base, active.shape.content)
                            })
                        });
                    notification(&active, *number, event, entry.as_deref())
                };
                registry.deliver(
                    id,
                    Frame {
                        subscription: Some(id.clone()),
                        number: Some(*number),
                        text: text.into(),
                        ends: false,
                    },
                );
            }
            for change in changes {
                apply_change(ctx, &change).await?;
            }
            position = target;
            registry.position.send_replace(position);
        }
        tokio::select! {
            changed = matcher.changed() => {
                if changed.is_err() {
                    return Ok(());
                }
            }
            // The safety net: a lost wake-up delays delivery, never loses it.
            _ = tokio::time::sleep(Duration::from_secs(1)) => store.poll_matcher().await,
        }
    }
}

/// Applies a Subscription write to this node's registry; one that becomes active again counts
/// from the last number the matcher handed out (which the follower may not have delivered here).
async fn apply_change(ctx: &Context, change: &EventRecord) -> Result<(), crate::store::StoreError> {
    let registry = &ctx.registry;
    apply_to_registry(registry, change);
    if registry.active(&change.resource_id).is_some() {
        let last = ctx.store.last_event_number(&change.resource_id).await?;
        if let Some(active) = registry
            .lock()
            .registered
            .active
            .get_mut(&change.resource_id)
        {
            active.count = active.count.max(last);
        }
    }
    Ok(())
}

/// Applies a Subscription write to this node's registry. The sockets of one that stopped (off,
/// error, deleted) get its final status, with the reason of an error, and are unbound from it.
fn apply_to_registry(registry: &Subscriptions, event: &EventRecord) {
    let resource: Value = serde_json::from_str(&event.resource_json).unwrap_or(Value::Null);
    let mut inner = registry.lock();
    let row = apply_subscription_change(&mut inner.registered, event, &resource);
    if row.active {
        return;
    }
    let Some(bindings) = inner.bindings.remove(&event.resource_id) else {
        return;
    };
    let shape = topics::shape_of(&resource);
    let deleted = event.action == Action::Deleted;
    let said = Said {
        id: &event.resource_id,
        shape: &shape,
        state: match resource["status"].as_str() {
            Some("error") if !deleted => "error",
            _ => "off",
        },
        count: row.events_count,
        error: match deleted {
            true => Some("the Subscription was deleted"),
            false => resource["error"].as_str(),
        },
    };
    let text = bundle(
        &event.resource_id,
        &shape,
        status_resource(&said, "heartbeat", &[]),
        &[],
    );
    let last = Frame {
        subscription: Some(event.resource_id.clone()),
        number: None,
        text: text.into(),
        ends: true,
    };
    for binding in bindings {
        if binding.queue.try_send(last.clone()).is_err() {
            binding.close(Kill::Dropped);
        }
    }
}

/// Applies a write to a Subscription to the registered set; returns its state row. Its
/// numbering carries on from where it stood, whether it was active, off, in error or deleted.
fn apply_subscription_change(
    registered: &mut Registered,
    event: &EventRecord,
    resource: &Value,
) -> SubscriptionState {
    let id = &event.resource_id;
    let numbering = match registered.active.remove(id) {
        Some(previous) => Numbering {
            start_seq: previous.start_seq,
            count: previous.count,
        },
        None => registered.dormant.remove(id).unwrap_or(Numbering {
            start_seq: event.seq,
            count: 0,
        }),
    };
    let owner = owner_of(resource)
        .map(str::to_owned)
        .or_else(|| event.user_id.clone())
        .unwrap_or_default();
    let now_active = (event.action != Action::Deleted)
        .then(|| Active::from_resource(id, resource, numbering.start_seq, numbering.count))
        .flatten();
    let is_active = now_active.is_some();
    match now_active {
        Some(now) => {
            registered.active.insert(now.id.clone(), now);
        }
        None => {
            registered.dormant.insert(id.clone(), numbering);
        }
    }
    SubscriptionState {
        subscription_id: id.clone(),
        owner_id: owner,
        start_seq: numbering.start_seq,
        events_count: numbering.count,
        active: is_active,
    }
}
