//! Parsing a FHIR search query string into a typed `SearchQuery`.
//!
//! Sits between the REST handler and the store: the handler hands over the raw query pairs, the
//! store turns the typed clauses into SQL. Anything not understood is either an error (a bad
//! value or an unsupported modifier: the result would be wrong) or a warning reported in the
//! Bundle (an unknown parameter: ignored, and the client is told). Never panics on input.

use super::{
    date::{format_instant, parse_range},
    params::{self, Kind},
};

/// Default and maximum page sizes.
pub const DEFAULT_COUNT: usize = 50;
pub const MAX_COUNT: usize = 1000;
/// Largest `POST _search` form body, in bytes: far more than any real search needs.
pub const MAX_SEARCH_BODY: usize = 64 * 1024;
/// Values one parameter may OR together (`code=a,b,c`).
pub const MAX_OR_VALUES: usize = 100;
/// Values across the whole query, `_id` and `_sort` included. Each value becomes a few bound SQL
/// parameters: with a page's ids and the caller's visibility, a search stays far below the
/// database's limit on bound parameters (32,766 on SQLite) and its cost stays predictable.
pub const MAX_QUERY_VALUES: usize = 500;
/// Distinct `_include` and `_revinclude` values; repeats of one value count once.
pub const MAX_INCLUDES: usize = 10;
/// Resources `_include` may add to one page.
pub const MAX_INCLUDED: usize = 1000;

