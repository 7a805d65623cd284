//! Codes and terminology of the demo data: the code systems, the SNOMED CT conditions and routes,
//! the medicines with their RxNorm codes and dosing, and the laboratory tests with their LOINC
//! codes, units and reference ranges.
//!
//! A leaf: it knows nothing of patients or of how resources are built from these codes.

// ---------------------------------------------------------------------------------------------
// Code systems
// ---------------------------------------------------------------------------------------------

pub(super) const SNOMED: &str = "http://snomed.info/sct";
pub(super) const LOINC: &str = "http://loinc.org";
pub(super) const RXNORM: &str = "http://www.nlm.nih.gov/research/umls/rxnorm";
pub(super) const UCUM: &str = "http://unitsofmeasure.org";
pub(super) const MRN_SYSTEM: &str = "http://rounds.example.org/fhir/mrn";
pub(super) const STAFF_ID_SYSTEM: &str = "http://rounds.example.org/fhir/staff-id";
pub(super) const PHYSICAL_TYPE: &str =
    "http://terminology.hl7.org/CodeSystem/location-physical-type";
pub(super) const ACT_CODE: &str = "http://terminology.hl7.org/CodeSystem/v3-ActCode";
pub(super) const ROLE_CODE: &str = "http://terminology.hl7.org/CodeSystem/v3-RoleCode";
pub(super) const PARTICIPATION_TYPE: &str =
    "http://terminology.hl7.org/CodeSystem/v3-ParticipationType";
pub(super) const BED_STATUS: &str = "http://terminology.hl7.org/CodeSystem/v2-0116";
pub(super) const IDENTIFIER_TYPE: &str = "http://terminology.hl7.org/CodeSystem/v2-0203";
pub(super) const DEGREE: &str = "http://terminology.hl7.org/CodeSystem/v2-0360";
pub(super) const ADMIT_SOURCE: &str = "http://terminology.hl7.org/CodeSystem/admit-source";
pub(super) const DISCHARGE_DISPOSITION: &str =
    "http://terminology.hl7.org/CodeSystem/discharge-disposition";
pub(super) const CONDITION_CLINICAL: &str =
    "http://terminology.hl7.org/CodeSystem/condition-clinical";
pub(super) const CONDITION_VERIFICATION: &str =
    "http://terminology.hl7.org/CodeSystem/condition-ver-status";
pub(super) const CONDITION_CATEGORY: &str =
    "http://terminology.hl7.org/CodeSystem/condition-category";
pub(super) const ALLERGY_CLINICAL: &str =
    "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical";
pub(super) const ALLERGY_VERIFICATION: &str =
    "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification";
pub(super) const MED_REQUEST_CATEGORY: &str =
    "http://terminology.hl7.org/CodeSystem/medicationrequest-category";
pub(super) const TASK_CODE: &str = "http://hl7.org/fhir/CodeSystem/task-code";
pub(super) const OBSERVATION_CATEGORY: &str =
    "http://terminology.hl7.org/CodeSystem/observation-category";
pub(super) const INTERPRETATION: &str =
    "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation";
pub(super) const DIAGNOSTIC_SERVICE: &str = "http://terminology.hl7.org/CodeSystem/v2-0074";
pub(super) const NOTE_CATEGORY: &str =
    "http://hl7.org/fhir/us/core/CodeSystem/us-core-documentreference-category";
pub(super) const CONFIDENTIALITY: &str = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality";
pub(super) const FLAG_CATEGORY: &str = "http://terminology.hl7.org/CodeSystem/flag-category";

pub(super) const PROBLEM_LIST_ITEM: Code = ("problem-list-item", "Problem List Item");
pub(super) const BP_PANEL: &str = "Blood pressure panel with all children optional";
pub(super) const SPO2_PULSE_OXIMETRY: &str =
    "Oxygen saturation in Arterial blood by Pulse oximetry";

/// A code and its display.
pub(super) type Code = (&'static str, &'static str);

// ---------------------------------------------------------------------------------------------
// Terminology used by the clinical profiles
// ---------------------------------------------------------------------------------------------

