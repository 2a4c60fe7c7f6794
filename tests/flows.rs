//! The three flows, end to end over HTTP against the local stack on MariaDB: register a flight,
//! report an event, one SMS per passenger, alerts listed; plus retries, duplicates, pagination,
//! bad input and the API key.

#![allow(clippy::unwrap_used)] // a test that cannot unwrap has failed

use flightwatch_e2e::Harness;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use sqlx::MySqlPool;

fn ua123(passengers: Value) -> Value {
    json!({
        "flightNumber": "ua123",
        "origin": "SFO",
        "destination": "JFK",
        "scheduledDeparture": "2037-12-01T08:05:00-08:00",
        "scheduledArrival": "2037-12-01T16:40:00-05:00",
        "passengers": passengers,
    })
}

fn two_passengers() -> Value {
    json!([
        {"name": "Ada Lovelace", "email": "ada@example.com", "phone": "+14155550100"},
        {"name": "Grace Hopper", "email": "grace@example.com", "phone": "+447911123456"},
    ])
}

fn delay(to: &str) -> Value {
    json!({
        "flightNumber": "UA123",
        "departureDate": "2037-12-01",
        "event": "DELAYED",
        "reason": "Late inbound aircraft",
        "estimatedDeparture": to,
    })
}

async fn a_delay_reaches_every_passenger_once_and_is_listed(h: Harness) {
    let (status, flight) = h.post("/flights", &ua123(two_passengers())).await;
    assert_eq!(status, StatusCode::CREATED, "{flight}");
    assert_eq!(flight["flightId"], "UA123-2037-12-01");
    assert_eq!(flight["flightNumber"], "UA123");
    assert_eq!(flight["departureDate"], "2037-12-01");
    assert_eq!(flight["scheduledDeparture"], "2037-12-01T08:05:00-08:00");
    assert_eq!(flight["passengerCount"], 2);

    let (status, details) = h.get("/flights/UA123-2037-12-01").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(details["passengers"][0]["phone"], "+1415•••0100");
    assert_eq!(details["passengers"][0]["email"], "a•••@example.com");
    assert!(!details.to_string().contains("5550100") && !details.to_string().contains("ada@"));

    let (status, receipt) = h
        .post("/notifications", &delay("2037-12-01T10:30:00-08:00"))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{receipt}");
    assert_eq!(receipt["recipients"], 2);
    assert_eq!(receipt["publication"], "PUBLISHED");
    assert_eq!(receipt["event"], "DELAYED");
    let alert_id = receipt["alertId"].as_str().unwrap().to_owned();

    let sms = h.wait_for_sms(2).await;
    let mut to: Vec<&str> = sms.iter().map(|s| s["to"].as_str().unwrap()).collect();
    to.sort();
    assert_eq!(to, ["+14155550100", "+447911123456"]);
    for s in &sms {
        assert_eq!(s["alertId"], alert_id.as_str());
        assert_eq!(
            s["body"],
            "UA123 SFO-JFK 1 Dec: DELAYED, now departs 10:30 (was 08:05). Reason: Late inbound aircraft"
        );
    }
    assert_eq!(h.settled_sms().await.len(), 2, "exactly one SMS each");

    let (status, page) = h
        .get("/alerts?flightNumber=UA123&departureDate=2037-12-01")
        .await;
    assert_eq!(status, StatusCode::OK);
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["alertId"], alert_id.as_str());
    assert_eq!(items[0]["estimatedDeparture"], "2037-12-01T10:30:00-08:00");
    assert_eq!(items[0]["reason"], "Late inbound aircraft");
    assert_eq!(items[0]["recipients"], 2);
    assert_eq!(page["nextCursor"], Value::Null);
    assert!(
        !page.to_string().contains("+1415"),
        "no phone numbers in alerts"
    );

    // The sms handler's report reaches the ledger: counts in the list, states in the details.
    let mut delivery = Value::Null;
    for _ in 0..100 {
        let (_, page) = h.get("/alerts").await;
        delivery = page["items"][0]["delivery"].clone();
        if delivery["sent"] == 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(
        delivery,
        json!({"pending": 0, "sent": 2, "delivered": 0, "failed": 0})
    );
    let (status, details) = h.get(&format!("/alerts/{alert_id}")).await;
    assert_eq!(status, StatusCode::OK, "{details}");
    assert_eq!(details["delivery"], delivery);
    let recipients = details["recipientDeliveries"].as_array().unwrap();
    assert_eq!(recipients.len(), 2);
    assert_eq!(recipients[0]["phone"], "+1415•••0100");
    assert!(recipients.iter().all(|r| r["state"] == "SENT"));
    assert!(!details.to_string().contains("5550100"), "phones masked");
    let (status, problem) = h.get("/alerts/not-an-id").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{problem}");
    let (status, _) = h.get("/alerts/3f1c2b9e-8d4a-4c6e-9b7a-2e5d1f0a6c84").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

async fn a_cancellation_texts_the_passengers_of_that_flight_only(h: Harness) {
    h.post("/flights", &ua123(two_passengers())).await;
    let mut other = ua123(
        json!([{"name": "Alan Turing", "email": "alan@example.com", "phone": "+441632960001"}]),
    );
    other["flightNumber"] = json!("BA2490");
    assert_eq!(h.post("/flights", &other).await.0, StatusCode::CREATED);

    let (status, receipt) = h
        .post(
            "/notifications",
            &json!({"flightNumber": "UA123", "departureDate": "2037-12-01", "event": "CANCELLED", "reason": "Crew shortage"}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{receipt}");
    let sms = h.settled_sms().await;
    assert_eq!(sms.len(), 2);
    assert!(sms
        .iter()
        .all(|s| s["body"] == "UA123 SFO-JFK 1 Dec: CANCELLED. Reason: Crew shortage"));
    assert!(sms.iter().all(|s| s["to"] != "+441632960001"));
}

async fn registering_again_merges_and_an_identical_body_changes_nothing(h: Harness) {
    assert_eq!(
        h.post("/flights", &ua123(two_passengers())).await.0,
        StatusCode::CREATED
    );
    let (status, same) = h.post("/flights", &ua123(two_passengers())).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(same["passengerCount"], 2);

    let (status, merged) = h
        .post(
            "/flights",
            &ua123(json!([
                {"name": "Ada King", "email": "ada.king@example.com", "phone": "+14155550100"},
                {"name": "Alan Turing", "email": "alan@example.com", "phone": "+441632960001"},
            ])),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(merged["passengerCount"], 3);
    let (_, details) = h.get("/flights/UA123-2037-12-01").await;
    assert_eq!(details["passengers"][0]["name"], "Ada King");
    assert_eq!(h.count("flights").await, 1);
    assert_eq!(h.count("passengers").await, 3);
}

async fn a_retry_with_the_same_idempotency_key_sends_nothing_again(h: Harness) {
    h.post("/flights", &ua123(two_passengers())).await;
    let notify = |key: &'static str, body: Value| {
        h.send(
            h.request(Method::POST, "/notifications")
                .header("Idempotency-Key", key)
                .json(&body),
        )
    };
    let (status, first, _) = notify("evt-42", delay("2037-12-01T10:30:00-08:00")).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    h.wait_for_sms(2).await;

    // The same instant written in UTC is the same request.
    let (status, again, _) = notify("evt-42", delay("2037-12-01T18:30:00Z")).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(again["alertId"], first["alertId"]);

    let (status, problem, content_type) =
        notify("evt-42", delay("2037-12-01T11:00:00-08:00")).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(content_type.as_deref(), Some("application/problem+json"));
    assert!(problem["detail"]
        .as_str()
        .unwrap()
        .contains("Idempotency-Key"));
    // The key decides before anything else: a reused key is a 422 even for an unknown flight.
    let mut unknown = delay("2037-12-01T10:30:00-08:00");
    unknown["flightNumber"] = json!("UA999");
    let (status, _, _) = notify("evt-42", unknown).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);

    assert_eq!(h.settled_sms().await.len(), 2);
    assert_eq!(h.count("alerts").await, 1);
}

async fn an_event_already_issued_is_not_sent_again(h: Harness) {
    h.post("/flights", &ua123(two_passengers())).await;
    let (status, first) = h
        .post("/notifications", &delay("2037-12-01T10:30:00-08:00"))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    h.wait_for_sms(2).await;
    let (status, again) = h
        .post("/notifications", &delay("2037-12-01T10:30:00-08:00"))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(again["alertId"], first["alertId"]);
    // A further delay is news.
    let (status, later) = h
        .post("/notifications", &delay("2037-12-01T11:15:00-08:00"))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_ne!(later["alertId"], first["alertId"]);
    let sms = h.wait_for_sms(4).await;
    assert_eq!(h.settled_sms().await.len(), 4, "{sms:?}");
}

async fn alerts_page_through_with_an_opaque_cursor(h: Harness) {
    h.post(
        "/flights",
        &ua123(json!([{"name": "Ada", "email": "ada@example.com", "phone": "+14155550100"}])),
    )
    .await;
    let mut issued = Vec::new();
    for minute in 10..15 {
        let (status, r) = h
            .post(
                "/notifications",
                &delay(&format!("2037-12-01T10:{minute}:00-08:00")),
            )
            .await;
        assert_eq!(status, StatusCode::ACCEPTED);
        issued.push(r["alertId"].as_str().unwrap().to_owned());
    }
    issued.reverse();

    let mut seen = Vec::new();
    let mut path = "/alerts?limit=2".to_owned();
    loop {
        let (status, page) = h.get(&path).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= 2);
        seen.extend(
            items
                .iter()
                .map(|i| i["alertId"].as_str().unwrap().to_owned()),
        );
        match page["nextCursor"].as_str() {
            Some(cursor) => path = format!("/alerts?limit=2&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(seen, issued, "newest first, each once");

    let (_, cancelled) = h.get("/alerts?event=CANCELLED").await;
    assert_eq!(cancelled["items"].as_array().unwrap().len(), 0);
}

async fn bad_input_gets_a_problem_and_stores_nothing(h: Harness) {
    let p = json!([{"name": "Ada", "email": "ada@example.com", "phone": "+14155550100"}]);
    let with = |field: &str, value: Value| {
        let mut body = ua123(p.clone());
        body[field] = value;
        body
    };
    let bad_flights: Vec<(&str, Value, &str)> = vec![
        ("empty body", json!({}), "/flightNumber"),
        (
            "flight number",
            with("flightNumber", json!("UA12345")),
            "/flightNumber",
        ),
        ("airport", with("origin", json!("SF0")), "/origin"),
        (
            "same airports",
            with("destination", json!("sfo")),
            "/destination",
        ),
        (
            "no offset",
            with("scheduledDeparture", json!("2037-12-01T08:05:00")),
            "/scheduledDeparture",
        ),
        (
            "arrival first",
            with("scheduledArrival", json!("2037-12-01T07:00:00-08:00")),
            "/scheduledArrival",
        ),
        (
            "no passengers",
            with("passengers", json!([])),
            "/passengers",
        ),
        (
            "phone",
            with(
                "passengers",
                json!([{"name": "Ada", "email": "ada@example.com", "phone": "4155550100"}]),
            ),
            "/passengers/0/phone",
        ),
        (
            "email",
            with(
                "passengers",
                json!([{"name": "Ada", "email": "ada@", "phone": "+14155550100"}]),
            ),
            "/passengers/0/email",
        ),
        (
            "blank name",
            with(
                "passengers",
                json!([{"name": " ", "email": "ada@example.com", "phone": "+14155550100"}]),
            ),
            "/passengers/0/name",
        ),
        (
            "duplicate phones",
            with(
                "passengers",
                json!([
                    {"name": "Ada", "email": "ada@example.com", "phone": "+14155550100"},
                    {"name": "Bob", "email": "bob@example.com", "phone": "+14155550100"},
                ]),
            ),
            "/passengers/1/phone",
        ),
        ("unknown field", with("gate", json!("B12")), ""),
        ("wrong type", with("passengers", json!("all of them")), ""),
    ];
    for (case, body, pointer) in bad_flights {
        let (status, problem, content_type) = h
            .send(h.request(Method::POST, "/flights").json(&body))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{case}: {problem}");
        assert_eq!(
            content_type.as_deref(),
            Some("application/problem+json"),
            "{case}"
        );
        assert_eq!(problem["status"], 400, "{case}");
        assert!(
            problem["detail"].as_str().is_some_and(|d| !d.is_empty()),
            "{case}"
        );
        if !pointer.is_empty() {
            let pointers: Vec<&str> = problem["errors"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["pointer"].as_str().unwrap())
                .collect();
            assert!(pointers.contains(&pointer), "{case}: {pointers:?}");
        }
    }
    let many: Vec<Value> = (0..1001)
        .map(|i| json!({"name": "P", "email": "p@example.com", "phone": format!("+1415555{i:04}")}))
        .collect();
    assert_eq!(
        h.post("/flights", &with("passengers", json!(many))).await.0,
        StatusCode::BAD_REQUEST
    );

    let (status, _, content_type) = h
        .send(
            h.request(Method::POST, "/flights")
                .header("content-type", "text/plain")
                .body("UA123"),
        )
        .await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(content_type.as_deref(), Some("application/problem+json"));
    let (status, _, _) = h
        .send(
            h.request(Method::POST, "/flights")
                .header("content-type", "application/json")
                .body("{not json"),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(h.count("flights").await, 0);
    assert_eq!(h.count("passengers").await, 0);

    h.post("/flights", &ua123(p.clone())).await;
    let bad_notifications: Vec<(&str, Value, StatusCode)> = vec![
        (
            "unknown flight",
            json!({"flightNumber": "UA999", "departureDate": "2037-12-01", "event": "CANCELLED"}),
            StatusCode::NOT_FOUND,
        ),
        (
            "unknown date",
            json!({"flightNumber": "UA123", "departureDate": "2037-12-02", "event": "CANCELLED"}),
            StatusCode::NOT_FOUND,
        ),
        (
            "unknown event",
            json!({"flightNumber": "UA123", "departureDate": "2037-12-01", "event": "DIVERTED"}),
            StatusCode::BAD_REQUEST,
        ),
        (
            "delay without time",
            json!({"flightNumber": "UA123", "departureDate": "2037-12-01", "event": "DELAYED"}),
            StatusCode::BAD_REQUEST,
        ),
        (
            "delay to earlier",
            delay("2037-12-01T07:00:00-08:00"),
            StatusCode::BAD_REQUEST,
        ),
        (
            "delay to same time",
            delay("2037-12-01T16:05:00Z"),
            StatusCode::BAD_REQUEST,
        ),
        (
            "cancel with time",
            json!({"flightNumber": "UA123", "departureDate": "2037-12-01", "event": "CANCELLED", "estimatedDeparture": "2037-12-01T10:30:00-08:00"}),
            StatusCode::BAD_REQUEST,
        ),
        (
            "bad date",
            json!({"flightNumber": "UA123", "departureDate": "01/12/2026", "event": "CANCELLED"}),
            StatusCode::BAD_REQUEST,
        ),
        (
            "long reason",
            json!({"flightNumber": "UA123", "departureDate": "2037-12-01", "event": "CANCELLED", "reason": "x".repeat(501)}),
            StatusCode::BAD_REQUEST,
        ),
    ];
    for (case, body, want) in bad_notifications {
        let (status, problem, content_type) = h
            .send(h.request(Method::POST, "/notifications").json(&body))
            .await;
        assert_eq!(status, want, "{case}: {problem}");
        assert_eq!(
            content_type.as_deref(),
            Some("application/problem+json"),
            "{case}"
        );
        assert!(
            problem["detail"].as_str().is_some_and(|d| !d.is_empty()),
            "{case}"
        );
    }
    let (status, _, _) = h
        .send(
            h.request(Method::POST, "/notifications")
                .header("Idempotency-Key", "")
                .json(&delay("2037-12-01T10:30:00-08:00")),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "empty idempotency key");
    assert_eq!(h.count("alerts").await, 0);
    assert_eq!(h.count("idempotency_keys").await, 0);
    assert!(h.settled_sms().await.is_empty());

    for query in [
        "limit=0",
        "limit=201",
        "limit=ten",
        "cursor=bogus",
        "event=LATE",
        "since=yesterday",
        "departureDate=2026-13-01",
        "flight=UA123",
    ] {
        let (status, problem, content_type) = h
            .send(h.request(Method::GET, &format!("/alerts?{query}")))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {problem}");
        assert_eq!(
            content_type.as_deref(),
            Some("application/problem+json"),
            "{query}"
        );
    }
    let (status, _) = h.get("/flights/not-a-flight").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, problem) = h.get("/flights/UA999-2037-12-01").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{problem}");
}

async fn every_api_call_needs_the_api_key(h: Harness) {
    // Every operation openapi.yaml gives a security requirement, as API Gateway reads it, but
    // the provider feed, guarded by its own token instead (so also a 403 below).
    let operations = flightwatch_local::gateway::operations(flightwatch_local::gateway::OPENAPI)
        .expect("openapi.yaml parses");
    assert!(operations
        .iter()
        .all(|op| op.needs_key || op.path == "/feeds/flightaware"));
    for op in operations {
        let (method, path) = (op.method, op.path.replace("{flightId}", "UA123-2037-12-01"));
        for key in [None, Some("wrong-key")] {
            let mut req = h
                .http
                .request(method.clone(), format!("{}{path}", h.base))
                .json(&ua123(two_passengers()));
            if let Some(k) = key {
                req = req.header("x-api-key", k);
            }
            let (status, problem, content_type) = h.send(req).await;
            assert_eq!(
                status,
                StatusCode::FORBIDDEN,
                "{method} {path} with {key:?}"
            );
            assert_eq!(content_type.as_deref(), Some("application/problem+json"));
            assert_eq!(problem["status"], 403);
        }
    }
    assert_eq!(h.count("flights").await, 0);
    let health = h
        .http
        .get(format!("{}/health", h.base))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), StatusCode::OK, "health needs no key");
}

async fn a_body_over_the_limit_is_a_413_and_stores_nothing(h: Harness) {
    let mut flight = ua123(two_passengers());
    // Valid JSON just over 1 MiB: the size alone decides.
    flight["padding"] = json!("x".repeat(1 << 20));
    let req = h.request(Method::POST, "/flights").json(&flight);
    let (status, problem, content_type) = h.send(req).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{problem}");
    assert_eq!(content_type.as_deref(), Some("application/problem+json"));
    assert_eq!(problem["status"], 413);
    assert_eq!(h.count("flights").await, 0);
}

async fn spend_limits_refuse_with_409_and_429_and_store_nothing(h: Harness) {
    h.post(
        "/flights",
        &ua123(json!([{"name": "Ada", "email": "ada@example.com", "phone": "+14155550100"}])),
    )
    .await;
    for minute in 10..16 {
        let (status, r) = h
            .post(
                "/notifications",
                &delay(&format!("2037-12-01T10:{minute}:00-08:00")),
            )
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{r}");
    }
    // The SMS shows minutes: the same minute again is the latest alert, not a new one.
    let (status, _) = h
        .post("/notifications", &delay("2037-12-01T10:15:30-08:00"))
        .await;
    assert_eq!(status, StatusCode::OK);
    // A seventh alert in 24 hours is refused, with when to come back.
    let response = h
        .request(Method::POST, "/notifications")
        .json(&delay("2037-12-01T10:16:00-08:00"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry_after > 23 * 3600, "{retry_after}");
    let problem: Value = response.json().await.unwrap();
    assert_eq!(
        problem["type"],
        "https://flightwatch.dev/problems/limit-reached"
    );
    assert_eq!(h.count("alerts").await, 6);

    // A flight that left days ago is past alerting.
    let (status, r) = h
        .post(
            "/flights",
            &json!({"flightNumber": "BA1", "origin": "LHR", "destination": "JFK",
                    "scheduledDeparture": "2025-01-10T09:00:00Z",
                    "scheduledArrival": "2025-01-10T17:00:00Z",
                    "passengers": [{"name": "Ada", "email": "ada@example.com", "phone": "+14155550100"}]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{r}");
    let (status, problem) = h
        .post(
            "/notifications",
            &json!({"flightNumber": "BA1", "departureDate": "2025-01-10", "event": "CANCELLED"}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{problem}");
    assert_eq!(h.count("alerts").await, 6);

    // A flight holds 1000 passengers, across merges.
    let thousand: Vec<Value> = (0..1000)
        .map(|i| json!({"name": format!("P {i}"), "email": "p@example.com", "phone": format!("+1415666{i:04}")}))
        .collect();
    let mut flight = ua123(json!(thousand));
    flight["flightNumber"] = json!("UA9");
    let (status, r) = h.post("/flights", &flight).await;
    assert_eq!(status, StatusCode::CREATED, "{r}");
    flight["passengers"] =
        json!([{"name": "One more", "email": "m@example.com", "phone": "+14157770000"}]);
    let (status, problem) = h.post("/flights", &flight).await;
    assert_eq!(status, StatusCode::CONFLICT, "{problem}");
    assert_eq!(
        h.count("passengers").await,
        1002,
        "UA123's one, BA1's one and UA9's thousand"
    );
}

/// Every flow runs on both databases: MySQL as in AWS, SQLite as `scripts/dev.sh` runs by default.
/// A recorded AeroAPI delivery, from `tests/fixtures`.
fn push(name: &str) -> Value {
    let path = format!("{}/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

async fn a_provider_push_detects_a_delay_and_a_cancellation_with_no_report_from_anyone(h: Harness) {
    let (status, _) = h.post("/flights", &ua123(two_passengers())).await;
    assert_eq!(status, StatusCode::CREATED);
    let token = Some(flightwatch_e2e::FEED_TOKEN);
    let bytes = |v: &Value| serde_json::to_vec(v).unwrap();
    // Refused or ignored, and nothing recorded: a wrong token, none, an unreadable body, a
    // flight nobody registered.
    let delay = push("aeroapi-push-delay.json");
    let (status, _) = h.push(Some("wrong"), &bytes(&delay)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = h.push(None, &bytes(&delay)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, receipt) = h.push(token, b"{\"event_code\": 1}").await;
    assert_eq!(
        (status, &receipt["outcome"]),
        (StatusCode::OK, &json!("IGNORED")),
        "{receipt}"
    );
    let mut stranger = delay.clone();
    stranger["flight"]["ident_iata"] = json!("UA999");
    let (status, receipt) = h.push(token, &bytes(&stranger)).await;
    assert_eq!(
        (status, &receipt["outcome"]),
        (StatusCode::OK, &json!("IGNORED")),
        "{receipt}"
    );
    assert_eq!(h.count("alerts").await, 0);

    // A 40-minute delay: every passenger texted once.
    let (status, receipt) = h.push(token, &bytes(&delay)).await;
    assert_eq!(
        (status, &receipt["outcome"]),
        (StatusCode::OK, &json!("CREATED")),
        "{receipt}"
    );
    let sms = h.wait_for_sms(2).await;
    assert_eq!(sms.len(), 2);
    assert!(
        sms.iter()
            .all(|s| s["body"] == "UA123 SFO-JFK 1 Dec: DELAYED, now departs 08:45 (was 08:05)."),
        "{sms:?}"
    );
    // The same push again: nothing more.
    let (status, again) = h.push(token, &bytes(&delay)).await;
    assert_eq!(
        (status, &again["outcome"]),
        (StatusCode::OK, &json!("DUPLICATE")),
        "{again}"
    );
    assert_eq!(again["alertId"], receipt["alertId"]);
    assert_eq!(h.settled_sms().await.len(), 2);
    // A cancellation: texted again.
    let (status, receipt) = h
        .push(token, &bytes(&push("aeroapi-push-cancelled.json")))
        .await;
    assert_eq!(
        (status, &receipt["outcome"]),
        (StatusCode::OK, &json!("CREATED")),
        "{receipt}"
    );
    let sms = h.wait_for_sms(4).await;
    assert_eq!(sms.len(), 4);
    assert!(
        sms[2..]
            .iter()
            .all(|s| s["body"].as_str().unwrap().contains("CANCELLED")),
        "{sms:?}"
    );
    assert_eq!(h.count("alerts").await, 2);
}

macro_rules! on_both_databases {
    ($($name:ident),*) => {
        mod mysql {
            use super::*;
            $(
                #[sqlx::test(migrations = false)]
                async fn $name(pool: MySqlPool) {
                    super::$name(Harness::start(pool).await).await;
                }
            )*
        }
        mod sqlite {
            use super::*;
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name(Harness::start_sqlite().await).await;
                }
            )*
        }
    };
}

on_both_databases!(
    a_delay_reaches_every_passenger_once_and_is_listed,
    a_cancellation_texts_the_passengers_of_that_flight_only,
    registering_again_merges_and_an_identical_body_changes_nothing,
    a_retry_with_the_same_idempotency_key_sends_nothing_again,
    an_event_already_issued_is_not_sent_again,
    alerts_page_through_with_an_opaque_cursor,
    bad_input_gets_a_problem_and_stores_nothing,
    every_api_call_needs_the_api_key,
    a_body_over_the_limit_is_a_413_and_stores_nothing,
    spend_limits_refuse_with_409_and_429_and_store_nothing,
    a_provider_push_detects_a_delay_and_a_cancellation_with_no_report_from_anyone
);
