//! Building Bundles (searchset, history) from stored JSON text without re-parsing every resource.

use serde_json::{json, value::RawValue, Value};

use crate::store::Stored;

/// The JSON text of a stored resource as a raw value (stored text is always valid JSON).
pub fn raw(stored: &Stored) -> Box<RawValue> {
    RawValue::from_string(stored.json.to_string())
        .unwrap_or_else(|_| RawValue::from_string("{}".to_owned()).unwrap_or_default())
}

/// One searchset entry.
pub fn search_entry(base: &str, stored: &Stored, mode: &str) -> Value {
    json!({
        "fullUrl": format!("{base}/{}/{}", stored.resource_type, stored.id),
        "resource": raw(stored),
        "search": {"mode": mode},
    })
}

/// One history entry (a deletion carries no resource).
pub fn history_entry(base: &str, stored: &Stored) -> Value {
    let url = format!("{}/{}", stored.resource_type, stored.id);
    let mut entry = json!({
        "fullUrl": format!("{base}/{url}"),
        "request": {
            "method": if stored.deleted { "DELETE" } else if stored.version_id == 1 { "POST" } else { "PUT" },
            "url": if stored.version_id == 1 && !stored.deleted { stored.resource_type.clone() } else { url },
        },
        "response": {
            "status": if stored.deleted { "204" } else if stored.version_id == 1 { "201" } else { "200" },
            "etag": format!("W/\"{}\"", stored.version_id),
            "lastModified": stored.last_updated,
        },
    });
    if !stored.deleted {
        entry["resource"] = serde_json::to_value(raw(stored)).unwrap_or(Value::Null);
    }
    entry
}

/// A Bundle of `kind` with its links and entries; empty `entry` arrays are left out (FHIR JSON
/// forbids empty arrays).
pub fn bundle(
    kind: &str,
    total: Option<i64>,
    links: Vec<(&str, String)>,
    entries: Vec<Value>,
) -> Value {
    let mut bundle = json!({
        "resourceType": "Bundle",
        "id": uuid::Uuid::new_v4().to_string(),
        "meta": {"lastUpdated": crate::fhir::date::format_instant(chrono::Utc::now())},
        "type": kind,
    });
    if let Some(total) = total {
        bundle["total"] = json!(total);
    }
    if !links.is_empty() {
        bundle["link"] = links
            .into_iter()
            .map(|(relation, url)| json!({"relation": relation, "url": url}))
            .collect();
    }
    if !entries.is_empty() {
        bundle["entry"] = Value::Array(entries);
    }
    bundle
}