pub(super) const C_CAP: Code = ("385093006", "Community acquired pneumonia");
pub(super) const C_COPD: Code = ("13645005", "Chronic obstructive lung disease");
pub(super) const C_AECOPD: Code = (
    "195951007",
    "Acute exacerbation of chronic obstructive airways disease",
);
pub(super) const C_CELLULITIS: Code = ("128045006", "Cellulitis");
pub(super) const C_PYELO: Code = ("45816000", "Pyelonephritis");
pub(super) const C_UTI: Code = ("68566005", "Urinary tract infectious disease");
pub(super) const C_ETOH_WITHDRAWAL: Code = ("8635005", "Alcohol withdrawal syndrome");
pub(super) const C_ALCOHOLISM: Code = ("7200002", "Alcoholism");
pub(super) const C_HYPOGLYCEMIA: Code = ("302866003", "Hypoglycemia");
pub(super) const C_T2DM: Code = ("44054006", "Diabetes mellitus type 2");
pub(super) const C_T1DM: Code = ("46635009", "Diabetes mellitus type 1");
pub(super) const C_DKA: Code = ("420422005", "Ketoacidosis due to diabetes mellitus");
pub(super) const C_CDIFF: Code = ("186431008", "Clostridioides difficile infection");
pub(super) const C_DELIRIUM: Code = ("2776000", "Delirium");
pub(super) const C_DEMENTIA: Code = ("52448006", "Dementia");
pub(super) const C_PANCREATITIS: Code = ("197456007", "Acute pancreatitis");
pub(super) const C_PE: Code = ("59282003", "Pulmonary embolism");
pub(super) const C_DVT: Code = ("128053003", "Deep venous thrombosis");
pub(super) const C_FLU: Code = ("6142004", "Influenza");
pub(super) const C_HTN: Code = ("38341003", "Hypertensive disorder, systemic arterial");
pub(super) const C_HLD: Code = ("55822004", "Hyperlipidemia");
pub(super) const C_CHF: Code = ("42343007", "Congestive heart failure");
pub(super) const C_NSTEMI: Code = (
    "401314000",
    "Acute non-ST segment elevation myocardial infarction",
);
pub(super) const C_CAD: Code = ("53741008", "Coronary arteriosclerosis");
pub(super) const C_AFIB: Code = ("49436004", "Atrial fibrillation");
pub(super) const C_CHEST_PAIN: Code = ("29857009", "Chest pain");
pub(super) const C_SYNCOPE: Code = ("271594007", "Syncope");
pub(super) const C_CKD: Code = ("709044004", "Chronic kidney disease");
pub(super) const C_AKI: Code = ("14669001", "Acute renal failure syndrome");
pub(super) const C_HYPERKALEMIA: Code = ("14140009", "Hyperkalemia");
pub(super) const C_SEPSIS: Code = ("91302008", "Sepsis");
pub(super) const C_SEPTIC_SHOCK: Code = ("76571007", "Septic shock");
pub(super) const C_RESP_FAILURE: Code = ("65710008", "Acute respiratory failure");
pub(super) const C_UGIB: Code = ("37372002", "Upper gastrointestinal hemorrhage");
pub(super) const C_POISONING: Code = ("75478009", "Poisoning by drug AND/OR medicinal substance");
pub(super) const C_DEPRESSION: Code = ("35489007", "Depressive disorder");
pub(super) const C_OSA: Code = ("78275009", "Obstructive sleep apnea syndrome");
pub(super) const C_OBESITY: Code = ("414916001", "Obesity");
pub(super) const C_HYPOTHYROID: Code = ("40930008", "Hypothyroidism");
pub(super) const C_ANEMIA: Code = ("271737000", "Anemia");
pub(super) const C_ASTHMA: Code = ("195967001", "Asthma");
pub(super) const C_AORTIC_STENOSIS: Code = ("60573004", "Aortic valve stenosis");
pub(super) const C_GERD: Code = ("235595009", "Gastroesophageal reflux disease");
pub(super) const C_OSTEOARTHRITIS: Code = ("396275006", "Osteoarthritis");

pub(super) const ORAL: Code = ("26643006", "Oral route");
pub(super) const IV: Code = ("47625008", "Intravenous route");
pub(super) const SUBCUT: Code = ("34206005", "Subcutaneous route");
pub(super) const INHALED: Code = ("447694001", "Respiratory tract route");

#[derive(Clone, Copy)]
pub(super) enum Timing {
    /// Every n hours.
    Every(u32),
    /// n times a day.
    Daily(u32),
    /// A running infusion, titrated as the text says.
    Continuous,
}

