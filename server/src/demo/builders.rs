//! The functions that make FHIR R4 resources of the demo data: a deterministic random generator, a
//! clock relative to the anchor, and one builder per kind of resource, each patient's chart built
//! by [`add_patient`].
//!
//! Everything here is deterministic for a given anchor: no `rand`, no reading of the current time.

use chrono::{DateTime, Datelike, SecondsFormat, TimeDelta, Utc};
use serde_json::{json, Value};

use super::{codes::*, patients::*};

/// How far back the vital-sign chart goes.
const VITALS_WINDOW_MIN: i64 = 5 * 24 * 60;

/// Patients (1-based index) whose newest prescription is not yet verified by pharmacy.
fn has_unverified_order(n: usize) -> bool {
    n % 5 == 2
}

#[derive(Clone, Copy)]
pub(super) enum Sec {
    Practitioner,
    Location,
    Patient,
    Encounter,
    CareTeam,
    Condition,
    Allergy,
    MedicationRequest,
    Task,
    MedicationDispense,
    ServiceRequest,
    LabObservation,
    DiagnosticReport,
    VitalSigns,
    Note,
    Flag,
}

const SECTION_COUNT: usize = 16;

/// Resources grouped by kind, the kinds listed so that every reference points back.
#[derive(Default)]
pub(super) struct Sections([Vec<Value>; SECTION_COUNT]);

impl Sections {
    pub(super) fn push(&mut self, sec: Sec, resource: Value) {
        if let Some(list) = self.0.get_mut(sec as usize) {
            list.push(resource);
        }
    }

    pub(super) fn into_ordered(self) -> Vec<Value> {
        self.0.into_iter().flatten().collect()
    }
}

/// splitmix64: tiny, fast and good enough to make demo data look unrehearsed.
struct Rng(u64);

