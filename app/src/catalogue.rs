//! What a clinician can order from the chart: a small catalogue of lab and imaging orders and a
//! small formulary, with the codes the FHIR resources carry.
//!
//! Where it sits: the Orders tab builds `ServiceRequest`s and `MedicationRequest`s from these entries
//! (see `ui::orders`); nothing else depends on them. The codes are LOINC for orders and RxNorm for
//! medicines, as in the demo data, so orders placed here read like the seeded ones.

/// One orderable test or study.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Orderable {
    /// Short name on the button and in the list.
    pub name: &'static str,
    pub loinc: &'static str,
    pub display: &'static str,
    pub imaging: bool,
}

pub const ORDERS: &[Orderable] = &[
    Orderable {
        name: "CBC",
        loinc: "58410-2",
        display: "CBC panel - Blood by Automated count",
        imaging: false,
    },
    Orderable {
        name: "BMP",
        loinc: "51990-0",
        display: "Basic metabolic panel - Blood",
        imaging: false,
    },
    Orderable {
        name: "Lipid panel",
        loinc: "57698-3",
        display: "Lipid panel with direct LDL - Serum or Plasma",
        imaging: false,
    },
    Orderable {
        name: "Troponin I",
        loinc: "10839-9",
        display: "Troponin I.cardiac [Mass/volume] in Serum or Plasma",
        imaging: false,
    },
    Orderable {
        name: "Lactate",
        loinc: "2524-7",
        display: "Lactate [Moles/volume] in Serum or Plasma",
        imaging: false,
    },
    Orderable {
        name: "Blood cultures",
        loinc: "600-7",
        display: "Bacteria identified in Blood by Culture",
        imaging: false,
    },
    Orderable {
        name: "Chest X-ray",
        loinc: "36643-5",
        display: "XR Chest 2 Views",
        imaging: true,
    },
    Orderable {
        name: "CT head",
        loinc: "30799-1",
        display: "CT Head WO contrast",
        imaging: true,
    },
];

/// One prescribable medicine with its usual order sentence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Medicine {
    pub name: &'static str,
    pub rxnorm: &'static str,
    pub ingredient: &'static str,
    pub sig: &'static str,
}

pub const FORMULARY: &[Medicine] = &[
    Medicine {
        name: "Acetaminophen 650 mg PO",
        rxnorm: "161",
        ingredient: "acetaminophen",
        sig: "650 mg by mouth every 6 hours as needed for pain or fever",
    },
    Medicine {
        name: "Ceftriaxone 1 g IV",
        rxnorm: "2193",
        ingredient: "ceftriaxone",
        sig: "1 g IV every 24 hours",
    },
    Medicine {
        name: "Enoxaparin 40 mg SC",
        rxnorm: "67108",
        ingredient: "enoxaparin",
        sig: "40 mg subcutaneously once daily",
    },
    Medicine {
        name: "Furosemide 40 mg IV",
        rxnorm: "4603",
        ingredient: "furosemide",
        sig: "40 mg IV twice daily",
    },
    Medicine {
        name: "Metoprolol tartrate 25 mg PO",
        rxnorm: "6918",
        ingredient: "metoprolol",
        sig: "25 mg by mouth twice daily",
    },
    Medicine {
        name: "Ondansetron 4 mg IV",
        rxnorm: "26225",
        ingredient: "ondansetron",
        sig: "4 mg IV every 8 hours as needed for nausea",
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_codes_are_unique() {
        let mut names: Vec<&str> = ORDERS.iter().map(|o| o.name).collect();
        names.extend(FORMULARY.iter().map(|m| m.name));
        let count = names.len();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), count);
        let mut codes: Vec<&str> = ORDERS.iter().map(|o| o.loinc).collect();
        codes.sort();
        codes.dedup();
        assert_eq!(codes.len(), ORDERS.len());
    }
}
