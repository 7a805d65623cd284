//! The clinical meaning the screens read off a [`Records`] store, and the resources they write.
//!
//! Pure functions over JSON: which alerts are still open, where a prescription stands in the
//! pharmacy, how a value reads, and how an order, a prescription, a note, a verification, a dispense
//! or an acknowledgement is written as FHIR R4. Kept apart from the components so that each rule is
//! tested once, natively.

use serde_json::{json, Value};

use crate::{
    api::PractitionerRef,
    fhir::{self, ACKNOWLEDGE, APPROVE, ROUNDS_TASK_SYSTEM, TASK_CODE_SYSTEM},
    records::{Record, Records, CLIENT_REQUEST_SYSTEM},
};

/// What a concept says in words: its text, else its first coding's display or code.
pub fn concept_text(concept: Option<&Value>) -> String {
    let Some(concept) = concept else {
        return String::new();
    };
    if let Some(text) = concept.get("text").and_then(Value::as_str) {
        return text.to_owned();
    }
    concept
        .get("coding")
        .and_then(Value::as_array)
        .and_then(|codings| {
            codings.iter().find_map(|c| {
                c.get("display")
                    .or_else(|| c.get("code"))
                    .and_then(Value::as_str)
            })
        })
        .unwrap_or_default()
        .to_owned()
}

/// The codes of a concept (any system).
pub fn codes(concept: Option<&Value>) -> Vec<&str> {
    concept
        .and_then(|c| c.get("coding"))
        .and_then(Value::as_array)
        .map(|codings| {
            codings
                .iter()
                .filter_map(|c| c.get("code").and_then(Value::as_str))
                .collect()
        })
        .unwrap_or_default()
}

/// "Nov 23 11:55" from a FHIR dateTime (UTC as written; the date alone for a date).
pub fn short_time(when: &str) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let month = when
        .get(5..7)
        .and_then(|m| m.parse::<usize>().ok())
        .and_then(|m| MONTHS.get(m.wrapping_sub(1)));
    let day = when.get(8..10).and_then(|d| d.parse::<u32>().ok());
    match (month, day, when.get(11..16)) {
        (Some(month), Some(day), Some(time)) => format!("{month} {day} {time}"),
        (Some(month), Some(day), None) => format!("{month} {day}"),
        _ => when.to_owned(),
    }
}

/// The date part (`YYYY-MM-DD`) of a dateTime.
pub fn day_of(when: &str) -> &str {
    when.get(..10).unwrap_or(when)
}

/// When a result was taken (effective), else issued.
pub fn result_time(json: &Value) -> String {
    ["/effectiveDateTime", "/effectivePeriod/start", "/issued"]
        .iter()
        .find_map(|p| json.pointer(p).and_then(Value::as_str))
        .unwrap_or_default()
        .to_owned()
}

/// An observation's value as read: "6.8 mmol/L", "125/78 mmHg", a string or a concept.
pub fn value_text(json: &Value) -> String {
    fn quantity(q: &Value) -> Option<String> {
        let value = q.get("value")?.as_f64()?;
        let unit = match q
            .get("unit")
            .or_else(|| q.get("code"))
            .and_then(Value::as_str)
        {
            Some("Cel") => "°C",
            Some(unit) => unit,
            None => "",
        };
        Some(
            format!("{} {unit}", trim_number(value))
                .trim_end()
                .to_owned(),
        )
    }
    if let Some(q) = json.get("valueQuantity").and_then(quantity) {
        return q;
    }
    if let Some(text) = json.get("valueString").and_then(Value::as_str) {
        return text.to_owned();
    }
    if let Some(concept) = json.get("valueCodeableConcept") {
        return concept_text(Some(concept));
    }
    let components: Vec<&Value> = json
        .get("component")
        .and_then(Value::as_array)
        .map(|c| c.iter().collect())
        .unwrap_or_default();
    let values: Vec<f64> = components
        .iter()
        .filter_map(|c| c.pointer("/valueQuantity/value").and_then(Value::as_f64))
        .collect();
    if !values.is_empty() {
        let unit = components
            .first()
            .and_then(|c| c.pointer("/valueQuantity/unit"))
            .and_then(Value::as_str)
            .unwrap_or("");
        let joined: Vec<String> = values.iter().map(|v| trim_number(*v)).collect();
        return format!("{} {unit}", joined.join("/")).trim_end().to_owned();
    }
    json.get("conclusion")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned()
}

