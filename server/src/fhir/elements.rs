//! The elements FHIR R4 defines for the resources Rounds hosts and for the datatypes they use:
//! what `validate` checks a body against, so that an element R4 does not know (a typo, a
//! made-up `favouriteColour`) is refused with its path instead of being stored and served back
//! to a strict client.
//!
//! Pure tables and one walk; never panics on input. Each resource lists its own elements (R4
//! `StructureDefinition`s, choice elements `x[x]` spelled out per allowed type); what every
//! resource has (`id`, `meta`, `implicitRules`, `language`, `text`, `contained`, `extension`,
//! `modifierExtension`) and primitive extensions (`_birthDate`) are always known. Complex
//! datatypes and backbone elements are checked inside too; where the table says [`Ty::Open`]
//! (extensions, narrative, contained resources, rarely written backbones) nothing inside is
//! checked.

use serde_json::{Map, Value};

use super::error::Issue;

/// The type of one element, as far as this check needs it.
#[derive(Debug, Clone, Copy)]
pub enum Ty {
    /// A primitive (string, code, dateTime, boolean, …): nothing inside to check.
    P,
    /// A complex datatype or backbone element with these elements.
    T(&'static [El]),
    /// Not checked inside.
    Open,
}

/// One element: its JSON name and type.
pub type El = (&'static str, Ty);

use Ty::{Open, P, T};

/// Known in every element of every type: its id and extensions.
const ALWAYS: &[&str] = &["id", "extension", "modifierExtension"];
/// Known at the top of every resource (Resource and DomainResource).
const RESOURCE: &[&str] = &[
    "resourceType",
    "id",
    "meta",
    "implicitRules",
    "language",
    "text",
    "contained",
    "extension",
    "modifierExtension",
];

// Datatypes (R4 datatypes.html, metadatatypes.html).
const CODING: &[El] = &[
    ("system", P),
    ("version", P),
    ("code", P),
    ("display", P),
    ("userSelected", P),
];
const CONCEPT: Ty = T(&[("coding", T(CODING)), ("text", P)]);
const CODING_T: Ty = T(CODING);
const PERIOD: Ty = T(&[("start", P), ("end", P)]);
const QUANTITY: Ty = T(&[
    ("value", P),
    ("comparator", P),
    ("unit", P),
    ("system", P),
    ("code", P),
]);
const RANGE: Ty = T(&[("low", QUANTITY), ("high", QUANTITY)]);
const RATIO: Ty = T(&[("numerator", QUANTITY), ("denominator", QUANTITY)]);
const IDENTIFIER: Ty = T(&[
    ("use", P),
    ("type", CONCEPT),
    ("system", P),
    ("value", P),
    ("period", PERIOD),
    ("assigner", Open),
]);
const REFERENCE: Ty = T(&[
    ("reference", P),
    ("type", P),
    ("identifier", IDENTIFIER),
    ("display", P),
]);
const HUMAN_NAME: Ty = T(&[
    ("use", P),
    ("text", P),
    ("family", P),
    ("given", P),
    ("prefix", P),
    ("suffix", P),
    ("period", PERIOD),
]);
const CONTACT_POINT: Ty = T(&[
    ("system", P),
    ("value", P),
    ("use", P),
    ("rank", P),
    ("period", PERIOD),
]);
const ADDRESS: Ty = T(&[
    ("use", P),
    ("type", P),
    ("text", P),
    ("line", P),
    ("city", P),
    ("district", P),
    ("state", P),
    ("postalCode", P),
    ("country", P),
    ("period", PERIOD),
]);
const ATTACHMENT: Ty = T(&[
    ("contentType", P),
    ("language", P),
    ("data", P),
    ("url", P),
    ("size", P),
    ("hash", P),
    ("title", P),
    ("creation", P),
]);
const ANNOTATION: Ty = T(&[
    ("authorReference", REFERENCE),
    ("authorString", P),
    ("time", P),
    ("text", P),
]);
const TIMING: Ty = T(&[
    ("event", P),
    (
        "repeat",
        T(&[
            ("boundsDuration", QUANTITY),
            ("boundsRange", RANGE),
            ("boundsPeriod", PERIOD),
            ("count", P),
            ("countMax", P),
            ("duration", P),
            ("durationMax", P),
            ("durationUnit", P),
            ("frequency", P),
            ("frequencyMax", P),
            ("period", P),
            ("periodMax", P),
            ("periodUnit", P),
            ("dayOfWeek", P),
            ("timeOfDay", P),
            ("when", P),
            ("offset", P),
        ]),
    ),
    ("code", CONCEPT),
]);
const DOSAGE: Ty = T(&[
    ("sequence", P),
    ("text", P),
    ("additionalInstruction", CONCEPT),
    ("patientInstruction", P),
    ("timing", TIMING),
    ("asNeededBoolean", P),
    ("asNeededCodeableConcept", CONCEPT),
    ("site", CONCEPT),
    ("route", CONCEPT),
    ("method", CONCEPT),
    (
        "doseAndRate",
        T(&[
            ("type", CONCEPT),
            ("doseRange", RANGE),
            ("doseQuantity", QUANTITY),
            ("rateRatio", RATIO),
            ("rateRange", RANGE),
            ("rateQuantity", QUANTITY),
        ]),
    ),
    ("maxDosePerPeriod", RATIO),
    ("maxDosePerAdministration", QUANTITY),
    ("maxDosePerLifetime", QUANTITY),
]);

/// `onset[x]` / `abatement[x]` of Condition and AllergyIntolerance.
macro_rules! onset {
    ($stem:literal) => {
        [
            (concat!($stem, "DateTime"), P),
            (concat!($stem, "Age"), QUANTITY),
            (concat!($stem, "Period"), PERIOD),
            (concat!($stem, "Range"), RANGE),
            (concat!($stem, "String"), P),
        ]
    };
}

const PATIENT: &[El] = &[
    ("identifier", IDENTIFIER),
    ("active", P),
    ("name", HUMAN_NAME),
    ("telecom", CONTACT_POINT),
    ("gender", P),
    ("birthDate", P),
    ("deceasedBoolean", P),
    ("deceasedDateTime", P),
    ("address", ADDRESS),
    ("maritalStatus", CONCEPT),
    ("multipleBirthBoolean", P),
    ("multipleBirthInteger", P),
    ("photo", ATTACHMENT),
    (
        "contact",
        T(&[
            ("relationship", CONCEPT),
            ("name", HUMAN_NAME),
            ("telecom", CONTACT_POINT),
            ("address", ADDRESS),
            ("gender", P),
            ("organization", REFERENCE),
            ("period", PERIOD),
        ]),
    ),
    (
        "communication",
        T(&[("language", CONCEPT), ("preferred", P)]),
    ),
    ("generalPractitioner", REFERENCE),
    ("managingOrganization", REFERENCE),
    ("link", T(&[("other", REFERENCE), ("type", P)])),
];

const PRACTITIONER: &[El] = &[
    ("identifier", IDENTIFIER),
    ("active", P),
    ("name", HUMAN_NAME),
    ("telecom", CONTACT_POINT),
    ("address", ADDRESS),
    ("gender", P),
    ("birthDate", P),
    ("photo", ATTACHMENT),
    (
        "qualification",
        T(&[
            ("identifier", IDENTIFIER),
            ("code", CONCEPT),
            ("period", PERIOD),
            ("issuer", REFERENCE),
        ]),
    ),
    ("communication", CONCEPT),
];

const LOCATION: &[El] = &[
    ("identifier", IDENTIFIER),
    ("status", P),
    ("operationalStatus", CODING_T),
    ("name", P),
    ("alias", P),
    ("description", P),
    ("mode", P),
    ("type", CONCEPT),
    ("telecom", CONTACT_POINT),
    ("address", ADDRESS),
    ("physicalType", CONCEPT),
    (
        "position",
        T(&[("longitude", P), ("latitude", P), ("altitude", P)]),
    ),
    ("managingOrganization", REFERENCE),
    ("partOf", REFERENCE),
    (
        "hoursOfOperation",
        T(&[
            ("daysOfWeek", P),
            ("allDay", P),
            ("openingTime", P),
            ("closingTime", P),
        ]),
    ),
    ("availabilityExceptions", P),
    ("endpoint", REFERENCE),
];

const ENCOUNTER: &[El] = &[
    ("identifier", IDENTIFIER),
    ("status", P),
    ("statusHistory", T(&[("status", P), ("period", PERIOD)])),
    ("class", CODING_T),
    (
        "classHistory",
        T(&[("class", CODING_T), ("period", PERIOD)]),
    ),
    ("type", CONCEPT),
    ("serviceType", CONCEPT),
    ("priority", CONCEPT),
    ("subject", REFERENCE),
    ("episodeOfCare", REFERENCE),
    ("basedOn", REFERENCE),
    (
        "participant",
        T(&[
            ("type", CONCEPT),
            ("period", PERIOD),
            ("individual", REFERENCE),
        ]),
    ),
    ("appointment", REFERENCE),
    ("period", PERIOD),
    ("length", QUANTITY),
    ("reasonCode", CONCEPT),
    ("reasonReference", REFERENCE),
    (
        "diagnosis",
        T(&[("condition", REFERENCE), ("use", CONCEPT), ("rank", P)]),
    ),
    ("account", REFERENCE),
    (
        "hospitalization",
        T(&[
            ("preAdmissionIdentifier", IDENTIFIER),
            ("origin", REFERENCE),
            ("admitSource", CONCEPT),
            ("reAdmission", CONCEPT),
            ("dietPreference", CONCEPT),
            ("specialCourtesy", CONCEPT),
            ("specialArrangement", CONCEPT),
            ("destination", REFERENCE),
            ("dischargeDisposition", CONCEPT),
        ]),
    ),
    (
        "location",
        T(&[
            ("location", REFERENCE),
            ("status", P),
            ("physicalType", CONCEPT),
            ("period", PERIOD),
        ]),
    ),
    ("serviceProvider", REFERENCE),
    ("partOf", REFERENCE),
];

const CARE_TEAM: &[El] = &[
    ("identifier", IDENTIFIER),
    ("status", P),
    ("category", CONCEPT),
    ("name", P),
    ("subject", REFERENCE),
    ("encounter", REFERENCE),
    ("period", PERIOD),
    (
        "participant",
        T(&[
            ("role", CONCEPT),
            ("member", REFERENCE),
            ("onBehalfOf", REFERENCE),
            ("period", PERIOD),
        ]),
    ),
    ("reasonCode", CONCEPT),
    ("reasonReference", REFERENCE),
    ("managingOrganization", REFERENCE),
    ("telecom", CONTACT_POINT),
    ("note", ANNOTATION),
];

const CONDITION: &[El] = &{
    let head: [El; 10] = [
        ("identifier", IDENTIFIER),
        ("clinicalStatus", CONCEPT),
        ("verificationStatus", CONCEPT),
        ("category", CONCEPT),
        ("severity", CONCEPT),
        ("code", CONCEPT),
        ("bodySite", CONCEPT),
        ("subject", REFERENCE),
        ("encounter", REFERENCE),
        ("recordedDate", P),
    ];
    let tail: [El; 5] = [
        ("recorder", REFERENCE),
        ("asserter", REFERENCE),
        (
            "stage",
            T(&[
                ("summary", CONCEPT),
                ("assessment", REFERENCE),
                ("type", CONCEPT),
            ]),
        ),
        ("evidence", T(&[("code", CONCEPT), ("detail", REFERENCE)])),
        ("note", ANNOTATION),
    ];
    concat_elements::<10, 5, 5, 5, 25>(head, onset!("onset"), onset!("abatement"), tail)
};

const ALLERGY_INTOLERANCE: &[El] = &{
    let head: [El; 14] = [
        ("identifier", IDENTIFIER),
        ("clinicalStatus", CONCEPT),
        ("verificationStatus", CONCEPT),
        ("type", P),
        ("category", P),
        ("criticality", P),
        ("code", CONCEPT),
        ("patient", REFERENCE),
        ("encounter", REFERENCE),
        ("recordedDate", P),
        ("recorder", REFERENCE),
        ("asserter", REFERENCE),
        ("lastOccurrence", P),
        ("note", ANNOTATION),
    ];
    let reaction: [El; 1] = [(
        "reaction",
        T(&[
            ("substance", CONCEPT),
            ("manifestation", CONCEPT),
            ("description", P),
            ("onset", P),
            ("severity", P),
            ("exposureRoute", CONCEPT),
            ("note", ANNOTATION),
        ]),
    )];
    concat_elements::<14, 5, 1, 0, 20>(head, onset!("onset"), reaction, [])
};

const SERVICE_REQUEST: &[El] = &[
    ("identifier", IDENTIFIER),
    ("instantiatesCanonical", P),
    ("instantiatesUri", P),
    ("basedOn", REFERENCE),
    ("replaces", REFERENCE),
    ("requisition", IDENTIFIER),
    ("status", P),
    ("intent", P),
    ("category", CONCEPT),
    ("priority", P),
    ("doNotPerform", P),
    ("code", CONCEPT),
    ("orderDetail", CONCEPT),
    ("quantityQuantity", QUANTITY),
    ("quantityRatio", RATIO),
    ("quantityRange", RANGE),
    ("subject", REFERENCE),
    ("encounter", REFERENCE),
    ("occurrenceDateTime", P),
    ("occurrencePeriod", PERIOD),
    ("occurrenceTiming", TIMING),
    ("asNeededBoolean", P),
    ("asNeededCodeableConcept", CONCEPT),
    ("authoredOn", P),
    ("requester", REFERENCE),
    ("performerType", CONCEPT),
    ("performer", REFERENCE),
    ("locationCode", CONCEPT),
    ("locationReference", REFERENCE),
    ("reasonCode", CONCEPT),
    ("reasonReference", REFERENCE),
    ("insurance", REFERENCE),
    ("supportingInfo", REFERENCE),
    ("specimen", REFERENCE),
    ("bodySite", CONCEPT),
    ("note", ANNOTATION),
    ("patientInstruction", P),
    ("relevantHistory", REFERENCE),
];

const REFERENCE_RANGE: Ty = T(&[
    ("low", QUANTITY),
    ("high", QUANTITY),
    ("type", CONCEPT),
    ("appliesTo", CONCEPT),
    ("age", RANGE),
    ("text", P),
]);

/// `value[x]` of Observation and its components.
macro_rules! observation_value {
    () => {
        [
            ("valueQuantity", QUANTITY),
            ("valueCodeableConcept", CONCEPT),
            ("valueString", P),
            ("valueBoolean", P),
            ("valueInteger", P),
            ("valueRange", RANGE),
            ("valueRatio", RATIO),
            ("valueSampledData", Open),
            ("valueTime", P),
            ("valueDateTime", P),
            ("valuePeriod", PERIOD),
        ]
    };
}

const OBSERVATION_COMPONENT: &[El] = &concat_elements::<1, 11, 3, 0, 15>(
    [("code", CONCEPT)],
    observation_value!(),
    [
        ("dataAbsentReason", CONCEPT),
        ("interpretation", CONCEPT),
        ("referenceRange", REFERENCE_RANGE),
    ],
    [],
);

const OBSERVATION: &[El] = &concat_elements::<14, 11, 12, 0, 37>(
    [
        ("identifier", IDENTIFIER),
        ("basedOn", REFERENCE),
        ("partOf", REFERENCE),
        ("status", P),
        ("category", CONCEPT),
        ("code", CONCEPT),
        ("subject", REFERENCE),
        ("focus", REFERENCE),
        ("encounter", REFERENCE),
        ("effectiveDateTime", P),
        ("effectivePeriod", PERIOD),
        ("effectiveTiming", TIMING),
        ("effectiveInstant", P),
        ("issued", P),
    ],
    observation_value!(),
    [
        ("performer", REFERENCE),
        ("dataAbsentReason", CONCEPT),
        ("interpretation", CONCEPT),
        ("note", ANNOTATION),
        ("bodySite", CONCEPT),
        ("method", CONCEPT),
        ("specimen", REFERENCE),
        ("device", REFERENCE),
        ("referenceRange", REFERENCE_RANGE),
        ("hasMember", REFERENCE),
        ("derivedFrom", REFERENCE),
        ("component", T(OBSERVATION_COMPONENT)),
    ],
    [],
);

const DIAGNOSTIC_REPORT: &[El] = &[
    ("identifier", IDENTIFIER),
    ("basedOn", REFERENCE),
    ("status", P),
    ("category", CONCEPT),
    ("code", CONCEPT),
    ("subject", REFERENCE),
    ("encounter", REFERENCE),
    ("effectiveDateTime", P),
    ("effectivePeriod", PERIOD),
    ("issued", P),
    ("performer", REFERENCE),
    ("resultsInterpreter", REFERENCE),
    ("specimen", REFERENCE),
    ("result", REFERENCE),
    ("imagingStudy", REFERENCE),
    ("media", T(&[("comment", P), ("link", REFERENCE)])),
    ("conclusion", P),
    ("conclusionCode", CONCEPT),
    ("presentedForm", ATTACHMENT),
];

const MEDICATION_REQUEST: &[El] = &[
    ("identifier", IDENTIFIER),
    ("status", P),
    ("statusReason", CONCEPT),
    ("intent", P),
    ("category", CONCEPT),
    ("priority", P),
    ("doNotPerform", P),
    ("reportedBoolean", P),
    ("reportedReference", REFERENCE),
    ("medicationCodeableConcept", CONCEPT),
    ("medicationReference", REFERENCE),
    ("subject", REFERENCE),
    ("encounter", REFERENCE),
    ("supportingInformation", REFERENCE),
    ("authoredOn", P),
    ("requester", REFERENCE),
    ("performer", REFERENCE),
    ("performerType", CONCEPT),
    ("recorder", REFERENCE),
    ("reasonCode", CONCEPT),
    ("reasonReference", REFERENCE),
    ("instantiatesCanonical", P),
    ("instantiatesUri", P),
    ("basedOn", REFERENCE),
    ("groupIdentifier", IDENTIFIER),
    ("courseOfTherapyType", CONCEPT),
    ("insurance", REFERENCE),
    ("note", ANNOTATION),
    ("dosageInstruction", DOSAGE),
    (
        "dispenseRequest",
        T(&[
            (
                "initialFill",
                T(&[("quantity", QUANTITY), ("duration", QUANTITY)]),
            ),
            ("dispenseInterval", QUANTITY),
            ("validityPeriod", PERIOD),
            ("numberOfRepeatsAllowed", P),
            ("quantity", QUANTITY),
            ("expectedSupplyDuration", QUANTITY),
            ("performer", REFERENCE),
        ]),
    ),
    (
        "substitution",
        T(&[
            ("allowedBoolean", P),
            ("allowedCodeableConcept", CONCEPT),
            ("reason", CONCEPT),
        ]),
    ),
    ("priorPrescription", REFERENCE),
    ("detectedIssue", REFERENCE),
    ("eventHistory", REFERENCE),
];

const MEDICATION_DISPENSE: &[El] = &[
    ("identifier", IDENTIFIER),
    ("partOf", REFERENCE),
    ("status", P),
    ("statusReasonCodeableConcept", CONCEPT),
    ("statusReasonReference", REFERENCE),
    ("category", CONCEPT),
    ("medicationCodeableConcept", CONCEPT),
    ("medicationReference", REFERENCE),
    ("subject", REFERENCE),
    ("context", REFERENCE),
    ("supportingInformation", REFERENCE),
    (
        "performer",
        T(&[("function", CONCEPT), ("actor", REFERENCE)]),
    ),
    ("location", REFERENCE),
    ("authorizingPrescription", REFERENCE),
    ("type", CONCEPT),
    ("quantity", QUANTITY),
    ("daysSupply", QUANTITY),
    ("whenPrepared", P),
    ("whenHandedOver", P),
    ("destination", REFERENCE),
    ("receiver", REFERENCE),
    ("note", ANNOTATION),
    ("dosageInstruction", DOSAGE),
    (
        "substitution",
        T(&[
            ("wasSubstituted", P),
            ("type", CONCEPT),
            ("reason", CONCEPT),
            ("responsibleParty", REFERENCE),
        ]),
    ),
    ("detectedIssue", REFERENCE),
    ("eventHistory", REFERENCE),
];

const DOCUMENT_REFERENCE: &[El] = &[
    ("masterIdentifier", IDENTIFIER),
    ("identifier", IDENTIFIER),
    ("status", P),
    ("docStatus", P),
    ("type", CONCEPT),
    ("category", CONCEPT),
    ("subject", REFERENCE),
    ("date", P),
    ("author", REFERENCE),
    ("authenticator", REFERENCE),
    ("custodian", REFERENCE),
    ("relatesTo", T(&[("code", P), ("target", REFERENCE)])),
    ("description", P),
    ("securityLabel", CONCEPT),
    (
        "content",
        T(&[("attachment", ATTACHMENT), ("format", CODING_T)]),
    ),
    (
        "context",
        T(&[
            ("encounter", REFERENCE),
            ("event", CONCEPT),
            ("period", PERIOD),
            ("facilityType", CONCEPT),
            ("practiceSetting", CONCEPT),
            ("sourcePatientInfo", REFERENCE),
            ("related", REFERENCE),
        ]),
    ),
];

const FLAG: &[El] = &[
    ("identifier", IDENTIFIER),
    ("status", P),
    ("category", CONCEPT),
    ("code", CONCEPT),
    ("subject", REFERENCE),
    ("period", PERIOD),
    ("encounter", REFERENCE),
    ("author", REFERENCE),
];

/// Task.input / Task.output: a type and a `value[x]` of any datatype (not checked inside).
const TASK_PARAMETER: Ty = Open;

const TASK: &[El] = &[
    ("identifier", IDENTIFIER),
    ("instantiatesCanonical", P),
    ("instantiatesUri", P),
    ("basedOn", REFERENCE),
    ("groupIdentifier", IDENTIFIER),
    ("partOf", REFERENCE),
    ("status", P),
    ("statusReason", CONCEPT),
    ("businessStatus", CONCEPT),
    ("intent", P),
    ("priority", P),
    ("code", CONCEPT),
    ("description", P),
    ("focus", REFERENCE),
    ("for", REFERENCE),
    ("encounter", REFERENCE),
    ("executionPeriod", PERIOD),
    ("authoredOn", P),
    ("lastModified", P),
    ("requester", REFERENCE),
    ("performerType", CONCEPT),
    ("owner", REFERENCE),
    ("location", REFERENCE),
    ("reasonCode", CONCEPT),
    ("reasonReference", REFERENCE),
    ("insurance", REFERENCE),
    ("note", ANNOTATION),
    ("relevantHistory", REFERENCE),
    (
        "restriction",
        T(&[
            ("repetitions", P),
            ("period", PERIOD),
            ("recipient", REFERENCE),
        ]),
    ),
    ("input", TASK_PARAMETER),
    ("output", TASK_PARAMETER),
];

const SUBSCRIPTION: &[El] = &[
    ("status", P),
    ("contact", CONTACT_POINT),
    ("end", P),
    ("reason", P),
    ("criteria", P),
    ("error", P),
    (
        "channel",
        T(&[("type", P), ("endpoint", P), ("payload", P), ("header", P)]),
    ),
];

/// The elements of `resource_type` (None: not one of ours, or only written by the server).
pub fn elements_of(resource_type: &str) -> Option<&'static [El]> {
    Some(match resource_type {
        "Patient" => PATIENT,
        "Practitioner" => PRACTITIONER,
        "Location" => LOCATION,
        "Encounter" => ENCOUNTER,
        "CareTeam" => CARE_TEAM,
        "Condition" => CONDITION,
        "AllergyIntolerance" => ALLERGY_INTOLERANCE,
        "ServiceRequest" => SERVICE_REQUEST,
        "Observation" => OBSERVATION,
        "DiagnosticReport" => DIAGNOSTIC_REPORT,
        "MedicationRequest" => MEDICATION_REQUEST,
        "MedicationDispense" => MEDICATION_DISPENSE,
        "DocumentReference" => DOCUMENT_REFERENCE,
        "Flag" => FLAG,
        "Task" => TASK,
        "Subscription" => SUBSCRIPTION,
        _ => return None,
    })
}

/// At most this many unknown elements are reported for one body.
const MAX_REPORTED: usize = 20;

/// Every element of `body` that R4 does not define for `resource_type`, each an issue whose
/// expression is its path (`Patient.favouriteColour`, `Patient.name[0].nickname`).
pub fn unknown_elements(resource_type: &str, body: &Value) -> Vec<Issue> {
    let mut issues = Vec::new();
    if let (Some(elements), Value::Object(map)) = (elements_of(resource_type), body) {
        walk(
            map,
            elements,
            RESOURCE,
            resource_type,
            resource_type,
            &mut issues,
        );
    }
    issues
}

fn walk(
    map: &Map<String, Value>,
    elements: &[El],
    always: &[&str],
    path: &str,
    resource_type: &str,
    issues: &mut Vec<Issue>,
) {
    for (key, child) in map {
        if issues.len() >= MAX_REPORTED {
            return;
        }
        // `_name` carries the id and extensions of the primitive `name`.
        if key.starts_with('_') || always.contains(&key.as_str()) {
            continue;
        }
        let here = format!("{path}.{key}");
        match elements.iter().find(|(name, _)| name == key) {
            None => issues.push(Issue::new(
                "structure",
                format!("{here} is not an element FHIR R4 defines for {resource_type}"),
                Some(&here),
            )),
            Some((_, T(inner))) => match child {
                Value::Object(map) => walk(map, inner, ALWAYS, &here, resource_type, issues),
                Value::Array(items) => {
                    for (i, item) in items.iter().enumerate() {
                        if let Value::Object(map) = item {
                            let here = format!("{here}[{i}]");
                            walk(map, inner, ALWAYS, &here, resource_type, issues);
                        }
                    }
                }
                _ => {}
            },
            Some((_, P | Open)) => {}
        }
    }
}

/// Joins four element lists into one (a const fn: the tables stay `const`).
const fn concat_elements<
    const A: usize,
    const B: usize,
    const C: usize,
    const D: usize,
    const N: usize,
>(
    a: [El; A],
    b: [El; B],
    c: [El; C],
    d: [El; D],
) -> [El; N] {
    assert!(A + B + C + D == N);
    let mut out: [El; N] = [("", P); N];
    let mut i = 0;
    while i < A {
        out[i] = a[i];
        i += 1;
    }
    let mut j = 0;
    while j < B {
        out[A + j] = b[j];
        j += 1;
    }
    let mut k = 0;
    while k < C {
        out[A + B + k] = c[k];
        k += 1;
    }
    let mut l = 0;
    while l < D {
        out[A + B + C + l] = d[l];
        l += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn paths(resource_type: &str, body: &Value) -> Vec<String> {
        unknown_elements(resource_type, body)
            .into_iter()
            .filter_map(|issue| issue.expression)
            .collect()
    }

    #[test]
    fn unknown_elements_are_named_by_their_path() {
        let patient = json!({
            "resourceType": "Patient", "id": "p", "meta": {"versionId": "1"},
            "text": {"status": "generated", "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\">x</div>"},
            "extension": [{"url": "http://example.org/x", "valueString": "y"}],
            "_birthDate": {"extension": [{"url": "http://example.org/t", "valueTime": "08:00:00"}]},
            "birthDate": "1970-01-01",
            "name": [{"family": "Whitfield", "given": ["Ada"]}, {"text": "A W", "nickname": "Addie"}],
            "favouriteColour": "green",
            "identifier": [{"system": "urn:mrn", "value": "1", "type": {"coding": [{"code": "MR", "colour": "x"}]}}]
        });
        assert_eq!(
            paths("Patient", &patient),
            vec![
                "Patient.favouriteColour",
                "Patient.identifier[0].type.coding[0].colour",
                "Patient.name[1].nickname",
            ]
        );
    }

    #[test]
    fn choice_elements_are_known_only_with_their_allowed_types() {
        let observation = json!({
            "resourceType": "Observation", "status": "final", "code": {"text": "K"},
            "valueQuantity": {"value": 4.1, "unit": "mmol/L"},
            "component": [{"code": {"text": "x"}, "valueString": "y", "valueFoo": 1}],
            "effectiveDate": "2026-11-25"
        });
        assert_eq!(
            paths("Observation", &observation),
            vec![
                "Observation.component[0].valueFoo",
                "Observation.effectiveDate"
            ]
        );
        let condition = json!({"resourceType": "Condition", "onsetAge": {"value": 3},
            "abatementString": "gone", "onsetBoolean": true});
        assert_eq!(
            paths("Condition", &condition),
            vec!["Condition.onsetBoolean"]
        );
    }

    #[test]
    fn every_writable_type_has_a_table_with_unique_names() {
        for rtype in app::fhir::RESOURCE_TYPES {
            if !super::super::params::writable(rtype) {
                continue;
            }
            let elements = elements_of(rtype).unwrap_or_else(|| panic!("{rtype} has no table"));
            let mut names: Vec<_> = elements.iter().map(|(name, _)| *name).collect();
            assert!(names.iter().all(|n| !n.is_empty()), "{rtype}");
            names.sort_unstable();
            names.dedup();
            assert_eq!(names.len(), elements.len(), "{rtype} repeats an element");
        }
    }
}