/// A parsed search over one resource type. Clauses are ANDed; the values inside one clause ORed.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchQuery {
    pub resource_type: String,
    pub clauses: Vec<Clause>,
    pub count: usize,
    pub offset: usize,
    pub sort: Vec<Sort>,
    pub includes: Vec<Include>,
    /// `_summary=count`: only the total.
    pub count_only: bool,
    /// Only resources the server stamped as owned by this user (Subscriptions of non-admins);
    /// set by the handler, never by the client.
    pub owner: Option<String>,
    /// Parameters we ignored, with why; reported as an OperationOutcome entry.
    pub warnings: Vec<String>,
    /// The parameters the search actually applied, as the `self` link shows them (R4 search
    /// §3.1.1.5.1: only what was used; what was ignored is in the OperationOutcome entry).
    pub used: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Clause {
    Id(Vec<String>),
    /// Matches the `patient_id` column (fast path for `patient=` and `subject=Patient/…`).
    Patient(Vec<String>),
    Token {
        param: &'static str,
        values: Vec<TokenValue>,
        negate: bool,
    },
    Reference {
        param: &'static str,
        values: Vec<(Option<String>, String)>,
    },
    String {
        param: &'static str,
        values: Vec<String>,
        exact: bool,
    },
    /// `param` is None for `_lastUpdated`.
    Date {
        param: Option<&'static str>,
        values: Vec<DateValue>,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct TokenValue {
    /// None: any system; Some(""): no system.
    pub system: Option<String>,
    /// None: any code in the system (`system|`).
    pub code: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prefix {
    Eq,
    Ne,
    Gt,
    Lt,
    Ge,
    Le,
    Sa,
    Eb,
    Ap,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DateValue {
    pub prefix: Prefix,
    /// `[start, end)` of the searched value, in stored text form.
    pub start: String,
    pub end: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    LastUpdated,
    Date,
    Id,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sort {
    pub key: SortKey,
    pub descending: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Include {
    pub source_type: String,
    pub param: &'static str,
    pub target_type: Option<String>,
}

/// A search that cannot be run as asked.
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("{0}")]
pub struct SearchError(pub String);

/// Parameters that only steer the result, accepted and not reported.
const IGNORED: &[&str] = &["_format", "_pretty", "_total"];

impl SearchQuery {
    /// Parses `pairs` (already percent-decoded) for `resource_type`.
    pub fn parse(resource_type: &str, pairs: &[(String, String)]) -> Result<Self, SearchError> {
        let mut query = SearchQuery {
            resource_type: resource_type.to_owned(),
            clauses: Vec::new(),
            count: DEFAULT_COUNT,
            offset: 0,
            sort: Vec::new(),
            includes: Vec::new(),
            count_only: false,
            owner: None,
            warnings: Vec::new(),
            used: Vec::new(),
        };
        // Values used so far, against MAX_QUERY_VALUES; distinct include values.
        let mut used = 0;
        let mut include_values: Vec<&str> = Vec::new();
        for (key, value) in pairs {
            let (name, modifier) = match key.split_once(':') {
                Some((name, modifier)) => (name, Some(modifier)),
                None => (key.as_str(), None),
            };
            match name {
                "_count" => {
                    let count: usize = value.parse().map_err(|_| {
                        SearchError(format!(
                            "_count must be a non-negative integer, not {value:?}"
                        ))
                    })?;
                    if count > MAX_COUNT {
                        query.warnings.push(format!(
                            "_count={count} exceeds the maximum; using {MAX_COUNT}"
                        ));
                    }
                    query.count = count.min(MAX_COUNT);
                    query.used.push((key.clone(), query.count.to_string()));
                    continue;
                }
                "_offset" => {
                    query.offset = value.parse().map_err(|_| {
                        SearchError(format!(
                            "_offset must be a non-negative integer, not {value:?}"
                        ))
                    })?;
                }
                "_sort" => {
                    query.sort = parse_sort(resource_type, bounded_values(key, value, &mut used)?)?
                }
                "_include" | "_revinclude" => {
                    if !include_values.contains(&value.as_str()) {
                        include_values.push(value);
                        if include_values.len() > MAX_INCLUDES {
                            return Err(SearchError(format!(
                                "at most {MAX_INCLUDES} distinct _include/_revinclude values are allowed"
                            )));
                        }
                    }
                    if name == "_revinclude" {
                        query.warnings.push(format!(
                            "_revinclude is not supported for {resource_type} and was ignored"
                        ));
                        continue;
                    }
                    let include = parse_include(resource_type, value)?;
                    if !query.includes.contains(&include) {
                        query.includes.push(include);
                    }
                }
                "_summary" => match value.as_str() {
                    "count" => query.count_only = true,
                    "false" => {}
                    other => {
                        query.warnings.push(format!(
                            "_summary={other} is not supported; returning full resources"
                        ));
                        continue;
                    }
                },
                "_id" => {
                    reject_modifier(key, modifier)?;
                    query
                        .clauses
                        .push(Clause::Id(bounded_values(key, value, &mut used)?));
                }
                "_lastUpdated" => {
                    reject_modifier(key, modifier)?;
                    query.clauses.push(Clause::Date {
                        param: None,
                        values: parse_dates(key, &bounded_values(key, value, &mut used)?)?,
                    });
                }
                name if IGNORED.contains(&name) => continue,
                name => match params::find(resource_type, name) {
                    Some(param) => query.clauses.push(parse_clause(
                        param,
                        key,
                        modifier,
                        bounded_values(key, value, &mut used)?,
                    )?),
                    None => {
                        query.warnings.push(format!(
                            "unknown search parameter {key:?} for {resource_type} was ignored"
                        ));
                        continue;
                    }
                },
            }
            query.used.push((key.clone(), value.clone()));
        }
        // A parameter repeated a thousand times is reported once.
        let mut seen = std::collections::HashSet::new();
        query.warnings.retain(|w| seen.insert(w.clone()));
        Ok(query)
    }

    /// Restricts the search to resources owned by `owner` (see [`SearchQuery::owner`]).
    pub fn owned_by(mut self, owner: Option<String>) -> Self {
        self.owner = owner;
        self
    }
}

/// The comma-separated values of one parameter, counted against the per-parameter and the
/// per-query limits (`used` is the running total).
fn bounded_values(key: &str, value: &str, used: &mut usize) -> Result<Vec<String>, SearchError> {
    let values = split_values(value);
    if values.len() > MAX_OR_VALUES {
        return Err(SearchError(format!(
            "{key} has {} values; at most {MAX_OR_VALUES} may be ORed in one parameter",
            values.len()
        )));
    }
    *used += values.len();
    if *used > MAX_QUERY_VALUES {
        return Err(SearchError(format!(
            "the search has more than {MAX_QUERY_VALUES} values across its parameters (_id included)"
        )));
    }
    Ok(values)
}

fn reject_modifier(key: &str, modifier: Option<&str>) -> Result<(), SearchError> {
    match modifier {
        None => Ok(()),
        Some(modifier) => Err(SearchError(format!(
            "modifier :{modifier} is not supported on {key}"
        ))),
    }
}

/// Comma-separated alternatives; `\,` escapes a literal comma.
fn split_values(value: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut chars = value.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&',') => {
                current.push(',');
                chars.next();
            }
            ',' => out.push(std::mem::take(&mut current)),
            c => current.push(c),
        }
    }
    out.push(current);
    out.retain(|v| !v.is_empty());
    out
}

fn parse_clause(
    param: &'static params::Param,
    key: &str,
    modifier: Option<&str>,
    values: Vec<String>,
) -> Result<Clause, SearchError> {
    if values.is_empty() {
        return Err(SearchError(format!("{key} needs a value")));
    }
    match param.kind {
        Kind::Token => {
            let negate = match modifier {
                None => false,
                Some("not") => true,
                Some(other) => {
                    return Err(SearchError(format!(
                        "modifier :{other} is not supported on {key}"
                    )))
                }
            };
            let values = values
                .into_iter()
                .map(|v| match v.split_once('|') {
                    Some((system, code)) => TokenValue {
                        system: Some(system.to_owned()),
                        code: (!code.is_empty()).then(|| code.to_owned()),
                    },
                    None => TokenValue {
                        system: None,
                        code: Some(v),
                    },
                })
                .collect();
            Ok(Clause::Token {
                param: param.name,
                values,
                negate,
            })
        }
        Kind::Reference => {
            // `subject:Patient=x` narrows the target type like `Patient/x` does.
            let typed_modifier = match modifier {
                None => None,
                Some(m) if m.chars().next().is_some_and(|c| c.is_ascii_uppercase()) => Some(m),
                Some(other) => {
                    return Err(SearchError(format!(
                        "modifier :{other} is not supported on {key}"
                    )))
                }
            };
            let mut refs = Vec::new();
            for v in values {
                let (rtype, id) = match params::split_reference(&v) {
                    Some((rtype, id)) => (Some(rtype), id),
                    None if params::is_valid_id(&v) => (typed_modifier.map(str::to_owned), v),
                    None => return Err(SearchError(format!("{key}: {v:?} is not a reference"))),
                };
                if let (Some(wanted), Some(given)) = (param.target, rtype.as_deref()) {
                    if wanted != given {
                        return Err(SearchError(format!(
                            "{key} refers to {wanted}, not {given}"
                        )));
                    }
                }
                refs.push((rtype, id));
            }
            let patient_only = refs
                .iter()
                .all(|(rtype, _)| rtype.as_deref().unwrap_or("Patient") == "Patient");
            if param.name == "patient"
                || (param.name == "subject"
                    && patient_only
                    && refs.iter().all(|(t, _)| t.is_some()))
            {
                return Ok(Clause::Patient(
                    refs.into_iter().map(|(_, id)| id).collect(),
                ));
            }
            Ok(Clause::Reference {
                param: param.name,
                values: refs,
            })
        }
        Kind::String => {
            let exact = match modifier {
                None => false,
                Some("exact") => true,
                Some(other) => {
                    return Err(SearchError(format!(
                        "modifier :{other} is not supported on {key}"
                    )))
                }
            };
            Ok(Clause::String {
                param: param.name,
                values: if exact {
                    values
                } else {
                    values.into_iter().map(|v| v.to_lowercase()).collect()
                },
                exact,
            })
        }
        Kind::Date => {
            reject_modifier(key, modifier)?;
            Ok(Clause::Date {
                param: Some(param.name),
                values: parse_dates(key, &values)?,
            })
        }
    }
}

fn parse_dates(key: &str, values: &[String]) -> Result<Vec<DateValue>, SearchError> {
    if values.is_empty() {
        return Err(SearchError(format!("{key} needs a value")));
    }
    values
        .iter()
        .map(|v| {
            let (prefix, rest) = match v.get(..2) {
                Some("eq") => (Prefix::Eq, &v[2..]),
                Some("ne") => (Prefix::Ne, &v[2..]),
                Some("gt") => (Prefix::Gt, &v[2..]),
                Some("lt") => (Prefix::Lt, &v[2..]),
                Some("ge") => (Prefix::Ge, &v[2..]),
                Some("le") => (Prefix::Le, &v[2..]),
                Some("sa") => (Prefix::Sa, &v[2..]),
                Some("eb") => (Prefix::Eb, &v[2..]),
                Some("ap") => (Prefix::Ap, &v[2..]),
                _ => (Prefix::Eq, v.as_str()),
            };
            let (start, end) = parse_range(rest).ok_or_else(|| {
                SearchError(format!("{key}: {v:?} is not a FHIR date or dateTime"))
            })?;
            Ok(DateValue {
                prefix,
                start: format_instant(start),
                end: format_instant(end),
            })
        })
        .collect()
}

fn parse_sort(resource_type: &str, fields: Vec<String>) -> Result<Vec<Sort>, SearchError> {
    fields
        .into_iter()
        .map(|field| {
            let (descending, name) = match field.strip_prefix('-') {
                Some(name) => (true, name.to_owned()),
                None => (false, field.clone()),
            };
            let key = match name.as_str() {
                "_lastUpdated" => SortKey::LastUpdated,
                "_id" => SortKey::Id,
                other if params::find(resource_type, other).is_some_and(|p| p.kind == Kind::Date) => {
                    SortKey::Date
                }
                other => {
                    return Err(SearchError(format!(
                        "cannot sort {resource_type} by {other:?} (supported: _lastUpdated, _id, and its date parameter)"
                    )))
                }
            };
            Ok(Sort { key, descending })
        })
        .collect()
}

fn parse_include(resource_type: &str, value: &str) -> Result<Include, SearchError> {
    let mut parts = value.split(':');
    let source = parts.next().unwrap_or_default();
    let param_name = parts
        .next()
        .ok_or_else(|| SearchError(format!("_include={value:?}: expected Type:parameter")))?;
    let target_type = parts.next().map(str::to_owned);
    if source != resource_type {
        return Err(SearchError(format!(
            "_include={value:?}: only includes from {resource_type} are supported"
        )));
    }
    let param = params::find(resource_type, param_name)
        .filter(|p| p.kind == Kind::Reference)
        .ok_or_else(|| {
            SearchError(format!(
                "_include={value:?}: {param_name} is not a reference parameter of {resource_type}"
            ))
        })?;
    Ok(Include {
        source_type: resource_type.to_owned(),
        param: param.name,
        target_type,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
        items
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn tokens_references_and_dates_parse() {
        let query = SearchQuery::parse(
            "Observation",
            &pairs(&[
                ("patient", "Patient/pat-001"),
                ("code", "http://loinc.org|718-7,2823-3"),
                ("date", "ge2026-11-20"),
                ("_sort", "-date"),
                ("_count", "10"),
            ]),
        )
        .unwrap();
        assert_eq!(query.clauses[0], Clause::Patient(vec!["pat-001".into()]));
        match &query.clauses[1] {
            Clause::Token { values, .. } => {
                assert_eq!(values.len(), 2);
                assert_eq!(values[0].system.as_deref(), Some("http://loinc.org"));
                assert_eq!(values[1].system, None);
            }
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(
            query.sort,
            vec![Sort {
                key: SortKey::Date,
                descending: true
            }]
        );
        assert_eq!(query.count, 10);
        assert!(query.warnings.is_empty());
    }

    #[test]
    fn unknown_parameters_warn_and_bad_values_fail() {
        let query = SearchQuery::parse("Patient", &pairs(&[("shoe-size", "42")])).unwrap();
        assert_eq!(query.warnings.len(), 1);
        assert!(SearchQuery::parse("Observation", &pairs(&[("date", "soon")])).is_err());
        assert!(SearchQuery::parse("Observation", &pairs(&[("_count", "-1")])).is_err());
        assert!(SearchQuery::parse("Observation", &pairs(&[("code:above", "x")])).is_err());
        assert!(SearchQuery::parse("Observation", &pairs(&[("_sort", "code")])).is_err());
        assert!(
            SearchQuery::parse("Observation", &pairs(&[("_include", "Observation:code")])).is_err()
        );
        assert!(
            SearchQuery::parse("Observation", &pairs(&[("patient", "Practitioner/x")])).is_err()
        );
    }

    #[test]
    fn only_the_parameters_used_are_kept_for_the_self_link() {
        let query = SearchQuery::parse(
            "Patient",
            &pairs(&[
                ("foo", "bar"),
                ("family", "Whitfield"),
                ("_elements", "id"),
                ("_format", "json"),
                ("_summary", "data"),
                ("_revinclude", "Encounter:patient"),
                ("_count", "5000"),
            ]),
        )
        .unwrap();
        assert_eq!(
            query.used,
            pairs(&[("family", "Whitfield"), ("_count", "1000")])
        );
    }

    #[test]
    fn count_is_bounded_with_a_warning() {
        let query = SearchQuery::parse("Patient", &pairs(&[("_count", "100000")])).unwrap();
        assert_eq!(query.count, MAX_COUNT);
        assert_eq!(query.warnings.len(), 1);
    }

    #[test]
    fn or_values_and_query_values_are_bounded_and_the_error_names_the_limit() {
        let many = |n: usize| {
            (0..n)
                .map(|i| format!("c{i}"))
                .collect::<Vec<_>>()
                .join(",")
        };
        assert!(SearchQuery::parse("Observation", &pairs(&[("code", &many(100))])).is_ok());
        let error = SearchQuery::parse("Observation", &pairs(&[("code", &many(101))])).unwrap_err();
        assert!(error.0.contains("at most 100"), "{error}");
        let error =
            SearchQuery::parse("Observation", &pairs(&[("_id", &many(40_000))])).unwrap_err();
        assert!(error.0.contains("at most 100"), "{error}");

        let hundred = many(100);
        let mut full: Vec<(&str, &str)> = vec![("_id", &hundred); 5];
        assert!(SearchQuery::parse("Observation", &pairs(&full)).is_ok());
        full.push(("status", "final"));
        let error = SearchQuery::parse("Observation", &pairs(&full)).unwrap_err();
        assert!(error.0.contains("more than 500"), "{error}");
    }

    #[test]
    fn includes_are_deduplicated_and_bounded() {
        let repeated = vec![("_include", "Observation:based-on"); 3000];
        let query = SearchQuery::parse("Observation", &pairs(&repeated)).unwrap();
        assert_eq!(query.includes.len(), 1);

        let distinct: Vec<String> = (0..11)
            .map(|i| format!("Observation:based-on:T{i}"))
            .collect();
        let mut items: Vec<(&str, &str)> = distinct[..10]
            .iter()
            .map(|v| ("_include", v.as_str()))
            .collect();
        assert_eq!(
            SearchQuery::parse("Observation", &pairs(&items))
                .unwrap()
                .includes
                .len(),
            10
        );
        items.push(("_revinclude", &distinct[10]));
        let error = SearchQuery::parse("Observation", &pairs(&items)).unwrap_err();
        assert!(error.0.contains("at most 10"), "{error}");
    }

    #[test]
    fn escaped_commas_stay_in_the_value() {
        assert_eq!(
            split_values(r"a\,b,c"),
            vec!["a,b".to_owned(), "c".to_owned()]
        );
    }
}
