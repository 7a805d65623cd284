import type { APIRequestContext, APIResponse } from '@playwright/test';
import type { Bundle, CapabilityStatement, Resource } from '@medplum/fhirtypes';
import { authHeaders, expect, test, token, validateFhir } from './helpers';

const FHIR = '/fhir/R4';
const TYPES = [
  'Patient',
  'Practitioner',
  'Location',
  'Encounter',
  'CareTeam',
  'Condition',
  'AllergyIntolerance',
  'ServiceRequest',
  'Observation',
  'DiagnosticReport',
  'MedicationRequest',
  'MedicationDispense',
  'DocumentReference',
  'Flag',
  'Task',
  'AuditEvent',
] as const;

// One login per worker, not per test.
let accessToken: Promise<string> | undefined;
async function headers(request: APIRequestContext): Promise<Record<string, string>> {
  accessToken ??= token(request);
  return { ...authHeaders(await accessToken), Accept: 'application/fhir+json' };
}

async function fhirGet<T extends Resource>(request: APIRequestContext, path: string): Promise<T> {
  const res: APIResponse = await request.get(`${FHIR}/${path}`, { headers: await headers(request) });
  const text = await res.text();
  expect(res.status(), `GET ${FHIR}/${path}: ${text.slice(0, 500)}`).toBe(200);
  expect(res.headers()['content-type'], `GET ${FHIR}/${path} content-type`).toContain('application/fhir+json');
  return JSON.parse(text) as T;
}

function expectValidBundle(bundle: Bundle, type: Bundle['type'], label: string): Resource[] {
  expect(bundle.resourceType, label).toBe('Bundle');
  expect(bundle.type, label).toBe(type);
  validateFhir(bundle, label);
  const resources = (bundle.entry ?? []).map((e) => e.resource).filter((r): r is Resource => r !== undefined);
  resources.forEach((r, i) => validateFhir(r, `${label} entry[${i}] ${r.resourceType}/${r.id}`));
  return resources;
}

test('GET /fhir/R4/metadata is a valid CapabilityStatement', async ({ request }) => {
  const cs = await fhirGet<CapabilityStatement>(request, 'metadata');
  expect(cs.resourceType).toBe('CapabilityStatement');
  expect(cs.fhirVersion).toBe('4.0.1');
  validateFhir(cs, 'CapabilityStatement');
  const declared = (cs.rest ?? []).flatMap((r) => (r.resource ?? []).map((x) => x.type));
  for (const type of TYPES) expect(declared, `CapabilityStatement declares ${type}`).toContain(type);
});

for (const type of TYPES) {
  test(`GET /fhir/R4/${type}?_count=5 is a valid searchset Bundle`, async ({ request }) => {
    const label = `${type} searchset`;
    const bundle = await fhirGet<Bundle>(request, `${type}?_count=5`);
    const resources = expectValidBundle(bundle, 'searchset', label);
    const matches = (bundle.entry ?? []).filter((e) => (e.search?.mode ?? 'match') === 'match');
    expect(matches.length, `${label} has at least one match`).toBeGreaterThanOrEqual(1);
    expect(matches.length, `${label} honours _count=5`).toBeLessThanOrEqual(5);
    for (const entry of matches) {
      const r = entry.resource;
      expect(r?.resourceType, `${label} match entry type`).toBe(type);
      expect(r?.id, `${label} match entry id`).toBeTruthy();
      expect(r?.meta?.versionId, `${label} ${type}/${r?.id} meta.versionId`).toBeTruthy();
      expect(r?.meta?.lastUpdated, `${label} ${type}/${r?.id} meta.lastUpdated`).toBeTruthy();
    }
    expect(resources.length).toBeGreaterThanOrEqual(matches.length);
  });
}

test('a Patient _history Bundle and its version read are valid', async ({ request }) => {
  const search = await fhirGet<Bundle>(request, 'Patient?_count=1');
  const patient = search.entry?.[0]?.resource;
  expect(patient?.id, 'a demo Patient exists').toBeTruthy();

  const history = await fhirGet<Bundle>(request, `Patient/${patient!.id}/_history`);
  const versions = expectValidBundle(history, 'history', `Patient/${patient!.id}/_history`);
  expect(versions.length, 'history has at least one version').toBeGreaterThanOrEqual(1);
  for (const v of versions) {
    expect(v.resourceType).toBe('Patient');
    expect(v.id).toBe(patient!.id);
  }

  const vid = patient!.meta?.versionId;
  expect(vid, 'Patient meta.versionId').toBeTruthy();
  const version = await fhirGet<Resource>(request, `Patient/${patient!.id}/_history/${vid}`);
  expect(version.resourceType).toBe('Patient');
  expect(version.meta?.versionId).toBe(vid);
  validateFhir(version, `Patient/${patient!.id}/_history/${vid}`);
});
