-- Subscriptions are searched by their server-stamped owner (search_index param '_owner', see
-- server/src/store/index.rs). Writes index it from now on; this indexes those written before.
INSERT INTO search_index (rtype, id, param, system, value)
SELECT r.rtype, r.id, '_owner', '', json_extract(e.value, '$.valueString')
FROM resources r, json_each(r.content, '$.extension') e
WHERE r.rtype = 'Subscription'
  AND r.deleted = 0
  AND json_extract(e.value, '$.url') = 'http://rounds.example.org/fhir/StructureDefinition/subscription-owner'
  AND json_type(e.value, '$.valueString') = 'text';
