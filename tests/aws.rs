//! The AWS adapters through the real SDK against moto server, and the flows on the AWS path:
//! alerts on an SNS topic, SMS through SNS `Publish`, settings from S3.

#![allow(clippy::unwrap_used)] // a test that cannot unwrap has failed

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use flightwatch_api::alerts::{router, AlertsState};
use flightwatch_api::flights::{router as flights_router, FlightsState};
use flightwatch_app::relay;
use flightwatch_aws::{
    database_settings, ConfigSource, LoadError, ObjectError, S3Claims, S3Objects, SnsSmsSender,
    SnsTopic, Written,
};
use flightwatch_domain::flight::parse_time;
use flightwatch_domain::ports::{AlertBus, Claim, FlightStore, OutgoingSms, SmsClaims, SmsSender};
use flightwatch_domain::watch::FlightRegistered;
use flightwatch_domain::{
    AirportCode, Alert, AlertId, AlertMessage, EventKind, FlightNumber, FlightSchedule,
    PhoneNumber, Publication,
};
use flightwatch_e2e::{moto, Harness};
use flightwatch_local::SnsOptions;
use http_body_util::BodyExt;
use reqwest::StatusCode;
use serde_json::{json, Value};
use sqlx::MySqlPool;
use tower::ServiceExt;

/// A phone number no other test uses, so moto's shared SMS log can be read per test.
fn fresh_phone() -> String {
    let digits: String = uuid::Uuid::now_v7()
        .as_u128()
        .to_string()
        .chars()
        .rev()
        .take(9)
        .collect();
    format!("+1555{digits}")
}

fn schedule() -> FlightSchedule {
    FlightSchedule {
        flight_number: FlightNumber::parse("UA123").unwrap(),
        departure_date: "2037-12-01".parse().unwrap(),
        origin: AirportCode::parse("SFO").unwrap(),
        destination: AirportCode::parse("JFK").unwrap(),
        scheduled_departure: parse_time("2037-12-01T08:05:00-08:00").unwrap(),
    }
}

#[tokio::test]
async fn a_thousand_recipients_go_on_the_topic_in_messages_far_under_the_sns_limit() {
    let sdk = moto::sdk().await;
    let topic = moto::topic(&sdk, "alerts").await;
    let bus = SnsTopic::from_config(&sdk, &topic);
    let alert = Alert {
        seq: 1,
        id: AlertId::new(),
        flight_number: FlightNumber::parse("UA123").unwrap(),
        departure_date: "2037-12-01".parse().unwrap(),
        event: EventKind::Delayed,
        reason: Some(
            flightwatch_domain::Reason::parse(&"Late inbound aircraft ".repeat(20)).unwrap(),
        ),
        estimated_departure: Some(parse_time("2037-12-01T10:30:00-08:00").unwrap()),
        recipients: 1000,
        publication: Publication::Pending,
        created_at: chrono::Utc::now(),
    };
    let phones: Vec<PhoneNumber> = (0..1000)
        .map(|i| PhoneNumber::parse(&format!("+4479111{i:05}")).unwrap())
        .collect();
    for m in AlertMessage::split(&alert, &schedule(), 1, &phones) {
        bus.publish(&m).await.unwrap();
    }
    let sent = moto::topic_messages(&topic).await;
    assert_eq!(sent.len(), 2);
    let mut received = Vec::new();
    for raw in &sent {
        assert!(raw.len() < 256 * 1024 / 4, "{} bytes", raw.len());
        let m = AlertMessage::parse(raw).unwrap();
        assert_eq!(m.alert_id, alert.id);
        received.extend(m.recipients);
    }
    received.sort();
    assert_eq!(received, phones);
}

#[tokio::test]
async fn an_sms_goes_out_with_sns_publish_to_the_phone_number() {
    let sdk = moto::sdk().await;
    let sender = SnsSmsSender::from_config(&sdk, Some("FLIGHTWTCH".into()));
    let phone = fresh_phone();
    let body = "UA123 SFO-JFK 1 Dec: CANCELLED. Reason: Crew shortage";
    sender
        .send(&OutgoingSms {
            to: PhoneNumber::parse(&phone).unwrap(),
            body: body.into(),
            alert_id: AlertId::new(),
        })
        .await
        .unwrap();
    assert_eq!(moto::sms_to(&phone).await, [body]);
}

