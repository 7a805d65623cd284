//! The exit gate against an oracle: a tiny, obviously right model of the access rule, and a
//! generator of histories (create, update, move to another patient, add and remove the restricted
//! label, delete, re-create, care-team, unit and prescription changes). After each generated
//! history, every exit — read, vread of every version, `_history` whole and page by page, search
//! by id, `_include` from a Task, and the long poll's replay — is compared, version by version,
//! with what the oracle allows, for every demo role. Then one regression test per defect the
//! testers found (issue 15, defects 1–5).

use std::sync::atomic::{AtomicUsize, Ordering};

use proptest::{prelude::*, test_runner::TestRunner};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{entries, spawn_app, TestApp};

/// Patients of one generated world.
const PATIENTS: usize = 3;
const UNITS: [&str; 2] = ["unit-4w", "unit-icu"];
/// What a pharmacist may read of a patient's record (the README's list).
const PHARMACY_TYPES: [&str; 8] = [
    "Patient",
    "Encounter",
    "MedicationRequest",
    "MedicationDispense",
    "Task",
    "AllergyIntolerance",
    "Condition",
    "Observation",
];

// ---------------------------------------------------------------------------------------------
// The oracle.

#[derive(Debug, Clone, Copy, PartialEq)]
enum Role {
    Physician,
    Nurse,
    Pharmacist,
    Admin,
}

/// A signed-in demo user as the oracle sees them.
struct Who {
    username: &'static str,
    token: String,
    role: Role,
    practitioner: Option<String>,
    units: Vec<String>,
}

/// Who may see each patient of the world now.
#[derive(Debug, Clone, Default)]
struct World {
    /// Practitioners on the patient's active care team.
    team: [Vec<String>; PATIENTS],
    /// The unit of the patient's current Encounter.
    unit: [Option<usize>; PATIENTS],
    /// An active prescription.
    rx: [bool; PATIENTS],
}

/// One stored version of the resource under test: its patient and label (a tombstone holds the
/// deleted version's).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Version {
    patient: usize,
    labelled: bool,
    deleted: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Verdict {
    Allowed,
    Forbidden,
    Hidden,
}

impl Verdict {
    fn status(self, gone: bool) -> StatusCode {
        match self {
            Verdict::Allowed if gone => StatusCode::GONE,
            Verdict::Allowed => StatusCode::OK,
            Verdict::Forbidden => StatusCode::FORBIDDEN,
            Verdict::Hidden => StatusCode::NOT_FOUND,
        }
    }
}

impl World {
    fn sees(&self, who: &Who, patient: usize) -> bool {
        match who.role {
            Role::Admin => true,
            Role::Pharmacist => self.rx[patient],
            Role::Physician | Role::Nurse => {
                who.practitioner
                    .as_ref()
                    .is_some_and(|p| self.team[patient].contains(p))
                    || self.unit[patient].is_some_and(|u| who.units.iter().any(|w| w == UNITS[u]))
            }
        }
    }

    /// The rule, for one version on its own.
    fn judge(&self, who: &Who, rtype: &str, version: Version) -> Verdict {
        let on_team = who
            .practitioner
            .as_ref()
            .is_some_and(|p| self.team[version.patient].contains(p));
        if version.labelled && !(who.role == Role::Admin || who.role == Role::Physician && on_team)
        {
            return Verdict::Hidden;
        }
        if !self.sees(who, version.patient)
            || who.role == Role::Pharmacist && !PHARMACY_TYPES.contains(&rtype)
        {
            return Verdict::Forbidden;
        }
        Verdict::Allowed
    }

    /// A version leaves only when it and the resource's newest version both pass.
    fn release(&self, who: &Who, rtype: &str, version: Version, newest: Version) -> Verdict {
        self.judge(who, rtype, version)
            .max(self.judge(who, rtype, newest))
    }
}

// ---------------------------------------------------------------------------------------------
// The generator.

