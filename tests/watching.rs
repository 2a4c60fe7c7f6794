//! Automatic detection end to end, with no `POST /notifications`: a registered flight is watched
//! at the fake AeroAPI (through the real adapter), the fake pushes what AeroAPI would, and the
//! passengers are texted; on both databases, the functions connected as their own users. And the
//! AeroAPI adapter against the fake on its own: pages, duplicates, the end of a watch.

#![allow(clippy::unwrap_used)] // a test that cannot unwrap has failed

use std::time::Duration;

use chrono::{DateTime, Utc};
use flightwatch_aeroapi::AeroApi;
use flightwatch_app::watch::{sweep, watch, Watched};
use flightwatch_domain::flight::parse_time;
use flightwatch_domain::ports::FlightWatcher;
use flightwatch_domain::watch::{FlightRegistered, WatchRequest};
use flightwatch_domain::{AirportCode, FlightNumber, FlightSchedule};
use flightwatch_e2e::Harness;
use flightwatch_local::fake_aeroapi::{FakeAeroApi, FakeAlert};
use flightwatch_local::WatchOptions;
use reqwest::StatusCode;
use serde_json::{json, Value};
use sqlx::MySqlPool;

const KEY: &str = "e2e-aeroapi-key";

fn ua123() -> Value {
    json!({
        "flightNumber": "UA123",
        "origin": "SFO",
        "destination": "JFK",
        "scheduledDeparture": "2037-12-01T08:05:00-08:00",
        "scheduledArrival": "2037-12-01T16:40:00-05:00",
        "passengers": [
            {"name": "Ada Lovelace", "email": "ada@example.com", "phone": "+14155550100"},
            {"name": "Grace Hopper", "email": "grace@example.com", "phone": "+447911123456"},
        ],
    })
}

fn at(t: &str) -> DateTime<Utc> {
    parse_time(t).unwrap().to_utc()
}

