-- `:exact` string search compares with the text as written: every string parameter now has a
-- second search_index row with system 'exact' holding it unchanged, beside the lower-cased row
-- (system '') that prefix search reads (see server/src/store/index.rs). Writes index both from
-- now on; this adds the 'exact' rows of what was written before, for the string parameters of
-- server/src/fhir/params.rs: Patient name/family/given, Practitioner name, Location name,
-- Subscription criteria. A HumanName contributes its text, family, given, prefix and suffix.
-- `list(x)` below is x itself when it is an array, else the one-element array [x], as the
-- index walks arrays.

WITH doc AS (
    SELECT rtype, id, content::jsonb AS body FROM resources
    WHERE rtype IN ('Patient', 'Practitioner') AND NOT deleted
), names AS (
    SELECT doc.rtype, doc.id, n AS name
    FROM doc CROSS JOIN LATERAL jsonb_array_elements(
        CASE jsonb_typeof(doc.body -> 'name') WHEN 'array' THEN doc.body -> 'name' ELSE '[]'::jsonb END
    ) n
    WHERE jsonb_typeof(n) = 'object'
), parts AS (
    SELECT names.rtype, names.id, k.key, p AS part
    FROM names
    CROSS JOIN LATERAL jsonb_each(names.name) k
    CROSS JOIN LATERAL jsonb_array_elements(
        CASE jsonb_typeof(k.value) WHEN 'array' THEN k.value ELSE jsonb_build_array(k.value) END
    ) p
    WHERE jsonb_typeof(p) = 'string'
)
INSERT INTO search_index (rtype, id, param, system, value)
SELECT DISTINCT rtype, id, 'name', 'exact', part #>> '{}' FROM parts
WHERE key IN ('text', 'family', 'given', 'prefix', 'suffix')
UNION
SELECT DISTINCT rtype, id, 'family', 'exact', part #>> '{}' FROM parts
WHERE rtype = 'Patient' AND key = 'family'
UNION
SELECT DISTINCT rtype, id, 'given', 'exact', part #>> '{}' FROM parts
WHERE rtype = 'Patient' AND key = 'given';

WITH doc AS (
    SELECT rtype, id, content::jsonb AS body,
           CASE rtype WHEN 'Location' THEN 'name' ELSE 'criteria' END AS param
    FROM resources
    WHERE rtype IN ('Location', 'Subscription') AND NOT deleted
)
INSERT INTO search_index (rtype, id, param, system, value)
SELECT DISTINCT doc.rtype, doc.id, doc.param, 'exact', p #>> '{}'
FROM doc CROSS JOIN LATERAL jsonb_array_elements(
    CASE jsonb_typeof(doc.body -> doc.param)
        WHEN 'array' THEN doc.body -> doc.param
        WHEN 'string' THEN jsonb_build_array(doc.body -> doc.param)
        ELSE '[]'::jsonb
    END
) p
WHERE jsonb_typeof(p) = 'string';