#[tokio::test]
async fn a_recipient_is_claimed_once_in_s3_however_often_its_message_comes() {
    let sdk = moto::sdk().await;
    let bucket = moto::unique("claims");
    moto::s3(&sdk)
        .create_bucket()
        .bucket(&bucket)
        .send()
        .await
        .unwrap();
    let claims = S3Claims::from_config(&sdk, &bucket);
    let alert = Alert {
        seq: 1,
        id: AlertId::new(),
        flight_number: FlightNumber::parse("UA123").unwrap(),
        departure_date: "2037-12-01".parse().unwrap(),
        event: EventKind::Cancelled,
        reason: None,
        estimated_departure: None,
        recipients: 1,
        publication: Publication::Pending,
        created_at: chrono::Utc::now(),
    };
    let flight = FlightSchedule {
        flight_number: alert.flight_number.clone(),
        departure_date: alert.departure_date,
        origin: AirportCode::parse("SFO").unwrap(),
        destination: AirportCode::parse("JFK").unwrap(),
        scheduled_departure: parse_time("2037-12-01T08:05:00-08:00").unwrap(),
    };
    let phones = [PhoneNumber::parse("+14155550100").unwrap()];
    let first = &AlertMessage::split(&alert, &flight, 1, &phones)[0];
    let other = &AlertMessage::split(&alert, &flight, 2, &phones)[0];
    assert_eq!(claims.claim(first, 0).await.unwrap(), Claim::New);
    assert_eq!(
        claims.claim(first, 0).await.unwrap(),
        Claim::Taken(None),
        "a second delivery"
    );
    claims.record_sent(first, 0, "sns-message-1").await.unwrap();
    assert_eq!(
        claims.claim(first, 0).await.unwrap(),
        Claim::Taken(Some("sns-message-1".into())),
        "sent, as the first claimant recorded"
    );
    assert_eq!(
        claims.claim(first, 1).await.unwrap(),
        Claim::New,
        "another recipient"
    );
    assert_eq!(
        claims.claim(other, 0).await.unwrap(),
        Claim::New,
        "another hand-out"
    );
    // The key names the alert, hand-out and place, never a phone.
    assert!(!S3Claims::key(first, 0).contains("4155550100"));
    // A bucket that is not there is an error (the recipient is retried), not a claim.
    let missing = S3Claims::from_config(&sdk, moto::unique("no-such-bucket"));
    assert!(missing.claim(first, 0).await.is_err());
}

