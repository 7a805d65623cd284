//! Sign-in, tokens, sessions, CSRF and login throttling.

use jsonwebtoken::{encode, EncodingKey, Header};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{order, spawn_app, spawn_with, PASSWORD, SECRET};

fn claims(exp_offset: i64, sid: &str) -> Value {
    let now = chrono::Utc::now().timestamp();
    json!({"sub": "dr.chen", "iss": "rounds", "iat": now, "exp": now + exp_offset, "sid": sid, "role": "physician", "name": "x", "purpose": "access"})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_answers_the_contract_and_wrong_credentials_401() {
    let app = spawn_app().await;
    let response = app
        .client
        .post(app.url("/auth/login"))
        .json(&json!({"username": "nurse.patel", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let cookies: Vec<String> = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|c| c.to_str().unwrap().to_owned())
        .collect();
    assert!(cookies.iter().any(|c| c.starts_with("rounds_access=")
        && c.contains("HttpOnly")
        && c.contains("SameSite=Lax")));
    assert!(cookies.iter().any(|c| c.starts_with("rounds_refresh=")
        && c.contains("HttpOnly")
        && c.contains("SameSite=Strict")));
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert!(body["expires_in"].as_u64().unwrap() > 0);
    assert_eq!(
        body["user"],
        json!({"id": "nurse.patel", "name": body["user"]["name"], "role": "nurse"})
    );

    let me: Value = app
        .client
        .get(app.url("/auth/me"))
        .bearer_auth(body["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["role"], "nurse");
    assert_eq!(me["units"], json!(["unit-4w"]));

    for (user, password) in [("nurse.patel", "wrong"), ("nobody", PASSWORD)] {
        let response = app
            .client
            .post(app.url("/auth/login"))
            .json(&json!({"username": user, "password": password}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        let outcome: Value = response.json().await.unwrap();
        assert_eq!(outcome["resourceType"], "OperationOutcome");
    }
    let response = app
        .client
        .post(app.url("/auth/login"))
        .body("nonsense")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_malformed_expired_forged_and_unsigned_tokens_are_401() {
    let app = spawn_app().await;
    let good = app.token("dr.chen").await;
    let sid = {
        let payload = good.split('.').nth(1).unwrap();
        use base64::Engine;
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap();
        serde_json::from_slice::<Value>(&bytes).unwrap()["sid"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let expired = encode(
        &Header::default(),
        &claims(-10, &sid),
        &EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap();
    let forged = encode(
        &Header::default(),
        &claims(600, &sid),
        &EncodingKey::from_secret(b"some-other-secret-entirely-000000000"),
    )
    .unwrap();
    let unsigned = {
        use base64::Engine;
        let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        format!(
            "{}.{}.",
            engine.encode(br#"{"alg":"none","typ":"JWT"}"#),
            engine.encode(claims(600, &sid).to_string())
        )
    };
    let tampered = {
        let mut parts: Vec<String> = good.split('.').map(str::to_owned).collect();
        use base64::Engine;
        let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let mut payload: Value =
            serde_json::from_slice(&engine.decode(&parts[1]).unwrap()).unwrap();
        payload["role"] = json!("admin");
        parts[1] = engine.encode(payload.to_string());
        parts.join(".")
    };
    let response = app
        .client
        .get(app.url("/fhir/R4/Patient"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(response.headers()["www-authenticate"], "Bearer");
    for token in [
        "garbage",
        expired.as_str(),
        forged.as_str(),
        unsigned.as_str(),
        tampered.as_str(),
    ] {
        let response = app
            .client
            .get(app.url("/fhir/R4/Patient"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{token}");
        let outcome: Value = response.json().await.unwrap();
        assert_eq!(outcome["issue"][0]["code"], "login");
        // The same token in the cookie is refused the same way.
        let response = app
            .client
            .get(app.url("/fhir/R4/Patient"))
            .header("cookie", format!("rounds_access={token}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    let response = app
        .client
        .get(app.url("/fhir/R4/Patient"))
        .header("authorization", "Basic abc")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    // A WebSocket token is not an access token.
    let ws: Value = app
        .client
        .post(app.url("/auth/ws-token"))
        .bearer_auth(&good)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let response = app
        .client
        .get(app.url("/fhir/R4/Patient"))
        .bearer_auth(ws["token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

/// Logs in with cookies and returns (access cookie, refresh cookie).
async fn cookie_login(app: &crate::helpers::TestApp, user: &str) -> (String, String) {
    let response = app
        .client
        .post(app.url("/auth/login"))
        .json(&json!({"username": user, "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    let mut access = String::new();
    let mut refresh = String::new();
    for cookie in response.headers().get_all("set-cookie") {
        let pair = cookie
            .to_str()
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_owned();
        if pair.starts_with("rounds_access=") {
            access = pair;
        } else if pair.starts_with("rounds_refresh=") {
            refresh = pair;
        }
    }
    (access, refresh)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_rotates_and_a_replayed_refresh_token_revokes_the_session() {
    let app = spawn_with(|config| config.refresh_grace = std::time::Duration::ZERO).await;
    let (access, refresh) = cookie_login(&app, "dr.chen").await;
    let origin = app.base.clone();
    let refreshed = app
        .client
        .post(app.url("/auth/refresh"))
        .header("cookie", &refresh)
        .header("origin", &origin)
        .send()
        .await
        .unwrap();
    assert_eq!(refreshed.status(), StatusCode::OK);
    let new_refresh = refreshed
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|c| c.to_str().unwrap().split(';').next().unwrap().to_owned())
        .find(|c| c.starts_with("rounds_refresh="))
        .unwrap();
    assert_ne!(new_refresh, refresh);
    let new_access = refreshed.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        app.client
            .get(app.url("/auth/me"))
            .bearer_auth(&new_access)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );

    // Replay the first token after the grace period (zero here): theft.
    let replay = app
        .client
        .post(app.url("/auth/refresh"))
        .header("cookie", &refresh)
        .header("origin", &origin)
        .send()
        .await
        .unwrap();
    assert_eq!(replay.status(), StatusCode::UNAUTHORIZED);
    // The whole session is gone: its access tokens and its newest refresh token.
    assert_eq!(
        app.client
            .get(app.url("/auth/me"))
            .bearer_auth(&new_access)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.client
            .get(app.url("/auth/me"))
            .header("cookie", &access)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::UNAUTHORIZED
    );
    let after = app
        .client
        .post(app.url("/auth/refresh"))
        .header("cookie", &new_refresh)
        .header("origin", &origin)
        .send()
        .await
        .unwrap();
    assert_eq!(after.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_ends_the_session_and_cookie_writes_need_our_origin() {
    let app = spawn_app().await;
    let (access, _) = cookie_login(&app, "dr.chen").await;
    // A cookie-authenticated write from another site is refused; from ours it works.
    let response = app
        .client
        .post(app.url("/fhir/R4/ServiceRequest"))
        .header("cookie", &access)
        .header("origin", "https://evil.example")
        .header("content-type", "application/fhir+json")
        .body(order("pat-001").to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let response = app
        .client
        .post(app.url("/fhir/R4/ServiceRequest"))
        .header("cookie", &access)
        .header("origin", &app.base)
        .header("content-type", "application/fhir+json")
        .body(order("pat-001").to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);

    let response = app
        .client
        .post(app.url("/auth/logout"))
        .header("cookie", &access)
        .header("origin", &app.base)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        app.client
            .get(app.url("/auth/me"))
            .header("cookie", &access)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_logins_are_throttled_per_account_and_audited() {
    let app = spawn_app().await;
    let mut statuses = Vec::new();
    for _ in 0..7 {
        let response = app
            .client
            .post(app.url("/auth/login"))
            .json(&json!({"username": "nurse.garcia", "password": "guess"}))
            .send()
            .await
            .unwrap();
        statuses.push(response.status());
        if response.status() == StatusCode::TOO_MANY_REQUESTS {
            let retry: u64 = response.headers()["retry-after"]
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            assert!(retry > 0 && retry <= 900);
        }
    }
    assert_eq!(&statuses[..5], &[StatusCode::UNAUTHORIZED; 5]);
    assert_eq!(&statuses[5..], &[StatusCode::TOO_MANY_REQUESTS; 2]);
    // Even the right password waits now; another account is unaffected.
    let response = app
        .client
        .post(app.url("/auth/login"))
        .json(&json!({"username": "nurse.garcia", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    app.token("nurse.patel").await;

    let admin = app.token("admin").await;
    let (_, audit) = app.get_json(&admin, "/fhir/R4/AuditEvent?_count=100").await;
    let failures = audit["entry"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["resource"]["outcome"] == "4")
        .count();
    assert!(failures >= 7, "{failures} failed logins audited");
}
