//! Watching over an in-memory provider: what the watch use cases decide. The same flows run
//! against the AeroAPI adapter and the fake AeroAPI server end to end (tests/watching.rs) and
//! under cargo lambda (tests/lambda).

#![allow(clippy::unwrap_used)] // a test that cannot unwrap has failed

use std::sync::Mutex;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use flightwatch_app::watch::{sweep, watch, Swept, Watched};
use flightwatch_domain::flight::parse_time;
use flightwatch_domain::ports::FlightWatcher;
use flightwatch_domain::watch::{FlightRegistered, ProviderError, Watch, WatchRequest};
use flightwatch_domain::{AirportCode, FlightNumber, FlightSchedule};

#[derive(Default)]
struct Provider {
    watches: Mutex<Vec<Watch>>,
    next: Mutex<u32>,
    /// Ids whose unwatch fails.
    stuck: Vec<String>,
}

#[async_trait]
impl FlightWatcher for Provider {
    async fn watching(&self) -> Result<Vec<Watch>, ProviderError> {
        Ok(self.watches.lock().unwrap().clone())
    }

    async fn watch(&self, request: &WatchRequest) -> Result<String, ProviderError> {
        let mut next = self.next.lock().unwrap();
        *next += 1;
        let id = next.to_string();
        self.watches.lock().unwrap().push(Watch {
            id: id.clone(),
            flight_number: Some(request.flight_number.clone()),
            first_day: Some(request.day),
            last_day: Some(request.day),
        });
        Ok(id)
    }

    async fn unwatch(&self, id: &str) -> Result<(), ProviderError> {
        if self.stuck.iter().any(|s| s == id) {
            return Err(ProviderError::Transient("503".into()));
        }
        self.watches.lock().unwrap().retain(|w| w.id != id);
        Ok(())
    }
}

fn at(t: &str) -> DateTime<Utc> {
    parse_time(t).unwrap().to_utc()
}

fn announced(number: &str, departure: &str) -> FlightRegistered {
    let scheduled_departure = parse_time(departure).unwrap();
    FlightRegistered::new(FlightSchedule {
        flight_number: FlightNumber::parse(number).unwrap(),
        departure_date: scheduled_departure.date_naive(),
        origin: AirportCode::parse("SFO").unwrap(),
        destination: AirportCode::parse("JFK").unwrap(),
        scheduled_departure,
    })
}

#[tokio::test]
async fn a_registered_flight_is_watched_once_however_often_it_is_announced() {
    let provider = Provider::default();
    let flight = announced("UA123", "2037-12-01T08:05:00-08:00");
    let now = at("2037-11-30T12:00:00Z");
    let first = watch(&provider, &flight, now).await.unwrap();
    assert_eq!(first, Watched::Started("1".into()));
    assert_eq!(
        watch(&provider, &flight, now).await.unwrap(),
        Watched::Already("1".into())
    );
    // Another flight number, or the same number another day, is another watch.
    let other_day = announced("UA123", "2037-12-02T08:05:00-08:00");
    assert_eq!(
        watch(&provider, &other_day, now).await.unwrap(),
        Watched::Started("2".into())
    );
    assert_eq!(provider.watches.lock().unwrap().len(), 2);
}

#[tokio::test]
async fn a_flight_that_has_departed_is_not_watched() {
    let provider = Provider::default();
    let flight = announced("UA123", "2037-12-01T08:05:00-08:00");
    let outcome = watch(&provider, &flight, at("2037-12-01T16:05:00Z"))
        .await
        .unwrap();
    assert_eq!(outcome, Watched::Departed);
    assert!(provider.watches.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_sweep_ends_the_watches_of_flights_that_have_left_and_second_watches() {
    let provider = Provider::default();
    let now = at("2037-11-30T12:00:00Z");
    let early = announced("UA123", "2037-12-01T08:05:00-08:00");
    let later = announced("BA2490", "2037-12-05T10:00:00+00:00");
    watch(&provider, &early, now).await.unwrap();
    watch(&provider, &later, now).await.unwrap();
    // Two deliveries of one announcement at once: both saw no watch, both started one.
    provider
        .watch(&WatchRequest::for_flight(&later.flight))
        .await
        .unwrap();
    // Someone else's watch on the account.
    provider.watches.lock().unwrap().push(Watch {
        id: "900".into(),
        flight_number: None,
        first_day: None,
        last_day: None,
    });

    let swept = sweep(&provider, now).await.unwrap();
    assert_eq!(
        swept,
        Swept {
            departed: vec![],
            duplicates: vec!["3".into()]
        }
    );
    // UA123 departs on 1 December, local time: a day over everywhere on 3 December.
    let swept = sweep(&provider, at("2037-12-03T00:00:01Z")).await.unwrap();
    assert_eq!(swept.departed, vec!["1".to_owned()]);
    let left: Vec<String> = provider
        .watches
        .lock()
        .unwrap()
        .iter()
        .map(|w| w.id.clone())
        .collect();
    assert_eq!(left, ["2", "900"]);
}

#[tokio::test]
async fn a_watch_that_will_not_end_fails_the_sweep_after_the_others_are_ended() {
    let provider = Provider {
        stuck: vec!["1".into()],
        ..Provider::default()
    };
    let now = at("2037-11-30T12:00:00Z");
    watch(&provider, &announced("UA123", "2037-12-01T08:05:00Z"), now)
        .await
        .unwrap();
    watch(&provider, &announced("UA124", "2037-12-01T09:05:00Z"), now)
        .await
        .unwrap();
    let result = sweep(&provider, at("2037-12-05T00:00:00Z")).await;
    assert!(matches!(result, Err(ProviderError::Transient(_))));
    let left: Vec<String> = provider
        .watches
        .lock()
        .unwrap()
        .iter()
        .map(|w| w.id.clone())
        .collect();
    assert_eq!(left, ["1"]);
}
