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

use chrono::{DateTime, Datelike, SecondsFormat, TimeDelta, Utc};
use serde_json::{json, Value};

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

// ---------------------------------------------------------------------------------------------
// Code systems
// ---------------------------------------------------------------------------------------------

const SNOMED: &str = "http://snomed.info/sct";
const LOINC: &str = "http://loinc.org";
const RXNORM: &str = "http://www.nlm.nih.gov/research/umls/rxnorm";
const UCUM: &str = "http://unitsofmeasure.org";
const MRN_SYSTEM: &str = "http://rounds.example.org/fhir/mrn";
const STAFF_ID_SYSTEM: &str = "http://rounds.example.org/fhir/staff-id";
const PHYSICAL_TYPE: &str = "http://terminology.hl7.org/CodeSystem/location-physical-type";
const ACT_CODE: &str = "http://terminology.hl7.org/CodeSystem/v3-ActCode";
const ROLE_CODE: &str = "http://terminology.hl7.org/CodeSystem/v3-RoleCode";
const PARTICIPATION_TYPE: &str = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType";
const BED_STATUS: &str = "http://terminology.hl7.org/CodeSystem/v2-0116";
const IDENTIFIER_TYPE: &str = "http://terminology.hl7.org/CodeSystem/v2-0203";
const DEGREE: &str = "http://terminology.hl7.org/CodeSystem/v2-0360";
const ADMIT_SOURCE: &str = "http://terminology.hl7.org/CodeSystem/admit-source";
const DISCHARGE_DISPOSITION: &str = "http://terminology.hl7.org/CodeSystem/discharge-disposition";
const CONDITION_CLINICAL: &str = "http://terminology.hl7.org/CodeSystem/condition-clinical";
const CONDITION_VERIFICATION: &str = "http://terminology.hl7.org/CodeSystem/condition-ver-status";
const CONDITION_CATEGORY: &str = "http://terminology.hl7.org/CodeSystem/condition-category";
const ALLERGY_CLINICAL: &str = "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical";
const ALLERGY_VERIFICATION: &str =
    "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification";
const MED_REQUEST_CATEGORY: &str =
    "http://terminology.hl7.org/CodeSystem/medicationrequest-category";
const TASK_CODE: &str = "http://hl7.org/fhir/CodeSystem/task-code";
const OBSERVATION_CATEGORY: &str = "http://terminology.hl7.org/CodeSystem/observation-category";
const INTERPRETATION: &str = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation";
const DIAGNOSTIC_SERVICE: &str = "http://terminology.hl7.org/CodeSystem/v2-0074";
const NOTE_CATEGORY: &str =
    "http://hl7.org/fhir/us/core/CodeSystem/us-core-documentreference-category";
const CONFIDENTIALITY: &str = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality";
const FLAG_CATEGORY: &str = "http://terminology.hl7.org/CodeSystem/flag-category";

const PROBLEM_LIST_ITEM: Code = ("problem-list-item", "Problem List Item");
const BP_PANEL: &str = "Blood pressure panel with all children optional";
const SPO2_PULSE_OXIMETRY: &str = "Oxygen saturation in Arterial blood by Pulse oximetry";

/// A code and its display.
type Code = (&'static str, &'static str);

// ---------------------------------------------------------------------------------------------
// Staff and units
// ---------------------------------------------------------------------------------------------

struct Staff {
    id: &'static str,
    prefix: &'static str,
    given: &'static str,
    family: &'static str,
    /// Degree code from v2-0360 (also shown after the name), or "" for none.
    degree: Code,
}

const CHEN: &str = "pr-chen";
const OKAFOR: &str = "pr-okafor";
const HADDAD: &str = "pr-haddad";
const LINDQVIST: &str = "pr-lindqvist";
const WALLACE: &str = "pr-wallace";
const PHARMACIST: &str = "pr-nguyen";

const MD: Code = ("MD", "Doctor of Medicine");
const RN: Code = ("RN", "Registered Nurse");

static STAFF: &[Staff] = &[
    Staff {
        id: CHEN,
        prefix: "Dr.",
        given: "Maya",
        family: "Chen",
        degree: MD,
    },
    Staff {
        id: OKAFOR,
        prefix: "Dr.",
        given: "Samuel",
        family: "Okafor",
        degree: MD,
    },
    Staff {
        id: "pr-patel",
        prefix: "",
        given: "Priya",
        family: "Patel",
        degree: RN,
    },
    Staff {
        id: "pr-garcia",
        prefix: "",
        given: "Luis",
        family: "Garcia",
        degree: RN,
    },
    Staff {
        id: PHARMACIST,
        prefix: "",
        given: "Linh",
        family: "Nguyen",
        degree: ("PharmD", "Doctor of Pharmacy"),
    },
    Staff {
        id: "pr-morgan",
        prefix: "",
        given: "Alex",
        family: "Morgan",
        degree: ("", ""),
    },
    // Without accounts: their patients are visible to neither demo physician.
    Staff {
        id: HADDAD,
        prefix: "Dr.",
        given: "Rania",
        family: "Haddad",
        degree: MD,
    },
    Staff {
        id: LINDQVIST,
        prefix: "Dr.",
        given: "Erik",
        family: "Lindqvist",
        degree: MD,
    },
    Staff {
        id: WALLACE,
        prefix: "Dr.",
        given: "Imani",
        family: "Wallace",
        degree: MD,
    },
    Staff {
        id: "pr-brooks",
        prefix: "",
        given: "Jordan",
        family: "Brooks",
        degree: RN,
    },
];

fn staff_name(id: &str) -> String {
    match STAFF.iter().find(|s| s.id == id) {
        Some(s) => display_name(s),
        None => id.to_string(),
    }
}

fn display_name(s: &Staff) -> String {
    let mut name = format!("{} {}", s.given, s.family);
    if s.prefix == "Dr." {
        name = format!("Dr. {name}");
    } else if !s.degree.0.is_empty() {
        name = format!("{name} {}", s.degree.0);
    }
    name
}

struct Unit {
    id: &'static str,
    short: &'static str,
    name: &'static str,
    kind: Code,
    description: &'static str,
    beds: usize,
    /// The unit's day nurse, who joins every care team on the unit.
    nurse: &'static str,
    /// Vital signs are charted every this many hours ...
    vitals_every_h: i64,
    /// ... at clock hours congruent to this.
    vitals_phase_h: i64,
}

const W4: usize = 0;
const E5: usize = 1;
const ICU: usize = 2;

static UNITS: [Unit; 3] = [
    Unit {
        id: "unit-4w",
        short: "4W",
        name: "4 West Medical",
        kind: ("HU", "Hospital unit"),
        description: "Adult general medicine, 16 beds",
        beds: 16,
        nurse: "pr-patel",
        vitals_every_h: 8,
        vitals_phase_h: 0,
    },
    Unit {
        id: "unit-5e",
        short: "5E",
        name: "5 East Cardiac",
        kind: ("HU", "Hospital unit"),
        description: "Cardiology step-down with telemetry, 16 beds",
        beds: 16,
        nurse: "pr-brooks",
        vitals_every_h: 8,
        vitals_phase_h: 4,
    },
    Unit {
        id: "unit-icu",
        short: "ICU",
        name: "Medical ICU",
        kind: ("ICU", "Intensive care unit"),
        description: "Adult medical intensive care, 16 beds",
        beds: 16,
        nurse: "pr-garcia",
        vitals_every_h: 4,
        vitals_phase_h: 0,
    },
];

// ---------------------------------------------------------------------------------------------
// Terminology used by the clinical profiles
// ---------------------------------------------------------------------------------------------

const C_CAP: Code = ("385093006", "Community acquired pneumonia");
const C_COPD: Code = ("13645005", "Chronic obstructive lung disease");
const C_AECOPD: Code = (
    "195951007",
    "Acute exacerbation of chronic obstructive airways disease",
);
const C_CELLULITIS: Code = ("128045006", "Cellulitis");
const C_PYELO: Code = ("45816000", "Pyelonephritis");
const C_UTI: Code = ("68566005", "Urinary tract infectious disease");
const C_ETOH_WITHDRAWAL: Code = ("8635005", "Alcohol withdrawal syndrome");
const C_ALCOHOLISM: Code = ("7200002", "Alcoholism");
const C_HYPOGLYCEMIA: Code = ("302866003", "Hypoglycemia");
const C_T2DM: Code = ("44054006", "Diabetes mellitus type 2");
const C_T1DM: Code = ("46635009", "Diabetes mellitus type 1");
const C_DKA: Code = ("420422005", "Ketoacidosis due to diabetes mellitus");
const C_CDIFF: Code = ("186431008", "Clostridioides difficile infection");
const C_DELIRIUM: Code = ("2776000", "Delirium");
const C_DEMENTIA: Code = ("52448006", "Dementia");
const C_PANCREATITIS: Code = ("197456007", "Acute pancreatitis");
const C_PE: Code = ("59282003", "Pulmonary embolism");
const C_DVT: Code = ("128053003", "Deep venous thrombosis");
const C_FLU: Code = ("6142004", "Influenza");
const C_HTN: Code = ("38341003", "Hypertensive disorder, systemic arterial");
const C_HLD: Code = ("55822004", "Hyperlipidemia");
const C_CHF: Code = ("42343007", "Congestive heart failure");
const C_NSTEMI: Code = (
    "401314000",
    "Acute non-ST segment elevation myocardial infarction",
);
const C_CAD: Code = ("53741008", "Coronary arteriosclerosis");
const C_AFIB: Code = ("49436004", "Atrial fibrillation");
const C_CHEST_PAIN: Code = ("29857009", "Chest pain");
const C_SYNCOPE: Code = ("271594007", "Syncope");
const C_CKD: Code = ("709044004", "Chronic kidney disease");
const C_AKI: Code = ("14669001", "Acute renal failure syndrome");
const C_HYPERKALEMIA: Code = ("14140009", "Hyperkalemia");
const C_SEPSIS: Code = ("91302008", "Sepsis");
const C_SEPTIC_SHOCK: Code = ("76571007", "Septic shock");
const C_RESP_FAILURE: Code = ("65710008", "Acute respiratory failure");
const C_UGIB: Code = ("37372002", "Upper gastrointestinal hemorrhage");
const C_POISONING: Code = ("75478009", "Poisoning by drug AND/OR medicinal substance");
const C_DEPRESSION: Code = ("35489007", "Depressive disorder");
const C_OSA: Code = ("78275009", "Obstructive sleep apnea syndrome");
const C_OBESITY: Code = ("414916001", "Obesity");
const C_HYPOTHYROID: Code = ("40930008", "Hypothyroidism");
const C_ANEMIA: Code = ("271737000", "Anemia");
const C_ASTHMA: Code = ("195967001", "Asthma");
const C_AORTIC_STENOSIS: Code = ("60573004", "Aortic valve stenosis");
const C_GERD: Code = ("235595009", "Gastroesophageal reflux disease");
const C_OSTEOARTHRITIS: Code = ("396275006", "Osteoarthritis");

const ORAL: Code = ("26643006", "Oral route");
const IV: Code = ("47625008", "Intravenous route");
const SUBCUT: Code = ("34206005", "Subcutaneous route");
const INHALED: Code = ("447694001", "Respiratory tract route");

#[derive(Clone, Copy)]
enum Timing {
    /// Every n hours.
    Every(u32),
    /// n times a day.
    Daily(u32),
    /// A running infusion, titrated as the text says.
    Continuous,
}