/// moto checks signatures only with its access control on, for every caller: this test runs its
/// own moto server, makes a user with a key there, then turns access control on, so that each
/// S3 call below is verified by botocore's SigV4 for S3, as AWS verifies it.
#[tokio::test]
async fn s3_objects_are_signed_as_s3_verifies_them() {
    let port = {
        let socket = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        socket.local_addr().unwrap().port()
    };
    let mut server = KillOnDrop(
        std::process::Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("moto_server on PATH (scripts/test.sh puts it there)"),
    );
    let url = format!("http://127.0.0.1:{port}");
    let up = async {
        while reqwest::get(format!("{url}/moto-api/data.json"))
            .await
            .is_err()
        {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(30), up)
        .await
        .unwrap();
    let sdk_as = |key: &str, secret: &str| {
        aws_config::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("eu-west-1"))
            .endpoint_url(&url)
            .http_client(flightwatch_aws::http_client())
            .credentials_provider(aws_sdk_s3::config::SharedCredentialsProvider::new(
                aws_sdk_s3::config::Credentials::new(key, secret, None, None, "test"),
            ))
            .build()
    };
    let admin = sdk_as("test", "test");
    let iam = aws_sdk_iam::Client::new(&admin);
    iam.create_user().user_name("sms").send().await.unwrap();
    iam.put_user_policy()
        .user_name("sms")
        .policy_name("objects")
        .policy_document(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}"#)
        .send()
        .await
        .unwrap();
    let key = iam
        .create_access_key()
        .user_name("sms")
        .send()
        .await
        .unwrap()
        .access_key
        .unwrap();
    let bucket = moto::unique("signed");
    moto::s3(&admin)
        .create_bucket()
        .bucket(&bucket)
        .create_bucket_configuration(
            aws_sdk_s3::types::CreateBucketConfiguration::builder()
                .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::EuWest1)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let on = reqwest::Client::new()
        .post(format!("{url}/moto-api/reset-auth"))
        .body("0")
        .send()
        .await
        .unwrap();
    assert!(on.status().is_success());

    let objects = S3Objects::new(
        &sdk_as(key.access_key_id(), key.secret_access_key()),
        &bucket,
    );
    let path = "claims/0190/1/0";
    assert_eq!(
        objects.create(path, Vec::new()).await.unwrap(),
        Written::Created
    );
    assert_eq!(
        objects.create(path, Vec::new()).await.unwrap(),
        Written::Exists
    );
    objects.put(path, b"sns-message-1".to_vec()).await.unwrap();
    assert_eq!(objects.get(path).await.unwrap(), b"sns-message-1");
    let missing = objects.get("dev/none.properties").await.unwrap_err();
    assert!(
        matches!(&missing, ObjectError::Refused { status: 404, code } if code == "NoSuchKey"),
        "{missing}"
    );
    // The same calls with a wrong secret are refused: the signatures above were checked.
    let forged = S3Objects::new(&sdk_as(key.access_key_id(), "not-the-secret"), &bucket);
    let refused = forged.get(path).await.unwrap_err();
    assert!(
        matches!(&refused, ObjectError::Refused { status: 403, code } if code == "SignatureDoesNotMatch"),
        "{refused}"
    );
    server.0.kill().ok();
}

struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        self.0.kill().ok();
        self.0.wait().ok();
    }
}

#[tokio::test]
async fn database_settings_come_from_the_properties_file_in_s3() {
    let sdk = moto::sdk().await;
    let s3 = moto::s3(&sdk);
    let bucket = moto::unique("config");
    s3.create_bucket().bucket(&bucket).send().await.unwrap();
    let put = |key: &'static str, text: &'static str| {
        s3.put_object()
            .bucket(&bucket)
            .key(key)
            .body(aws_sdk_s3::primitives::ByteStream::from_static(
                text.as_bytes(),
            ))
            .send()
    };
    put(
        "dev/alerts.properties",
        "jdbc.url=jdbc:mysql://db.internal:3306/flightwatch?sslMode=REQUIRED\njdbc.username=alerts\njdbc.password=hunter2\n",
    )
    .await
    .unwrap();
    put(
        "dev/broken.properties",
        "jdbc.url=postgres://db/flightwatch\njdbc.username=alerts\n",
    )
    .await
    .unwrap();
    let source = |key: &str| ConfigSource::S3 {
        bucket: bucket.clone(),
        key: key.into(),
    };

    let settings = database_settings(Some(&sdk), &source("dev/alerts.properties"))
        .await
        .unwrap();
    assert_eq!(settings.connect_options().get_host(), "db.internal");
    assert_eq!(settings.connect_options().get_username(), "alerts");
    assert_eq!(settings.max_connections, 1);
    assert!(!format!("{settings:?}").contains("hunter2"));

    let err = database_settings(Some(&sdk), &source("dev/broken.properties"))
        .await
        .unwrap_err();
    assert!(matches!(err, LoadError::Invalid { .. }), "{err}");
    assert!(err.to_string().contains("jdbc:mysql://"), "{err}");
    let err = database_settings(Some(&sdk), &source("dev/missing.properties"))
        .await
        .unwrap_err();
    assert!(matches!(err, LoadError::S3 { .. }), "{err}");
}

