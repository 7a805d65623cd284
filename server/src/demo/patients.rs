//! Who is in the demo: the staff and the units, the clinical profiles (what brought a patient in and
//! everything that follows from it), the forty patients and the allergens they may have.
//!
//! Data only, written with the codes of [`super::codes`]; [`super::builders`] makes resources of it.

use super::codes::*;

// ---------------------------------------------------------------------------------------------
// Staff and units
// ---------------------------------------------------------------------------------------------

pub(super) struct Staff {
    pub(super) id: &'static str,
    pub(super) prefix: &'static str,
    pub(super) given: &'static str,
    pub(super) family: &'static str,
    /// Degree code from v2-0360 (also shown after the name), or "" for none.
    pub(super) degree: Code,
}

pub(super) const CHEN: &str = "pr-chen";
pub(super) const OKAFOR: &str = "pr-okafor";
pub(super) const HADDAD: &str = "pr-haddad";
pub(super) const LINDQVIST: &str = "pr-lindqvist";
pub(super) const WALLACE: &str = "pr-wallace";
pub(super) const PHARMACIST: &str = "pr-nguyen";

pub(super) const MD: Code = ("MD", "Doctor of Medicine");
pub(super) const RN: Code = ("RN", "Registered Nurse");

pub(super) static STAFF: &[Staff] = &[
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

pub(super) fn staff_name(id: &str) -> String {
    match STAFF.iter().find(|s| s.id == id) {
        Some(s) => display_name(s),
        None => id.to_string(),
    }
}

pub(super) fn display_name(s: &Staff) -> String {
    let mut name = format!("{} {}", s.given, s.family);
    if s.prefix == "Dr." {
        name = format!("Dr. {name}");
    } else if !s.degree.0.is_empty() {
        name = format!("{name} {}", s.degree.0);
    }
    name
}

pub(super) struct Unit {
    pub(super) id: &'static str,
    pub(super) short: &'static str,
    pub(super) name: &'static str,
    pub(super) kind: Code,
    pub(super) description: &'static str,
    pub(super) beds: usize,
    /// The unit's day nurse, who joins every care team on the unit.
    pub(super) nurse: &'static str,
    /// Vital signs are charted every this many hours ...
    pub(super) vitals_every_h: i64,
    /// ... at clock hours congruent to this.
    pub(super) vitals_phase_h: i64,
}

pub(super) const W4: usize = 0;
pub(super) const E5: usize = 1;
pub(super) const ICU: usize = 2;

pub(super) static UNITS: [Unit; 3] = [
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
// Clinical profiles: what brought the patient in, and everything that follows from it
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy)]
pub(super) struct Vitals {
    pub(super) hr: f64,
    pub(super) sbp: f64,
    pub(super) dbp: f64,
    pub(super) temp: f64,
    pub(super) rr: f64,
    pub(super) spo2: f64,
}

pub(super) const fn v(hr: f64, sbp: f64, dbp: f64, temp: f64, rr: f64, spo2: f64) -> Vitals {
    Vitals {
        hr,
        sbp,
        dbp,
        temp,
        rr,
        spo2,
    }
}

pub(super) struct Profile {
    pub(super) key: &'static str,
    pub(super) principal: Code,
    /// Chronic problems, most typical first; a patient has the first 0-3.
    pub(super) comorbid: &'static [Code],
    /// The first two are always ordered (the plan text names only those).
    pub(super) meds: &'static [&'static Med],
    /// Vital signs on arrival and now; the chart moves between them.
    pub(super) admit: Vitals,
    pub(super) now: Vitals,
    /// Lab values on admission and on the latest draw, where they differ from the patient's norm.
    pub(super) labs: &'static [(Lab, f64, f64)],
    /// Tests drawn on admission besides CBC and BMP.
    pub(super) admit_tests: &'static [Panel],
    /// Drawn at 05:00 each morning.
    pub(super) repeat: &'static [Panel],
    /// Ordered recently, no result yet.
    pub(super) pending: &'static [Panel],
    pub(super) chief_complaint: &'static str,
    pub(super) hpi: &'static str,
    pub(super) exam: &'static str,
    pub(super) plan: &'static str,
    pub(super) subjective: &'static str,
    pub(super) progress: &'static str,
}