/// A formulary entry: one orderable medication with its usual inpatient sig.
struct Med {
    rxnorm: &'static str,
    /// RxNorm ingredient name.
    ingredient: &'static str,
    /// What the order list shows.
    text: &'static str,
    sig: &'static str,
    dose: Option<(f64, &'static str, &'static str)>,
    timing: Timing,
    /// As-needed reason, for PRN orders.
    prn: Option<&'static str>,
    route: Code,
    /// Quantity handed over per dispense.
    dispense: (u32, &'static str),
}

const CEFTRIAXONE: Med = Med {
    rxnorm: "2193",
    ingredient: "ceftriaxone",
    text: "Ceftriaxone 1 g IV",
    sig: "1 g IV every 24 hours",
    dose: Some((1.0, "g", "g")),
    timing: Timing::Every(24),
    prn: None,
    route: IV,
    dispense: (1, "vial"),
};
const AZITHROMYCIN: Med = Med {
    rxnorm: "18631",
    ingredient: "azithromycin",
    text: "Azithromycin 500 mg IV",
    sig: "500 mg IV every 24 hours for 3 days",
    dose: Some((500.0, "mg", "mg")),
    timing: Timing::Every(24),
    prn: None,
    route: IV,
    dispense: (1, "vial"),
};
const CEFAZOLIN: Med = Med {
    rxnorm: "2180",
    ingredient: "cefazolin",
    text: "Cefazolin 2 g IV",
    sig: "2 g IV every 8 hours",
    dose: Some((2.0, "g", "g")),
    timing: Timing::Every(8),
    prn: None,
    route: IV,
    dispense: (3, "vial"),
};
const CEFEPIME: Med = Med {
    rxnorm: "20481",
    ingredient: "cefepime",
    text: "Cefepime 2 g IV",
    sig: "2 g IV every 8 hours",
    dose: Some((2.0, "g", "g")),
    timing: Timing::Every(8),
    prn: None,
    route: IV,
    dispense: (3, "vial"),
};
const PIPERACILLIN_TAZOBACTAM: Med = Med {
    rxnorm: "74169",
    ingredient: "piperacillin / tazobactam",
    text: "Piperacillin-tazobactam 4.5 g IV",
    sig: "4.5 g IV every 6 hours, each dose infused over 4 hours",
    dose: Some((4.5, "g", "g")),
    timing: Timing::Every(6),
    prn: None,
    route: IV,
    dispense: (4, "vial"),
};
const VANCOMYCIN_IV: Med = Med {
    rxnorm: "11124",
    ingredient: "vancomycin",
    text: "Vancomycin 1,250 mg IV",
    sig: "1,250 mg IV every 12 hours; pharmacy to dose by AUC",
    dose: Some((1250.0, "mg", "mg")),
    timing: Timing::Every(12),
    prn: None,
    route: IV,
    dispense: (2, "bag"),
};
const VANCOMYCIN_ORAL: Med = Med {
    rxnorm: "11124",
    ingredient: "vancomycin",
    text: "Vancomycin 125 mg oral",
    sig: "125 mg by mouth every 6 hours for 10 days",
    dose: Some((125.0, "mg", "mg")),
    timing: Timing::Every(6),
    prn: None,
    route: ORAL,
    dispense: (4, "capsule"),
};
const OSELTAMIVIR: Med = Med {
    rxnorm: "260101",
    ingredient: "oseltamivir",
    text: "Oseltamivir 75 mg oral",
    sig: "75 mg by mouth twice daily for 5 days",
    dose: Some((75.0, "mg", "mg")),
    timing: Timing::Every(12),
    prn: None,
    route: ORAL,
    dispense: (2, "capsule"),
};
const ENOXAPARIN_PROPHYLAXIS: Med = Med {
    rxnorm: "67108",
    ingredient: "enoxaparin",
    text: "Enoxaparin 40 mg subcut",
    sig: "40 mg subcutaneously once daily for VTE prophylaxis",
    dose: Some((40.0, "mg", "mg")),
    timing: Timing::Every(24),
    prn: None,
    route: SUBCUT,
    dispense: (1, "syringe"),
};
const ENOXAPARIN_TREATMENT: Med = Med {
    rxnorm: "67108",
    ingredient: "enoxaparin",
    text: "Enoxaparin 80 mg subcut",
    sig: "1 mg/kg (80 mg) subcutaneously every 12 hours",
    dose: Some((80.0, "mg", "mg")),
    timing: Timing::Every(12),
    prn: None,
    route: SUBCUT,
    dispense: (2, "syringe"),
};
const HEPARIN_SUBCUT: Med = Med {
    rxnorm: "5224",
    ingredient: "heparin",
    text: "Heparin 5,000 units subcut",
    sig: "5,000 units subcutaneously every 8 hours for VTE prophylaxis",
    dose: Some((5000.0, "units", "[iU]")),
    timing: Timing::Every(8),
    prn: None,
    route: SUBCUT,
    dispense: (3, "syringe"),
};
const HEPARIN_INFUSION: Med = Med {
    rxnorm: "5224",
    ingredient: "heparin",
    text: "Heparin infusion (weight-based nomogram)",
    sig: "80 units/kg IV bolus, then 18 units/kg/h; adjust per nomogram to anti-Xa 0.3-0.7",
    dose: None,
    timing: Timing::Continuous,
    prn: None,
    route: IV,
    dispense: (1, "bag"),
};
const FUROSEMIDE_IV: Med = Med {
    rxnorm: "4603",
    ingredient: "furosemide",
    text: "Furosemide 40 mg IV",
    sig: "40 mg IV twice daily; daily weights, strict intake and output",
    dose: Some((40.0, "mg", "mg")),
    timing: Timing::Every(12),
    prn: None,
    route: IV,
    dispense: (2, "vial"),
};
const CARVEDILOL: Med = Med {
    rxnorm: "20352",
    ingredient: "carvedilol",
    text: "Carvedilol 6.25 mg oral",
    sig: "6.25 mg by mouth twice daily with meals; hold if SBP < 90 or HR < 55",
    dose: Some((6.25, "mg", "mg")),
    timing: Timing::Every(12),
    prn: None,
    route: ORAL,
    dispense: (2, "tablet"),
};
const METOPROLOL: Med = Med {
    rxnorm: "6918",
    ingredient: "metoprolol",
    text: "Metoprolol tartrate 25 mg oral",
    sig: "25 mg by mouth every 12 hours; hold if HR < 55 or SBP < 95",
    dose: Some((25.0, "mg", "mg")),
    timing: Timing::Every(12),
    prn: None,
    route: ORAL,
    dispense: (2, "tablet"),
};
const SPIRONOLACTONE: Med = Med {
    rxnorm: "9997",
    ingredient: "spironolactone",
    text: "Spironolactone 25 mg oral",
    sig: "25 mg by mouth once daily",
    dose: Some((25.0, "mg", "mg")),
    timing: Timing::Every(24),
    prn: None,
    route: ORAL,
    dispense: (1, "tablet"),
};
const ATORVASTATIN: Med = Med {
    rxnorm: "83367",
    ingredient: "atorvastatin",
    text: "Atorvastatin 80 mg oral",
    sig: "80 mg by mouth at bedtime",
    dose: Some((80.0, "mg", "mg")),
    timing: Timing::Every(24),
    prn: None,
    route: ORAL,
    dispense: (1, "tablet"),
};
const ASPIRIN: Med = Med {
    rxnorm: "1191",
    ingredient: "aspirin",
    text: "Aspirin 81 mg oral",
    sig: "81 mg by mouth once daily",
    dose: Some((81.0, "mg", "mg")),
    timing: Timing::Every(24),
    prn: None,
    route: ORAL,
    dispense: (1, "tablet"),
};
const CLOPIDOGREL: Med = Med {
    rxnorm: "32968",
    ingredient: "clopidogrel",
    text: "Clopidogrel 75 mg oral",
    sig: "75 mg by mouth once daily (300 mg loading dose given in the ED)",
    dose: Some((75.0, "mg", "mg")),
    timing: Timing::Every(24),
    prn: None,
    route: ORAL,
    dispense: (1, "tablet"),
};
const APIXABAN: Med = Med {
    rxnorm: "1364430",
    ingredient: "apixaban",
    text: "Apixaban 5 mg oral",
    sig: "5 mg by mouth twice daily",
    dose: Some((5.0, "mg", "mg")),
    timing: Timing::Every(12),
    prn: None,
    route: ORAL,
    dispense: (2, "tablet"),
};
const DILTIAZEM: Med = Med {
    rxnorm: "3443",
    ingredient: "diltiazem",
    text: "Diltiazem 30 mg oral",
    sig: "30 mg by mouth every 6 hours; hold if SBP < 95",
    dose: Some((30.0, "mg", "mg")),
    timing: Timing::Every(6),
    prn: None,
    route: ORAL,
    dispense: (4, "tablet"),
};
const INSULIN_GLARGINE: Med = Med {
    rxnorm: "274783",
    ingredient: "insulin glargine",
    text: "Insulin glargine 20 units subcut",
    sig: "20 units subcutaneously at bedtime",
    dose: Some((20.0, "units", "[iU]")),
    timing: Timing::Every(24),
    prn: None,
    route: SUBCUT,
    dispense: (1, "pen"),
};
const INSULIN_LISPRO: Med = Med {
    rxnorm: "86009",
    ingredient: "insulin lispro",
    text: "Insulin lispro correction scale subcut",
    sig: "Low-dose correction scale subcutaneously before meals and at bedtime",
    dose: None,
    timing: Timing::Daily(4),
    prn: None,
    route: SUBCUT,
    dispense: (1, "pen"),
};
const INSULIN_INFUSION: Med = Med {
    rxnorm: "253182",
    ingredient: "insulin regular, human",
    text: "Insulin regular infusion (DKA protocol)",
    sig: "0.1 units/kg/h IV per DKA protocol; add dextrose when glucose < 250 mg/dL",
    dose: None,
    timing: Timing::Continuous,
    prn: None,
    route: IV,
    dispense: (1, "bag"),
};
const INSULIN_FOR_POTASSIUM: Med = Med {
    rxnorm: "253182",
    ingredient: "insulin regular, human",
    text: "Insulin regular 10 units IV with dextrose",
    sig: "10 units IV with dextrose 50% 25 g every 4 hours as needed for potassium > 6.0 mmol/L",
    dose: Some((10.0, "units", "[iU]")),
    timing: Timing::Every(4),
    prn: Some("potassium above 6.0 mmol/L"),
    route: IV,
    dispense: (1, "vial"),
};
const POTASSIUM_IV: Med = Med {
    rxnorm: "8591",
    ingredient: "potassium chloride",
    text: "Potassium chloride 20 mEq IV",
    sig: "20 mEq IV over 2 hours as needed for potassium < 4.0 mmol/L (DKA protocol)",
    dose: Some((20.0, "mEq", "meq")),
    timing: Timing::Every(2),
    prn: Some("potassium below 4.0 mmol/L"),
    route: IV,
    dispense: (2, "bag"),
};
const POTASSIUM_ORAL: Med = Med {
    rxnorm: "8591",
    ingredient: "potassium chloride",
    text: "Potassium chloride 40 mEq oral",
    sig: "40 mEq by mouth twice daily for 2 days",
    dose: Some((40.0, "mEq", "meq")),
    timing: Timing::Every(12),
    prn: None,
    route: ORAL,
    dispense: (4, "tablet"),
};
const DEXTROSE_INFUSION: Med = Med {
    rxnorm: "4850",
    ingredient: "glucose",
    text: "Dextrose 10% infusion",
    sig: "Dextrose 10% IV at 50 mL/h; titrate to keep glucose at or above 100 mg/dL",
    dose: None,
    timing: Timing::Continuous,
    prn: None,
    route: IV,
    dispense: (1, "bag"),
};
const SODIUM_BICARBONATE: Med = Med {
    rxnorm: "36676",
    ingredient: "sodium bicarbonate",
    text: "Sodium bicarbonate 150 mEq in D5W infusion",
    sig: "150 mEq in 1 L dextrose 5% IV at 100 mL/h; stop when bicarbonate > 20 mmol/L",
    dose: None,
    timing: Timing::Continuous,
    prn: None,
    route: IV,
    dispense: (1, "bag"),
};
const PANTOPRAZOLE_IV: Med = Med {
    rxnorm: "40790",
    ingredient: "pantoprazole",
    text: "Pantoprazole 40 mg IV",
    sig: "40 mg IV once daily for stress ulcer prophylaxis",
    dose: Some((40.0, "mg", "mg")),
    timing: Timing::Every(24),
    prn: None,
    route: IV,
    dispense: (1, "vial"),
};
const PANTOPRAZOLE_HIGH_DOSE: Med = Med {
    rxnorm: "40790",
    ingredient: "pantoprazole",
    text: "Pantoprazole 80 mg IV",
    sig: "80 mg IV twice daily for 72 hours after endoscopy",
    dose: Some((80.0, "mg", "mg")),
    timing: Timing::Every(12),
    prn: None,
    route: IV,
    dispense: (4, "vial"),
};
const PANTOPRAZOLE_ORAL: Med = Med {
    rxnorm: "40790",
    ingredient: "pantoprazole",
    text: "Pantoprazole 40 mg oral",
    sig: "40 mg by mouth once daily before breakfast",
    dose: Some((40.0, "mg", "mg")),
    timing: Timing::Every(24),
    prn: None,
    route: ORAL,
    dispense: (1, "tablet"),
};
const ONDANSETRON: Med = Med {
    rxnorm: "26225",
    ingredient: "ondansetron",
    text: "Ondansetron 4 mg IV PRN",
    sig: "4 mg IV every 6 hours as needed for nausea or vomiting",
    dose: Some((4.0, "mg", "mg")),
    timing: Timing::Every(6),
    prn: Some("nausea or vomiting"),
    route: IV,
    dispense: (2, "vial"),
};
const ACETAMINOPHEN: Med = Med {
    rxnorm: "161",
    ingredient: "acetaminophen",
    text: "Acetaminophen 650 mg oral PRN",
    sig: "650 mg by mouth every 6 hours as needed for pain or fever (max 3 g/day)",
    dose: Some((650.0, "mg", "mg")),
    timing: Timing::Every(6),
    prn: Some("pain or fever"),
    route: ORAL,
    dispense: (8, "tablet"),
};
const OXYCODONE: Med = Med {
    rxnorm: "7804",
    ingredient: "oxycodone",
    text: "Oxycodone 5 mg oral PRN",
    sig: "5 mg by mouth every 4 hours as needed for moderate pain",
    dose: Some((5.0, "mg", "mg")),
    timing: Timing::Every(4),
    prn: Some("moderate pain"),
    route: ORAL,
    dispense: (2, "tablet"),
};
const HYDROMORPHONE: Med = Med {
    rxnorm: "3423",
    ingredient: "hydromorphone",
    text: "Hydromorphone 0.5 mg IV PRN",
    sig: "0.5 mg IV every 3 hours as needed for severe pain; hold if RASS below 0",
    dose: Some((0.5, "mg", "mg")),
    timing: Timing::Every(3),
    prn: Some("severe pain"),
    route: IV,
    dispense: (4, "syringe"),
};
const PREDNISONE: Med = Med {
    rxnorm: "8640",
    ingredient: "prednisone",
    text: "Prednisone 40 mg oral",
    sig: "40 mg by mouth once daily for 5 days",
    dose: Some((40.0, "mg", "mg")),
    timing: Timing::Every(24),
    prn: None,
    route: ORAL,
    dispense: (2, "tablet"),
};
const METHYLPREDNISOLONE: Med = Med {
    rxnorm: "6902",
    ingredient: "methylprednisolone",
    text: "Methylprednisolone 40 mg IV",
    sig: "40 mg IV every 8 hours",
    dose: Some((40.0, "mg", "mg")),
    timing: Timing::Every(8),
    prn: None,
    route: IV,
    dispense: (3, "vial"),
};
const ALBUTEROL: Med = Med {
    rxnorm: "435",
    ingredient: "albuterol",
    text: "Albuterol 2.5 mg nebulized",
    sig: "2.5 mg nebulized every 4 hours, and every 2 hours as needed for wheeze",
    dose: Some((2.5, "mg", "mg")),
    timing: Timing::Every(4),
    prn: None,
    route: INHALED,
    dispense: (6, "nebule"),
};
const IPRATROPIUM: Med = Med {
    rxnorm: "7213",
    ingredient: "ipratropium",
    text: "Ipratropium 0.5 mg nebulized",
    sig: "0.5 mg nebulized every 6 hours",
    dose: Some((0.5, "mg", "mg")),
    timing: Timing::Every(6),
    prn: None,
    route: INHALED,
    dispense: (4, "nebule"),
};
const LORAZEPAM: Med = Med {
    rxnorm: "6470",
    ingredient: "lorazepam",
    text: "Lorazepam 1 mg IV PRN (CIWA-Ar)",
    sig: "1-2 mg IV every hour as needed for CIWA-Ar score of 10 or more; hold if sedated",
    dose: Some((1.0, "mg", "mg")),
    timing: Timing::Every(1),
    prn: Some("CIWA-Ar score of 10 or more"),
    route: IV,
    dispense: (4, "vial"),
};
const THIAMINE: Med = Med {
    rxnorm: "10454",
    ingredient: "thiamine",
    text: "Thiamine 500 mg IV",
    sig: "500 mg IV three times daily for 3 days, before any glucose",
    dose: Some((500.0, "mg", "mg")),
    timing: Timing::Every(8),
    prn: None,
    route: IV,
    dispense: (3, "vial"),
};
const FOLIC_ACID: Med = Med {
    rxnorm: "4511",
    ingredient: "folic acid",
    text: "Folic acid 1 mg oral",
    sig: "1 mg by mouth once daily",
    dose: Some((1.0, "mg", "mg")),
    timing: Timing::Every(24),
    prn: None,
    route: ORAL,
    dispense: (1, "tablet"),
};
const QUETIAPINE: Med = Med {
    rxnorm: "51272",
    ingredient: "quetiapine",
    text: "Quetiapine 12.5 mg oral PRN",
    sig: "12.5 mg by mouth at bedtime as needed for severe agitation",
    dose: Some((12.5, "mg", "mg")),
    timing: Timing::Every(24),
    prn: Some("severe agitation"),
    route: ORAL,
    dispense: (1, "tablet"),
};
const DONEPEZIL: Med = Med {
    rxnorm: "135447",
    ingredient: "donepezil",
    text: "Donepezil 10 mg oral",
    sig: "10 mg by mouth at bedtime (home medication)",
    dose: Some((10.0, "mg", "mg")),
    timing: Timing::Every(24),
    prn: None,
    route: ORAL,
    dispense: (1, "tablet"),
};
const NOREPINEPHRINE: Med = Med {
    rxnorm: "7512",
    ingredient: "norepinephrine",
    text: "Norepinephrine infusion",
    sig: "0.05-0.3 mcg/kg/min IV via central line; titrate to MAP of 65 mmHg or more",
    dose: None,
    timing: Timing::Continuous,
    prn: None,
    route: IV,
    dispense: (1, "bag"),
};
const PROPOFOL: Med = Med {
    rxnorm: "8782",
    ingredient: "propofol",
    text: "Propofol infusion",
    sig: "5-50 mcg/kg/min IV; titrate to RASS -1 to 0; daily awakening trial",
    dose: None,
    timing: Timing::Continuous,
    prn: None,
    route: IV,
    dispense: (2, "vial"),
};
const FENTANYL: Med = Med {
    rxnorm: "4337",
    ingredient: "fentanyl",
    text: "Fentanyl infusion",
    sig: "25-100 mcg/h IV for analgesia-first sedation; titrate to CPOT below 3",
    dose: None,
    timing: Timing::Continuous,
    prn: None,
    route: IV,
    dispense: (1, "bag"),
};
const ACETYLCYSTEINE: Med = Med {
    rxnorm: "197",
    ingredient: "acetylcysteine",
    text: "Acetylcysteine IV (21-hour protocol)",
    sig: "150 mg/kg IV over 1 h, then 50 mg/kg over 4 h, then 100 mg/kg over 16 h",
    dose: None,
    timing: Timing::Continuous,
    prn: None,
    route: IV,
    dispense: (3, "bag"),
};

// ---------------------------------------------------------------------------------------------
// Laboratory
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Lab {
    Hemoglobin,
    Wbc,
    Platelets,
    Sodium,
    Potassium,
    Creatinine,
    Glucose,
    TroponinI,
    Lactate,
    Cholesterol,
    Hdl,
    Ldl,
    Triglycerides,
}

const LAB_COUNT: usize = 13;
const ALL_LABS: [Lab; LAB_COUNT] = [
    Lab::Hemoglobin,
    Lab::Wbc,
    Lab::Platelets,
    Lab::Sodium,
    Lab::Potassium,
    Lab::Creatinine,
    Lab::Glucose,
    Lab::TroponinI,
    Lab::Lactate,
    Lab::Cholesterol,
    Lab::Hdl,
    Lab::Ldl,
    Lab::Triglycerides,
];

struct LabInfo {
    key: &'static str,
    short: &'static str,
    loinc: &'static str,
    display: &'static str,
    unit: &'static str,
    ucum: &'static str,
    low: Option<f64>,
    high: Option<f64>,
    critical_low: Option<f64>,
    critical_high: Option<f64>,
    decimals: u32,
    /// A well patient's usual value and how far it wanders.
    typical: f64,
    spread: f64,
}

impl Lab {
    fn info(self) -> LabInfo {
        let l = |key, short, loinc, display, unit, ucum, decimals, typical, spread| LabInfo {
            key,
            short,
            loinc,
            display,
            unit,
            ucum,
            low: None,
            high: None,
            critical_low: None,
            critical_high: None,
            decimals,
            typical,
            spread,
        };
        match self {
            Lab::Hemoglobin => LabInfo {
                low: Some(12.0),
                high: Some(17.5),
                critical_low: Some(7.0),
                critical_high: Some(20.0),
                ..l(
                    "hgb",
                    "Hb",
                    "718-7",
                    "Hemoglobin [Mass/volume] in Blood",
                    "g/dL",
                    "g/dL",
                    1,
                    13.4,
                    1.1,
                )
            },
            Lab::Wbc => LabInfo {
                low: Some(4.5),
                high: Some(11.0),
                critical_low: Some(1.0),
                critical_high: Some(30.0),
                ..l(
                    "wbc",
                    "WBC",
                    "6690-2",
                    "Leukocytes [#/volume] in Blood by Automated count",
                    "10*3/uL",
                    "10*3/uL",
                    1,
                    7.6,
                    2.2,
                )
            },
            Lab::Platelets => LabInfo {
                low: Some(150.0),
                high: Some(400.0),
                critical_low: Some(20.0),
                critical_high: Some(1000.0),
                ..l(
                    "plt",
                    "Plt",
                    "777-3",
                    "Platelets [#/volume] in Blood by Automated count",
                    "10*3/uL",
                    "10*3/uL",
                    0,
                    245.0,
                    70.0,
                )
            },
            Lab::Sodium => LabInfo {
                low: Some(135.0),
                high: Some(145.0),
                critical_low: Some(120.0),
                critical_high: Some(160.0),
                ..l(
                    "na",
                    "Na",
                    "2951-2",
                    "Sodium [Moles/volume] in Serum or Plasma",
                    "mmol/L",
                    "mmol/L",
                    0,
                    139.0,
                    3.0,
                )
            },
            Lab::Potassium => LabInfo {
                low: Some(3.5),
                high: Some(5.1),
                critical_low: Some(2.8),
                critical_high: Some(6.0),
                ..l(
                    "k",
                    "K",
                    "2823-3",
                    "Potassium [Moles/volume] in Serum or Plasma",
                    "mmol/L",
                    "mmol/L",
                    1,
                    4.2,
                    0.4,
                )
            },
            Lab::Creatinine => LabInfo {
                low: Some(0.6),
                high: Some(1.2),
                ..l(
                    "cr",
                    "Cr",
                    "2160-0",
                    "Creatinine [Mass/volume] in Serum or Plasma",
                    "mg/dL",
                    "mg/dL",
                    2,
                    0.9,
                    0.18,
                )
            },
            Lab::Glucose => LabInfo {
                low: Some(70.0),
                high: Some(99.0),
                critical_low: Some(50.0),
                critical_high: Some(500.0),
                ..l(
                    "glu",
                    "glucose",
                    "2345-7",
                    "Glucose [Mass/volume] in Serum or Plasma",
                    "mg/dL",
                    "mg/dL",
                    0,
                    108.0,
                    22.0,
                )
            },
            Lab::TroponinI => LabInfo {
                low: None,
                high: Some(0.04),
                critical_high: Some(1.0),
                ..l(
                    "trop",
                    "troponin I",
                    "10839-9",
                    "Troponin I.cardiac [Mass/volume] in Serum or Plasma",
                    "ng/mL",
                    "ng/mL",
                    2,
                    0.015,
                    0.005,
                )
            },
            Lab::Lactate => LabInfo {
                low: Some(0.5),
                high: Some(2.2),
                critical_high: Some(4.0),
                ..l(
                    "lact",
                    "lactate",
                    "2524-7",
                    "Lactate [Moles/volume] in Serum or Plasma",
                    "mmol/L",
                    "mmol/L",
                    1,
                    1.3,
                    0.4,
                )
            },
            Lab::Cholesterol => LabInfo {
                high: Some(200.0),
                ..l(
                    "chol",
                    "cholesterol",
                    "2093-3",
                    "Cholesterol [Mass/volume] in Serum or Plasma",
                    "mg/dL",
                    "mg/dL",
                    0,
                    185.0,
                    25.0,
                )
            },
            Lab::Hdl => LabInfo {
                low: Some(40.0),
                ..l(
                    "hdl",
                    "HDL",
                    "2085-9",
                    "Cholesterol in HDL [Mass/volume] in Serum or Plasma",
                    "mg/dL",
                    "mg/dL",
                    0,
                    50.0,
                    8.0,
                )
            },
            Lab::Ldl => LabInfo {
                high: Some(100.0),
                ..l(
                    "ldl",
                    "LDL",
                    "18262-6",
                    "Cholesterol in LDL [Mass/volume] in Serum or Plasma by Direct assay",
                    "mg/dL",
                    "mg/dL",
                    0,
                    105.0,
                    20.0,
                )
            },
            Lab::Triglycerides => LabInfo {
                high: Some(150.0),
                ..l(
                    "tg",
                    "TG",
                    "2571-8",
                    "Triglyceride [Mass/volume] in Serum or Plasma",
                    "mg/dL",
                    "mg/dL",
                    0,
                    130.0,
                    30.0,
                )
            },
        }
    }