/// The number a trend plots: the value, or a panel's first component (systolic).
pub fn value_number(json: &Value) -> Option<f64> {
    json.pointer("/valueQuantity/value")
        .and_then(Value::as_f64)
        .or_else(|| {
            json.pointer("/component/0/valueQuantity/value")
                .and_then(Value::as_f64)
        })
}

fn trim_number(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{}", value as i64)
    } else {
        let text = format!("{value:.2}");
        text.trim_end_matches('0').trim_end_matches('.').to_owned()
    }
}

/// How abnormal a result is, from its interpretation codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Flagged {
    Normal,
    Abnormal,
    Critical,
}

pub fn flagged(json: &Value) -> Flagged {
    if fhir::is_critical(json) {
        return Flagged::Critical;
    }
    let abnormal = json
        .get("interpretation")
        .and_then(Value::as_array)
        .is_some_and(|list| {
            list.iter().any(|concept| {
                codes(Some(concept))
                    .iter()
                    .any(|c| matches!(*c, "H" | "L" | "A" | "HU" | "LU" | ">" | "<"))
            })
        });
    if abnormal {
        Flagged::Abnormal
    } else {
        Flagged::Normal
    }
}

/// The completed acknowledgement Task of an alert (`Type/id`), if any.
pub fn acknowledgement<'a>(records: &'a Records, alert: &str) -> Option<&'a Record> {
    records.of_type("Task").find(|task| {
        task.str_at("/status") == Some("completed")
            && fhir::task_kind(&task.json) == fhir::TaskKind::Acknowledgement
            && task.str_at("/focus/reference") == Some(alert)
    })
}

/// Alerts still waiting for someone: critical results and active Flags without an acknowledgement,
/// newest first.
pub fn open_alerts(records: &Records) -> Vec<Record> {
    open_alerts_by(records, raises_alert)
}

/// [`open_alerts`], asking `raised` (which may remember its answers per version) which records
/// raise an alert.
pub fn open_alerts_by(records: &Records, mut raised: impl FnMut(&Record) -> bool) -> Vec<Record> {
    let mut open: Vec<Record> = ["Observation", "DiagnosticReport", "Flag"]
        .iter()
        .flat_map(|t| records.of_type(t))
        .filter(|r| {
            raised(r)
                && acknowledgement(records, &format!("{}/{}", r.resource_type, r.id)).is_none()
        })
        .cloned()
        .collect();
    open.sort_by_key(|r| std::cmp::Reverse(alert_time(r)));
    open
}

/// Whether a record raises an alert: a final critical result, or an active Flag.
pub fn raises_alert(record: &Record) -> bool {
    if record.resource_type == "Flag" {
        record.str_at("/status") == Some("active")
    } else {
        fhir::is_critical(&record.json)
            && matches!(
                record.str_at("/status"),
                Some("final" | "amended" | "corrected")
            )
    }
}

/// When an alert was raised.
pub fn alert_time(record: &Record) -> String {
    if record.resource_type == "Flag" {
        return record
            .str_at("/period/start")
            .unwrap_or_default()
            .to_owned();
    }
    let issued = record.str_at("/issued").map(str::to_owned);
    issued.unwrap_or_else(|| result_time(&record.json))
}

/// Where a prescription stands in the pharmacy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stage {
    /// Waiting for a pharmacist's verification.
    ToVerify,
    /// Verified (when, by whom), not yet dispensed.
    ToDispense { verified_by: String },
    /// Handed over at this time.
    Dispensed { at: String },
    /// Stopped, cancelled, completed or otherwise not the pharmacy's to act on.
    Closed(String),
}