/// The fake's alerts once `n` exist (the watch runs on its own task, as SNS invokes the watch
/// function).
async fn wait_for_alerts(fake: &FakeAeroApi, n: usize) -> Vec<FakeAlert> {
    for _ in 0..100 {
        if fake.alerts().len() >= n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    fake.alerts()
}

async fn a_registered_flight_is_watched_and_its_delay_and_cancellation_texted(
    pool: Option<MySqlPool>,
) {
    let fake = FakeAeroApi::start(KEY).await.unwrap();
    let h = Harness::start_watching(
        pool,
        WatchOptions {
            aeroapi_url: fake.url(),
            aeroapi_key: KEY.to_owned().into(),
        },
    )
    .await;

    let (status, _) = h.post("/flights", &ua123()).await;
    assert_eq!(status, StatusCode::CREATED);
    let alerts = wait_for_alerts(&fake, 1).await;
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    let alert = &alerts[0];
    assert_eq!(alert.ident, "UA123");
    assert_eq!(
        (alert.origin.as_deref(), alert.destination.as_deref()),
        (Some("SFO"), Some("JFK"))
    );
    // The airport's own date of departure, delivering to this stack's feed with its token.
    assert_eq!(
        (alert.start.as_deref(), alert.end.as_deref()),
        (Some("2037-12-01"), Some("2037-12-01"))
    );
    let feed = format!(
        "{}/feeds/flightaware?token={}",
        h.base,
        flightwatch_e2e::FEED_TOKEN
    );
    assert_eq!(alert.target_url.as_deref(), Some(feed.as_str()));
    assert!(alert.events.cancelled && alert.events.departure && !alert.events.arrival);
    // No account endpoint was set, so ours became it.
    assert_eq!(fake.endpoint(), Some(feed));
    // Registered again (the same body): announced again, the list read again, still one watch.
    let listings = fake.listings();
    let (status, _) = h.post("/flights", &ua123()).await;
    assert_eq!(status, StatusCode::OK);
    for _ in 0..100 {
        if fake.listings() > listings {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        fake.listings(),
        listings + 1,
        "the second announcement was handled"
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(fake.alerts().len(), 1);

    // AeroAPI pushes a 40-minute delay: every passenger texted once.
    let scheduled_out = at("2037-12-01T16:05:00Z");
    let (status, receipt) = fake.push_delay("UA123", scheduled_out, 40).await.unwrap();
    assert_eq!(
        (status, &receipt["outcome"]),
        (200, &json!("CREATED")),
        "{receipt}"
    );
    let sms = h.wait_for_sms(2).await;
    assert_eq!(sms.len(), 2, "{sms:?}");
    assert!(
        sms.iter()
            .all(|s| s["body"] == "UA123 SFO-JFK 1 Dec: DELAYED, now departs 08:45 (was 08:05)."),
        "{sms:?}"
    );
    // The same event pushed again: nothing more.
    let (status, again) = fake.push_delay("UA123", scheduled_out, 40).await.unwrap();
    assert_eq!(
        (status, &again["outcome"]),
        (200, &json!("DUPLICATE")),
        "{again}"
    );
    assert_eq!(h.settled_sms().await.len(), 2);
    // A cancellation: texted again.
    let (status, receipt) = fake.push_cancelled("UA123", scheduled_out).await.unwrap();
    assert_eq!(
        (status, &receipt["outcome"]),
        (200, &json!("CREATED")),
        "{receipt}"
    );
    let sms = h.wait_for_sms(4).await;
    assert_eq!(sms.len(), 4, "{sms:?}");
    assert!(
        sms[2..]
            .iter()
            .all(|s| s["body"].as_str().unwrap().contains("CANCELLED")),
        "{sms:?}"
    );
    assert_eq!(h.count("alerts").await, 2);
}

#[sqlx::test(migrations = false)]
async fn on_mysql_a_registered_flight_is_watched_and_its_delay_and_cancellation_texted(
    pool: MySqlPool,
) {
    a_registered_flight_is_watched_and_its_delay_and_cancellation_texted(Some(pool)).await;
}

#[tokio::test]
async fn on_sqlite_a_registered_flight_is_watched_and_its_delay_and_cancellation_texted() {
    a_registered_flight_is_watched_and_its_delay_and_cancellation_texted(None).await;
}

fn flight(number: &str, departure: &str) -> FlightRegistered {
    let scheduled_departure = parse_time(departure).unwrap();
    FlightRegistered::new(FlightSchedule {
        flight_number: FlightNumber::parse(number).unwrap(),
        departure_date: scheduled_departure.date_naive(),
        origin: AirportCode::parse("LHR").unwrap(),
        destination: AirportCode::parse("JFK").unwrap(),
        scheduled_departure,
    })
}

fn adapter(fake: &FakeAeroApi, key: &str) -> AeroApi {
    AeroApi::new(
        &fake.url(),
        key.to_owned().into(),
        "http://127.0.0.1:9/feeds/flightaware?token=t"
            .to_owned()
            .into(),
    )
    .unwrap()
}

#[tokio::test]
async fn the_adapter_reads_every_page_starts_each_watch_once_and_ends_departed_ones() {
    let fake = FakeAeroApi::start(KEY).await.unwrap();
    let aeroapi = adapter(&fake, KEY);
    let now = at("2037-11-30T12:00:00Z");
    // 20 flights: more than one page of AeroAPI's list.
    for n in 0..20 {
        let f = flight(&format!("BA{}", 100 + n), "2037-12-01T10:00:00+00:00");
        assert!(matches!(
            watch(&aeroapi, &f, now).await.unwrap(),
            Watched::Started(_)
        ));
    }
    assert_eq!(aeroapi.watching().await.unwrap().len(), 20);
    let again = watch(&aeroapi, &flight("BA119", "2037-12-01T10:00:00+00:00"), now)
        .await
        .unwrap();
    assert_eq!(again, Watched::Already("20".into()));
    // A second watch of one flight, as two deliveries of one announcement at once would make.
    let request = WatchRequest::for_flight(&flight("BA100", "2037-12-01T10:00:00+00:00").flight);
    let second = aeroapi.watch(&request).await.unwrap();
    let swept = sweep(&aeroapi, now).await.unwrap();
    assert_eq!(swept.duplicates, vec![second.clone()]);
    assert!(swept.departed.is_empty());
    // Once 1 December (the day of departure) is over everywhere: all ended.
    let swept = sweep(&aeroapi, at("2037-12-04T00:00:00Z")).await.unwrap();
    assert_eq!(swept.departed.len(), 20);
    assert!(fake.alerts().is_empty());
    assert_eq!(fake.deleted().len(), 21);
    // Ending a watch already gone is no error.
    aeroapi.unwatch(&second).await.unwrap();
}

#[tokio::test]
async fn a_refused_key_is_a_permanent_failure_and_starts_nothing() {
    let fake = FakeAeroApi::start(KEY).await.unwrap();
    let aeroapi = adapter(&fake, "not-the-key");
    let f = flight("BA100", "2037-12-01T10:00:00+00:00");
    let e = watch(&aeroapi, &f, at("2037-11-30T12:00:00Z"))
        .await
        .unwrap_err();
    assert!(
        matches!(e, flightwatch_domain::watch::ProviderError::Permanent(_)),
        "{e}"
    );
    assert!(fake.alerts().is_empty());
}