async fn register(h: &Harness, phones: &[String]) {
    let passengers: Vec<Value> = phones
        .iter()
        .map(|p| json!({"name": "Passenger", "email": "p@example.com", "phone": p}))
        .collect();
    let (status, body) = h
        .post(
            "/flights",
            &json!({
                "flightNumber": "UA123", "origin": "SFO", "destination": "JFK",
                "scheduledDeparture": "2037-12-01T08:05:00-08:00",
                "scheduledArrival": "2037-12-01T16:40:00-05:00",
                "passengers": passengers,
            }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

#[sqlx::test(migrations = false)]
async fn a_topic_that_cannot_be_reached_leaves_the_alert_pending_until_the_relay_publishes_it(
    pool: MySqlPool,
) {
    // The stores alone, without a local stack: its relay would race this test's publication.
    // Each connects as its function's provisioned user; `pool`, the admin's, only looks.
    let users = flightwatch_mysql::provision::FunctionPools::provision(&pool, 2)
        .await
        .unwrap();
    let passengers = [fresh_phone(), fresh_phone()]
        .iter()
        .map(|p| flightwatch_domain::Passenger {
            name: flightwatch_domain::PassengerName::parse("Passenger").unwrap(),
            email: flightwatch_domain::Email::parse("p@example.com").unwrap(),
            phone: PhoneNumber::parse(p).unwrap(),
        })
        .collect();
    let registration = flightwatch_domain::FlightRegistration::new(
        FlightNumber::parse("UA123").unwrap(),
        AirportCode::parse("SFO").unwrap(),
        AirportCode::parse("JFK").unwrap(),
        parse_time("2037-12-01T08:05:00-08:00").unwrap(),
        parse_time("2037-12-01T16:40:00-05:00").unwrap(),
        passengers,
    )
    .unwrap();
    flightwatch_mysql::MySqlFlightStore::new(users.flights.clone())
        .register(&registration)
        .await
        .unwrap();
    let sdk = moto::sdk().await;
    let name = moto::unique("late-topic");
    let arn = format!("arn:aws:sns:us-east-1:123456789012:{name}");
    let store = Arc::new(flightwatch_mysql::MySqlAlertStore::new(
        users.alerts.clone(),
    ));
    let bus: Arc<dyn AlertBus> = Arc::new(SnsTopic::from_config(&sdk, &arn));
    let state = AlertsState {
        store: store.clone(),
        bus: bus.clone(),
        limits: Default::default(),
        sms_per_second: None,
    };
    let req = http::Request::post("/notifications")
        .header("content-type", "application/json")
        .body(Body::from(
            json!({"flightNumber": "UA123", "departureDate": "2037-12-01", "event": "CANCELLED"})
                .to_string(),
        ))
        .unwrap();
    let resp = router(state).oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    let receipt: Value =
        serde_json::from_slice(&resp.into_body().collect().await.unwrap().to_bytes()).unwrap();
    assert_eq!(
        receipt["publication"], "PENDING",
        "the topic does not exist yet"
    );
    // The topic comes back; once the wait for the unconfirmed hand-out is over, the relay hands
    // the recipients out again without any client retry.
    aws_sdk_sns::Client::new(&sdk)
        .create_topic()
        .name(&name)
        .send()
        .await
        .unwrap();
    let later = chrono::Utc::now()
        + chrono::Duration::from_std(flightwatch_domain::delivery::timing::UNCONFIRMED_WAIT)
            .unwrap();
    let report = relay::relay(
        store.as_ref(),
        bus.as_ref(),
        None,
        std::time::Duration::from_secs(5),
        later,
    )
    .await
    .unwrap();
    assert_eq!(report.handed_out, 2);
    let sent = moto::topic_messages(&arn).await;
    assert_eq!(sent.len(), 1);
    assert_eq!(
        AlertMessage::parse(&sent[0]).unwrap().alert_id.to_string(),
        receipt["alertId"].as_str().unwrap()
    );
}

#[sqlx::test(migrations = false)]
async fn the_local_stack_on_the_aws_path_texts_every_passenger_through_sns(pool: MySqlPool) {
    let sdk = moto::sdk().await;
    let topic = moto::topic(&sdk, "alerts").await;
    let reports = moto::topic(&sdk, "delivery-reports").await;
    let h = Harness::start_with(
        pool,
        Some(SnsOptions {
            alerts_topic_arn: topic.clone(),
            reports_topic_arn: Some(reports.clone()),
            sender_id: None,
        }),
    )
    .await;
    let phones = [fresh_phone(), fresh_phone()];
    register(&h, &phones).await;
    let (status, receipt) = h
        .post(
            "/notifications",
            &json!({"flightNumber": "UA123", "departureDate": "2037-12-01", "event": "DELAYED",
                    "reason": "Late inbound aircraft", "estimatedDeparture": "2037-12-01T10:30:00-08:00"}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{receipt}");
    assert_eq!(receipt["publication"], "PUBLISHED");

    let want = "UA123 SFO-JFK 1 Dec: DELAYED, now departs 10:30 (was 08:05). Reason: Late inbound aircraft";
    for phone in &phones {
        let mut got = Vec::new();
        for _ in 0..100 {
            got = moto::sms_to(phone).await;
            if !got.is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(got, [want], "{phone}");
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    for phone in &phones {
        assert_eq!(
            moto::sms_to(phone).await.len(),
            1,
            "exactly one SMS to {phone}"
        );
    }
    assert_eq!(moto::topic_messages(&topic).await.len(), 1);
    assert!(h.sms().is_empty(), "nothing went to the local file");

    // The sms handler's report went over the reports topic into the ledger.
    assert_eq!(moto::topic_messages(&reports).await.len(), 1);
    let mut listed = Value::Null;
    for _ in 0..100 {
        (_, listed) = h.get("/alerts").await;
        if listed["items"][0]["delivery"]["sent"] == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        listed["items"][0]["delivery"],
        json!({"pending": 0, "sent": 2, "delivered": 0, "failed": 0}),
        "{listed}"
    );
    let id = receipt["alertId"].as_str().unwrap();
    let (status, details) = h.get(&format!("/alerts/{id}")).await;
    assert_eq!(status, StatusCode::OK, "{details}");
    let states: Vec<&str> = details["recipientDeliveries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["SENT", "SENT"]);
    for phone in &phones {
        assert!(!details.to_string().contains(&phone[4..]), "{details}");
    }
}

#[sqlx::test(migrations = false)]
async fn a_registration_the_topic_did_not_take_is_a_503_and_the_same_request_announces_it(
    pool: MySqlPool,
) {
    let users = flightwatch_mysql::provision::FunctionPools::provision(&pool, 2)
        .await
        .unwrap();
    let sdk = moto::sdk().await;
    let name = moto::unique("late-flight-events");
    let arn = format!("arn:aws:sns:us-east-1:123456789012:{name}");
    let state = FlightsState {
        store: Arc::new(flightwatch_mysql::MySqlFlightStore::new(
            users.flights.clone(),
        )),
        announcements: Some(Arc::new(SnsTopic::from_config(&sdk, &arn))),
    };
    let body = json!({
        "flightNumber": "UA123", "origin": "SFO", "destination": "JFK",
        "scheduledDeparture": "2037-12-01T08:05:00-08:00",
        "scheduledArrival": "2037-12-01T16:40:00-05:00",
        "passengers": [{"name": "Ada Lovelace", "email": "ada@example.com", "phone": "+14155550100"}],
    });
    let register = || {
        http::Request::post("/flights")
            .header("content-type", "application/json")
            .body(Body::from(body.to_string()))
            .unwrap()
    };
    // The topic does not exist: the flight is stored, the caller told to retry.
    let resp = flights_router(state.clone())
        .oneshot(register())
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(resp.headers().contains_key("retry-after"));
    let stored: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM flights")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(stored, 1);
    // The topic is back: the same request changes nothing stored and announces the flight.
    aws_sdk_sns::Client::new(&sdk)
        .create_topic()
        .name(&name)
        .send()
        .await
        .unwrap();
    let resp = flights_router(state).oneshot(register()).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let sent = moto::topic_messages(&arn).await;
    assert_eq!(sent.len(), 1, "{sent:?}");
    let announced = FlightRegistered::from_json(&sent[0]).unwrap();
    assert_eq!(announced.flight, schedule());
    assert!(!sent[0].contains("+1415") && !sent[0].contains("ada@"));
}