impl Stage {
    pub fn label(&self) -> String {
        match self {
            Stage::ToVerify => "Awaiting verification".into(),
            Stage::ToDispense { verified_by } => format!("Verified by {verified_by}"),
            Stage::Dispensed { at } => format!("Dispensed {}", short_time(at)),
            Stage::Closed(status) => status.clone(),
        }
    }
}

/// The stage of prescription `mr` given the Tasks and MedicationDispenses in `records`.
pub fn stage(records: &Records, mr: &Record) -> Stage {
    let status = mr.str_at("/status").unwrap_or("unknown");
    if !matches!(status, "active" | "on-hold" | "draft") {
        return Stage::Closed(status.to_owned());
    }
    let reference = format!("MedicationRequest/{}", mr.id);
    let dispensed = records
        .of_type("MedicationDispense")
        .filter(|d| {
            d.str_at("/status") == Some("completed")
                && d.json
                    .get("authorizingPrescription")
                    .and_then(Value::as_array)
                    .is_some_and(|refs| {
                        refs.iter().any(|r| {
                            r.get("reference").and_then(Value::as_str) == Some(reference.as_str())
                        })
                    })
        })
        .filter_map(|d| d.str_at("/whenHandedOver").map(str::to_owned))
        .max();
    if let Some(at) = dispensed {
        return Stage::Dispensed { at };
    }
    let verification = records.of_type("Task").find(|task| {
        task.str_at("/status") == Some("completed")
            && fhir::task_kind(&task.json) == fhir::TaskKind::Verification
            && task.str_at("/focus/reference") == Some(reference.as_str())
    });
    match verification {
        Some(task) => Stage::ToDispense {
            verified_by: task
                .str_at("/owner/display")
                .unwrap_or("pharmacy")
                .to_owned(),
        },
        None => Stage::ToVerify,
    }
}

/// The display name a resource gives its patient (`subject.display`), else the reference.
pub fn patient_label(json: &Value) -> String {
    let subject = json.get("subject").or_else(|| json.get("for"));
    subject
        .and_then(|s| s.get("display").or_else(|| s.get("reference")))
        .and_then(Value::as_str)
        .unwrap_or("Unknown patient")
        .to_owned()
}

/// A Patient's "Family, Given".
pub fn patient_name(json: &Value) -> String {
    let Some(name) = json.get("name").and_then(Value::as_array).and_then(|n| {
        n.iter()
            .find(|n| n.get("use").and_then(Value::as_str) == Some("official"))
            .or_else(|| n.first())
    }) else {
        return "(no name)".into();
    };
    if let Some(text) = name.get("text").and_then(Value::as_str) {
        return text.to_owned();
    }
    let given: Vec<&str> = name
        .get("given")
        .and_then(Value::as_array)
        .map(|g| g.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    match name.get("family").and_then(Value::as_str) {
        Some(family) if !given.is_empty() => format!("{family}, {}", given.join(" ")),
        Some(family) => family.to_owned(),
        None => given.join(" "),
    }
}

// -------------------------------------------------------------------------------------------
// What the screens write
// -------------------------------------------------------------------------------------------

fn subject(patient_id: &str, patient_display: &str) -> Value {
    json!({"reference": format!("Patient/{patient_id}"), "display": patient_display})
}

fn actor(practitioner: Option<&PractitionerRef>) -> Value {
    match practitioner {
        Some(p) => json!({"reference": p.reference, "display": p.display}),
        None => json!({"display": "Rounds user"}),
    }
}

fn client_tag(tag: &str) -> Value {
    json!([{"system": CLIENT_REQUEST_SYSTEM, "value": tag}])
}

/// A lab or imaging order.
pub fn service_request(
    item: &crate::catalogue::Orderable,
    priority: &str,
    patient: (&str, &str),
    requester: Option<&PractitionerRef>,
    now: &str,
    tag: &str,
) -> Value {
    let (category, category_text) = if item.imaging {
        ("363679005", "Imaging")
    } else {
        ("108252007", "Laboratory procedure")
    };
    json!({
        "resourceType": "ServiceRequest",
        "identifier": client_tag(tag),
        "status": "active",
        "intent": "order",
        "priority": priority,
        "category": [{"coding": [{"system": "http://snomed.info/sct", "code": category, "display": category_text}], "text": category_text}],
        "code": {"coding": [{"system": "http://loinc.org", "code": item.loinc, "display": item.display}], "text": item.name},
        "subject": subject(patient.0, patient.1),
        "authoredOn": now,
        "requester": actor(requester),
    })
}

/// A prescription from the formulary.
pub fn medication_request(
    medicine: &crate::catalogue::Medicine,
    patient: (&str, &str),
    requester: Option<&PractitionerRef>,
    now: &str,
    tag: &str,
) -> Value {
    json!({
        "resourceType": "MedicationRequest",
        "identifier": client_tag(tag),
        "status": "active",
        "intent": "order",
        "medicationCodeableConcept": {
            "coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": medicine.rxnorm, "display": medicine.ingredient}],
            "text": medicine.name
        },
        "subject": subject(patient.0, patient.1),
        "authoredOn": now,
        "requester": actor(requester),
        "dosageInstruction": [{"text": medicine.sig}],
    })
}