impl Rng {
    fn new(patient: usize, stream: u64) -> Self {
        let seed = 0x526F_756E_6473_2026_u64
            ^ (patient as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
            ^ stream.wrapping_mul(0xD1B5_4A32_D192_ED03);
        Rng(seed)
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..=hi`.
    fn between(&mut self, lo: i64, hi: i64) -> i64 {
        if hi <= lo {
            return lo;
        }
        let span = (hi - lo) as u64 + 1;
        lo + (self.next_u64() % span) as i64
    }

    /// Uniform in `[0, 1)`.
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Bell-shaped in `[-1, 1]`.
    fn noise(&mut self) -> f64 {
        (self.unit() + self.unit() + self.unit()) / 1.5 - 1.0
    }
}

/// Times are minutes relative to the anchor (negative is the past).
pub(super) struct Clock {
    anchor: DateTime<Utc>,
    minute_of_day: i64,
}

impl Clock {
    pub(super) fn new(anchor: DateTime<Utc>) -> Self {
        let secs = anchor.timestamp();
        let anchor = DateTime::from_timestamp(secs - secs.rem_euclid(3600), 0).unwrap_or(anchor);
        let minute_of_day = anchor.timestamp().rem_euclid(86_400) / 60;
        Clock {
            anchor,
            minute_of_day,
        }
    }

    fn at(&self, minutes: i64) -> DateTime<Utc> {
        TimeDelta::try_minutes(minutes)
            .and_then(|d| self.anchor.checked_add_signed(d))
            .unwrap_or(self.anchor)
    }

    fn ts(&self, minutes: i64) -> String {
        self.at(minutes).to_rfc3339_opts(SecondsFormat::Secs, true)
    }

    fn human(&self, minutes: i64) -> String {
        self.at(minutes).format("%Y-%m-%d %H:%M").to_string()
    }

    /// The latest time at or before `before` whose clock time is `hour`:00.
    fn last_at(&self, before: i64, hour: i64) -> i64 {
        let time_of_day = (self.minute_of_day + before).rem_euclid(1440);
        before - (time_of_day - hour * 60).rem_euclid(1440)
    }

    /// The first time after `after` whose clock time is `hour`:00.
    fn next_at(&self, after: i64, hour: i64) -> i64 {
        self.last_at(after + 1440, hour)
    }
}

fn coding(system: &str, code: &str, display: &str) -> Value {
    json!({ "system": system, "code": code, "display": display })
}

fn concept(system: &str, code: Code) -> Value {
    json!({ "coding": [coding(system, code.0, code.1)], "text": code.1 })
}

fn reference(kind: &str, id: &str) -> Value {
    json!({ "reference": format!("{kind}/{id}") })
}

fn reference_to(kind: &str, id: &str, display: &str) -> Value {
    json!({ "reference": format!("{kind}/{id}"), "display": display })
}

fn practitioner_ref(id: &str) -> Value {
    reference_to("Practitioner", id, &staff_name(id))
}

fn ucum(value: Value, unit: &str, code: &str) -> Value {
    json!({ "value": value, "unit": unit, "system": UCUM, "code": code })
}

fn round_to(x: f64, decimals: u32) -> f64 {
    let f = 10f64.powi(decimals as i32);
    (x * f).round() / f
}

/// A JSON number with `decimals` places (integers stay integers).
fn number(x: f64, decimals: u32) -> Value {
    if decimals == 0 {
        json!(x.round() as i64)
    } else {
        json!(round_to(x, decimals))
    }
}

fn fmt_number(x: f64, decimals: u32) -> String {
    format!("{:.*}", decimals as usize, round_to(x, decimals))
}

fn set(target: &mut Value, key: &str, value: Value) {
    if let Some(object) = target.as_object_mut() {
        object.insert(key.to_string(), value);
    }
}

pub(super) fn practitioner(s: &Staff) -> Value {
    let mut name = json!({
        "use": "official",
        "text": display_name(s),
        "family": s.family,
        "given": [s.given],
    });
    if !s.prefix.is_empty() {
        set(&mut name, "prefix", json!([s.prefix]));
    }
    if !s.degree.0.is_empty() {
        set(&mut name, "suffix", json!([s.degree.0]));
    }
    let number = STAFF.iter().position(|x| x.id == s.id).unwrap_or(0) + 1;
    let mut resource = json!({
        "resourceType": "Practitioner",
        "id": s.id,
        "identifier": [{
            "system": STAFF_ID_SYSTEM,
            "value": format!("S-{:05}", 20_400 + number * 17),
        }],
        "active": true,
        "name": [name],
    });
    if !s.degree.0.is_empty() {
        set(
            &mut resource,
            "qualification",
            json!([{ "code": concept(DEGREE, s.degree) }]),
        );
    }
    resource
}

pub(super) fn unit_location(unit: &Unit) -> Value {
    json!({
        "resourceType": "Location",
        "id": unit.id,
        "status": "active",
        "name": unit.name,
        "alias": [unit.short],
        "description": unit.description,
        "mode": "instance",
        "type": [concept(ROLE_CODE, unit.kind)],
        "physicalType": concept(PHYSICAL_TYPE, ("wa", "Ward")),
    })
}

fn bed_id(unit: &Unit, bed: usize) -> String {
    format!("bed-{}-{bed:02}", unit.short.to_ascii_lowercase())
}

fn bed_name(unit: &Unit, bed: usize) -> String {
    format!("{}-{bed:02}", unit.short)
}

pub(super) fn bed_location(unit: &Unit, bed: usize, occupied: bool) -> Value {
    let status = if occupied {
        ("O", "Occupied")
    } else {
        ("U", "Unoccupied")
    };
    json!({
        "resourceType": "Location",
        "id": bed_id(unit, bed),
        "status": "active",
        "operationalStatus": coding(BED_STATUS, status.0, status.1),
        "name": bed_name(unit, bed),
        "mode": "instance",
        "physicalType": concept(PHYSICAL_TYPE, ("bd", "Bed")),
        "partOf": reference_to("Location", unit.id, unit.name),
    })
}

/// Everything known about one patient while their resources are built.
struct Chart<'a> {
    clock: &'a Clock,
    n: usize,
    seed: &'a PatientSeed,
    unit: &'a Unit,
    patient_id: String,
    encounter_id: String,
    name: String,
    mrn: String,
    bed: String,
    /// Admission time, minutes before the anchor (negative).
    admit: i64,
    shared_profile: bool,
}

impl Chart<'_> {
    fn subject(&self) -> Value {
        reference_to("Patient", &self.patient_id, &self.name)
    }

    fn encounter(&self) -> Value {
        reference("Encounter", &self.encounter_id)
    }

    fn id(&self, prefix: &str, suffix: &str) -> String {
        if suffix.is_empty() {
            format!("{prefix}-{:03}", self.n)
        } else {
            format!("{prefix}-{:03}-{suffix}", self.n)
        }
    }
}

pub(super) fn add_patient(
    out: &mut Sections,
    clock: &Clock,
    n: usize,
    seed: &PatientSeed,
    bed: usize,
    shared_profile: bool,
) {
    let unit = UNITS.get(seed.unit).unwrap_or(&UNITS[0]);
    let mut rng = Rng::new(n, 1);

    // Most stays so far are short; a few patients have been in for most of a week.
    let skew = rng.unit().powf(1.8);
    let admit = -(25 * 60 + (skew * 119.0 * 60.0) as i64 + rng.between(0, 59));

    let chart = Chart {
        clock,
        n,
        seed,
        unit,
        patient_id: format!("pat-{n:03}"),
        encounter_id: format!("enc-{n:03}"),
        name: format!("{} {}", seed.given, seed.family),
        mrn: format!("MRN-{}", 100_231 + n * 1_237),
        bed: bed_id(unit, bed),
        admit,
        shared_profile,
    };

    out.push(Sec::Patient, patient(&chart, &mut rng));
    if seed.extras & PRIOR_STAY != 0 {
        out.push(Sec::Encounter, prior_encounter(&chart, &mut rng));
    }
    out.push(Sec::Encounter, encounter(&chart, bed));
    out.push(Sec::CareTeam, care_team(&chart));
    let problems = conditions(out, &chart, &mut rng);
    let allergies = allergies(out, &chart, &mut rng);
    medications(out, &chart, &mut Rng::new(n, 2));
    let admission_labs = labs(out, &chart, &mut Rng::new(n, 3));
    let vitals = vital_signs(out, &chart, &mut Rng::new(n, 4));
    notes(out, &chart, &problems, &allergies, &admission_labs, &vitals);
    flags(out, &chart);
}

fn patient(c: &Chart, rng: &mut Rng) -> Value {
    let today = c.clock.anchor.date_naive();
    let month = rng.between(1, 12) as u32;
    let day = rng.between(1, 28) as u32;
    let mut year = today.year() - c.seed.age;
    if (month, day) > (today.month(), today.day()) {
        year -= 1;
    }
    json!({
        "resourceType": "Patient",
        "id": c.patient_id,
        "identifier": [{
            "use": "usual",
            "type": concept(IDENTIFIER_TYPE, ("MR", "Medical record number")),
            "system": MRN_SYSTEM,
            "value": c.mrn,
        }],
        "active": true,
        "name": [{
            "use": "official",
            "text": c.name,
            "family": c.seed.family,
            "given": c.seed.given.split(' ').collect::<Vec<_>>(),
        }],
        "gender": if c.seed.female { "female" } else { "male" },
        "birthDate": format!("{year:04}-{month:02}-{day:02}"),
    })
}

fn encounter_class() -> Value {
    coding(ACT_CODE, "IMP", "inpatient encounter")
}

fn prior_encounter(c: &Chart, rng: &mut Rng) -> Value {
    let start = -rng.between(90, 400) * 1440 - rng.between(0, 1439);
    let end = start + rng.between(3, 6) * 1440 + rng.between(0, 600);
    // Readmissions: the same story, months earlier.
    let reason = c.seed.profile.principal;
    json!({
        "resourceType": "Encounter",
        "id": format!("enc-prior-{:03}", c.n),
        "status": "finished",
        "class": encounter_class(),
        "type": [concept(SNOMED, ("32485007", "Hospital admission"))],
        "subject": c.subject(),
        "participant": [{
            "type": [concept(PARTICIPATION_TYPE, ("ATND", "attender"))],
            "individual": practitioner_ref(c.seed.attending),
        }],
        "period": { "start": c.clock.ts(start), "end": c.clock.ts(end) },
        "reasonCode": [concept(SNOMED, reason)],
        "hospitalization": {
            "dischargeDisposition": concept(DISCHARGE_DISPOSITION, ("home", "Home")),
        },
        "location": [{
            "location": reference_to("Location", c.unit.id, c.unit.name),
            "status": "completed",
            "physicalType": concept(PHYSICAL_TYPE, ("wa", "Ward")),
            "period": { "start": c.clock.ts(start), "end": c.clock.ts(end) },
        }],
    })
}

fn encounter(c: &Chart, bed: usize) -> Value {
    let start = c.clock.ts(c.admit);
    json!({
        "resourceType": "Encounter",
        "id": c.encounter_id,
        "status": "in-progress",
        "class": encounter_class(),
        "type": [concept(SNOMED, ("32485007", "Hospital admission"))],
        "subject": c.subject(),
        "participant": [{
            "type": [concept(PARTICIPATION_TYPE, ("ATND", "attender"))],
            "individual": practitioner_ref(c.seed.attending),
        }],
        "period": { "start": start },
        "reasonCode": [concept(SNOMED, c.seed.profile.principal)],
        "hospitalization": {
            "admitSource": concept(ADMIT_SOURCE, ("emd", "From accident/emergency department")),
        },
        "location": [
            {
                "location": reference_to("Location", c.unit.id, c.unit.name),
                "status": "active",
                "physicalType": concept(PHYSICAL_TYPE, ("wa", "Ward")),
                "period": { "start": start },
            },
            {
                "location": reference_to("Location", &c.bed, &bed_name(c.unit, bed)),
                "status": "active",
                "physicalType": concept(PHYSICAL_TYPE, ("bd", "Bed")),
                "period": { "start": start },
            },
        ],
    })
}

fn care_team(c: &Chart) -> Value {
    let start = c.clock.ts(c.admit);
    let member = |role: Code, id: &str| {
        json!({
            "role": [concept(SNOMED, role)],
            "member": practitioner_ref(id),
            "period": { "start": start },
        })
    };
    let mut participants = vec![
        member(("405279007", "Attending physician"), c.seed.attending),
        member(("224535009", "Registered nurse"), c.unit.nurse),
    ];
    if c.seed.extras & (PSYCHIATRY_NOTE | ADDICTION_NOTE) != 0 {
        participants.push(member(("80584001", "Psychiatrist"), WALLACE));
    }
    json!({
        "resourceType": "CareTeam",
        "id": c.id("ct", ""),
        "status": "active",
        "category": [concept(LOINC, ("LA27976-2", "Encounter-focused care team"))],
        "name": format!("{} inpatient team", c.unit.name),
        "subject": c.subject(),
        "encounter": c.encounter(),
        "period": { "start": start },
        "participant": participants,
    })
}

/// Writes the conditions and returns their names, principal first.
fn conditions(out: &mut Sections, c: &Chart, rng: &mut Rng) -> Vec<&'static str> {
    let profile = c.seed.profile;
    let extra = (rng.between(0, 3) as usize).min(profile.comorbid.len());
    let recorded = c.clock.ts(c.admit + 60);
    let mut names = vec![profile.principal.1];
    let principal = json!({
        "resourceType": "Condition",
        "id": c.id("cond", "1"),
        "clinicalStatus": concept(CONDITION_CLINICAL, ("active", "Active")),
        "verificationStatus": concept(CONDITION_VERIFICATION, ("confirmed", "Confirmed")),
        "category": [concept(CONDITION_CATEGORY, ("encounter-diagnosis", "Encounter Diagnosis"))],
        "code": concept(SNOMED, profile.principal),
        "subject": c.subject(),
        "encounter": c.encounter(),
        "onsetDateTime": c.clock.ts(c.admit - rng.between(6, 72) * 60),
        "recordedDate": recorded,
        "recorder": practitioner_ref(c.seed.attending),
    });
    out.push(Sec::Condition, principal);
    for (k, code) in profile.comorbid.iter().take(extra).enumerate() {
        let onset = -rng.between(1, 15) * 365 * 1440 - rng.between(0, 364) * 1440;
        names.push(code.1);
        out.push(
            Sec::Condition,
            json!({
                "resourceType": "Condition",
                "id": c.id("cond", &(k + 2).to_string()),
                "clinicalStatus": concept(CONDITION_CLINICAL, ("active", "Active")),
                "verificationStatus": concept(CONDITION_VERIFICATION, ("confirmed", "Confirmed")),
                "category": [concept(CONDITION_CATEGORY, PROBLEM_LIST_ITEM)],
                "code": concept(SNOMED, *code),
                "subject": c.subject(),
                "onsetDateTime": c.clock.ts(onset),
                "recordedDate": recorded,
                "recorder": practitioner_ref(c.seed.attending),
            }),
        );
    }
    names
}

/// Writes 0-3 allergies (never to a drug the patient is prescribed) and returns their names.
fn allergies(out: &mut Sections, c: &Chart, rng: &mut Rng) -> Vec<String> {
    let count = match rng.between(0, 19) {
        0..=6 => 0,
        7..=13 => 1,
        14..=17 => 2,
        _ => 3,
    };
    let mut chosen: Vec<&Allergen> = Vec::new();
    let mut attempts = 0;
    while chosen.len() < count && attempts < 20 {
        attempts += 1;
        let pick = rng.between(0, ALLERGENS.len() as i64 - 1) as usize;
        let Some(allergen) = ALLERGENS.get(pick) else {
            continue;
        };
        let prescribed = c
            .seed
            .profile
            .meds
            .iter()
            .any(|m| m.rxnorm == allergen.code.0);
        if prescribed || chosen.iter().any(|a| a.code.0 == allergen.code.0) {
            continue;
        }
        chosen.push(allergen);
    }
    let mut names = Vec::new();
    for (k, a) in chosen.iter().enumerate() {
        let confirmed = rng.between(0, 3) != 0;
        let verification = if confirmed {
            ("confirmed", "Confirmed")
        } else {
            ("unconfirmed", "Unconfirmed")
        };
        names.push(format!("{} ({})", a.code.1, a.reaction.1.to_lowercase()));
        out.push(
            Sec::Allergy,
            json!({
                "resourceType": "AllergyIntolerance",
                "id": c.id("alg", &(k + 1).to_string()),
                "clinicalStatus": concept(ALLERGY_CLINICAL, ("active", "Active")),
                "verificationStatus": concept(ALLERGY_VERIFICATION, verification),
                "type": a.kind,
                "category": [a.category],
                "criticality": a.criticality,
                "code": concept(a.system, a.code),
                "patient": c.subject(),
                "encounter": c.encounter(),
                "recordedDate": c.clock.ts(c.admit + 40),
                "recorder": practitioner_ref(c.unit.nurse),
                "reaction": [{
                    "manifestation": [concept(SNOMED, a.reaction)],
                    "severity": a.severity,
                }],
            }),
        );
    }
    names
}

fn dosage(med: &Med, authored: &str) -> Value {
    let timing = match med.timing {
        Timing::Every(h) if h % 24 == 0 => {
            json!({ "repeat": { "frequency": 1, "period": h / 24, "periodUnit": "d" } })
        }
        Timing::Every(h) => json!({ "repeat": { "frequency": 1, "period": h, "periodUnit": "h" } }),
        Timing::Daily(times) => {
            json!({ "repeat": { "frequency": times, "period": 1, "periodUnit": "d" } })
        }
        Timing::Continuous => json!({
            "repeat": { "boundsPeriod": { "start": authored } },
            "code": { "text": "Continuous infusion" },
        }),
    };
    let mut d = json!({
        "sequence": 1,
        "text": med.sig,
        "timing": timing,
        "route": concept(SNOMED, med.route),
    });
    if let Some(reason) = med.prn {
        set(&mut d, "asNeededCodeableConcept", json!({ "text": reason }));
    }
    if let Some((value, unit, code)) = med.dose {
        let value = if value.fract() == 0.0 {
            json!(value as i64)
        } else {
            json!(value)
        };
        set(
            &mut d,
            "doseAndRate",
            json!([{ "doseQuantity": ucum(value, unit, code) }]),
        );
    }
    d
}

fn medication_concept(med: &Med) -> Value {
    json!({ "coding": [coding(RXNORM, med.rxnorm, med.ingredient)], "text": med.text })
}

fn medications(out: &mut Sections, c: &Chart, rng: &mut Rng) {
    let profile = c.seed.profile;
    let count = (rng.between(2, 5) as usize).min(profile.meds.len());
    let stay = -c.admit;
    for (k, med) in profile.meds.iter().take(count).enumerate() {
        let newest = k + 1 == count;
        let unverified = newest && has_unverified_order(c.n);
        let authored = if unverified {
            -rng.between(25, 170)
        } else if k < 2 {
            c.admit + 40 + 7 * k as i64
        } else {
            // Added during the stay, early enough to have been verified and dispensed.
            c.admit + 90 + rng.between(0, (stay - 90 - 240).max(0))
        };
        let authored_ts = c.clock.ts(authored);
        let mr_id = c.id("mr", &(k + 1).to_string());
        let mr_ref = reference_to("MedicationRequest", &mr_id, med.text);
        out.push(
            Sec::MedicationRequest,
            json!({
                "resourceType": "MedicationRequest",
                "id": mr_id,
                "status": "active",
                "intent": "order",
                "category": [concept(MED_REQUEST_CATEGORY, ("inpatient", "Inpatient"))],
                "priority": if k < 2 { "urgent" } else { "routine" },
                "medicationCodeableConcept": medication_concept(med),
                "subject": c.subject(),
                "encounter": c.encounter(),
                "authoredOn": authored_ts,
                "requester": practitioner_ref(c.seed.attending),
                "reasonCode": [concept(SNOMED, profile.principal)],
                "dosageInstruction": [dosage(med, &authored_ts)],
            }),
        );
        if unverified {
            continue;
        }

        let verified = authored + rng.between(12, 55);
        out.push(
            Sec::Task,
            json!({
                "resourceType": "Task",
                "id": c.id("task", &(k + 1).to_string()),
                "status": "completed",
                "businessStatus": { "text": "Verified" },
                "intent": "order",
                "priority": "routine",
                "code": {
                    "coding": [coding(TASK_CODE, "approve", "Activate/approve the focal resource")],
                    "text": "Pharmacist verification",
                },
                "description": format!("Verify {}", med.text),
                "focus": mr_ref.clone(),
                "for": c.subject(),
                "encounter": c.encounter(),
                "executionPeriod": { "start": authored_ts, "end": c.clock.ts(verified) },
                "authoredOn": authored_ts,
                "lastModified": c.clock.ts(verified),
                "requester": practitioner_ref(c.seed.attending),
                "owner": practitioner_ref(PHARMACIST),
            }),
        );

        // As-needed doses come from the unit's cabinet stock, so they have no pharmacy dispense.
        if med.prn.is_some() {
            continue;
        }
        let prepared = verified + rng.between(8, 20);
        let handed_over = prepared + rng.between(10, 30);
        out.push(
            Sec::MedicationDispense,
            json!({
                "resourceType": "MedicationDispense",
                "id": c.id("md", &(k + 1).to_string()),
                "status": "completed",
                "medicationCodeableConcept": medication_concept(med),
                "subject": c.subject(),
                "context": c.encounter(),
                "performer": [{ "actor": practitioner_ref(PHARMACIST) }],
                "authorizingPrescription": [mr_ref],
                "quantity": { "value": med.dispense.0, "unit": med.dispense.1 },
                "daysSupply": ucum(json!(1), "day", "d"),
                "whenPrepared": c.clock.ts(prepared),
                "whenHandedOver": c.clock.ts(handed_over),
                "destination": reference_to("Location", c.unit.id, c.unit.name),
                "dosageInstruction": [dosage(med, &authored_ts)],
            }),
        );
    }
}

/// One specimen draw (or imaging order) and when it happened.
struct Order {
    panel: Panel,
    authored: i64,
    occurrence: i64,
    /// Result issue time; `None` while the order is still open.
    issued: Option<i64>,
    /// Use the profile's latest values rather than the admission ones.
    latest: bool,
}

/// Writes orders, results and reports; returns the admission values for the H&P.
fn labs(out: &mut Sections, c: &Chart, rng: &mut Rng) -> Vec<(Lab, f64)> {
    let profile = c.seed.profile;
    let mut baseline = [0.0f64; LAB_COUNT];
    for (slot, lab) in baseline.iter_mut().zip(ALL_LABS) {
        let info = lab.info();
        let sex_shift = if lab == Lab::Hemoglobin && !c.seed.female {
            1.2
        } else {
            0.0
        };
        *slot = (info.typical + sex_shift + info.spread * rng.noise()).max(0.0);
    }

    let mut orders = Vec::new();
    let collected = c.admit + 25 + rng.between(0, 10);
    let admission = [Panel::Cbc, Panel::Bmp]
        .into_iter()
        .chain(profile.admit_tests.iter().copied());
    for panel in admission {
        orders.push(Order {
            panel,
            authored: c.admit + 10,
            occurrence: collected,
            issued: Some(collected + rng.between(40, 75)),
            latest: false,
        });
    }

    let morning = c.clock.last_at(0, 5);
    if morning >= c.admit + 12 * 60 {
        for &panel in profile.repeat {
            let drawn = morning + rng.between(0, 25);
            let issued = drawn + rng.between(45, 80);
            orders.push(Order {
                panel,
                authored: morning - 9 * 60,
                occurrence: drawn,
                issued: (issued <= 0).then_some(issued),
                latest: true,
            });
        }
    }

    let mut open: Vec<Panel> = profile.pending.to_vec();
    if c.seed.extras & CHEST_XRAY != 0 {
        open.push(Panel::ChestXray);
    }
    for panel in open {
        let authored = -rng.between(20, 110);
        let occurrence = match panel {
            Panel::Cbc | Panel::Bmp | Panel::Lipid => c.clock.next_at(0, 5),
            _ => authored + if panel.is_urgent() { 120 } else { 60 },
        };
        orders.push(Order {
            panel,
            authored,
            occurrence,
            issued: None,
            latest: true,
        });
    }

    let mut admission_values = Vec::new();
    for (k, order) in orders.iter().enumerate() {
        let (loinc, display, short, analytes) = order.panel.info();
        let sr_id = c.id("sr", &format!("{:02}", k + 1));
        let imaging = order.panel == Panel::ChestXray;
        let category = if imaging {
            ("363679005", "Imaging")
        } else {
            ("108252007", "Laboratory procedure")
        };
        let mut request = json!({
            "resourceType": "ServiceRequest",
            "id": sr_id,
            "status": if order.issued.is_some() { "completed" } else { "active" },
            "intent": "order",
            "category": [concept(SNOMED, category)],
            "priority": if order.panel.is_urgent() { "urgent" } else { "routine" },
            "code": { "coding": [coding(LOINC, loinc, display)], "text": short },
            "subject": c.subject(),
            "encounter": c.encounter(),
            "occurrenceDateTime": c.clock.ts(order.occurrence),
            "authoredOn": c.clock.ts(order.authored),
            "requester": practitioner_ref(c.seed.attending),
        });
        if imaging {
            set(
                &mut request,
                "reasonCode",
                json!([{ "text": "Follow-up of right lower lobe pneumonia" }]),
            );
        }
        out.push(Sec::ServiceRequest, request);

        let Some(issued) = order.issued else { continue };
        let sr_ref = reference("ServiceRequest", &sr_id);
        let mut results = Vec::new();
        let mut critical = false;
        for &lab in analytes {
            let info = lab.info();
            let value = match profile.labs.iter().find(|(l, _, _)| *l == lab) {
                Some(&(_, first, last)) => {
                    let x = if order.latest { last } else { first };
                    // Patients sharing a story should not share identical numbers.
                    if c.shared_profile {
                        x * (1.0 + 0.02 * rng.noise())
                    } else {
                        x
                    }
                }
                None => baseline[lab as usize] * (1.0 + 0.03 * rng.noise()),
            };
            let value = round_to(value, info.decimals);
            if !order.latest {
                admission_values.push((lab, value));
            }
            let interpretation = lab.interpret(c.seed.female, value);
            critical |= matches!(interpretation.0, "HH" | "LL");
            let (low, high) = lab.range(c.seed.female);
            let mut range = json!({});
            if let Some(low) = low {
                set(
                    &mut range,
                    "low",
                    ucum(number(low, info.decimals), info.unit, info.ucum),
                );
            }
            if let Some(high) = high {
                set(
                    &mut range,
                    "high",
                    ucum(number(high, info.decimals), info.unit, info.ucum),
                );
            }
            let obs_id = c.id("lab", &format!("{:02}-{}", k + 1, info.key));
            out.push(
                Sec::LabObservation,
                json!({
                    "resourceType": "Observation",
                    "id": obs_id,
                    "basedOn": [sr_ref.clone()],
                    "status": "final",
                    "category": [concept(OBSERVATION_CATEGORY, ("laboratory", "Laboratory"))],
                    "code": {
                        "coding": [coding(LOINC, info.loinc, info.display)],
                        "text": info.short,
                    },
                    "subject": c.subject(),
                    "encounter": c.encounter(),
                    "effectiveDateTime": c.clock.ts(order.occurrence),
                    "issued": c.clock.ts(issued),
                    "valueQuantity": ucum(number(value, info.decimals), info.unit, info.ucum),
                    "interpretation": [concept(INTERPRETATION, interpretation)],
                    "referenceRange": [range],
                }),
            );
            results.push(reference("Observation", &obs_id));
        }
        let mut report = json!({
            "resourceType": "DiagnosticReport",
            "id": c.id("dr", &format!("{:02}", k + 1)),
            "basedOn": [sr_ref],
            "status": "final",
            "category": [concept(DIAGNOSTIC_SERVICE, ("LAB", "Laboratory"))],
            "code": { "coding": [coding(LOINC, loinc, display)], "text": short },
            "subject": c.subject(),
            "encounter": c.encounter(),
            "effectiveDateTime": c.clock.ts(order.occurrence),
            "issued": c.clock.ts(issued),
            "result": results,
        });
        if critical {
            let called = format!(
                "Critical result telephoned to {} at {} and read back.",
                staff_name(c.seed.attending),
                c.clock.human(issued + 4)
            );
            set(&mut report, "conclusion", json!(called));
        }
        out.push(Sec::DiagnosticReport, report);
    }
    admission_values
}

/// Writes the vital-sign chart; returns each set's time and values, oldest first.
fn vital_signs(out: &mut Sections, c: &Chart, rng: &mut Rng) -> Vec<(i64, Vitals)> {
    let profile = c.seed.profile;
    let earliest = c.admit.max(-VITALS_WINDOW_MIN);
    let period = c.unit.vitals_every_h * 60;
    let mut slot = -(c.clock.minute_of_day - c.unit.vitals_phase_h * 60).rem_euclid(period);
    let mut slots = Vec::new();
    while slot > earliest + 60 {
        slots.push(slot - rng.between(0, 20));
        slot -= period;
    }
    if c.admit + 20 >= -VITALS_WINDOW_MIN {
        slots.push(c.admit + 20);
    }
    slots.reverse();

    // Each patient runs a little above or below the textbook course.
    let offset = v(
        6.0 * rng.noise(),
        10.0 * rng.noise(),
        6.0 * rng.noise(),
        0.2 * rng.noise(),
        1.0 * rng.noise(),
        1.0 * rng.noise(),
    );
    let span = (-c.admit).max(1) as f64;
    let mut sets = Vec::new();
    for (k, &at) in slots.iter().enumerate() {
        let t = ((at - c.admit) as f64 / span).clamp(0.0, 1.0);
        let ease = 1.0 - (1.0 - t) * (1.0 - t);
        let mix = |a: f64, b: f64, off: f64, jitter: f64, r: &mut Rng| {
            a + (b - a) * ease + off + jitter * r.noise()
        };
        let (a, b) = (profile.admit, profile.now);
        let set_values = Vitals {
            hr: mix(a.hr, b.hr, offset.hr, 5.0, rng).round().max(35.0),
            sbp: mix(a.sbp, b.sbp, offset.sbp, 7.0, rng).round().max(60.0),
            dbp: mix(a.dbp, b.dbp, offset.dbp, 4.0, rng).round().max(30.0),
            temp: round_to(mix(a.temp, b.temp, offset.temp, 0.2, rng), 1),
            rr: mix(a.rr, b.rr, offset.rr, 1.5, rng).round().max(8.0),
            spo2: mix(a.spo2, b.spo2, offset.spo2, 1.0, rng)
                .round()
                .min(100.0),
        };
        let prefix = format!("{:02}", k);
        let base = |suffix: &str, code: Value| {
            json!({
                "resourceType": "Observation",
                "id": c.id("vs", &format!("{prefix}-{suffix}")),
                "status": "final",
                "category": [concept(OBSERVATION_CATEGORY, ("vital-signs", "Vital Signs"))],
                "code": code,
                "subject": c.subject(),
                "encounter": c.encounter(),
                "effectiveDateTime": c.clock.ts(at),
                "performer": [practitioner_ref(c.unit.nurse)],
            })
        };
        let simple =
            |suffix: &str, loinc: &str, display: &str, value: Value, unit: &str, code: &str| {
                let mut o = base(
                    suffix,
                    json!({ "coding": [coding(LOINC, loinc, display)], "text": display }),
                );
                set(&mut o, "valueQuantity", ucum(value, unit, code));
                o
            };
        out.push(
            Sec::VitalSigns,
            simple(
                "hr",
                "8867-4",
                "Heart rate",
                number(set_values.hr, 0),
                "beats/minute",
                "/min",
            ),
        );
        let mut bp = base(
            "bp",
            json!({
                "coding": [coding(LOINC, "85354-9", BP_PANEL)],
                "text": "Blood pressure",
            }),
        );
        set(
            &mut bp,
            "component",
            json!([
                {
                    "code": { "coding": [coding(LOINC, "8480-6", "Systolic blood pressure")] },
                    "valueQuantity": ucum(number(set_values.sbp, 0), "mmHg", "mm[Hg]"),
                },
                {
                    "code": { "coding": [coding(LOINC, "8462-4", "Diastolic blood pressure")] },
                    "valueQuantity": ucum(number(set_values.dbp, 0), "mmHg", "mm[Hg]"),
                },
            ]),
        );
        out.push(Sec::VitalSigns, bp);
        out.push(
            Sec::VitalSigns,
            simple(
                "temp",
                "8310-5",
                "Body temperature",
                number(set_values.temp, 1),
                "Cel",
                "Cel",
            ),
        );
        out.push(
            Sec::VitalSigns,
            simple(
                "rr",
                "9279-1",
                "Respiratory rate",
                number(set_values.rr, 0),
                "breaths/minute",
                "/min",
            ),
        );
        let mut spo2 = base(
            "spo2",
            json!({
                "coding": [
                    coding(LOINC, "59408-5", SPO2_PULSE_OXIMETRY),
                    coding(LOINC, "2708-6", "Oxygen saturation in Arterial blood"),
                ],
                "text": "SpO2",
            }),
        );
        set(
            &mut spo2,
            "valueQuantity",
            ucum(number(set_values.spo2, 0), "%", "%"),
        );
        out.push(Sec::VitalSigns, spo2);
        sets.push((at, set_values));
    }
    sets
}

fn vitals_line(x: &Vitals) -> String {
    format!(
        "T {:.1} C, HR {:.0}, BP {:.0}/{:.0}, RR {:.0}, SpO2 {:.0}%",
        x.temp, x.hr, x.sbp, x.dbp, x.rr, x.spo2
    )
}

fn notes(
    out: &mut Sections,
    c: &Chart,
    problems: &[&str],
    allergies: &[String],
    admission_labs: &[(Lab, f64)],
    vitals: &[(i64, Vitals)],
) {
    let profile = c.seed.profile;
    let attending = staff_name(c.seed.attending);
    let person = if c.seed.female { "woman" } else { "man" };
    let history = match problems.get(1..) {
        Some(rest) if !rest.is_empty() => rest.join("; "),
        _ => "No significant past history.".to_string(),
    };
    let allergy_line = if allergies.is_empty() {
        "No known drug allergies.".to_string()
    } else {
        allergies.join("; ")
    };
    let labs_line = admission_labs
        .iter()
        .map(|&(lab, value)| {
            let info = lab.info();
            format!("{} {}", info.short, fmt_number(value, info.decimals))
        })
        .collect::<Vec<_>>()
        .join(", ");
    let first_vitals = vitals
        .first()
        .map(|(_, x)| vitals_line(x))
        .unwrap_or_default();

    let hp_time = c.admit + 180;
    let hp_text = format!(
        "HISTORY AND PHYSICAL - {unit}\n\
         {name}, {age}-year-old {person}, {mrn}. Admitted {admitted}.\n\n\
         Chief complaint: {cc}\n\n\
         History of present illness: {hpi}\n\n\
         Past history: {history}\n\
         Allergies: {allergy_line}\n\n\
         Examination: {first_vitals}. {exam}\n\n\
         Admission labs: {labs_line}.\n\n\
         Assessment and plan:\n{plan}\n\n\
         {attending}, attending physician",
        unit = c.unit.name,
        name = c.name,
        age = c.seed.age,
        mrn = c.mrn,
        admitted = c.clock.human(c.admit),
        cc = profile.chief_complaint,
        hpi = profile.hpi,
        exam = profile.exam,
        plan = profile.plan,
    );
    out.push(
        Sec::Note,
        note(
            c,
            Note {
                suffix: "hp",
                kind: ("34117-2", "History and physical note"),
                at: hp_time,
                signed: true,
                author: c.seed.attending,
                description: "Admission history and physical",
                text: &hp_text,
                restricted: false,
            },
        ),
    );

    // Consultants see the patient in the afternoon after admission, or this morning if that
    // afternoon has not come yet.
    let afternoon = c.clock.next_at(c.admit + 4 * 60, 14) + 20;
    let consult_time = if afternoon < -60 {
        afternoon
    } else {
        c.clock.last_at(-60, 9) + 30
    };
    let sensitive = if c.seed.extras & PSYCHIATRY_NOTE != 0 {
        Some(("psych", "Psychiatry consultation", PSYCHIATRY_TEXT))
    } else if c.seed.extras & ADDICTION_NOTE != 0 {
        Some((
            "addiction",
            "Addiction medicine consultation",
            ADDICTION_TEXT,
        ))
    } else {
        None
    };
    if let Some((suffix, description, text)) = sensitive {
        out.push(
            Sec::Note,
            note(
                c,
                Note {
                    suffix,
                    kind: ("11506-3", "Progress note"),
                    at: consult_time,
                    signed: true,
                    author: WALLACE,
                    description,
                    text,
                    restricted: true,
                },
            ),
        );
    }

    // The latest daily progress note (written after 10:00 rounds); some are drafts not yet signed.
    let progress_time = c.clock.last_at(-15, 10) + 15;
    if progress_time < c.admit + 16 * 60 {
        return;
    }
    let signed = c.n % 4 != 1;
    let hospital_day = (progress_time - c.admit) / 1440 + 1;
    let latest = vitals
        .iter()
        .rev()
        .find(|(at, _)| *at <= progress_time)
        .map(|(_, x)| vitals_line(x))
        .unwrap_or_default();
    let text = format!(
        "PROGRESS NOTE - hospital day {hospital_day}\n\
         {name}, {age}{sex}, {unit}, bed {bed}\n\n\
         S: {subjective}\n\
         O: {latest}.\n\
         A/P: {progress}\n\n\
         {attending}{draft}",
        name = c.name,
        age = c.seed.age,
        sex = if c.seed.female { "F" } else { "M" },
        unit = c.unit.short,
        bed = c.bed.trim_start_matches("bed-").to_uppercase(),
        subjective = profile.subjective,
        progress = profile.progress,
        draft = if signed {
            ""
        } else {
            " (draft, not yet signed)"
        },
    );
    out.push(
        Sec::Note,
        note(
            c,
            Note {
                suffix: "pn",
                kind: ("11506-3", "Progress note"),
                at: progress_time,
                signed,
                author: c.seed.attending,
                description: "Daily progress note",
                text: &text,
                restricted: false,
            },
        ),
    );
}

/// One clinical note to write as a DocumentReference.
struct Note<'a> {
    suffix: &'a str,
    kind: Code,
    at: i64,
    signed: bool,
    author: &'a str,
    description: &'a str,
    text: &'a str,
    /// Labelled restricted (v3-Confidentiality R): only the treating team may read it.
    restricted: bool,
}

fn note(c: &Chart, n: Note) -> Value {
    let Note {
        suffix,
        kind,
        at,
        signed,
        author,
        description,
        text,
        restricted,
    } = n;
    let mut doc = json!({
        "resourceType": "DocumentReference",
        "id": c.id("doc", suffix),
        "status": "current",
        "docStatus": if signed { "final" } else { "preliminary" },
        "type": concept(LOINC, kind),
        "category": [concept(NOTE_CATEGORY, ("clinical-note", "Clinical Note"))],
        "subject": c.subject(),
        "date": c.clock.ts(at),
        "author": [practitioner_ref(author)],
        "description": description,
        "content": [{
            "attachment": {
                "contentType": "text/plain",
                "language": "en-US",
                "data": app::clinical::base64_encode(text.as_bytes()),
                "title": description,
                "creation": c.clock.ts(at),
            },
        }],
        "context": {
            "encounter": [c.encounter()],
            "period": { "start": c.clock.ts(c.admit) },
        },
    });
    if signed {
        set(&mut doc, "authenticator", practitioner_ref(author));
    }
    if restricted {
        set(
            &mut doc,
            "meta",
            json!({ "security": [coding(CONFIDENTIALITY, "R", "restricted")] }),
        );
    }
    doc
}

fn flags(out: &mut Sections, c: &Chart) {
    let kinds: [(u8, &str, &str, Code, &str, &str); 3] = [
        (
            FALL_RISK,
            "fall",
            "safety",
            ("129839007", "At risk for falls"),
            "High fall risk (Morse 65): bed alarm on, assist with all transfers",
            c.unit.nurse,
        ),
        (
            CONTACT_ISOLATION,
            "isolation",
            "clinical",
            ("40174006", "Isolation procedure"),
            "Contact precautions (C. difficile): gown and gloves, soap-and-water hand hygiene",
            c.seed.attending,
        ),
        (
            DROPLET_ISOLATION,
            "isolation",
            "clinical",
            ("40174006", "Isolation procedure"),
            "Droplet precautions (influenza A): surgical mask within 2 m",
            c.seed.attending,
        ),
    ];
    for (bit, suffix, category, code, text, author) in kinds {
        if c.seed.extras & bit == 0 {
            continue;
        }
        let category_display = if category == "safety" {
            "Safety"
        } else {
            "Clinical"
        };
        out.push(
            Sec::Flag,
            json!({
                "resourceType": "Flag",
                "id": c.id("flag", suffix),
                "status": "active",
                "category": [concept(FLAG_CATEGORY, (category, category_display))],
                "code": { "coding": [coding(SNOMED, code.0, code.1)], "text": text },
                "subject": c.subject(),
                "period": { "start": c.clock.ts(c.admit + 90) },
                "encounter": c.encounter(),
                "author": practitioner_ref(author),
            }),
        );
    }
}