#[derive(Debug, Clone)]
enum Op {
    /// Create or update the resource: about `patient`, labelled or not.
    Put {
        patient: usize,
        labelled: bool,
    },
    Delete,
    Team {
        patient: usize,
        chen: bool,
        okafor: bool,
    },
    Unit {
        patient: usize,
        unit: Option<usize>,
    },
    Rx {
        patient: usize,
        active: bool,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..PATIENTS, any::<bool>()).prop_map(|(patient, labelled)| Op::Put { patient, labelled }),
        1 => Just(Op::Delete),
        1 => (0..PATIENTS, any::<bool>(), any::<bool>())
            .prop_map(|(patient, chen, okafor)| Op::Team { patient, chen, okafor }),
        1 => (0..PATIENTS, proptest::option::of(0..UNITS.len()))
            .prop_map(|(patient, unit)| Op::Unit { patient, unit }),
        1 => (0..PATIENTS, any::<bool>()).prop_map(|(patient, active)| Op::Rx { patient, active }),
    ]
}

/// A generated case: the type of the resource under test and what happens to it and its world.
fn case() -> impl Strategy<Value = (bool, Vec<Op>)> {
    (any::<bool>(), proptest::collection::vec(op(), 1..10))
}

// ---------------------------------------------------------------------------------------------
// The resources the generator writes (all as the admin, who may write anything).

const CONFIDENTIAL: &str = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality";

fn subject_resource(rtype: &str, patient: &str, labelled: bool) -> Value {
    let mut resource = if rtype == "Observation" {
        json!({
            "resourceType": "Observation", "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4", "display": "Heart rate"}]},
            "subject": {"reference": format!("Patient/{patient}")},
            "effectiveDateTime": "2026-11-25T10:00:00Z",
            "valueQuantity": {"value": 88, "unit": "/min", "system": "http://unitsofmeasure.org", "code": "/min"}
        })
    } else {
        json!({
            "resourceType": "DocumentReference", "status": "current", "docStatus": "final",
            "type": {"coding": [{"system": "http://loinc.org", "code": "11506-3", "display": "Progress note"}]},
            "subject": {"reference": format!("Patient/{patient}")},
            "date": "2026-11-25T10:00:00Z",
            "content": [{"attachment": {"contentType": "text/plain", "data": "Tm90ZQ=="}}]
        })
    };
    if labelled {
        resource["meta"] = json!({"security": [{"system": CONFIDENTIAL, "code": "R"}]});
    }
    resource
}

fn care_team(patient: &str, members: &[&String]) -> Value {
    let participant: Vec<Value> = members
        .iter()
        .map(|m| json!({"member": {"reference": format!("Practitioner/{m}")}}))
        .collect();
    let mut team = json!({
        "resourceType": "CareTeam", "status": "active",
        "subject": {"reference": format!("Patient/{patient}")},
    });
    // FHIR JSON has no empty arrays.
    if !participant.is_empty() {
        team["participant"] = Value::Array(participant);
    }
    team
}

fn encounter(patient: &str, unit: Option<usize>) -> Value {
    let mut encounter = json!({
        "resourceType": "Encounter",
        "status": if unit.is_some() { "in-progress" } else { "finished" },
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "IMP"},
        "subject": {"reference": format!("Patient/{patient}")},
    });
    if let Some(unit) = unit {
        encounter["location"] = json!([{
            "location": {"reference": format!("Location/{}", UNITS[unit])},
            "status": "active",
            "physicalType": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/location-physical-type", "code": "wa"}]},
        }]);
    }
    encounter
}

fn prescription(patient: &str, active: bool) -> Value {
    json!({
        "resourceType": "MedicationRequest",
        "status": if active { "active" } else { "completed" },
        "intent": "order",
        "medicationCodeableConcept": {"text": "Enoxaparin 40 mg"},
        "subject": {"reference": format!("Patient/{patient}")},
    })
}

fn task(patient: &str, focus: &str) -> Value {
    json!({
        "resourceType": "Task", "status": "requested", "intent": "order",
        "for": {"reference": format!("Patient/{patient}")},
        "focus": {"reference": focus},
    })
}

// ---------------------------------------------------------------------------------------------
// Running a case.