/// `resource` with `status` set (e.g. an order revoked).
pub fn with_status(resource: &Value, status: &str) -> Value {
    let mut next = resource.clone();
    next["status"] = json!(status);
    next
}

/// The acknowledgement of an alert (`alert` is `Type/id`).
pub fn acknowledgement_task(
    alert: &str,
    patient_reference: &str,
    owner: Option<&PractitionerRef>,
    now: &str,
) -> Value {
    json!({
        "resourceType": "Task",
        "status": "completed",
        "intent": "order",
        "code": {"coding": [{"system": ROUNDS_TASK_SYSTEM, "code": ACKNOWLEDGE, "display": "Acknowledge alert"}], "text": "Alert acknowledged"},
        "focus": {"reference": alert},
        "for": {"reference": patient_reference},
        "owner": actor(owner),
        "authoredOn": now,
        "lastModified": now,
    })
}

/// A pharmacist's verification of a prescription.
pub fn verification_task(mr: &Record, pharmacist: Option<&PractitionerRef>, now: &str) -> Value {
    let medicine = concept_text(mr.json.get("medicationCodeableConcept"));
    json!({
        "resourceType": "Task",
        "status": "completed",
        "intent": "order",
        "code": {"coding": [{"system": TASK_CODE_SYSTEM, "code": APPROVE, "display": "Activate/approve the focal resource"}], "text": "Pharmacist verification"},
        "businessStatus": {"text": "Verified"},
        "description": format!("Verify {medicine}"),
        "focus": {"reference": format!("MedicationRequest/{}", mr.id), "display": medicine},
        "for": mr.json.get("subject").cloned().unwrap_or(Value::Null),
        "owner": actor(pharmacist),
        "authoredOn": now,
        "lastModified": now,
    })
}

/// The pharmacy handing a verified prescription over.
pub fn dispense(mr: &Record, pharmacist: Option<&PractitionerRef>, now: &str) -> Value {
    let medicine = mr
        .json
        .get("medicationCodeableConcept")
        .cloned()
        .unwrap_or(Value::Null);
    json!({
        "resourceType": "MedicationDispense",
        "status": "completed",
        "medicationCodeableConcept": medicine,
        "subject": mr.json.get("subject").cloned().unwrap_or(Value::Null),
        "authorizingPrescription": [{"reference": format!("MedicationRequest/{}", mr.id)}],
        "performer": [{"actor": actor(pharmacist)}],
        "whenHandedOver": now,
        "dosageInstruction": mr.json.get("dosageInstruction").cloned().unwrap_or(json!([])),
    })
}

/// A new note (a draft until signed).
pub fn note(
    kind: &str,
    text: &str,
    patient: (&str, &str),
    author: Option<&PractitionerRef>,
    now: &str,
    tag: &str,
) -> Value {
    json!({
        "resourceType": "DocumentReference",
        "identifier": client_tag(tag),
        "status": "current",
        "docStatus": "preliminary",
        "type": {"text": kind},
        "category": [{"coding": [{"system": "http://hl7.org/fhir/us/core/CodeSystem/us-core-documentreference-category", "code": "clinical-note", "display": "Clinical Note"}], "text": "Clinical Note"}],
        "subject": subject(patient.0, patient.1),
        "date": now,
        "author": [actor(author)],
        "content": [{"attachment": {"contentType": "text/plain", "data": base64_encode(text.as_bytes()), "creation": now}}],
    })
}