pub(super) static PNEUMONIA: Profile = Profile {
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

pub(super) static COPD: Profile = Profile {
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

pub(super) static CELLULITIS: Profile = Profile {
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

pub(super) static PYELONEPHRITIS: Profile = Profile {
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

pub(super) static ALCOHOL_WITHDRAWAL: Profile = Profile {
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

pub(super) static HYPOGLYCEMIA: Profile = Profile {
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

pub(super) static C_DIFFICILE: Profile = Profile {
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

pub(super) static DELIRIUM: Profile = Profile {
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

pub(super) static PANCREATITIS: Profile = Profile {
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

pub(super) static PULMONARY_EMBOLISM: Profile = Profile {
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

pub(super) static SUBMASSIVE_PE: Profile = Profile {
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

pub(super) static INFLUENZA: Profile = Profile {
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

pub(super) static HEART_FAILURE: Profile = Profile {
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

pub(super) static NSTEMI: Profile = Profile {
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

pub(super) static ATRIAL_FIBRILLATION: Profile = Profile {
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

pub(super) static CHEST_PAIN: Profile = Profile {
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

pub(super) static SYNCOPE: Profile = Profile {
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

pub(super) static SEPSIS: Profile = Profile {
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

pub(super) static SEPTIC_SHOCK: Profile = Profile {
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

pub(super) static RESPIRATORY_FAILURE: Profile = Profile {
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

pub(super) static DKA: Profile = Profile {
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

pub(super) static GI_BLEED: Profile = Profile {
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

pub(super) static HYPERKALEMIA: Profile = Profile {
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

pub(super) static OVERDOSE: Profile = Profile {
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
pub(super) const PRIOR_STAY: u8 = 1 << 0;
/// Has a chest X-ray ordered and not yet done.
pub(super) const CHEST_XRAY: u8 = 1 << 1;
pub(super) const FALL_RISK: u8 = 1 << 2;
pub(super) const CONTACT_ISOLATION: u8 = 1 << 3;
pub(super) const DROPLET_ISOLATION: u8 = 1 << 4;
/// Has a restricted psychiatry consultation note.
pub(super) const PSYCHIATRY_NOTE: u8 = 1 << 5;
/// Has a restricted addiction medicine note.
pub(super) const ADDICTION_NOTE: u8 = 1 << 6;

pub(super) struct PatientSeed {
    pub(super) given: &'static str,
    pub(super) family: &'static str,
    pub(super) female: bool,
    pub(super) age: i32,
    pub(super) unit: usize,
    pub(super) attending: &'static str,
    pub(super) profile: &'static Profile,
    pub(super) extras: u8,
}

pub(super) const F: bool = true;
pub(super) const M: bool = false;

#[allow(clippy::too_many_arguments)]
pub(super) const fn p(
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

pub(super) static PATIENTS: [PatientSeed; 40] = [
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

pub(super) struct Allergen {
    pub(super) system: &'static str,
    pub(super) code: Code,
    pub(super) category: &'static str,
    pub(super) kind: &'static str,
    pub(super) criticality: &'static str,
    pub(super) reaction: Code,
    pub(super) severity: &'static str,
}

pub(super) static ALLERGENS: &[Allergen] = &[
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

pub(super) const PSYCHIATRY_TEXT: &str = "PSYCHIATRY CONSULTATION - RESTRICTED

Reason for consultation: intentional acetaminophen overdose.

History: Low mood for 4 months after losing her job, with poor sleep, loss of appetite and withdrawal from friends. Took the tablets alone after an argument with her partner and texted her sister an hour later. No previous attempts. Drinks socially, no drug use. Father treated for depression.

Mental state: Tearful, good rapport, speech normal, mood low, no psychotic features. Regrets surviving at times; no current plan. Insight partial.

Assessment: Major depressive episode, moderate to severe, with a high-lethality attempt. Suicide risk currently high.

Plan: Continue 1:1 observation while on the medical unit. Start sertraline 50 mg once medically cleared. Recommend voluntary psychiatric admission; she is considering it. Share only with the treating team.

Dr. Imani Wallace, Psychiatry";

pub(super) const ADDICTION_TEXT: &str = "ADDICTION MEDICINE CONSULTATION - RESTRICTED

Reason for consultation: alcohol use disorder, patient requesting help.

History: Daily drinking for 12 years, about a fifth of vodka a day for the last year. Two previous detoxifications; one withdrawal seizure. AUDIT score 31. Drinks alone in the mornings to stop the shakes. Lost his driving license last year. No other substances apart from tobacco.

Assessment: Severe alcohol use disorder, in early withdrawal, motivated for treatment.

Plan: Complete the withdrawal protocol. Start naltrexone 50 mg daily once LFTs reviewed. Referral to the outpatient intensive program; peer recovery coach to visit before discharge. Information in this note is protected under 42 CFR Part 2 and must not be redisclosed.

Dr. Imani Wallace, Addiction Medicine";