struct Fixture {
    app: TestApp,
    admin: String,
    users: Vec<Who>,
    chen: String,
    okafor: String,
}

async fn fixture() -> Fixture {
    let app = spawn_app().await;
    let mut users = Vec::new();
    for (username, role) in [
        ("dr.chen", Role::Physician),
        ("dr.okafor", Role::Physician),
        ("nurse.patel", Role::Nurse),
        ("nurse.garcia", Role::Nurse),
        ("pharm.nguyen", Role::Pharmacist),
        ("admin", Role::Admin),
    ] {
        let token = app.token(username).await;
        let (status, me) = app.get_json(&token, "/auth/me").await;
        assert_eq!(status, StatusCode::OK);
        users.push(Who {
            username,
            token,
            role,
            practitioner: me["practitioner_id"].as_str().map(str::to_owned),
            units: me["units"]
                .as_array()
                .map(|u| {
                    u.iter()
                        .filter_map(|u| u.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default(),
        });
    }
    let practitioner = |name: &str| {
        users
            .iter()
            .find(|u| u.username == name)
            .and_then(|u| u.practitioner.clone())
            .expect("the physicians have a Practitioner")
    };
    Fixture {
        admin: users[5].token.clone(),
        chen: practitioner("dr.chen"),
        okafor: practitioner("dr.okafor"),
        users,
        app,
    }
}

/// Distinct ids for every case (shrinking re-runs cases on fresh resources).
static CASE: AtomicUsize = AtomicUsize::new(0);

fn check(ok: bool, what: impl FnOnce() -> String) -> Result<(), String> {
    if ok {
        Ok(())
    } else {
        Err(what())
    }
}

/// PUTs `body` at `path` (a `/fhir/R4/Type/id` path) with the id the path names.
async fn put(app: &TestApp, token: &str, path: &str, body: &Value) -> reqwest::Response {
    let mut body = body.clone();
    body["id"] = json!(path.rsplit('/').next().unwrap_or_default());
    app.put(token, path, &body).await
}

async fn put_ok(fx: &Fixture, path: &str, body: &Value) -> Result<(), String> {
    let response = put(&fx.app, &fx.admin, path, body).await;
    let status = response.status();
    check(status.is_success(), || {
        format!("PUT {path} as admin: {status}")
    })
}

async fn run_case(fx: &Fixture, note: bool, ops: &[Op]) -> Result<(), String> {
    let n = CASE.fetch_add(1, Ordering::SeqCst);
    let rtype = if note {
        "DocumentReference"
    } else {
        "Observation"
    };
    let patients: Vec<String> = (0..PATIENTS).map(|i| format!("gate{n}-p{i}")).collect();
    let id = format!("gate{n}-x");
    for patient in &patients {
        put_ok(
            fx,
            &format!("/fhir/R4/Patient/{patient}"),
            &json!({"resourceType": "Patient", "name": [{"family": "Oracle", "given": [patient]}]}),
        )
        .await?;
    }
    let start = fx.app.state.store.head();

    let mut world = World::default();
    let mut versions: Vec<Version> = Vec::new();
    for op in ops {
        match *op {
            Op::Put { patient, labelled } => {
                let body = subject_resource(rtype, &patients[patient], labelled);
                put_ok(fx, &format!("/fhir/R4/{rtype}/{id}"), &body).await?;
                versions.push(Version {
                    patient,
                    labelled,
                    deleted: false,
                });
            }
            Op::Delete => {
                if let Some(&last) = versions.last().filter(|v| !v.deleted) {
                    let response = fx
                        .app
                        .delete(&fx.admin, &format!("/fhir/R4/{rtype}/{id}"))
                        .await;
                    check(response.status() == StatusCode::NO_CONTENT, || {
                        format!("DELETE: {}", response.status())
                    })?;
                    versions.push(Version {
                        deleted: true,
                        ..last
                    });
                }
            }
            Op::Team {
                patient,
                chen,
                okafor,
            } => {
                let mut members = Vec::new();
                if chen {
                    members.push(&fx.chen);
                }
                if okafor {
                    members.push(&fx.okafor);
                }
                let path = format!("/fhir/R4/CareTeam/{}-team", patients[patient]);
                put_ok(fx, &path, &care_team(&patients[patient], &members)).await?;
                world.team[patient] = members.into_iter().cloned().collect();
            }
            Op::Unit { patient, unit } => {
                let path = format!("/fhir/R4/Encounter/{}-stay", patients[patient]);
                put_ok(fx, &path, &encounter(&patients[patient], unit)).await?;
                world.unit[patient] = unit;
            }
            Op::Rx { patient, active } => {
                let path = format!("/fhir/R4/MedicationRequest/{}-rx", patients[patient]);
                put_ok(fx, &path, &prescription(&patients[patient], active)).await?;
                world.rx[patient] = active;
            }
        }
    }
    let Some(&newest) = versions.last() else {
        return Ok(());
    };
    // A Task about the first patient that points at the resource, for `_include`.
    let task_id = format!("gate{n}-task");
    if !newest.deleted {
        put_ok(
            fx,
            &format!("/fhir/R4/Task/{task_id}"),
            &task(&patients[0], &format!("{rtype}/{id}")),
        )
        .await?;
    }

    for who in &fx.users {
        let ctx = |what: &str| {
            format!(
                "{} {rtype}/{id} {what}; versions {versions:?}; world {world:?}",
                who.username
            )
        };
        let whole = world.judge(who, rtype, newest);

        // read
        let (status, _) = fx
            .app
            .get_json(&who.token, &format!("/fhir/R4/{rtype}/{id}"))
            .await;
        check(status == whole.status(newest.deleted), || {
            format!(
                "{}: read answered {status}, oracle {:?}",
                ctx("read"),
                whole
            )
        })?;

        // vread of every version
        for (i, version) in versions.iter().enumerate() {
            let vid = i + 1;
            let (status, body) = fx
                .app
                .get_json(&who.token, &format!("/fhir/R4/{rtype}/{id}/_history/{vid}"))
                .await;
            // A resource the user may not see as a whole answers every vread as its read does
            // (so a 404 never tells a labelled old version from a forbidden one).
            let expected = if whole == Verdict::Allowed {
                world.release(who, rtype, *version, newest)
            } else {
                whole
            };
            check(
                status == expected.status(version.deleted && whole == Verdict::Allowed),
                || {
                    format!(
                        "{}: vread {vid} answered {status} {body}, oracle {expected:?}",
                        ctx("vread")
                    )
                },
            )?;
        }

        // _history, whole and in pages of two
        let allowed: Vec<String> = versions
            .iter()
            .enumerate()
            .rev()
            .filter(|(_, v)| world.release(who, rtype, **v, newest) == Verdict::Allowed)
            .map(|(i, _)| (i + 1).to_string())
            .collect();
        let (status, bundle) = fx
            .app
            .get_json(
                &who.token,
                &format!("/fhir/R4/{rtype}/{id}/_history?_count=1000"),
            )
            .await;
        if whole != Verdict::Allowed {
            check(status == whole.status(false), || {
                format!(
                    "{}: _history answered {status}, oracle {whole:?}",
                    ctx("history")
                )
            })?;
        } else {
            check(status == StatusCode::OK, || {
                format!("{}: {status}", ctx("history"))
            })?;
            let listed = history_versions(&bundle);
            check(
                listed == allowed && bundle["total"] == allowed.len(),
                || {
                    format!(
                        "{}: _history listed {listed:?} (total {}), oracle {allowed:?}",
                        ctx("history"),
                        bundle["total"]
                    )
                },
            )?;
            let mut paged = Vec::new();
            for offset in (0..versions.len()).step_by(2) {
                let (_, page) = fx
                    .app
                    .get_json(
                        &who.token,
                        &format!("/fhir/R4/{rtype}/{id}/_history?_count=2&_offset={offset}"),
                    )
                    .await;
                check(page["total"] == allowed.len(), || {
                    format!(
                        "{}: page at {offset} total {}, oracle {}",
                        ctx("history"),
                        page["total"],
                        allowed.len()
                    )
                })?;
                paged.extend(history_versions(&page));
            }
            check(paged == allowed, || {
                format!(
                    "{}: pages listed {paged:?}, oracle {allowed:?}",
                    ctx("history")
                )
            })?;
        }

        // search by id
        let found = whole == Verdict::Allowed && !newest.deleted;
        let (status, bundle) = fx
            .app
            .get_json(&who.token, &format!("/fhir/R4/{rtype}?_id={id}"))
            .await;
        check(status == StatusCode::OK, || {
            format!("{}: {status}", ctx("search"))
        })?;
        check(
            (entries(&bundle, "match").len() == 1) == found
                && bundle["total"] == usize::from(found),
            || format!("{}: search found {bundle}, oracle {found}", ctx("search")),
        )?;

        // _include from the Task, judged by the included row's own type
        if !newest.deleted {
            let (status, bundle) = fx
                .app
                .get_json(
                    &who.token,
                    &format!("/fhir/R4/Task?_id={task_id}&_include=Task:focus"),
                )
                .await;
            check(status == StatusCode::OK, || {
                format!("{}: {status}", ctx("include"))
            })?;
            let task_version = Version {
                patient: 0,
                labelled: false,
                deleted: false,
            };
            let task_seen = world.judge(who, "Task", task_version) == Verdict::Allowed;
            let included = entries(&bundle, "include").len() == 1;
            check(included == (task_seen && found), || {
                format!(
                    "{}: included {included}, oracle {}",
                    ctx("include"),
                    task_seen && found
                )
            })?;
        }

        // the long poll's replay: every event of the resource since the case began
        let delivered = polled_versions(fx, who, &patients, rtype, &id, start).await?;
        let expected: Vec<i64> = versions
            .iter()
            .enumerate()
            .filter(|(_, v)| world.release(who, rtype, **v, newest) == Verdict::Allowed)
            .map(|(i, _)| i as i64 + 1)
            .collect();
        check(delivered == expected, || {
            format!(
                "{}: poll delivered versions {delivered:?}, oracle {expected:?}",
                ctx("poll")
            )
        })?;
    }
    Ok(())
}

fn history_versions(bundle: &Value) -> Vec<String> {
    bundle["entry"]
        .as_array()
        .map(|entries| {
            entries
                .iter()
                .map(|e| {
                    e["response"]["etag"]
                        .as_str()
                        .unwrap_or_default()
                        .trim_start_matches("W/")
                        .trim_matches('"')
                        .to_owned()
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The versions of `rtype/id` the long poll replays to `who` after `start`, de-duplicated.
async fn polled_versions(
    fx: &Fixture,
    who: &Who,
    patients: &[String],
    rtype: &str,
    id: &str,
    start: i64,
) -> Result<Vec<i64>, String> {
    let head = fx.app.state.store.head();
    let mut after = start;
    let mut versions = Vec::new();
    while after < head {
        let body = json!({
            "subscriptions": [{
                "subscription_id": "oracle",
                "patient_ids": patients,
                "resource_types": [rtype],
                "rooms": [],
                "after_seq": after,
            }],
            "wait_ms": 0,
        });
        let response = fx
            .app
            .request(Method::POST, &who.token, "/ws/poll", Some(&body))
            .await;
        let status = response.status();
        let answer: Value = response.json().await.map_err(|e| e.to_string())?;
        check(status == StatusCode::OK, || {
            format!("poll: {status} {answer}")
        })?;
        for frame in answer["frames"].as_array().into_iter().flatten() {
            if frame["type"] == "update" && frame["data"]["resource_id"] == id {
                versions.push(frame["data"]["version_id"].as_i64().unwrap_or(-1));
            }
        }
        let seq = answer["seq"].as_i64().unwrap_or(head);
        check(seq > after, || {
            format!("the poll did not move past {after}")
        })?;
        after = seq;
    }
    versions.sort();
    versions.dedup();
    Ok(versions)
}

/// The property: for generated histories, every exit releases exactly what the oracle allows.
#[test]
fn every_exit_releases_exactly_what_the_oracle_allows() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let fx = runtime.block_on(fixture());
    let cases = if crate::POSTGRES { 12 } else { 40 };
    let mut runner = TestRunner::new(ProptestConfig {
        cases,
        max_shrink_iters: 64,
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    let outcome = runner.run(&case(), |(note, ops)| {
        runtime
            .block_on(run_case(&fx, note, &ops))
            .map_err(TestCaseError::fail)
    });
    if let Err(error) = outcome {
        panic!("{error}");
    }
}

// ---------------------------------------------------------------------------------------------
// Regressions: issue 15, defects 1–5.

/// A fresh patient on nurse Patel's unit (she sees them) or on no unit (she does not).
async fn patient(app: &TestApp, admin: &str, id: &str, on_4w: bool) {
    let response = put(
        app,
        admin,
        &format!("/fhir/R4/Patient/{id}"),
        &json!({"resourceType": "Patient", "name": [{"family": "Regression", "given": [id]}]}),
    )
    .await;
    assert!(response.status().is_success());
    if on_4w {
        let response = put(
            app,
            admin,
            &format!("/fhir/R4/Encounter/{id}-stay"),
            &encounter(id, Some(0)),
        )
        .await;
        assert!(response.status().is_success());
    }
}

async fn listed(app: &TestApp, token: &str, path: &str) -> (StatusCode, Vec<String>) {
    let (status, bundle) = app.get_json(token, path).await;
    (status, history_versions(&bundle))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_resource_of_a_hidden_patient_is_not_recreated_nor_shown() {
    let app = spawn_app().await;
    let admin = app.token("admin").await;
    let nurse = app.token("nurse.patel").await;
    patient(&app, &admin, "reg1-away", false).await;
    patient(&app, &admin, "reg1-mine", true).await;
    let path = "/fhir/R4/Observation/reg1-x";
    let away = subject_resource("Observation", "reg1-away", false);
    assert!(put(&app, &admin, path, &away).await.status().is_success());
    assert_eq!(
        app.delete(&admin, path).await.status(),
        StatusCode::NO_CONTENT
    );

    // Re-creating it over the tombstone needs access to the patient it was about.
    let mine = subject_resource("Observation", "reg1-mine", false);
    assert_eq!(
        put(&app, &nurse, path, &mine).await.status(),
        StatusCode::FORBIDDEN
    );
    let (_, versions) = listed(&app, &admin, &format!("{path}/_history")).await;
    assert_eq!(versions, ["2", "1"], "the refused write left nothing");

    // Re-created by someone who may: the nurse's history holds her patient's version only.
    assert!(put(&app, &admin, path, &mine).await.status().is_success());
    let (status, versions) = listed(&app, &nurse, &format!("{path}/_history")).await;
    assert_eq!((status, versions), (StatusCode::OK, vec!["3".to_owned()]));
    let (status, _) = app.get_json(&nurse, &format!("{path}/_history/1")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_filed_on_another_patient_stays_out_of_history() {
    let app = spawn_app().await;
    let admin = app.token("admin").await;
    let nurse = app.token("nurse.patel").await;
    patient(&app, &admin, "reg2-a", false).await;
    patient(&app, &admin, "reg2-b", true).await;
    let path = "/fhir/R4/Observation/reg2-x";
    for patient in ["reg2-a", "reg2-b"] {
        let body = subject_resource("Observation", patient, false);
        assert!(put(&app, &admin, path, &body).await.status().is_success());
    }
    let (status, bundle) = app.get_json(&nurse, &format!("{path}/_history")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(history_versions(&bundle), ["2"]);
    assert_eq!(bundle["total"], 1);
    let (_, page) = app
        .get_json(&nurse, &format!("{path}/_history?_count=1&_offset=1"))
        .await;
    assert_eq!(history_versions(&page), Vec::<String>::new());
    let (status, _) = app.get_json(&nurse, &format!("{path}/_history/1")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn includes_are_judged_by_their_own_type() {
    let app = spawn_app().await;
    let pharmacist = app.token("pharm.nguyen").await;
    for search in [
        "/fhir/R4/Observation?_include=Observation:based-on&_count=1000",
        "/fhir/R4/Task?_include=Task:focus&_count=1000",
        "/fhir/R4/MedicationRequest?_include=MedicationRequest:encounter&_count=1000",
    ] {
        let (status, bundle) = app.get_json(&pharmacist, search).await;
        assert_eq!(status, StatusCode::OK, "{search}");
        assert!(
            !entries(&bundle, "match").is_empty(),
            "{search} matches something"
        );
        for included in entries(&bundle, "include") {
            let rtype = included["resourceType"].as_str().unwrap();
            assert!(
                PHARMACY_TYPES.contains(&rtype) || included.pointer("/subject").is_none(),
                "{search} included a {rtype} for the pharmacist"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_label_added_later_hides_the_earlier_versions() {
    let app = spawn_app().await;
    let admin = app.token("admin").await;
    let nurse = app.token("nurse.patel").await;
    patient(&app, &admin, "reg4", true).await;
    let path = "/fhir/R4/DocumentReference/reg4-note";
    for labelled in [false, true] {
        let body = subject_resource("DocumentReference", "reg4", labelled);
        assert!(put(&app, &admin, path, &body).await.status().is_success());
    }
    for probe in [
        path.to_owned(),
        format!("{path}/_history"),
        format!("{path}/_history?_offset=1"),
        format!("{path}/_history/1"),
        format!("{path}/_history/2"),
    ] {
        let (status, body) = app.get_json(&nurse, &probe).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{probe}: {body}");
        assert_eq!(
            body["issue"][0]["diagnostics"], "DocumentReference/reg4-note is not known",
            "{probe} answers as an unknown id"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_label_removed_later_still_hides_the_labelled_version() {
    let app = spawn_app().await;
    let admin = app.token("admin").await;
    let nurse = app.token("nurse.patel").await;
    patient(&app, &admin, "reg5", true).await;
    let path = "/fhir/R4/DocumentReference/reg5-note";
    for labelled in [true, false] {
        let body = subject_resource("DocumentReference", "reg5", labelled);
        assert!(put(&app, &admin, path, &body).await.status().is_success());
    }
    let (status, bundle) = app.get_json(&nurse, &format!("{path}/_history")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(history_versions(&bundle), ["2"]);
    assert_eq!(bundle["total"], 1);
    let (status, _) = app.get_json(&nurse, &format!("{path}/_history/1")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = app.get_json(&nurse, &format!("{path}/_history/2")).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restricted_resource_is_unknown_to_delete_and_to_references() {
    let app = spawn_app().await;
    let admin = app.token("admin").await;
    let nurse = app.token("nurse.patel").await;
    patient(&app, &admin, "reg6", true).await;
    let note = "/fhir/R4/DocumentReference/reg6-note";
    let body = subject_resource("DocumentReference", "reg6", true);
    assert!(put(&app, &admin, note, &body).await.status().is_success());

    let unknown = "/fhir/R4/DocumentReference/reg6-nothing";
    for (path, expected) in [(note, "reg6-note"), (unknown, "reg6-nothing")] {
        let response = app.delete(&nurse, path).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "DELETE {path}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(
            body["issue"][0]["diagnostics"],
            format!("DocumentReference/{expected} is not known")
        );
    }
    // A reference to it answers exactly as a reference to a note that does not exist.
    let mut answers = Vec::new();
    for target in ["reg6-note", "reg6-nothing"] {
        let mut observation = subject_resource("Observation", "reg6", false);
        observation["derivedFrom"] = json!([{"reference": format!("DocumentReference/{target}")}]);
        let response = app.post(&nurse, "/fhir/R4/Observation", &observation).await;
        let status = response.status();
        let body: Value = response.json().await.unwrap();
        let text = body["issue"][0]["diagnostics"]
            .as_str()
            .unwrap_or_default()
            .replace(target, "ID");
        answers.push((status, text));
    }
    assert_eq!(answers[0].0, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(answers[0], answers[1]);
}
