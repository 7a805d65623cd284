// An independent FHIR client, @medplum/core's MedplumClient, used exactly as its documentation
// says: sign in with client credentials at /oauth2/token, then subscribeToCriteria(). Rounds must
// speak its protocol (binding token, /ws/subscriptions-r4, handshake Bundles) and, unlike Medplum,
// number the events for real.
import { MedplumClient, type SubscriptionEmitter } from '@medplum/core';
import type { Bundle, ServiceRequest, SubscriptionStatus } from '@medplum/fhirtypes';
import WebSocket from 'ws';
import { expect, test, validateFhir } from './helpers';

// Node 20 has no global WebSocket; @medplum/core's reconnecting socket uses the global one.
(globalThis as { WebSocket?: unknown }).WebSocket ??= WebSocket;

function nextEvent<T>(emitter: SubscriptionEmitter, type: 'connect' | 'message'): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ${type} event within 15 s`)), 15_000);
    const listener = (event: { payload: unknown }): void => {
      clearTimeout(timer);
      emitter.removeEventListener(type, listener as never);
      resolve(event.payload as T);
    };
    emitter.addEventListener(type, listener as never);
  });
}

test('subscribeToCriteria from @medplum/core receives numbered notifications', async ({ baseURL }) => {
  const medplum = new MedplumClient({ baseUrl: baseURL, fetch: globalThis.fetch.bind(globalThis) });
  const profile = await medplum.startClientLogin('dr.chen', 'rounds-demo');
  expect(profile.resourceType).toBe('Practitioner');
  expect(medplum.getProfile()?.id).toBe('pr-chen');

  // A patient Dr. Chen may see, and one she may not (the admin sees everyone).
  const admin = new MedplumClient({ baseUrl: baseURL, fetch: globalThis.fetch.bind(globalThis) });
  await admin.startClientLogin('admin', 'rounds-demo');
  const hers = new Set((await medplum.searchResources('Patient', { _count: '1000' })).map((p) => p.id));
  const patient = (await medplum.searchResources('Patient', { _count: '1' }))[0];
  expect(patient?.id).toBeTruthy();
  const stranger = (await admin.searchResources('Patient', { _count: '1000' })).find((p) => !hers.has(p.id));
  expect(stranger?.id, 'a patient Dr. Chen may not see').toBeTruthy();

  // Notifications about a patient she may not see never come: both subscriptions share one
  // socket, and the forbidden order is committed before each visible one, so had it been sent it
  // would have arrived first.
  const forbidden = medplum.subscribeToCriteria(`ServiceRequest?subject=Patient/${stranger?.id}`);
  let forbiddenMessages = 0;
  forbidden.addEventListener('message', () => forbiddenMessages++);
  await nextEvent(forbidden, 'connect');

  const criteria = `ServiceRequest?subject=Patient/${patient.id}`;
  const emitter = medplum.subscribeToCriteria(criteria);
  const connected = await nextEvent<{ subscriptionId: string }>(emitter, 'connect');
  expect(connected.subscriptionId).toBeTruthy();

  const numbers: string[] = [];
  for (let i = 0; i < 2; i++) {
    await admin.createResource<ServiceRequest>({
      resourceType: 'ServiceRequest',
      status: 'active',
      intent: 'order',
      code: { coding: [{ system: 'http://loinc.org', code: '58410-2', display: 'CBC panel' }] },
      subject: { reference: `Patient/${stranger?.id}` },
    });
    const message = nextEvent<Bundle>(emitter, 'message');
    const order = await medplum.createResource<ServiceRequest>({
      resourceType: 'ServiceRequest',
      status: 'active',
      intent: 'order',
      code: { coding: [{ system: 'http://loinc.org', code: '58410-2', display: 'CBC panel' }] },
      subject: { reference: `Patient/${patient.id}` },
    });
    const bundle = await message;
    validateFhir(bundle, 'notification Bundle');
    const status = bundle.entry?.[0]?.resource as SubscriptionStatus;
    expect(status.type).toBe('event-notification');
    expect(status.subscription.reference).toBe(`Subscription/${connected.subscriptionId}`);
    const event = status.notificationEvent?.[0];
    expect(event?.focus?.reference).toBe(`ServiceRequest/${order.id}`);
    expect(bundle.entry?.[1]?.resource?.id).toBe(order.id);
    numbers.push(event?.eventNumber ?? '');
  }
  // Medplum always sends "0"; Rounds counts.
  expect(numbers).toEqual(['1', '2']);
  expect(forbiddenMessages).toBe(0);

  // The same notifications are there to catch up on.
  const events = await medplum.get(`fhir/R4/Subscription/${connected.subscriptionId}/$events?eventsSinceNumber=0`);
  const replayed = ((events as Bundle).entry?.[0]?.resource as SubscriptionStatus).notificationEvent ?? [];
  expect(replayed.map((e) => e.eventNumber)).toEqual(['1', '2']);

  // Unsubscribing the last criteria closes the client's socket.
  medplum.unsubscribeFromCriteria(criteria);
  medplum.unsubscribeFromCriteria(`ServiceRequest?subject=Patient/${stranger?.id}`);
});
