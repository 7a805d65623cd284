//! Demo data: forty inpatients on three units, with the orders, results, medications, notes and
//! alerts a clinician expects to see, as FHIR R4 JSON resources.
//!
//! The server loads these resources through the FHIR store at first start, never straight into its
//! tables, so every seeded resource gets a version, a history row and its events like any other
//! write, and the realtime path has something to show from the first sign-in.
//!
//! Everything is deterministic: a fixed-seed splitmix64 generator (no `rand`), and every timestamp
//! is relative to an anchor (the seeding time truncated to the hour), so a freshly seeded system
//! always looks current and two seedings with the same anchor produce identical resources.
//!
//! The patients are fabricated and the passwords are published. This module must never be used for
//! anything but seeding a demo or development instance: never loaded next to real patients, never
//! used as a fallback when configuration is missing.

mod builders;
mod codes;
mod patients;

use chrono::{DateTime, Utc};
use serde_json::Value;

use builders::{add_patient, bed_location, practitioner, unit_location, Clock, Sec, Sections};
use patients::{PATIENTS, STAFF, UNITS};

/// A demo sign-in account and the staff member behind it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DemoUser {
    /// Login name.
    pub username: &'static str,
    /// Plain-text password (always [`DEMO_PASSWORD`]); the server stores only its hash.
    pub password: &'static str,
    /// Display name.
    pub name: &'static str,
    /// One of `"physician"`, `"nurse"`, `"pharmacist"`, `"admin"`.
    pub role: &'static str,
    /// Id of the user's Practitioner in [`demo_resources`].
    pub practitioner_id: &'static str,
    /// Ids of the unit Locations the user is assigned to; unit staff may see every patient there.
    pub units: &'static [&'static str],
}

/// The password of every demo account: a development default, published in the README.
pub const DEMO_PASSWORD: &str = "rounds-demo";

/// The demo accounts. Physicians reach patients through care teams, nurses through their units.
pub const DEMO_USERS: &[DemoUser] = &[
    DemoUser {
        username: "dr.chen",
        password: DEMO_PASSWORD,
        name: "Dr. Maya Chen",
        role: "physician",
        practitioner_id: "pr-chen",
        units: &[],
    },
    DemoUser {
        username: "dr.okafor",
        password: DEMO_PASSWORD,
        name: "Dr. Samuel Okafor",
        role: "physician",
        practitioner_id: "pr-okafor",
        units: &[],
    },
    DemoUser {
        username: "nurse.patel",
        password: DEMO_PASSWORD,
        name: "Priya Patel RN",
        role: "nurse",
        practitioner_id: "pr-patel",
        units: &["unit-4w"],
    },
    DemoUser {
        username: "nurse.garcia",
        password: DEMO_PASSWORD,
        name: "Luis Garcia RN",
        role: "nurse",
        practitioner_id: "pr-garcia",
        units: &["unit-icu"],
    },
    DemoUser {
        username: "pharm.nguyen",
        password: DEMO_PASSWORD,
        name: "Linh Nguyen PharmD",
        role: "pharmacist",
        practitioner_id: "pr-nguyen",
        units: &[],
    },
    DemoUser {
        username: "admin",
        password: DEMO_PASSWORD,
        name: "Alex Morgan",
        role: "admin",
        practitioner_id: "pr-morgan",
        units: &[],
    },
];