/// A note's text, decoded from its first plain-text attachment.
pub fn note_text(json: &Value) -> String {
    json.pointer("/content/0/attachment/data")
        .and_then(Value::as_str)
        .and_then(base64_decode)
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .unwrap_or_default()
}

/// `note` with new text.
pub fn with_note_text(note: &Value, text: &str) -> Value {
    let mut next = note.clone();
    next["content"][0]["attachment"]["data"] = json!(base64_encode(text.as_bytes()));
    next
}

/// `note` signed by `signer`.
pub fn signed(note: &Value, signer: Option<&PractitionerRef>) -> Value {
    let mut next = note.clone();
    next["docStatus"] = json!("final");
    next["authenticator"] = actor(signer);
    next
}

/// Standard base64 of `bytes`, as FHIR's `base64Binary` wants it: the `base64` crate on the
/// server, the browser's own `btoa` in WASM (no second implementation in the bundle).
pub fn base64_encode(bytes: &[u8]) -> String {
    #[cfg(not(feature = "hydrate"))]
    {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(bytes)
    }
    #[cfg(feature = "hydrate")]
    {
        // btoa takes a "binary string": one character per byte.
        let binary: String = bytes.iter().copied().map(char::from).collect();
        web_sys::window()
            .and_then(|window| window.btoa(&binary).ok())
            .unwrap_or_default()
    }
}