    /// Reference range; hemoglobin's depends on sex.
    fn range(self, female: bool) -> (Option<f64>, Option<f64>) {
        match (self, female) {
            (Lab::Hemoglobin, true) => (Some(12.0), Some(15.5)),
            (Lab::Hemoglobin, false) => (Some(13.5), Some(17.5)),
            _ => {
                let info = self.info();
                (info.low, info.high)
            }
        }
    }

    /// v3-ObservationInterpretation code and display for a value.
    fn interpret(self, female: bool, value: f64) -> Code {
        let info = self.info();
        let (low, high) = self.range(female);
        if info.critical_low.is_some_and(|c| value < c) {
            ("LL", "Critical low")
        } else if info.critical_high.is_some_and(|c| value > c) {
            ("HH", "Critical high")
        } else if low.is_some_and(|c| value < c) {
            ("L", "Low")
        } else if high.is_some_and(|c| value > c) {
            ("H", "High")
        } else {
            ("N", "Normal")
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Panel {
    Cbc,
    Bmp,
    Lipid,
    Troponin,
    Lactate,
    ChestXray,
}

impl Panel {
    /// LOINC code, display, short name, analytes.
    fn info(self) -> (&'static str, &'static str, &'static str, &'static [Lab]) {
        match self {
            Panel::Cbc => (
                "58410-2",
                "CBC panel - Blood by Automated count",
                "CBC",
                &[Lab::Hemoglobin, Lab::Wbc, Lab::Platelets],
            ),
            Panel::Bmp => (
                "51990-0",
                "Basic metabolic panel - Blood",
                "BMP",
                &[Lab::Sodium, Lab::Potassium, Lab::Creatinine, Lab::Glucose],
            ),
            Panel::Lipid => (
                "57698-3",
                "Lipid panel with direct LDL - Serum or Plasma",
                "Lipid panel",
                &[Lab::Cholesterol, Lab::Hdl, Lab::Ldl, Lab::Triglycerides],
            ),
            Panel::Troponin => (
                "10839-9",
                "Troponin I.cardiac [Mass/volume] in Serum or Plasma",
                "Troponin I",
                &[Lab::TroponinI],
            ),
            Panel::Lactate => (
                "2524-7",
                "Lactate [Moles/volume] in Serum or Plasma",
                "Lactate",
                &[Lab::Lactate],
            ),
            Panel::ChestXray => ("36643-5", "XR Chest 2 Views", "Chest X-ray", &[]),
        }
    }

    fn is_urgent(self) -> bool {
        matches!(self, Panel::Troponin | Panel::Lactate)
    }
}

// ---------------------------------------------------------------------------------------------
// Clinical profiles: what brought the patient in, and everything that follows from it
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy)]
struct Vitals {
    hr: f64,
    sbp: f64,
    dbp: f64,
    temp: f64,
    rr: f64,
    spo2: f64,
}

const fn v(hr: f64, sbp: f64, dbp: f64, temp: f64, rr: f64, spo2: f64) -> Vitals {
    Vitals {
        hr,
        sbp,
        dbp,
        temp,
        rr,
        spo2,
    }
}

struct Profile {
    key: &'static str,
    principal: Code,
    /// Chronic problems, most typical first; a patient has the first 0-3.
    comorbid: &'static [Code],
    /// The first two are always ordered (the plan text names only those).
    meds: &'static [&'static Med],
    /// Vital signs on arrival and now; the chart moves between them.
    admit: Vitals,
    now: Vitals,
    /// Lab values on admission and on the latest draw, where they differ from the patient's norm.
    labs: &'static [(Lab, f64, f64)],
    /// Tests drawn on admission besides CBC and BMP.
    admit_tests: &'static [Panel],
    /// Drawn at 05:00 each morning.
    repeat: &'static [Panel],
    /// Ordered recently, no result yet.
    pending: &'static [Panel],
    chief_complaint: &'static str,
    hpi: &'static str,
    exam: &'static str,
    plan: &'static str,
    subjective: &'static str,
    progress: &'static str,
}

static PNEUMONIA: Profile = Profile {
    key: "pneumonia",
    principal: C_CAP,
    comorbid: &[C_HTN, C_T2DM, C_COPD],
    meds: &[&CEFTRIAXONE, &AZITHROMYCIN, &ENOXAPARIN_PROPHYLAXIS, &ACETAMINOPHEN, &ALBUTEROL],
    admit: v(108.0, 112.0, 64.0, 38.9, 24.0, 90.0),
    now: v(86.0, 124.0, 72.0, 37.1, 18.0, 95.0),
    labs: &[(Lab::Wbc, 16.8, 10.9)],
    admit_tests: &[],
    repeat: &[Panel::Cbc],
    pending: &[],
    chief_complaint: "Cough, fever and shortness of breath for 3 days.",
    hpi: "Three days of cough productive of rusty sputum, fevers and worsening dyspnea. In the ED SpO2 was 88% on room air and the chest X-ray showed right lower lobe consolidation.",
    exam: "Crackles and bronchial breathing at the right base, no accessory muscle use.",
    plan: "1. Community-acquired pneumonia, CURB-65 of 2: ceftriaxone and azithromycin; blood and sputum cultures sent; oxygen to keep SpO2 at 92% or more.\n2. VTE prophylaxis, incentive spirometry, early mobilization.",
    subjective: "Feels better, cough less productive, ate most of breakfast.",
    progress: "Pneumonia improving on ceftriaxone and azithromycin, afebrile for over 24 hours. Wean oxygen; switch to oral antibiotics tomorrow if stable.",
};

static COPD: Profile = Profile {
    key: "copd",
    principal: C_AECOPD,
    comorbid: &[C_COPD, C_HTN, C_OSA],
    meds: &[&PREDNISONE, &ALBUTEROL, &IPRATROPIUM, &AZITHROMYCIN, &HEPARIN_SUBCUT],
    admit: v(104.0, 148.0, 86.0, 37.4, 26.0, 87.0),
    now: v(88.0, 136.0, 78.0, 36.9, 19.0, 92.0),
    labs: &[(Lab::Wbc, 12.1, 13.4), (Lab::Glucose, 148.0, 182.0)],
    admit_tests: &[],
    repeat: &[Panel::Bmp],
    pending: &[],
    chief_complaint: "Worsening shortness of breath and wheeze for 2 days.",
    hpi: "Known COPD (FEV1 42% predicted). Two days of increased sputum and wheeze after a cold, using the rescue inhaler every 2 hours. ED venous gas pH 7.34, pCO2 52 mmHg.",
    exam: "Diffuse expiratory wheeze, prolonged expiration; speaking full sentences after nebulizers.",
    plan: "1. COPD exacerbation: prednisone 40 mg daily for 5 days, scheduled albuterol and ipratropium nebulizers, antibiotic for purulent sputum. Target SpO2 88-92%.\n2. Smoking cessation counseling; inhaler technique review.",
    subjective: "Breathing easier, walked to the bathroom without stopping.",
    progress: "COPD exacerbation improving. Space nebulizers to every 6 hours, continue prednisone (day 3 of 5). PT and OT evaluation before discharge.",
};

static CELLULITIS: Profile = Profile {
    key: "cellulitis",
    principal: C_CELLULITIS,
    comorbid: &[C_T2DM, C_OBESITY, C_HTN],
    meds: &[&CEFAZOLIN, &ENOXAPARIN_PROPHYLAXIS, &ACETAMINOPHEN, &OXYCODONE],
    admit: v(98.0, 132.0, 80.0, 38.4, 18.0, 97.0),
    now: v(78.0, 128.0, 76.0, 36.8, 16.0, 98.0),
    labs: &[(Lab::Wbc, 14.2, 9.8), (Lab::Glucose, 212.0, 164.0)],
    admit_tests: &[],
    repeat: &[Panel::Cbc],
    pending: &[],
    chief_complaint: "Red, painful, swollen left lower leg.",
    hpi: "Four days of spreading redness and pain of the left shin after a scrape while gardening; no better after 48 hours of oral cephalexin. No crepitus; no abscess on bedside ultrasound.",
    exam: "Warm, tender erythema from ankle to mid-shin, margins marked with skin pen; no fluctuance.",
    plan: "1. Nonpurulent cellulitis failing oral therapy: IV cefazolin, leg elevation, margins marked daily.\n2. VTE prophylaxis with enoxaparin.\n3. Diabetes: hold metformin, glucose checks before meals.",
    subjective: "Pain 3/10, redness receding from the marked margin.",
    progress: "Cellulitis responding: erythema 3 cm inside the marked border. Continue cefazolin 24 more hours, then oral cephalexin to complete 7 days.",
};

static PYELONEPHRITIS: Profile = Profile {
    key: "pyelonephritis",
    principal: C_PYELO,
    comorbid: &[C_HYPOTHYROID, C_ASTHMA],
    meds: &[&CEFTRIAXONE, &ONDANSETRON, &ACETAMINOPHEN, &ENOXAPARIN_PROPHYLAXIS],
    admit: v(112.0, 108.0, 66.0, 39.2, 20.0, 97.0),
    now: v(84.0, 118.0, 72.0, 37.2, 16.0, 98.0),
    labs: &[(Lab::Wbc, 17.9, 11.2), (Lab::Creatinine, 1.4, 0.9)],
    admit_tests: &[],
    repeat: &[Panel::Bmp],
    pending: &[],
    chief_complaint: "Fever, right flank pain and vomiting.",
    hpi: "Two days of dysuria, then right flank pain, rigors and vomiting. Urinalysis with pyuria and nitrites; CT shows no obstruction or abscess.",
    exam: "Right costovertebral angle tenderness, dry mucous membranes.",
    plan: "1. Acute pyelonephritis without obstruction: IV ceftriaxone; urine and blood cultures pending.\n2. IV fluids, ondansetron for nausea.",
    subjective: "No vomiting since yesterday, drinking well, flank pain easing.",
    progress: "Pyelonephritis improving, afebrile 18 hours. Urine culture growing E. coli, susceptibilities pending; switch to an oral agent once they return.",
};

static ALCOHOL_WITHDRAWAL: Profile = Profile {
    key: "alcohol-withdrawal",
    principal: C_ETOH_WITHDRAWAL,
    comorbid: &[C_ALCOHOLISM, C_HTN, C_GERD],
    meds: &[&LORAZEPAM, &THIAMINE, &FOLIC_ACID, &POTASSIUM_ORAL, &ENOXAPARIN_PROPHYLAXIS],
    admit: v(118.0, 164.0, 98.0, 37.8, 22.0, 96.0),
    now: v(92.0, 142.0, 86.0, 37.1, 18.0, 97.0),
    labs: &[
        (Lab::Potassium, 3.2, 3.9),
        (Lab::Platelets, 112.0, 124.0),
        (Lab::Sodium, 133.0, 136.0),
    ],
    admit_tests: &[],
    repeat: &[Panel::Bmp],
    pending: &[],
    chief_complaint: "Tremor, sweating and anxiety 24 hours after the last drink.",
    hpi: "Drinks about a fifth of vodka a day; last drink 24 hours before arrival. Tremulous and sweating with a CIWA-Ar score of 18 in the ED. One withdrawal seizure in the past, never delirium tremens.",
    exam: "Coarse tremor, diaphoresis, oriented but anxious, no hallucinations.",
    plan: "1. Alcohol withdrawal: symptom-triggered lorazepam per CIWA-Ar, seizure precautions.\n2. High-dose IV thiamine before any glucose; replace potassium and magnesium.",
    subjective: "Slept overnight; tremor much reduced. Asking for help to stop drinking.",
    progress: "Withdrawal settling, CIWA-Ar 4-6 overnight with 2 mg lorazepam in total. Continue thiamine. Addiction medicine consulted.",
};

static HYPOGLYCEMIA: Profile = Profile {
    key: "hypoglycemia",
    principal: C_HYPOGLYCEMIA,
    comorbid: &[C_T2DM, C_CKD, C_HTN],
    meds: &[&DEXTROSE_INFUSION, &HEPARIN_SUBCUT, &INSULIN_LISPRO],
    admit: v(96.0, 146.0, 82.0, 36.4, 18.0, 98.0),
    now: v(80.0, 138.0, 78.0, 36.8, 16.0, 98.0),
    labs: &[(Lab::Glucose, 38.0, 142.0), (Lab::Creatinine, 1.9, 1.7)],
    admit_tests: &[],
    repeat: &[Panel::Bmp],
    pending: &[],
    chief_complaint: "Found confused at home by family.",
    hpi: "Type 2 diabetes on glipizide and insulin glargine. Eating little for 3 days with a cold; found sweaty and confused, EMS fingerstick 34 mg/dL, better after IV dextrose. Renal function worse than baseline.",
    exam: "Alert and oriented now, no focal neurological deficit.",
    plan: "1. Recurrent hypoglycemia from a sulfonylurea with poor intake and CKD: dextrose 10% infusion, hourly glucose checks, glipizide stopped.\n2. Hold basal insulin tonight; VTE prophylaxis with heparin.",
    subjective: "No further low readings overnight, eating full meals.",
    progress: "Sulfonylurea-related hypoglycemia resolved; dextrose infusion to stop this morning. Discharge on reduced-dose glargine, no sulfonylurea; diabetes education booked.",
};

static C_DIFFICILE: Profile = Profile {
    key: "c-difficile",
    principal: C_CDIFF,
    comorbid: &[C_HTN, C_OSTEOARTHRITIS, C_GERD],
    meds: &[&VANCOMYCIN_ORAL, &POTASSIUM_ORAL, &HEPARIN_SUBCUT, &ONDANSETRON],
    admit: v(104.0, 102.0, 60.0, 38.3, 18.0, 98.0),
    now: v(84.0, 118.0, 70.0, 37.0, 16.0, 98.0),
    labs: &[(Lab::Wbc, 21.4, 14.6), (Lab::Potassium, 3.1, 3.7), (Lab::Creatinine, 1.6, 1.1)],
    admit_tests: &[],
    repeat: &[Panel::Bmp, Panel::Cbc],
    pending: &[],
    chief_complaint: "Watery diarrhea eight times a day after recent antibiotics.",
    hpi: "Finished amoxicillin-clavulanate for a dental infection 10 days ago; now 3 days of profuse watery diarrhea, crampy lower abdominal pain and low-grade fever. Stool C. difficile PCR and toxin positive.",
    exam: "Mild diffuse lower abdominal tenderness, no peritonism.",
    plan: "1. C. difficile infection, non-fulminant: oral vancomycin 125 mg four times daily for 10 days; contact precautions; stop the proton pump inhibitor.\n2. IV fluids and potassium replacement.",
    subjective: "Four loose stools yesterday, down from eight. Cramping better.",
    progress: "C. difficile colitis improving, white count falling. Continue oral vancomycin (day 3 of 10) and contact precautions with soap-and-water hand hygiene.",
};

static DELIRIUM: Profile = Profile {
    key: "delirium",
    principal: C_DELIRIUM,
    comorbid: &[C_UTI, C_DEMENTIA, C_HTN],
    meds: &[&CEFTRIAXONE, &HEPARIN_SUBCUT, &DONEPEZIL, &QUETIAPINE],
    admit: v(102.0, 152.0, 84.0, 38.1, 20.0, 95.0),
    now: v(82.0, 138.0, 76.0, 36.9, 18.0, 96.0),
    labs: &[(Lab::Wbc, 13.6, 9.4), (Lab::Sodium, 132.0, 136.0)],
    admit_tests: &[],
    repeat: &[Panel::Bmp],
    pending: &[],
    chief_complaint: "Acute confusion and a fall at the care home.",
    hpi: "Mild Alzheimer dementia, usually oriented to person and place and walking with a frame. Two days of increasing confusion, new incontinence and a fall without head strike. Urinalysis with pyuria; CT head without acute change.",
    exam: "Inattentive (CAM positive), oriented to self only, no focal deficit, bruise over the left hip with full range of movement.",
    plan: "1. Delirium from urinary tract infection: ceftriaxone; no sedatives or restraints; glasses and hearing aids in; family at the bedside.\n2. High fall risk: bed alarm, assisted mobility. VTE prophylaxis with heparin.",
    subjective: "Nursing reports a calmer night; recognized family this morning.",
    progress: "Delirium clearing as the infection is treated, CAM negative today. Continue ceftriaxone (day 3); fall precautions; PT review for return to the care home.",
};

static PANCREATITIS: Profile = Profile {
    key: "pancreatitis",
    principal: C_PANCREATITIS,
    comorbid: &[C_HLD, C_OBESITY, C_T2DM],
    meds: &[&HYDROMORPHONE, &ONDANSETRON, &ENOXAPARIN_PROPHYLAXIS, &PANTOPRAZOLE_ORAL],
    admit: v(116.0, 138.0, 84.0, 38.0, 22.0, 95.0),
    now: v(90.0, 130.0, 78.0, 37.2, 18.0, 97.0),
    labs: &[
        (Lab::Wbc, 15.2, 11.8),
        (Lab::Glucose, 188.0, 136.0),
        (Lab::Triglycerides, 1240.0, 1240.0),
        (Lab::Cholesterol, 342.0, 342.0),
        (Lab::Hdl, 28.0, 28.0),
    ],
    admit_tests: &[Panel::Lipid],
    repeat: &[Panel::Bmp],
    pending: &[],
    chief_complaint: "Severe upper abdominal pain going through to the back.",
    hpi: "Sudden epigastric pain radiating to the back with vomiting since last night. Lipase 1,840 U/L; no gallstones on ultrasound; does not drink alcohol. Triglycerides markedly raised.",
    exam: "Epigastric tenderness with guarding, no rebound, quiet bowel sounds.",
    plan: "1. Acute pancreatitis, likely hypertriglyceridemic: lactated Ringer's, IV hydromorphone and ondansetron, early oral feeding as tolerated.\n2. Fenofibrate once eating; glucose control.",
    subjective: "Pain 4/10, tolerating clear liquids.",
    progress: "Pancreatitis improving; advance to a low-fat diet. Start fenofibrate, dietitian review, repeat triglycerides in 2 weeks.",
};

static PULMONARY_EMBOLISM: Profile = Profile {
    key: "pulmonary-embolism",
    principal: C_PE,
    comorbid: &[C_DVT, C_OBESITY],
    meds: &[&ENOXAPARIN_TREATMENT, &ACETAMINOPHEN, &OXYCODONE],
    admit: v(112.0, 128.0, 80.0, 37.6, 24.0, 91.0),
    now: v(88.0, 124.0, 76.0, 37.0, 18.0, 96.0),
    labs: &[],
    admit_tests: &[Panel::Troponin],
    repeat: &[],
    pending: &[],
    chief_complaint: "Sudden pleuritic chest pain and breathlessness.",
    hpi: "Left calf swelling for a week after a long-haul flight, then sudden right-sided pleuritic chest pain and dyspnea. CT pulmonary angiogram: right lower lobe segmental emboli, no right heart strain.",
    exam: "Tachycardic, clear chest, swollen tender left calf.",
    plan: "1. Segmental pulmonary embolism with left leg DVT, low risk (sPESI 0): therapeutic enoxaparin, then apixaban before discharge.\n2. Analgesia with acetaminophen.",
    subjective: "Chest pain easing, walking the ward on room air.",
    progress: "PE stable on therapeutic enoxaparin, SpO2 96% on room air. Apixaban 10 mg twice daily for 7 days then 5 mg twice daily; discharge tomorrow.",
};

static SUBMASSIVE_PE: Profile = Profile {
    key: "submassive-pe",
    principal: C_PE,
    comorbid: &[C_DVT, C_OSTEOARTHRITIS, C_HTN],
    meds: &[&HEPARIN_INFUSION, &ACETAMINOPHEN, &PANTOPRAZOLE_IV],
    admit: v(124.0, 98.0, 62.0, 37.4, 28.0, 88.0),
    now: v(102.0, 110.0, 68.0, 37.2, 22.0, 93.0),
    labs: &[(Lab::TroponinI, 0.21, 0.12), (Lab::Lactate, 2.6, 1.6)],
    admit_tests: &[Panel::Troponin, Panel::Lactate],
    repeat: &[Panel::Cbc],
    pending: &[],
    chief_complaint: "Collapse at home with severe breathlessness.",
    hpi: "Syncope at home followed by severe dyspnea, 3 weeks after a knee replacement. CT pulmonary angiogram: bilateral main pulmonary artery emboli, RV/LV ratio 1.3; troponin mildly raised.",
    exam: "Tachycardic and tachypneic, raised JVP, swollen left leg.",
    plan: "1. Intermediate-high risk PE: unfractionated heparin infusion; PE response team aware; thrombolysis if hemodynamics worsen.\n2. Oxygen to keep SpO2 at 92% or more; avoid large fluid boluses.",
    subjective: "Less breathless, no further presyncope; still on 4 L nasal cannula.",
    progress: "Hemodynamically stable on heparin, anti-Xa in range. Repeat echo tomorrow; step down to the floor if stable.",
};

static INFLUENZA: Profile = Profile {
    key: "influenza",
    principal: C_FLU,
    comorbid: &[C_ASTHMA, C_OBESITY],
    meds: &[&OSELTAMIVIR, &ALBUTEROL, &ACETAMINOPHEN, &ENOXAPARIN_PROPHYLAXIS],
    admit: v(110.0, 118.0, 70.0, 39.0, 24.0, 92.0),
    now: v(88.0, 122.0, 74.0, 37.4, 18.0, 95.0),
    labs: &[(Lab::Wbc, 3.8, 5.1), (Lab::Platelets, 138.0, 162.0)],
    admit_tests: &[],
    repeat: &[Panel::Cbc],
    pending: &[],
    chief_complaint: "Fever, aches and cough; influenza A positive.",
    hpi: "Three days of high fever, myalgia, dry cough and wheeze. Rapid PCR positive for influenza A. Not vaccinated this season; asthma with increasing rescue inhaler use.",
    exam: "Flushed, scattered expiratory wheeze, no focal consolidation.",
    plan: "1. Influenza A with asthma flare: oseltamivir 75 mg twice daily for 5 days; droplet precautions.\n2. Scheduled albuterol; antipyretics.",
    subjective: "Fever broke overnight; still coughing, appetite returning.",
    progress: "Influenza improving on oseltamivir (day 3 of 5). Droplet precautions until 24 hours afebrile without antipyretics.",
};

static HEART_FAILURE: Profile = Profile {
    key: "heart-failure",
    principal: C_CHF,
    comorbid: &[C_CAD, C_CKD, C_T2DM],
    meds: &[&FUROSEMIDE_IV, &CARVEDILOL, &SPIRONOLACTONE, &ATORVASTATIN, &HEPARIN_SUBCUT],
    admit: v(104.0, 158.0, 94.0, 36.8, 24.0, 89.0),
    now: v(82.0, 122.0, 72.0, 36.7, 18.0, 95.0),
    labs: &[(Lab::Sodium, 131.0, 134.0), (Lab::Creatinine, 1.6, 1.8), (Lab::Potassium, 4.1, 3.8)],
    admit_tests: &[Panel::Troponin],
    repeat: &[Panel::Bmp],
    pending: &[Panel::Bmp],
    chief_complaint: "Three weeks of worsening breathlessness and leg swelling.",
    hpi: "Ischemic cardiomyopathy, EF 30%. Weight up 6 kg over 3 weeks, now sleeping on 3 pillows and waking breathless after running out of furosemide. BNP 1,860 pg/mL; chest X-ray with pulmonary edema.",
    exam: "JVP to the angle of the jaw, bibasal crackles, pitting edema to the knees.",
    plan: "1. Acute decompensated heart failure with reduced EF: IV furosemide 40 mg twice daily, strict intake and output, daily weights, 1.5 L fluid restriction.\n2. Continue carvedilol at the home dose.",
    subjective: "Breathing better, slept on one pillow, 2.4 kg down since admission.",
    progress: "Diuresing well (net -3.1 L). Creatinine slightly up; watch. IV furosemide today, switch to oral torsemide tomorrow.",
};

static NSTEMI: Profile = Profile {
    key: "nstemi",
    principal: C_NSTEMI,
    comorbid: &[C_HTN, C_HLD, C_T2DM],
    meds: &[&ASPIRIN, &HEPARIN_INFUSION, &ATORVASTATIN, &METOPROLOL, &CLOPIDOGREL],
    admit: v(96.0, 168.0, 96.0, 36.9, 18.0, 96.0),
    now: v(72.0, 128.0, 74.0, 36.8, 16.0, 98.0),
    labs: &[
        (Lab::TroponinI, 4.82, 4.82),
        (Lab::Ldl, 162.0, 162.0),
        (Lab::Cholesterol, 238.0, 238.0),
        (Lab::Hdl, 34.0, 34.0),
        (Lab::Triglycerides, 210.0, 210.0),
    ],
    admit_tests: &[Panel::Troponin, Panel::Lipid],
    repeat: &[Panel::Bmp],
    pending: &[Panel::Troponin],
    chief_complaint: "Crushing chest pain for 2 hours.",
    hpi: "Retrosternal pressure radiating to the left arm with sweating, starting at rest 2 hours before arrival. ECG: 1-2 mm ST depression V4-V6. Troponin I 4.82 ng/mL.",
    exam: "Comfortable after nitroglycerin, no murmur, clear lungs.",
    plan: "1. NSTEMI, TIMI score 4: aspirin and heparin infusion; high-intensity statin and beta-blocker; coronary angiography planned.\n2. Serial troponins and ECGs; echocardiogram.",
    subjective: "No chest pain since admission.",
    progress: "NSTEMI, stable. Angiography today, likely culprit LAD lesion. Continue dual antiplatelet therapy; heparin until the procedure. Echo pending.",
};

static ATRIAL_FIBRILLATION: Profile = Profile {
    key: "atrial-fibrillation",
    principal: C_AFIB,
    comorbid: &[C_HTN, C_HYPOTHYROID, C_OSA],
    meds: &[&DILTIAZEM, &APIXABAN, &ACETAMINOPHEN],
    admit: v(148.0, 132.0, 88.0, 36.9, 20.0, 96.0),
    now: v(84.0, 124.0, 76.0, 36.8, 16.0, 97.0),
    labs: &[(Lab::Potassium, 3.4, 4.1)],
    admit_tests: &[Panel::Troponin],
    repeat: &[Panel::Bmp],
    pending: &[],
    chief_complaint: "Palpitations and breathlessness since yesterday.",
    hpi: "New palpitations and breathlessness on exertion for 30 hours. ECG: atrial fibrillation, ventricular rate 150. CHA2DS2-VASc 3; TSH normal; echo pending.",
    exam: "Irregularly irregular pulse, no murmur, mild bibasal crackles.",
    plan: "1. New atrial fibrillation with rapid ventricular response: rate control with oral diltiazem, target HR below 110.\n2. Anticoagulation with apixaban (CHA2DS2-VASc 3, HAS-BLED 1).",
    subjective: "Palpitations settled; no dizziness.",
    progress: "Rate controlled (HR 80s) on diltiazem. Continue apixaban. Echo: normal EF, mildly dilated left atrium. Discuss cardioversion in clinic.",
};

static CHEST_PAIN: Profile = Profile {
    key: "chest-pain",
    principal: C_CHEST_PAIN,
    comorbid: &[C_HTN, C_HLD, C_GERD],
    meds: &[&ASPIRIN, &ATORVASTATIN, &PANTOPRAZOLE_ORAL, &ACETAMINOPHEN],
    admit: v(88.0, 146.0, 88.0, 36.8, 16.0, 98.0),
    now: v(74.0, 132.0, 80.0, 36.7, 14.0, 98.0),
    labs: &[(Lab::Ldl, 138.0, 138.0)],
    admit_tests: &[Panel::Troponin, Panel::Lipid],
    repeat: &[],
    pending: &[Panel::Troponin],
    chief_complaint: "Intermittent chest tightness for 2 days.",
    hpi: "Episodes of central chest tightness lasting 10-20 minutes, some on exertion. Normal ECG and initial troponin. Father had a heart attack at 52.",
    exam: "Normal heart sounds, chest wall not tender.",
    plan: "1. Chest pain, intermediate risk (HEART score 4): serial troponins, aspirin, stress echocardiogram in the morning.\n2. Lipids and HbA1c; statin.",
    subjective: "No further chest pain overnight.",
    progress: "Troponins negative so far, last one pending. Stress echo today; home if negative with cardiology clinic follow-up.",
};

static SYNCOPE: Profile = Profile {
    key: "syncope",
    principal: C_SYNCOPE,
    comorbid: &[C_AORTIC_STENOSIS, C_HTN, C_OSTEOARTHRITIS],
    meds: &[&HEPARIN_SUBCUT, &ACETAMINOPHEN, &ATORVASTATIN],
    admit: v(58.0, 104.0, 62.0, 36.6, 16.0, 97.0),
    now: v(66.0, 126.0, 70.0, 36.7, 16.0, 98.0),
    labs: &[],
    admit_tests: &[Panel::Troponin],
    repeat: &[Panel::Bmp],
    pending: &[],
    chief_complaint: "Passed out while standing in church.",
    hpi: "Brief loss of consciousness without warning while standing, with a scalp laceration. Known moderate aortic stenosis. ECG: sinus bradycardia 52 with first-degree AV block.",
    exam: "Harsh ejection systolic murmur radiating to the carotids; sutured scalp laceration.",
    plan: "1. Syncope, arrhythmia or aortic stenosis: continuous telemetry, echocardiogram, orthostatic vitals; hold amlodipine.\n2. VTE prophylaxis with heparin; acetaminophen for the scalp wound.",
    subjective: "No further episodes; telemetry showed a 3.8-second pause at 03:00.",
    progress: "Symptomatic pause on telemetry; electrophysiology consulted for a pacemaker. Echo: severe aortic stenosis (AVA 0.9 cm2); structural heart team to review.",
};

static SEPSIS: Profile = Profile {
    key: "sepsis",
    principal: C_SEPSIS,
    comorbid: &[C_CAP, C_T2DM, C_CKD],
    meds: &[&VANCOMYCIN_IV, &CEFEPIME, &HEPARIN_SUBCUT, &PANTOPRAZOLE_IV, &ACETAMINOPHEN],
    admit: v(122.0, 96.0, 54.0, 39.1, 26.0, 91.0),
    now: v(96.0, 112.0, 64.0, 37.8, 20.0, 94.0),
    labs: &[
        (Lab::Wbc, 22.4, 15.8),
        (Lab::Lactate, 3.1, 1.4),
        (Lab::Creatinine, 1.8, 1.3),
        (Lab::Platelets, 118.0, 136.0),
    ],
    admit_tests: &[Panel::Lactate],
    repeat: &[Panel::Bmp, Panel::Cbc],
    pending: &[],
    chief_complaint: "Fever, confusion and low blood pressure.",
    hpi: "Two days of productive cough and fever, confused today. In the ED BP 88/50, improving to 104/60 after 30 mL/kg crystalloid; lactate raised; chest X-ray with left lower lobe consolidation.",
    exam: "Drowsy but rousable, bronchial breathing at the left base, warm peripheries.",
    plan: "1. Sepsis from left lower lobe pneumonia: vancomycin and cefepime after cultures; repeat lactate; MAP target 65 mmHg or more.\n2. Stress ulcer and VTE prophylaxis.",
    subjective: "More alert; off the face mask onto nasal cannula.",
    progress: "Sepsis resolving: lactate normal, MAP above 70 without vasopressors. MRSA nasal swab negative, stop vancomycin. Step down to the floor if stable.",
};

static SEPTIC_SHOCK: Profile = Profile {
    key: "septic-shock",
    principal: C_SEPTIC_SHOCK,
    comorbid: &[C_PYELO, C_T2DM, C_HTN],
    meds: &[
        &NOREPINEPHRINE,
        &PIPERACILLIN_TAZOBACTAM,
        &VANCOMYCIN_IV,
        &HEPARIN_SUBCUT,
        &PANTOPRAZOLE_IV,
    ],
    admit: v(128.0, 78.0, 42.0, 39.4, 28.0, 93.0),
    now: v(104.0, 102.0, 58.0, 38.2, 22.0, 95.0),
    labs: &[
        (Lab::Lactate, 5.8, 3.2),
        (Lab::Wbc, 26.8, 19.2),
        (Lab::Creatinine, 2.6, 2.1),
        (Lab::Platelets, 86.0, 74.0),
    ],
    admit_tests: &[Panel::Lactate],
    repeat: &[Panel::Bmp, Panel::Cbc],
    pending: &[Panel::Lactate],
    chief_complaint: "Fever, rigors and low blood pressure.",
    hpi: "Obstructing left ureteric stone with fever and rigors. In the ED BP 72/40 despite 3 L crystalloid, lactate 5.8 mmol/L. Emergency nephrostomy by interventional radiology.",
    exam: "Mottled knees, capillary refill 4 seconds, left flank tenderness; nephrostomy draining turbid urine.",
    plan: "1. Septic shock from obstructed pyelonephritis: norepinephrine to MAP 65 mmHg or more, piperacillin-tazobactam, source controlled by nephrostomy.\n2. Repeat lactate in 2 hours; hydrocortisone if norepinephrine exceeds 0.25 mcg/kg/min.",
    subjective: "Sedation off, follows commands. Norepinephrine weaning.",
    progress: "Shock improving, norepinephrine down to 0.06 mcg/kg/min. Blood cultures: E. coli, sensitivities pending. Platelets falling; DIC screen sent.",
};

static RESPIRATORY_FAILURE: Profile = Profile {
    key: "respiratory-failure",
    principal: C_RESP_FAILURE,
    comorbid: &[C_COPD, C_CAP, C_OSA],
    meds: &[&PROPOFOL, &FENTANYL, &METHYLPREDNISOLONE, &ALBUTEROL, &HEPARIN_SUBCUT],
    admit: v(118.0, 148.0, 88.0, 38.2, 32.0, 84.0),
    now: v(92.0, 124.0, 70.0, 37.4, 18.0, 94.0),
    labs: &[(Lab::Wbc, 14.8, 12.2), (Lab::Glucose, 176.0, 168.0)],
    admit_tests: &[],
    repeat: &[Panel::Bmp, Panel::Cbc],
    pending: &[],
    chief_complaint: "Severe breathlessness and drowsiness.",
    hpi: "COPD with 2 days of increasing dyspnea, drowsy on arrival. Arterial gas pH 7.21, pCO2 88 mmHg. Failed 2 hours of BiPAP; intubated in the ED.",
    exam: "Intubated and sedated (RASS -2), poor air entry with wheeze on both sides.",
    plan: "1. Acute hypercapnic respiratory failure from COPD exacerbation: lung-protective ventilation with a long expiratory time; propofol and fentanyl sedation with a daily awakening trial.\n2. Systemic steroids and scheduled bronchodilators.",
    subjective: "Passed a spontaneous breathing trial this morning.",
    progress: "Respiratory failure improving, pCO2 52 mmHg. Extubate to BiPAP this afternoon; continue methylprednisolone.",
};

static DKA: Profile = Profile {
    key: "dka",
    principal: C_DKA,
    comorbid: &[C_T1DM, C_HYPOTHYROID, C_DEPRESSION],
    meds: &[&INSULIN_INFUSION, &POTASSIUM_IV, &INSULIN_GLARGINE, &HEPARIN_SUBCUT, &ONDANSETRON],
    admit: v(124.0, 108.0, 64.0, 37.2, 30.0, 99.0),
    now: v(88.0, 118.0, 72.0, 36.9, 16.0, 99.0),
    labs: &[
        (Lab::Glucose, 468.0, 182.0),
        (Lab::Potassium, 5.4, 3.9),
        (Lab::Sodium, 129.0, 137.0),
        (Lab::Creatinine, 1.7, 1.0),
    ],
    admit_tests: &[],
    repeat: &[Panel::Bmp],
    pending: &[Panel::Bmp],
    chief_complaint: "Vomiting, abdominal pain and very high glucose readings.",
    hpi: "Type 1 diabetes on an insulin pump; infusion site failed 36 hours ago and basal insulin was missed. pH 7.08, bicarbonate 7 mmol/L, anion gap 28, beta-hydroxybutyrate 6.4 mmol/L.",
    exam: "Kussmaul breathing, dry mucous membranes, diffuse abdominal tenderness without guarding.",
    plan: "1. Severe DKA: insulin infusion 0.1 units/kg/h per protocol, dextrose when glucose falls below 250 mg/dL, potassium replacement to keep K 4-5.\n2. Hourly glucose; BMP every 2 hours until the anion gap closes.",
    subjective: "Eating breakfast, no vomiting.",
    progress: "DKA resolved (anion gap 10, bicarbonate 21). Subcutaneous glargine started with a 2-hour overlap before the infusion stops; diabetes educator to review the pump.",
};

static GI_BLEED: Profile = Profile {
    key: "gi-bleed",
    principal: C_UGIB,
    comorbid: &[C_ANEMIA, C_OSTEOARTHRITIS, C_HTN],
    meds: &[&PANTOPRAZOLE_HIGH_DOSE, &ONDANSETRON, &ACETAMINOPHEN],
    admit: v(126.0, 88.0, 52.0, 36.6, 22.0, 97.0),
    now: v(92.0, 114.0, 66.0, 36.8, 18.0, 98.0),
    labs: &[(Lab::Hemoglobin, 6.1, 7.8), (Lab::Creatinine, 1.3, 1.0)],
    admit_tests: &[],
    repeat: &[Panel::Cbc],
    pending: &[Panel::Cbc],
    chief_complaint: "Black stools and lightheadedness.",
    hpi: "Three days of melena and one coffee-ground vomit while taking naproxen daily for knee osteoarthritis. Hemoglobin 6.1 g/dL (baseline 13), BUN 58. Glasgow-Blatchford score 13.",
    exam: "Pale, cool peripheries, melena on rectal examination, epigastric tenderness.",
    plan: "1. Upper GI bleed, likely NSAID peptic ulcer: 2 units packed red cells, high-dose IV pantoprazole, urgent endoscopy.\n2. Stop naproxen; transfuse for Hb below 7 g/dL; antiemetic as needed.",
    subjective: "No further melena; lightheadedness gone.",
    progress: "Endoscopy: 1.5 cm duodenal ulcer with a visible vessel, clipped and injected. Hb 7.8 after 2 units and holding. H. pylori biopsy sent; start diet.",
};

static HYPERKALEMIA: Profile = Profile {
    key: "hyperkalemia",
    principal: C_HYPERKALEMIA,
    comorbid: &[C_AKI, C_CKD, C_T2DM],
    meds: &[&INSULIN_FOR_POTASSIUM, &SODIUM_BICARBONATE, &HEPARIN_SUBCUT, &ACETAMINOPHEN],
    admit: v(54.0, 152.0, 88.0, 36.7, 20.0, 96.0),
    now: v(70.0, 142.0, 82.0, 36.8, 18.0, 97.0),
    labs: &[
        (Lab::Potassium, 6.8, 5.2),
        (Lab::Creatinine, 4.9, 3.6),
        (Lab::Sodium, 134.0, 137.0),
        (Lab::Glucose, 146.0, 132.0),
    ],
    admit_tests: &[],
    repeat: &[Panel::Bmp],
    pending: &[Panel::Bmp],
    chief_complaint: "Weakness and a slow heart rate.",
    hpi: "CKD stage 3b on lisinopril and spironolactone; a week of diarrhea and poor intake. Profound weakness; ECG with peaked T waves, heart rate 48. Potassium 6.8 mmol/L, creatinine 4.9 mg/dL (baseline 1.8).",
    exam: "Bradycardic, dry mucous membranes, no edema.",
    plan: "1. Severe hyperkalemia with ECG changes: calcium gluconate given; insulin with dextrose; sodium bicarbonate infusion; potassium every 2 hours; nephrology aware for dialysis if refractory.\n2. Prerenal AKI on CKD: stop lisinopril and spironolactone; isotonic fluids.",
    subjective: "Feels stronger, no palpitations.",
    progress: "Potassium down to 5.2, creatinine improving (3.6), urine output 1.4 L. Continue fluids; keep ACE inhibitor and spironolactone stopped until renal follow-up.",
};

static OVERDOSE: Profile = Profile {
    key: "overdose",
    principal: C_POISONING,
    comorbid: &[C_DEPRESSION],
    meds: &[&ACETYLCYSTEINE, &ONDANSETRON, &HEPARIN_SUBCUT],
    admit: v(104.0, 118.0, 72.0, 36.9, 18.0, 99.0),
    now: v(82.0, 116.0, 70.0, 36.8, 16.0, 99.0),
    labs: &[(Lab::Potassium, 3.4, 3.9)],
    admit_tests: &[],
    repeat: &[Panel::Bmp],
    pending: &[],
    chief_complaint: "Intentional ingestion of acetaminophen.",
    hpi: "Took about forty 500 mg acetaminophen tablets 6 hours before arrival. The 4-hour acetaminophen level is above the treatment line; transaminases normal at presentation.",
    exam: "Alert, tearful, no jaundice, mild right upper quadrant tenderness.",
    plan: "1. Acetaminophen overdose: IV acetylcysteine per the 21-hour protocol; LFTs and INR at the end of the infusion; ondansetron for nausea.\n2. Safety: 1:1 observation; psychiatry consulted.",
    subjective: "Nausea settled. Seen by psychiatry this morning.",
    progress: "Acetylcysteine course complete; ALT peaked at 86 U/L, INR 1.1. Medically fit once LFTs improve; psychiatry recommends inpatient psychiatric admission.",
};

// ---------------------------------------------------------------------------------------------
// The patients
// ---------------------------------------------------------------------------------------------

/// Had a previous admission (an older, finished Encounter).
const PRIOR_STAY: u8 = 1 << 0;
/// Has a chest X-ray ordered and not yet done.
const CHEST_XRAY: u8 = 1 << 1;
const FALL_RISK: u8 = 1 << 2;
const CONTACT_ISOLATION: u8 = 1 << 3;
const DROPLET_ISOLATION: u8 = 1 << 4;
/// Has a restricted psychiatry consultation note.
const PSYCHIATRY_NOTE: u8 = 1 << 5;
/// Has a restricted addiction medicine note.
const ADDICTION_NOTE: u8 = 1 << 6;

struct PatientSeed {
    given: &'static str,
    family: &'static str,
    female: bool,
    age: i32,
    unit: usize,
    attending: &'static str,
    profile: &'static Profile,
    extras: u8,
}

const F: bool = true;
const M: bool = false;

#[allow(clippy::too_many_arguments)]
const fn p(
    given: &'static str,
    family: &'static str,
    female: bool,
    age: i32,
    unit: usize,
    attending: &'static str,
    profile: &'static Profile,
    extras: u8,
) -> PatientSeed {
    PatientSeed {
        given,
        family,
        female,
        age,
        unit,
        attending,
        profile,
        extras,
    }
}

static PATIENTS: [PatientSeed; 40] = [
    // 4 West Medical
    p(
        "Margaret", "O'Brien", F, 84, W4, CHEN, &PNEUMONIA, CHEST_XRAY,
    ),
    p("James", "Whitfield", M, 71, W4, CHEN, &COPD, 0),
    p("Rosa", "Delgado", F, 58, W4, CHEN, &CELLULITIS, PRIOR_STAY),
    p("Harold", "Jensen", M, 88, W4, CHEN, &DELIRIUM, FALL_RISK),
    p("Aisha", "Rahman", F, 34, W4, CHEN, &PYELONEPHRITIS, 0),
    p(
        "Kevin",
        "Doyle",
        M,
        46,
        W4,
        CHEN,
        &ALCOHOL_WITHDRAWAL,
        ADDICTION_NOTE,
    ),
    p("Dorothy", "Kowalski", F, 77, W4, CHEN, &HYPOGLYCEMIA, 0),
    p(
        "Wei",
        "Zhang",
        M,
        63,
        W4,
        CHEN,
        &C_DIFFICILE,
        CONTACT_ISOLATION,
    ),
    p(
        "Tamika",
        "Johnson",
        F,
        29,
        W4,
        CHEN,
        &INFLUENZA,
        DROPLET_ISOLATION,
    ),
    p("Ricardo", "Alvarez", M, 52, W4, CHEN, &PANCREATITIS, 0),
    p("Emily", "Carter", F, 19, W4, CHEN, &PULMONARY_EMBOLISM, 0),
    p("George", "Papadopoulos", M, 69, W4, CHEN, &PNEUMONIA, 0),
    p(
        "Helen",
        "Fitzgerald",
        F,
        94,
        W4,
        HADDAD,
        &DELIRIUM,
        FALL_RISK,
    ),
    p("Daniel", "Mbeki", M, 60, W4, HADDAD, &COPD, 0),
    // 5 East Cardiac
    p(
        "Robert",
        "Sullivan",
        M,
        74,
        E5,
        OKAFOR,
        &HEART_FAILURE,
        PRIOR_STAY,
    ),
    p("Patricia", "Moore", F, 81, E5, OKAFOR, &HEART_FAILURE, 0),
    p("Anthony", "Russo", M, 61, E5, OKAFOR, &NSTEMI, 0),
    p(
        "Mei Lin",
        "Wong",
        F,
        68,
        E5,
        OKAFOR,
        &ATRIAL_FIBRILLATION,
        0,
    ),
    p("Charles", "Washington", M, 56, E5, OKAFOR, &CHEST_PAIN, 0),
    p("Linda", "Schmidt", F, 79, E5, OKAFOR, &SYNCOPE, 0),
    p("Jorge", "Ramirez", M, 66, E5, OKAFOR, &HEART_FAILURE, 0),
    p(
        "Susan",
        "Park",
        F,
        72,
        E5,
        OKAFOR,
        &ATRIAL_FIBRILLATION,
        PRIOR_STAY,
    ),
    p("Michael", "Thompson", M, 48, E5, OKAFOR, &CHEST_PAIN, 0),
    p("Fatima", "Siddiqui", F, 59, E5, OKAFOR, &HEART_FAILURE, 0),
    p("William", "Brennan", M, 90, E5, OKAFOR, &SYNCOPE, 0),
    p(
        "Grace",
        "Adeyemi",
        F,
        64,
        E5,
        OKAFOR,
        &ATRIAL_FIBRILLATION,
        0,
    ),
    p("Frank", "Novak", M, 53, E5, HADDAD, &CHEST_PAIN, 0),
    // Medical ICU
    p("Barbara", "Hughes", F, 67, ICU, CHEN, &SEPTIC_SHOCK, 0),
    p("David", "Kim", M, 23, ICU, CHEN, &DKA, 0),
    p(
        "Joseph",
        "Martinelli",
        M,
        70,
        ICU,
        CHEN,
        &RESPIRATORY_FAILURE,
        0,
    ),
    p("Sandra", "Bishop", F, 62, ICU, CHEN, &GI_BLEED, PRIOR_STAY),
    p("Raymond", "Foster", M, 76, ICU, CHEN, &HYPERKALEMIA, 0),
    p(
        "Chloe",
        "Bennett",
        F,
        26,
        ICU,
        CHEN,
        &OVERDOSE,
        PSYCHIATRY_NOTE,
    ),
    p("Ahmed", "Hassan", M, 58, ICU, CHEN, &SEPSIS, 0),
    p("Nancy", "Leblanc", F, 83, ICU, CHEN, &SEPSIS, 0),
    p(
        "Victor",
        "Petrov",
        M,
        64,
        ICU,
        CHEN,
        &RESPIRATORY_FAILURE,
        PRIOR_STAY,
    ),
    p("Keisha", "Robinson", F, 31, ICU, CHEN, &DKA, 0),
    p("Paul", "Andersen", M, 57, ICU, CHEN, &SUBMASSIVE_PE, 0),
    p("Yolanda", "Ortiz", F, 73, ICU, LINDQVIST, &SEPSIS, 0),
    p(
        "Henry",
        "Tanaka",
        M,
        80,
        ICU,
        LINDQVIST,
        &RESPIRATORY_FAILURE,
        0,
    ),
];

struct Allergen {
    system: &'static str,
    code: Code,
    category: &'static str,
    kind: &'static str,
    criticality: &'static str,
    reaction: Code,
    severity: &'static str,
}

static ALLERGENS: &[Allergen] = &[
    Allergen {
        system: SNOMED,
        code: ("764146007", "Penicillin"),
        category: "medication",
        kind: "allergy",
        criticality: "high",
        reaction: ("126485001", "Urticaria"),
        severity: "moderate",
    },
    Allergen {
        system: SNOMED,
        code: ("387406002", "Sulfonamide"),
        category: "medication",
        kind: "allergy",
        criticality: "low",
        reaction: ("271807003", "Eruption of skin"),
        severity: "mild",
    },
    Allergen {
        system: RXNORM,
        code: ("2670", "codeine"),
        category: "medication",
        kind: "intolerance",
        criticality: "low",
        reaction: ("422587007", "Nausea"),
        severity: "mild",
    },
    Allergen {
        system: RXNORM,
        code: ("7052", "morphine"),
        category: "medication",
        kind: "intolerance",
        criticality: "low",
        reaction: ("418290006", "Itching"),
        severity: "mild",
    },
    Allergen {
        system: SNOMED,
        code: ("111088007", "Latex"),
        category: "environment",
        kind: "allergy",
        criticality: "high",
        reaction: ("126485001", "Urticaria"),
        severity: "moderate",
    },
    Allergen {
        system: SNOMED,
        code: ("762952008", "Peanut"),
        category: "food",
        kind: "allergy",
        criticality: "high",
        reaction: ("39579001", "Anaphylaxis"),
        severity: "severe",
    },
    Allergen {
        system: RXNORM,
        code: ("29046", "lisinopril"),
        category: "medication",
        kind: "allergy",
        criticality: "high",
        reaction: ("41291007", "Angioedema"),
        severity: "severe",
    },
    Allergen {
        system: RXNORM,
        code: ("1191", "aspirin"),
        category: "medication",
        kind: "allergy",
        criticality: "low",
        reaction: ("56018004", "Wheezing"),
        severity: "moderate",
    },
    Allergen {
        system: SNOMED,
        code: ("102263004", "Eggs (edible)"),
        category: "food",
        kind: "allergy",
        criticality: "low",
        reaction: ("126485001", "Urticaria"),
        severity: "mild",
    },
    Allergen {
        system: SNOMED,
        code: ("288328004", "Bee venom"),
        category: "environment",
        kind: "allergy",
        criticality: "high",
        reaction: ("39579001", "Anaphylaxis"),
        severity: "severe",
    },
];

const PSYCHIATRY_TEXT: &str = "PSYCHIATRY CONSULTATION - RESTRICTED

Reason for consultation: intentional acetaminophen overdose.

History: Low mood for 4 months after losing her job, with poor sleep, loss of appetite and withdrawal from friends. Took the tablets alone after an argument with her partner and texted her sister an hour later. No previous attempts. Drinks socially, no drug use. Father treated for depression.

Mental state: Tearful, good rapport, speech normal, mood low, no psychotic features. Regrets surviving at times; no current plan. Insight partial.

Assessment: Major depressive episode, moderate to severe, with a high-lethality attempt. Suicide risk currently high.

Plan: Continue 1:1 observation while on the medical unit. Start sertraline 50 mg once medically cleared. Recommend voluntary psychiatric admission; she is considering it. Share only with the treating team.

Dr. Imani Wallace, Psychiatry";

const ADDICTION_TEXT: &str = "ADDICTION MEDICINE CONSULTATION - RESTRICTED

Reason for consultation: alcohol use disorder, patient requesting help.

History: Daily drinking for 12 years, about a fifth of vodka a day for the last year. Two previous detoxifications; one withdrawal seizure. AUDIT score 31. Drinks alone in the mornings to stop the shakes. Lost his driving license last year. No other substances apart from tobacco.

Assessment: Severe alcohol use disorder, in early withdrawal, motivated for treatment.

Plan: Complete the withdrawal protocol. Start naltrexone 50 mg daily once LFTs reviewed. Referral to the outpatient intensive program; peer recovery coach to visit before discharge. Information in this note is protected under 42 CFR Part 2 and must not be redisclosed.

Dr. Imani Wallace, Addiction Medicine";

// ---------------------------------------------------------------------------------------------
// Generation
// ---------------------------------------------------------------------------------------------

/// How far back the vital-sign chart goes.
const VITALS_WINDOW_MIN: i64 = 5 * 24 * 60;

/// Patients (1-based index) whose newest prescription is not yet verified by pharmacy.
fn has_unverified_order(n: usize) -> bool {
    n % 5 == 2
}

#[derive(Clone, Copy)]
enum Sec {
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
struct Sections([Vec<Value>; SECTION_COUNT]);

impl Sections {
    fn push(&mut self, sec: Sec, resource: Value) {
        if let Some(list) = self.0.get_mut(sec as usize) {
            list.push(resource);
        }
    }

    fn into_ordered(self) -> Vec<Value> {
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
struct Clock {
    anchor: DateTime<Utc>,
    minute_of_day: i64,
}

impl Clock {
    fn new(anchor: DateTime<Utc>) -> Self {
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

/// Standard base64 with padding, for attachment data.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let byte = |i: usize| u32::from(chunk.get(i).copied().unwrap_or(0));
        let n = (byte(0) << 16) | (byte(1) << 8) | byte(2);
        for i in 0..4 {
            if i <= chunk.len() {
                let index = ((n >> (18 - 6 * i)) & 63) as usize;
                out.push(char::from(ALPHABET[index]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn practitioner(s: &Staff) -> Value {
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

fn unit_location(unit: &Unit) -> Value {
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

fn bed_location(unit: &Unit, bed: usize, occupied: bool) -> Value {
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

fn add_patient(
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
                "data": base64(text.as_bytes()),
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

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
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

    #[test]
    fn base64_matches_known_vectors() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"M"), "TQ==");
        assert_eq!(base64(b"Ma"), "TWE=");
        assert_eq!(base64(b"Man"), "TWFu");
        assert_eq!(
            base64(b"any carnal pleasure."),
            "YW55IGNhcm5hbCBwbGVhc3VyZS4="
        );
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