/// All demo resources, in dependency order (a resource only references resources earlier in the
/// list), each with an explicit `id` and without `meta` (the store assigns versions), except the
/// two restricted notes, whose `meta` carries only their security label.
///
/// Deterministic for a given anchor: timestamps are relative to `anchor`, the seeding time
/// truncated to the hour (a finer anchor is truncated here).
pub fn demo_resources(anchor: DateTime<Utc>) -> Vec<Value> {
    let clock = Clock::new(anchor);
    let mut out = Sections::default();

    for staff in STAFF {
        out.push(Sec::Practitioner, practitioner(staff));
    }

    // Beds are handed out in table order with a gap after every fifth, so each unit has empty beds.
    let mut next_in_unit = [0usize; 3];
    let mut beds = Vec::with_capacity(PATIENTS.len());
    for seed in PATIENTS.iter() {
        let slot = next_in_unit[seed.unit];
        next_in_unit[seed.unit] += 1;
        beds.push(slot + 1 + slot / 5);
    }
    for (u, unit) in UNITS.iter().enumerate() {
        out.push(Sec::Location, unit_location(unit));
        for bed in 1..=unit.beds {
            let occupied = PATIENTS
                .iter()
                .zip(&beds)
                .any(|(seed, &b)| seed.unit == u && b == bed);
            out.push(Sec::Location, bed_location(unit, bed, occupied));
        }
    }

    for (i, seed) in PATIENTS.iter().enumerate() {
        let shared = PATIENTS
            .iter()
            .filter(|other| other.profile.key == seed.profile.key)
            .count()
            > 1;
        let bed = beds.get(i).copied().unwrap_or(1);
        add_patient(&mut out, &clock, i + 1, seed, bed, shared);
    }

    out.into_ordered()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeDelta, TimeZone};
    use std::collections::{BTreeMap, HashMap, HashSet};

    fn anchor(hour: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 24, hour, 0, 0)
            .single()
            .unwrap_or_default()
    }

    fn of_type<'a>(all: &'a [Value], kind: &str) -> Vec<&'a Value> {
        all.iter().filter(|r| r["resourceType"] == kind).collect()
    }

    fn collect_references(value: &Value, found: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                for (key, v) in map {
                    match (key.as_str(), v) {
                        ("reference", Value::String(s)) => found.push(s.clone()),
                        _ => collect_references(v, found),
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|v| collect_references(v, found)),
            _ => {}
        }
    }

    fn collect_strings<'a>(value: &'a Value, found: &mut Vec<(&'a str, &'a str)>, key: &'a str) {
        match value {
            Value::Object(map) => map.iter().for_each(|(k, v)| collect_strings(v, found, k)),
            Value::Array(items) => items.iter().for_each(|v| collect_strings(v, found, key)),
            Value::String(s) => found.push((key, s)),
            _ => {}
        }
    }

    fn valid_id(id: &str) -> bool {
        (1..=64).contains(&id.len())
            && id
                .chars()
                .all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '.')
    }

    #[test]
    fn same_anchor_gives_identical_output() {
        let a = demo_resources(anchor(8));
        let b = demo_resources(anchor(8));
        assert_eq!(a, b);
        // A finer anchor is truncated to the hour.
        let c = demo_resources(anchor(8) + TimeDelta::minutes(37));
        assert_eq!(a, c);
    }

    #[test]
    fn counts_match_the_brief() {
        for hour in 0..24 {
            let all = demo_resources(anchor(hour));
            assert!(all.len() < 4_000, "{} resources at hour {hour}", all.len());

            let units: Vec<_> = of_type(&all, "Location")
                .into_iter()
                .filter(|l| l["physicalType"]["coding"][0]["code"] == "wa")
                .collect();
            assert!(units.len() >= 3);
            let unit_ids: HashSet<&str> = units.iter().filter_map(|u| u["id"].as_str()).collect();

            let patients = of_type(&all, "Patient");
            assert_eq!(patients.len(), 40);
            for patient in &patients {
                let reference = format!("Patient/{}", patient["id"].as_str().unwrap_or(""));
                let on_unit = of_type(&all, "Encounter").into_iter().any(|e| {
                    e["subject"]["reference"] == reference.as_str()
                        && e["status"] == "in-progress"
                        && e["class"]["code"] == "IMP"
                        && e["location"].as_array().is_some_and(|locs| {
                            locs.len() == 2
                                && locs.iter().all(|l| l["status"] == "active")
                                && locs.iter().any(|l| {
                                    l["physicalType"]["coding"][0]["code"] == "wa"
                                        && l["location"]["reference"]
                                            .as_str()
                                            .and_then(|r| r.strip_prefix("Location/"))
                                            .is_some_and(|id| unit_ids.contains(id))
                                })
                        })
                });
                assert!(
                    on_unit,
                    "{reference} has no in-progress encounter on a unit"
                );
            }

            let critical = of_type(&all, "Observation")
                .into_iter()
                .filter(|o| {
                    matches!(
                        o["interpretation"][0]["coding"][0]["code"].as_str(),
                        Some("HH" | "LL")
                    )
                })
                .count();
            assert!(critical >= 4, "only {critical} critical results");

            let verified: HashSet<&str> = of_type(&all, "Task")
                .into_iter()
                .filter_map(|t| t["focus"]["reference"].as_str())
                .collect();
            let unverified = of_type(&all, "MedicationRequest")
                .into_iter()
                .filter(|m| {
                    let r = format!("MedicationRequest/{}", m["id"].as_str().unwrap_or(""));
                    !verified.contains(r.as_str())
                })
                .count();
            assert!(
                unverified >= 3,
                "only {unverified} prescriptions awaiting verification"
            );

            let restricted = of_type(&all, "DocumentReference")
                .into_iter()
                .filter(|d| d["meta"]["security"][0]["code"] == "R")
                .count();
            assert_eq!(restricted, 2);
        }
    }

    #[test]
    fn per_patient_counts_stay_in_range() {
        let all = demo_resources(anchor(8));
        let per_patient = |kind: &str, field: &str| {
            let mut counts: HashMap<String, usize> = HashMap::new();
            for r in of_type(&all, kind) {
                if let Some(p) = r[field]["reference"].as_str() {
                    *counts.entry(p.to_string()).or_default() += 1;
                }
            }
            counts
        };
        let conditions = per_patient("Condition", "subject");
        let allergies = per_patient("AllergyIntolerance", "patient");
        let prescriptions = per_patient("MedicationRequest", "subject");
        let notes = per_patient("DocumentReference", "subject");
        for n in 1..=40 {
            let p = format!("Patient/pat-{n:03}");
            let get = |m: &HashMap<String, usize>| m.get(&p).copied().unwrap_or(0);
            assert!((1..=4).contains(&get(&conditions)), "{p} conditions");
            assert!(get(&allergies) <= 3, "{p} allergies");
            assert!((2..=5).contains(&get(&prescriptions)), "{p} prescriptions");
            assert!((1..=3).contains(&get(&notes)), "{p} notes");
        }
        let imaging = of_type(&all, "ServiceRequest")
            .into_iter()
            .filter(|s| s["category"][0]["coding"][0]["code"] == "363679005")
            .count();
        assert_eq!(imaging, 1);
        let open_lab_orders = of_type(&all, "ServiceRequest")
            .into_iter()
            .filter(|s| s["status"] == "active")
            .count();
        assert!(open_lab_orders > 1);
        let finished = of_type(&all, "Encounter")
            .into_iter()
            .filter(|e| e["status"] == "finished")
            .count();
        assert_eq!(finished, 5);
        let unsigned = of_type(&all, "DocumentReference")
            .into_iter()
            .filter(|d| d["docStatus"] == "preliminary")
            .count();
        assert!(unsigned > 0);
        assert!(!of_type(&all, "Flag").is_empty());
    }

    #[test]
    fn every_reference_points_to_an_earlier_resource() {
        for hour in [0, 5, 6, 10, 11, 23] {
            let all = demo_resources(anchor(hour));
            let mut seen: HashSet<String> = HashSet::new();
            for resource in &all {
                let mut references = Vec::new();
                collect_references(resource, &mut references);
                for r in references {
                    let parts: Vec<&str> = r.split('/').collect();
                    assert_eq!(parts.len(), 2, "{r} is not Type/id");
                    assert!(
                        seen.contains(&r),
                        "{r} in {} is not earlier",
                        resource["id"]
                    );
                }
                let kind = resource["resourceType"].as_str().unwrap_or("");
                let id = resource["id"].as_str().unwrap_or("");
                seen.insert(format!("{kind}/{id}"));
            }
        }
    }

    #[test]
    fn ids_are_valid_and_unique_per_type() {
        let all = demo_resources(anchor(8));
        let mut seen = HashSet::new();
        for resource in &all {
            let kind = resource["resourceType"].as_str().unwrap_or("");
            let id = resource["id"].as_str().unwrap_or("");
            assert!(!kind.is_empty());
            assert!(valid_id(id), "invalid id {id:?}");
            assert!(seen.insert((kind, id)), "duplicate {kind}/{id}");
        }
    }

    #[test]
    fn required_elements_dates_and_meta() {
        let all = demo_resources(anchor(8));
        let required: &[(&str, &[&str])] = &[
            ("Encounter", &["status", "class"]),
            ("Observation", &["status", "code"]),
            ("DiagnosticReport", &["status", "code"]),
            ("ServiceRequest", &["status", "intent", "subject"]),
            (
                "MedicationRequest",
                &["status", "intent", "medicationCodeableConcept", "subject"],
            ),
            (
                "MedicationDispense",
                &["status", "medicationCodeableConcept"],
            ),
            ("DocumentReference", &["status", "content"]),
            ("Flag", &["status", "code", "subject"]),
            ("Task", &["status", "intent"]),
            ("Condition", &["subject"]),
            ("AllergyIntolerance", &["patient"]),
            ("CareTeam", &["status", "subject"]),
        ];
        for resource in &all {
            let kind = resource["resourceType"].as_str().unwrap_or("");
            if let Some((_, fields)) = required.iter().find(|(k, _)| *k == kind) {
                for field in *fields {
                    assert!(
                        !resource[*field].is_null(),
                        "{kind} {} lacks {field}",
                        resource["id"]
                    );
                }
            }
            if let Some(meta) = resource.get("meta") {
                let keys: Vec<&String> = meta
                    .as_object()
                    .map(|m| m.keys().collect())
                    .unwrap_or_default();
                assert_eq!(keys, vec!["security"], "meta other than a security label");
            }
            let mut strings = Vec::new();
            collect_strings(resource, &mut strings, "");
            for (key, s) in strings {
                let b = s.as_bytes();
                let looks_like_date = b.len() >= 10
                    && b[..4].iter().all(u8::is_ascii_digit)
                    && b[4] == b'-'
                    && b[7] == b'-';
                if key == "birthDate" {
                    assert!(
                        chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").is_ok(),
                        "{s}"
                    );
                } else if looks_like_date {
                    assert!(
                        s.ends_with('Z') && DateTime::parse_from_rfc3339(s).is_ok(),
                        "{key}: {s}"
                    );
                }
            }
        }
    }

    #[test]
    fn ages_span_the_brief() {
        let all = demo_resources(anchor(8));
        for patient in of_type(&all, "Patient") {
            let birth = patient["birthDate"].as_str().unwrap_or("");
            let born = chrono::NaiveDate::parse_from_str(birth, "%Y-%m-%d");
            let age = born
                .ok()
                .and_then(|b| anchor(8).date_naive().years_since(b));
            assert!(age.is_some_and(|a| (19..=94).contains(&a)), "{birth}");
        }
    }

    #[test]
    fn demo_users_have_practitioners_and_units() {
        let all = demo_resources(anchor(8));
        let ids: HashSet<String> = all
            .iter()
            .map(|r| {
                format!(
                    "{}/{}",
                    r["resourceType"].as_str().unwrap_or(""),
                    r["id"].as_str().unwrap_or("")
                )
            })
            .collect();
        for user in DEMO_USERS {
            assert_eq!(user.password, DEMO_PASSWORD);
            assert!(
                ids.contains(&format!("Practitioner/{}", user.practitioner_id)),
                "{}",
                user.username
            );
            for unit in user.units {
                assert!(ids.contains(&format!("Location/{unit}")), "{unit}");
            }
        }
    }

    /// `cargo test print_counts -- --nocapture` shows the shape of the data set.
    #[test]
    fn print_counts() {
        let all = demo_resources(anchor(8));
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        for r in &all {
            *counts
                .entry(r["resourceType"].as_str().unwrap_or("?"))
                .or_default() += 1;
        }
        for (kind, count) in &counts {
            println!("{kind:<20} {count:>5}");
        }
        println!("{:<20} {:>5}", "total", all.len());
        for user in DEMO_USERS.iter().filter(|u| u.role == "physician") {
            let reference = format!("Practitioner/{}", user.practitioner_id);
            let attended: Vec<&str> = of_type(&all, "CareTeam")
                .into_iter()
                .filter(|t| {
                    t["participant"].as_array().is_some_and(|ps| {
                        ps.iter()
                            .any(|p| p["member"]["reference"] == reference.as_str())
                    })
                })
                .filter_map(|t| t["subject"]["reference"].as_str())
                .collect();
            println!(
                "{} attends {}: {}",
                user.username,
                attended.len(),
                attended.join(" ")
            );
        }
        let critical: Vec<String> = of_type(&all, "Observation")
            .into_iter()
            .filter(|o| {
                matches!(
                    o["interpretation"][0]["coding"][0]["code"].as_str(),
                    Some("HH" | "LL")
                )
            })
            .map(|o| {
                format!(
                    "{} {} {}",
                    o["id"],
                    o["valueQuantity"]["value"],
                    o["interpretation"][0]["coding"][0]["code"]
                )
            })
            .collect();
        println!("critical: {critical:?}");
        assert!(!counts.is_empty());
    }
}