/// The bytes of base64 `text`, or `None` when it is not base64. As lenient as the browser's
/// `atob`: white space is skipped and the final padding may be left out, as other FHIR clients
/// send it.
pub fn base64_decode(text: &str) -> Option<Vec<u8>> {
    #[cfg(not(feature = "hydrate"))]
    {
        use base64::{
            alphabet,
            engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig},
            Engine as _,
        };
        const LENIENT: GeneralPurpose = GeneralPurpose::new(
            &alphabet::STANDARD,
            GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
        );
        let compact: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
        LENIENT.decode(compact).ok()
    }
    #[cfg(feature = "hydrate")]
    {
        let binary = web_sys::window()?.atob(text).ok()?;
        binary
            .chars()
            .map(|c| u8::try_from(u32::from(c)).ok())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(resources: Vec<Value>) -> Records {
        Records::from_resources(resources)
    }

    fn v(json: Value) -> Value {
        let mut json = json;
        json["meta"] = json!({"versionId": "1"});
        json
    }

    #[test]
    fn base64_round_trips_any_text() {
        for text in ["", "a", "ab", "abc", "Pain 3/10 — better. Ünïcode ✓"] {
            let encoded = base64_encode(text.as_bytes());
            assert_eq!(base64_decode(&encoded).unwrap(), text.as_bytes(), "{text}");
        }
        assert_eq!(base64_encode(b"Man"), "TWFu");
        assert_eq!(base64_encode(b"Ma"), "TWE=");
        assert_eq!(base64_decode("not*base64"), None);
        // What other FHIR clients send: line breaks, no final padding.
        assert_eq!(base64_decode("TW\r\nFu").unwrap(), b"Man");
        assert_eq!(base64_decode("TWE").unwrap(), b"Ma");
    }

    #[test]
    fn values_read_like_a_clinician_writes_them() {
        assert_eq!(
            value_text(&json!({"valueQuantity": {"value": 6.8, "unit": "mmol/L"}})),
            "6.8 mmol/L"
        );
        assert_eq!(
            value_text(&json!({"component": [
                {"valueQuantity": {"value": 125.0, "unit": "mmHg"}},
                {"valueQuantity": {"value": 78, "unit": "mmHg"}}]})),
            "125/78 mmHg"
        );
        assert_eq!(short_time("2026-11-23T11:55:00Z"), "Nov 23 11:55");
        assert_eq!(short_time("garbage"), "garbage");
    }

    #[test]
    fn an_acknowledged_critical_is_no_longer_open() {
        let critical = v(
            json!({"resourceType": "Observation", "id": "k1", "status": "final",
            "interpretation": [{"coding": [{"code": "HH"}]}], "subject": {"reference": "Patient/p1"}}),
        );
        let normal = v(
            json!({"resourceType": "Observation", "id": "k2", "status": "final",
            "interpretation": [{"coding": [{"code": "N"}]}]}),
        );
        let flag = v(json!({"resourceType": "Flag", "id": "f1", "status": "active"}));
        let mut store = records(vec![critical, normal, flag]);
        let open: Vec<String> = open_alerts(&store).into_iter().map(|r| r.id).collect();
        assert_eq!(open.len(), 2);
        assert!(open.contains(&"k1".to_owned()) && open.contains(&"f1".to_owned()));
        let mut ack =
            acknowledgement_task("Observation/k1", "Patient/p1", None, "2026-11-25T10:00:00Z");
        ack["id"] = json!("t1");
        ack["meta"] = json!({"versionId": "1"});
        store.upsert(ack);
        let open: Vec<String> = open_alerts(&store).into_iter().map(|r| r.id).collect();
        assert_eq!(open, vec!["f1".to_owned()]);
    }

    #[test]
    fn a_prescription_moves_through_the_pharmacy_stages() {
        let mr = v(
            json!({"resourceType": "MedicationRequest", "id": "m1", "status": "active",
            "medicationCodeableConcept": {"text": "Ceftriaxone 1 g IV"},
            "subject": {"reference": "Patient/p1"}}),
        );
        let mut store = records(vec![mr]);
        let held = |s: &Records| s.get("MedicationRequest", "m1").unwrap().clone();
        assert_eq!(stage(&store, &held(&store)), Stage::ToVerify);
        let pharmacist = PractitionerRef {
            reference: "Practitioner/pr-nguyen".into(),
            display: "Linh Nguyen PharmD".into(),
        };
        let mut task = verification_task(&held(&store), Some(&pharmacist), "2026-11-25T10:00:00Z");
        task["id"] = json!("t1");
        task["meta"] = json!({"versionId": "1"});
        store.upsert(task);
        assert_eq!(
            stage(&store, &held(&store)),
            Stage::ToDispense {
                verified_by: "Linh Nguyen PharmD".into()
            }
        );
        let mut handed = dispense(&held(&store), Some(&pharmacist), "2026-11-25T10:30:00Z");
        handed["id"] = json!("d1");
        handed["meta"] = json!({"versionId": "1"});
        store.upsert(handed);
        assert_eq!(
            stage(&store, &held(&store)),
            Stage::Dispensed {
                at: "2026-11-25T10:30:00Z".into()
            }
        );
        let stopped = with_status(&held(&store).json, "stopped");
        let mut stopped = stopped;
        stopped["meta"] = json!({"versionId": "2"});
        store.upsert(stopped);
        assert_eq!(
            stage(&store, &held(&store)),
            Stage::Closed("stopped".into())
        );
    }

    #[test]
    fn written_resources_are_recognised_by_the_event_classifier() {
        let ack = acknowledgement_task("Flag/f1", "Patient/p1", None, "2026-11-25T10:00:00Z");
        assert_eq!(fhir::task_kind(&ack), fhir::TaskKind::Acknowledgement);
        let mr =
            Record::from_json(v(json!({"resourceType": "MedicationRequest", "id": "m1"}))).unwrap();
        let verify = verification_task(&mr, None, "2026-11-25T10:00:00Z");
        assert_eq!(fhir::task_kind(&verify), fhir::TaskKind::Verification);
        let draft = note(
            "Progress note",
            "Better today.",
            ("p1", "Doe, J"),
            None,
            "2026-11-25T10:00:00Z",
            "c1",
        );
        assert_eq!(note_text(&draft), "Better today.");
        assert_eq!(note_text(&with_note_text(&draft, "Worse.")), "Worse.");
        assert_eq!(signed(&draft, None)["docStatus"], "final");
        assert_eq!(crate::records::client_request(&draft), Some("c1"));
    }
}
