-- Subscriptions are searched by their server-stamped owner (search_index param '_owner', see
-- server/src/store/index.rs). Writes index it from now on; this indexes those written before.
INSERT INTO search_index (rtype, id, param, system, value)
SELECT r.rtype, r.id, '_owner', '', e ->> 'valueString'
FROM resources r
CROSS JOIN LATERAL jsonb_path_query(
    r.content::jsonb,
    '$.extension[*] ? (@.url == "http://rounds.example.org/fhir/StructureDefinition/subscription-owner")'
) e
WHERE r.rtype = 'Subscription'
  AND NOT r.deleted
  AND jsonb_typeof(e -> 'valueString') = 'string';
