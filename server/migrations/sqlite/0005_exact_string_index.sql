-- `:exact` string search compares with the text as written: every string parameter now has a
-- second search_index row with system 'exact' holding it unchanged, beside the lower-cased row
-- (system '') that prefix search reads (see server/src/store/index.rs). Writes index both from
-- now on; this adds the 'exact' rows of what was written before, for the string parameters of
-- server/src/fhir/params.rs: Patient name/family/given, Practitioner name, Location name,
-- Subscription criteria. A HumanName contributes its text, family, given, prefix and suffix.
INSERT INTO search_index (rtype, id, param, system, value)
SELECT DISTINCT r.rtype, r.id, 'name', 'exact', p.value
FROM resources r, json_each(r.content, '$.name') n, json_each(n.value) k,
     json_each(n.value, '$.' || k.key) p
WHERE r.rtype IN ('Patient', 'Practitioner')
  AND r.deleted = 0
  AND n.type = 'object'
  AND k.key IN ('text', 'family', 'given', 'prefix', 'suffix')
  AND p.type = 'text';

INSERT INTO search_index (rtype, id, param, system, value)
SELECT DISTINCT r.rtype, r.id, 'family', 'exact', p.value
FROM resources r, json_each(r.content, '$.name') n, json_each(n.value, '$.family') p
WHERE r.rtype = 'Patient' AND r.deleted = 0 AND n.type = 'object' AND p.type = 'text';

INSERT INTO search_index (rtype, id, param, system, value)
SELECT DISTINCT r.rtype, r.id, 'given', 'exact', p.value
FROM resources r, json_each(r.content, '$.name') n, json_each(n.value, '$.given') p
WHERE r.rtype = 'Patient' AND r.deleted = 0 AND n.type = 'object' AND p.type = 'text';

INSERT INTO search_index (rtype, id, param, system, value)
SELECT DISTINCT r.rtype, r.id, 'name', 'exact', p.value
FROM resources r, json_each(r.content, '$.name') p
WHERE r.rtype = 'Location' AND r.deleted = 0 AND p.type = 'text';

INSERT INTO search_index (rtype, id, param, system, value)
SELECT DISTINCT r.rtype, r.id, 'criteria', 'exact', p.value
FROM resources r, json_each(r.content, '$.criteria') p
WHERE r.rtype = 'Subscription' AND r.deleted = 0 AND p.type = 'text';
