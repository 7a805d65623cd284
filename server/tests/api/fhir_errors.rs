//! Every bad input gets a clear OperationOutcome with the right status — and leaves nothing
//! behind: no resource, no event, no audit row.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{order, spawn_app, TestApp};

async fn expect_rejected(
    app: &TestApp,
    token: &str,
    method: reqwest::Method,
    path: &str,
    content_type: &str,
    body: String,
    status: StatusCode,
) -> Value {
    let before = app.footprint("ServiceRequest").await;
    let response = app
        .client
        .request(method, app.url(path))
        .bearer_auth(token)
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), status, "{path}");
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/fhir+json"));
    let outcome: Value = response.json().await.unwrap();
    assert_eq!(outcome["resourceType"], "OperationOutcome");
    assert!(outcome["issue"][0]["diagnostics"]
        .as_str()
        .is_some_and(|d| !d.is_empty()));
    assert_eq!(
        app.footprint("ServiceRequest").await,
        before,
        "a rejected write left something behind"
    );
    outcome
}

const FHIR: &str = "application/fhir+json";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_and_invalid_bodies_are_rejected_without_a_trace() {
    let app = spawn_app().await;
    let token = app.token("dr.chen").await;
    use reqwest::Method;

    expect_rejected(
        &app,
        &token,
        Method::POST,
        "/fhir/R4/ServiceRequest",
        FHIR,
        "{not json".into(),
        StatusCode::BAD_REQUEST,
    )
    .await;

    let mut wrong_type = order("pat-001");
    wrong_type["resourceType"] = json!("Observation");
    expect_rejected(
        &app,
        &token,
        Method::POST,
        "/fhir/R4/ServiceRequest",
        FHIR,
        wrong_type.to_string(),
        StatusCode::BAD_REQUEST,
    )
    .await;

    let mut missing_type = order("pat-001");
    missing_type.as_object_mut().unwrap().remove("resourceType");
    expect_rejected(
        &app,
        &token,
        Method::POST,
        "/fhir/R4/ServiceRequest",
        FHIR,
        missing_type.to_string(),
        StatusCode::BAD_REQUEST,
    )
    .await;

    let mut mismatch = order("pat-001");
    mismatch["id"] = json!("abc");
    expect_rejected(
        &app,
        &token,
        Method::PUT,
        "/fhir/R4/ServiceRequest/xyz",
        FHIR,
        mismatch.to_string(),
        StatusCode::BAD_REQUEST,
    )
    .await;

    let mut bad_id = order("pat-001");
    bad_id["id"] = json!("bad_id!");
    expect_rejected(
        &app,
        &token,
        Method::PUT,
        "/fhir/R4/ServiceRequest/bad_id!",
        FHIR,
        bad_id.to_string(),
        StatusCode::BAD_REQUEST,
    )
    .await;

    let outcome = expect_rejected(
        &app,
        &token,
        Method::POST,
        "/fhir/R4/Spaceship",
        FHIR,
        order("pat-001").to_string(),
        StatusCode::NOT_FOUND,
    )
    .await;
    assert!(outcome["issue"][0]["diagnostics"]
        .as_str()
        .unwrap()
        .contains("Spaceship"));

    let mut missing_required = order("pat-001");
    for element in ["subject", "status", "intent"] {
        missing_required.as_object_mut().unwrap().remove(element);
    }
    let outcome = expect_rejected(
        &app,
        &token,
        Method::POST,
        "/fhir/R4/ServiceRequest",
        FHIR,
        missing_required.to_string(),
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_eq!(outcome["issue"].as_array().unwrap().len(), 3, "{outcome}");

    let dangling = order("no-such-patient");
    let outcome = expect_rejected(
        &app,
        &token,
        Method::POST,
        "/fhir/R4/ServiceRequest",
        FHIR,
        dangling.to_string(),
        StatusCode::FORBIDDEN,
    )
    .await;
    assert_eq!(outcome["issue"][0]["code"], "forbidden");

    let admin = app.token("admin").await;
    let outcome = expect_rejected(
        &app,
        &admin,
        Method::POST,
        "/fhir/R4/ServiceRequest",
        FHIR,
        dangling.to_string(),
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert!(outcome["issue"][0]["diagnostics"]
        .as_str()
        .unwrap()
        .contains("Patient/no-such-patient"));

    let mut huge = order("pat-001");
    huge["note"] = json!([{"text": "x".repeat(2 * 1024 * 1024)}]);
    expect_rejected(
        &app,
        &token,
        Method::POST,
        "/fhir/R4/ServiceRequest",
        FHIR,
        huge.to_string(),
        StatusCode::PAYLOAD_TOO_LARGE,
    )
    .await;

    expect_rejected(
        &app,
        &token,
        Method::POST,
        "/fhir/R4/ServiceRequest",
        "text/plain",
        order("pat-001").to_string(),
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
    )
    .await;

    expect_rejected(
        &app,
        &admin,
        Method::POST,
        "/fhir/R4/AuditEvent",
        FHIR,
        json!({"resourceType": "AuditEvent"}).to_string(),
        StatusCode::METHOD_NOT_ALLOWED,
    )
    .await;

    let mut bad_code = order("pat-001");
    bad_code["status"] = json!("approved");
    expect_rejected(
        &app,
        &token,
        Method::POST,
        "/fhir/R4/ServiceRequest",
        FHIR,
        bad_code.to_string(),
        StatusCode::BAD_REQUEST,
    )
    .await;

    let mut bad_type = order("pat-001");
    bad_type["subject"] = json!({"reference": 5});
    expect_rejected(
        &app,
        &token,
        Method::POST,
        "/fhir/R4/ServiceRequest",
        FHIR,
        bad_type.to_string(),
        StatusCode::BAD_REQUEST,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_read_requests_answer_outcomes() {
    let app = spawn_app().await;
    let token = app.token("admin").await;
    for (path, status) in [
        ("/fhir/R4/Patient/no-such-id", StatusCode::NOT_FOUND),
        ("/fhir/R4/Spaceship/1", StatusCode::NOT_FOUND),
        ("/fhir/R4/Patient/bad%20id", StatusCode::BAD_REQUEST),
        (
            "/fhir/R4/Patient/pat-001/_history/zero",
            StatusCode::BAD_REQUEST,
        ),
        ("/fhir/R4/Observation?date=someday", StatusCode::BAD_REQUEST),
        ("/fhir/R4/Observation?_count=many", StatusCode::BAD_REQUEST),
        (
            "/fhir/R4/Patient/pat-001/_nonsense/x/y",
            StatusCode::NOT_FOUND,
        ),
    ] {
        let (got, outcome) = app.get_json(&token, path).await;
        assert_eq!(got, status, "{path}");
        assert_eq!(outcome["resourceType"], "OperationOutcome", "{path}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejections_before_any_handler_are_operation_outcomes_too() {
    let app = spawn_app().await;
    let token = app.token("admin").await;
    use reqwest::Method;
    for (method, path, status) in [
        // Path segments that are not UTF-8 once decoded.
        (Method::GET, "/fhir/R4/Patient/%FF", StatusCode::BAD_REQUEST),
        (Method::GET, "/fhir/R4/%FF", StatusCode::BAD_REQUEST),
        (
            Method::GET,
            "/fhir/R4/Patient/pat-001/_history/%FF",
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::DELETE,
            "/fhir/R4/Patient/%FF",
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::GET,
            "/fhir/R4/Subscription/%FF/$events",
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::GET,
            "/fhir/R4/Subscription/%FF/$get-ws-binding-token",
            StatusCode::BAD_REQUEST,
        ),
        // Methods a route does not have.
        (
            Method::PATCH,
            "/fhir/R4/Patient/pat-001",
            StatusCode::METHOD_NOT_ALLOWED,
        ),
        (
            Method::POST,
            "/fhir/R4/metadata",
            StatusCode::METHOD_NOT_ALLOWED,
        ),
    ] {
        let response = app.request(method.clone(), &token, path, None).await;
        assert_eq!(response.status(), status, "{method} {path}");
        assert!(
            response.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("application/fhir+json"),
            "{method} {path}"
        );
        if status == StatusCode::METHOD_NOT_ALLOWED {
            assert!(response.headers().contains_key("allow"), "{method} {path}");
        }
        let outcome: Value = response.json().await.unwrap();
        assert_eq!(
            outcome["resourceType"], "OperationOutcome",
            "{method} {path}"
        );
        assert!(
            outcome["issue"][0]["diagnostics"]
                .as_str()
                .is_some_and(|d| !d.is_empty()),
            "{method} {path}: {outcome}"
        );
    }

    // A query string that does not decode is read leniently, and what is unknown is reported.
    let (status, bundle) = app
        .get_json(&token, "/fhir/R4/Patient?%FF=%FE&_count=1")
        .await;
    assert_eq!(status, StatusCode::OK, "{bundle}");
    assert_eq!(
        crate::helpers::entries(&bundle, "outcome").len(),
        1,
        "{bundle}"
    );
}

/// Issue 16, defect 8: a method a FHIR route lacks is a 405 OperationOutcome with `Allow`, on
/// instances, types, `_search`, history and operations alike.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_method_a_route_lacks_is_a_405_outcome_with_allow() {
    use reqwest::Method;
    let app = spawn_app().await;
    let token = app.token("admin").await;
    let cases = [
        (Method::PATCH, "/fhir/R4/Patient/pat-001"),
        (Method::POST, "/fhir/R4/Patient/pat-001"),
        (Method::PUT, "/fhir/R4/Patient"),
        (Method::DELETE, "/fhir/R4/Patient"),
        (Method::PATCH, "/fhir/R4/Patient"),
        (Method::GET, "/fhir/R4/Patient/_search"),
        (Method::DELETE, "/fhir/R4/Patient/_search"),
        (Method::POST, "/fhir/R4/Patient/pat-001/_history"),
        (Method::DELETE, "/fhir/R4/Patient/pat-001/_history/1"),
        (Method::POST, "/fhir/R4/metadata"),
        (Method::DELETE, "/fhir/R4/metadata"),
        (Method::PUT, "/fhir/R4/Subscription/sub-1/$events"),
        (
            Method::DELETE,
            "/fhir/R4/Subscription/sub-1/$get-ws-binding-token",
        ),
        (Method::POST, "/fhir/R4/AuditEvent"),
        (Method::PUT, "/fhir/R4/AuditEvent/1"),
        (Method::DELETE, "/fhir/R4/AuditEvent/1"),
    ];
    for (method, path) in cases {
        let body = json!({"resourceType": "AuditEvent", "id": "1"});
        let response = app.request(method.clone(), &token, path, Some(&body)).await;
        let what = format!("{method} {path}");
        assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED, "{what}");
        assert!(
            response.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("application/fhir+json"),
            "{what}"
        );
        let allow = response
            .headers()
            .get("allow")
            .unwrap_or_else(|| panic!("{what} has no Allow"))
            .to_str()
            .unwrap()
            .to_owned();
        assert!(
            allow.contains("GET") || allow.contains("POST"),
            "{what}: {allow}"
        );
        assert!(
            !allow.split(',').any(|m| m.trim() == method.as_str()),
            "{what}: Allow {allow} names the refused method"
        );
        let outcome: Value = response.json().await.unwrap();
        assert_eq!(outcome["resourceType"], "OperationOutcome", "{what}");
        assert_eq!(outcome["issue"][0]["code"], "not-supported", "{what}");
    }
}

/// Issue 16, defect 9: an element R4 does not define is refused with its path, on create and
/// update, at the top and inside datatypes, and nothing is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_elements_are_refused_with_their_path() {
    let app = spawn_app().await;
    let admin = app.token("admin").await;
    let doctor = app.token("dr.chen").await;
    let patients_before = app.footprint("Patient").await;
    for (body, expression) in [
        (
            json!({"resourceType": "Patient", "name": [{"family": "Hue"}], "favouriteColour": "green"}),
            "Patient.favouriteColour",
        ),
        (
            json!({"resourceType": "Patient", "name": [{"family": "Hue", "nickname": "H"}]}),
            "Patient.name[0].nickname",
        ),
    ] {
        let response = app.post(&admin, "/fhir/R4/Patient", &body).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{body}");
        let outcome: Value = response.json().await.unwrap();
        assert_eq!(outcome["resourceType"], "OperationOutcome");
        let issue = outcome["issue"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["expression"] == json!([expression]))
            .unwrap_or_else(|| panic!("no issue names {expression}: {outcome}"));
        assert_eq!(issue["severity"], "error");
    }
    assert_eq!(app.footprint("Patient").await, patients_before);

    // An update is held to the same rule; a primitive's extension and extensions are known.
    let mut order = order("pat-001");
    order["colour"] = json!("red");
    let outcome = expect_rejected(
        &app,
        &doctor,
        reqwest::Method::POST,
        "/fhir/R4/ServiceRequest",
        FHIR,
        order.to_string(),
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_eq!(
        outcome["issue"][0]["expression"],
        json!(["ServiceRequest.colour"])
    );
    let (_, stored) = app.get_json(&admin, "/fhir/R4/Patient/pat-001").await;
    let mut changed = stored.clone();
    changed["_birthDate"] =
        json!({"extension": [{"url": "http://example.org/t", "valueTime": "08:00:00"}]});
    changed["extension"] = json!([{"url": "http://example.org/x", "valueString": "y"}]);
    let response = app.put(&admin, "/fhir/R4/Patient/pat-001", &changed).await;
    assert_eq!(response.status(), StatusCode::OK);
    let mut unknown = stored;
    unknown["hobby"] = json!("chess");
    let response = app.put(&admin, "/fhir/R4/Patient/pat-001", &unknown).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let (_, now) = app.get_json(&admin, "/fhir/R4/Patient/pat-001").await;
    assert!(now.get("hobby").is_none());
}

/// Issue 16, defect 11: only JSON is produced: XML asked for by `_format` or `Accept` is a 406
/// OperationOutcome (in JSON); plain `application/json` is answered as such.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_json_is_produced_and_plain_json_is_labelled_so() {
    let app = spawn_app().await;
    let token = app.token("admin").await;
    let get = |path: &'static str, accept: Option<&'static str>| {
        let mut request = app.client.get(app.url(path)).bearer_auth(&token);
        if let Some(accept) = accept {
            request = request.header("accept", accept);
        }
        request.send()
    };
    let content_type = |response: &reqwest::Response| {
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .to_owned()
    };
    for (path, accept) in [
        ("/fhir/R4/Patient/pat-001?_format=xml", None),
        (
            "/fhir/R4/Patient/pat-001?_format=application/fhir%2Bxml",
            None,
        ),
        ("/fhir/R4/Patient/pat-001", Some("application/fhir+xml")),
        (
            "/fhir/R4/Patient?gender=female",
            Some("application/xml, text/xml"),
        ),
        ("/fhir/R4/metadata?_format=xml", None),
        (
            "/fhir/R4/Patient/pat-001?_format=json",
            Some("application/fhir+xml"),
        ),
    ] {
        let response = get(path, accept).await.unwrap();
        if path.ends_with("_format=json") {
            // `_format` wins over `Accept`.
            assert_eq!(response.status(), StatusCode::OK, "{path}");
            continue;
        }
        assert_eq!(
            response.status(),
            StatusCode::NOT_ACCEPTABLE,
            "{path} {accept:?}"
        );
        assert!(content_type(&response).starts_with("application/fhir+json"));
        let outcome: Value = response.json().await.unwrap();
        assert_eq!(outcome["resourceType"], "OperationOutcome");
        assert_eq!(outcome["issue"][0]["code"], "not-supported");
    }
    for (path, accept, expected) in [
        ("/fhir/R4/Patient/pat-001", None, "application/fhir+json"),
        (
            "/fhir/R4/Patient/pat-001",
            Some("application/fhir+json"),
            "application/fhir+json",
        ),
        (
            "/fhir/R4/Patient/pat-001",
            Some("*/*"),
            "application/fhir+json",
        ),
        (
            "/fhir/R4/Patient/pat-001",
            Some("application/json"),
            "application/json",
        ),
        (
            "/fhir/R4/Patient/pat-001?_format=json",
            None,
            "application/json",
        ),
        (
            "/fhir/R4/Patient/pat-001?_format=application/json",
            None,
            "application/json",
        ),
        (
            "/fhir/R4/metadata",
            Some("application/json"),
            "application/json",
        ),
        (
            "/fhir/R4/Patient/no-such-patient",
            Some("application/json"),
            "application/json",
        ),
    ] {
        let response = get(path, accept).await.unwrap();
        let label = content_type(&response);
        assert!(
            label.split(';').next() == Some(expected),
            "{path} {accept:?}: {label}"
        );
        let body: Value = response.json().await.unwrap();
        assert!(body["resourceType"].is_string(), "{path}");
    }
}