/// A formulary entry: one orderable medication with its usual inpatient sig.
pub(super) struct Med {
    pub(super) rxnorm: &'static str,
    /// RxNorm ingredient name.
    pub(super) ingredient: &'static str,
    /// What the order list shows.
    pub(super) text: &'static str,
    pub(super) sig: &'static str,
    pub(super) dose: Option<(f64, &'static str, &'static str)>,
    pub(super) timing: Timing,
    /// As-needed reason, for PRN orders.
    pub(super) prn: Option<&'static str>,
    pub(super) route: Code,
    /// Quantity handed over per dispense.
    pub(super) dispense: (u32, &'static str),
}

pub(super) const CEFTRIAXONE: Med = Med {
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
pub(super) const AZITHROMYCIN: Med = Med {
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
pub(super) const CEFAZOLIN: Med = Med {
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
pub(super) const CEFEPIME: Med = Med {
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
pub(super) const PIPERACILLIN_TAZOBACTAM: Med = Med {
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
pub(super) const VANCOMYCIN_IV: Med = Med {
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
pub(super) const VANCOMYCIN_ORAL: Med = Med {
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
pub(super) const OSELTAMIVIR: Med = Med {
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
pub(super) const ENOXAPARIN_PROPHYLAXIS: Med = Med {
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
pub(super) const ENOXAPARIN_TREATMENT: Med = Med {
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
pub(super) const HEPARIN_SUBCUT: Med = Med {
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
pub(super) const HEPARIN_INFUSION: Med = Med {
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
pub(super) const FUROSEMIDE_IV: Med = Med {
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
pub(super) const CARVEDILOL: Med = Med {
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
pub(super) const METOPROLOL: Med = Med {
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
pub(super) const SPIRONOLACTONE: Med = Med {
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
pub(super) const ATORVASTATIN: Med = Med {
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
pub(super) const ASPIRIN: Med = Med {
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
pub(super) const CLOPIDOGREL: Med = Med {
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
pub(super) const APIXABAN: Med = Med {
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
pub(super) const DILTIAZEM: Med = Med {
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
pub(super) const INSULIN_GLARGINE: Med = Med {
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
pub(super) const INSULIN_LISPRO: Med = Med {
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
pub(super) const INSULIN_INFUSION: Med = Med {
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
pub(super) const INSULIN_FOR_POTASSIUM: Med = Med {
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
pub(super) const POTASSIUM_IV: Med = Med {
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
pub(super) const POTASSIUM_ORAL: Med = Med {
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
pub(super) const DEXTROSE_INFUSION: Med = Med {
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
pub(super) const SODIUM_BICARBONATE: Med = Med {
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
pub(super) const PANTOPRAZOLE_IV: Med = Med {
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
pub(super) const PANTOPRAZOLE_HIGH_DOSE: Med = Med {
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
pub(super) const PANTOPRAZOLE_ORAL: Med = Med {
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
pub(super) const ONDANSETRON: Med = Med {
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
pub(super) const ACETAMINOPHEN: Med = Med {
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
pub(super) const OXYCODONE: Med = Med {
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
pub(super) const HYDROMORPHONE: Med = Med {
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
pub(super) const PREDNISONE: Med = Med {
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
pub(super) const METHYLPREDNISOLONE: Med = Med {
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
pub(super) const ALBUTEROL: Med = Med {
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
pub(super) const IPRATROPIUM: Med = Med {
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
pub(super) const LORAZEPAM: Med = Med {
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
pub(super) const THIAMINE: Med = Med {
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
pub(super) const FOLIC_ACID: Med = Med {
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
pub(super) const QUETIAPINE: Med = Med {
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
pub(super) const DONEPEZIL: Med = Med {
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
pub(super) const NOREPINEPHRINE: Med = Med {
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
pub(super) const PROPOFOL: Med = Med {
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
pub(super) const FENTANYL: Med = Med {
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
pub(super) const ACETYLCYSTEINE: Med = Med {
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
pub(super) enum Lab {
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

pub(super) const LAB_COUNT: usize = 13;
pub(super) const ALL_LABS: [Lab; LAB_COUNT] = [
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

pub(super) struct LabInfo {
    pub(super) key: &'static str,
    pub(super) short: &'static str,
    pub(super) loinc: &'static str,
    pub(super) display: &'static str,
    pub(super) unit: &'static str,
    pub(super) ucum: &'static str,
    pub(super) low: Option<f64>,
    pub(super) high: Option<f64>,
    pub(super) critical_low: Option<f64>,
    pub(super) critical_high: Option<f64>,
    pub(super) decimals: u32,
    /// A well patient's usual value and how far it wanders.
    pub(super) typical: f64,
    pub(super) spread: f64,
}

impl Lab {
    pub(super) fn info(self) -> LabInfo {
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
    pub(super) fn range(self, female: bool) -> (Option<f64>, Option<f64>) {
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
    pub(super) fn interpret(self, female: bool, value: f64) -> Code {
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
pub(super) enum Panel {
    Cbc,
    Bmp,
    Lipid,
    Troponin,
    Lactate,
    ChestXray,
}

impl Panel {
    /// LOINC code, display, short name, analytes.
    pub(super) fn info(self) -> (&'static str, &'static str, &'static str, &'static [Lab]) {
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

    pub(super) fn is_urgent(self) -> bool {
        matches!(self, Panel::Troponin | Panel::Lactate)
    }
}
