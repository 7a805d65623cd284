//! The Subscription rules of the generic FHIR interactions, behind one seam.
//!
//! `crate::rest` creates, updates, deletes and searches every type the same way; a type with
//! rules of its own says so here, and today that is Subscription alone: only its owner (or an
//! admin) may change or find one, a write is checked and normalised (`resource::prepare`) and
//! admitted under the per-user cap, and the answer waits until the matcher has registered it, so
//! that events committed after the answer are notified.

use serde_json::Value;
use tokio::sync::MutexGuard;

use super::{
    registry::Subscriptions,
    resource::{may_use, prepare},
};
use crate::{
    auth::identity::{AuthUser, Role},
    fhir::error::FhirError,
    store::Written,
};

/// A write that its type's rules admitted; keep it until the write is committed, then call
/// [`Admitted::written`].
pub struct Admitted<'a> {
    registry: &'a Subscriptions,
    /// Held for a Subscription create or update: the next write counts this one.
    guard: Option<MutexGuard<'a, ()>>,
}

impl Admitted<'_> {
    /// The write is committed: a Subscription's answer waits until the matcher registered it.
    pub async fn written(self, written: &Written) {
        if self.guard.is_some() {
            if let Some(&(seq, _)) = written.events.last() {
                self.registry.caught_up(seq).await;
            }
        }
    }
}

/// The rules of `resource_type` for a write by `user` of resource `id` (`None`: a create), whose
/// live version now is `previous`. `resource` is the content to write, checked and normalised in
/// place (`None`: a delete). A Subscription the user may not use answers as an unknown id.
pub async fn admit<'a>(
    registry: &'a Subscriptions,
    cap: usize,
    user: &AuthUser,
    resource_type: &str,
    id: Option<&str>,
    previous: Option<&Value>,
    resource: Option<&mut Value>,
) -> Result<Admitted<'a>, FhirError> {
    let mut admitted = Admitted {
        registry,
        guard: None,
    };
    if resource_type != "Subscription" {
        return Ok(admitted);
    }
    if previous.is_some_and(|previous| !may_use(user, previous)) {
        let id = id.unwrap_or_default();
        return Err(FhirError::NotFound(format!(
            "{resource_type}/{id} is not known"
        )));
    }
    if let Some(resource) = resource {
        prepare(user, previous, resource)?;
        admitted.guard = Some(registry.admit(id, resource, cap).await?);
    }
    Ok(admitted)
}

/// The owner a search by `user` over `resource_type` keeps to: a Subscription's criteria names
/// the patients it watches, so only its owner (or an admin) finds it, and counts it.
pub fn search_owner(user: &AuthUser, resource_type: &str) -> Option<String> {
    (resource_type == "Subscription" && user.role != Role::Admin).then(|| user.id.clone())
}
