//! The use cases over in-memory fakes of the ports: what each decides, without a database. The
//! same behaviours run against MySQL and SQLite in the storage contract and end to end.

#![allow(clippy::unwrap_used)] // a test that cannot unwrap has failed

use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use flightwatch_app::notify::{notify, Limits, NotifyError};
use flightwatch_app::{idempotency, list, relay};
use flightwatch_domain::flight::parse_time;
use flightwatch_domain::ports::{
    AlertBus, AlertListing, BusError, Claimed, Idempotency, Notifications, Outbox, PendingAlert,
    Recorded, StoreError,
};
use flightwatch_domain::{
    AirportCode, Alert, AlertId, AlertMessage, AlertQuery, DeliveryCounts, FlightEvent, FlightKey,
    FlightNumber, FlightSchedule, Notification, PhoneNumber, Publication, RecipientDelivery,
    Refusal, SpendLimits,
};

/// The default limits, a few days before the flights these tests report on.
fn limits() -> Limits {
    Limits {
        spend: SpendLimits::default(),
        now: parse_time("2026-11-27T12:00:00Z").unwrap().to_utc(),
    }
}

/// Alerts in memory: enough of the alert store for the use cases' decisions.
#[derive(Default)]
struct FakeAlerts {
    flights: Vec<FlightSchedule>,
    alerts: Mutex<Vec<(Alert, Option<Idempotency>)>>,
    unreadable: Mutex<Vec<i64>>,
    set_aside: Mutex<Vec<i64>>,
    housekeeping_fails: bool,
    /// Recipients of every alert (1 unless a test wants a big one).
    recipients: usize,
    /// Parts on the bus, by alert, and leases given back.
    progress: Mutex<std::collections::HashMap<AlertId, u32>>,
    released: Mutex<u32>,
}

#[async_trait]
impl Notifications for FakeAlerts {
    async fn schedule(&self, flight: &FlightKey) -> Result<Option<FlightSchedule>, StoreError> {
        Ok(self
            .flights
            .iter()
            .find(|f| f.flight_number == flight.number && f.departure_date == flight.date)
            .cloned())
    }

    async fn record(
        &self,
        id: AlertId,
        n: &Notification,
        idempotency: Option<&Idempotency>,
        limits: &SpendLimits,
    ) -> Result<Recorded, StoreError> {
        let mut alerts = self.alerts.lock().unwrap();
        let now = chrono::Utc::now();
        let recent: Vec<_> = alerts
            .iter()
            .filter(|(a, _)| {
                a.flight_number == n.flight.number && a.departure_date == n.flight.date
            })
            .map(|(a, _)| a.created_at)
            .collect();
        if let Err(refusal) = limits.check_rate(now, &recent) {
            return Ok(Recorded::Refused(refusal));
        }
        let alert = Alert {
            seq: alerts.len() as i64 + 1,
            id,
            flight_number: n.flight.number.clone(),
            departure_date: n.flight.date,
            event: n.event.kind(),
            reason: n.reason.clone(),
            estimated_departure: n.event.estimated_departure(),
            recipients: 2,
            publication: Publication::Pending,
            created_at: now,
        };
        alerts.push((alert.clone(), idempotency.cloned()));
        Ok(Recorded::Created(alert))
    }

    async fn replay(&self, idem: &Idempotency) -> Result<Option<Recorded>, StoreError> {
        let alerts = self.alerts.lock().unwrap();
        Ok(alerts
            .iter()
            .find(|(_, k)| k.as_ref().is_some_and(|k| k.key == idem.key))
            .map(|(alert, k)| match k {
                Some(k) if k.fingerprint != idem.fingerprint => Recorded::KeyReused,
                _ => Recorded::Replayed {
                    alert: alert.clone(),
                    created: true,
                },
            }))
    }
}

#[async_trait]
impl AlertListing for FakeAlerts {
    async fn list(&self, q: &AlertQuery) -> Result<Vec<(Alert, DeliveryCounts)>, StoreError> {
        let alerts = self.alerts.lock().unwrap();
        Ok(alerts
            .iter()
            .rev()
            .map(|(a, _)| (a.clone(), DeliveryCounts::default()))
            .filter(|(a, _)| q.before_seq.is_none_or(|b| a.seq < b))
            .take(q.limit as usize)
            .collect())
    }

    async fn details(
        &self,
        id: AlertId,
    ) -> Result<Option<(Alert, Vec<RecipientDelivery>)>, StoreError> {
        let alerts = self.alerts.lock().unwrap();
        Ok(alerts
            .iter()
            .find(|(a, _)| a.id == id)
            .map(|(a, _)| (a.clone(), Vec::new())))
    }
}

#[async_trait]
impl Outbox for FakeAlerts {
    async fn claim(&self, id: AlertId, _: Duration) -> Result<Option<PendingAlert>, StoreError> {
        let alerts = self.alerts.lock().unwrap();
        Ok(alerts
            .iter()
            .find(|(a, _)| a.id == id && a.publication == Publication::Pending)
            .map(|(a, _)| self.pending(a)))
    }

    async fn claim_due(&self, limit: u32, _: Duration) -> Result<Vec<Claimed>, StoreError> {
        let alerts = self.alerts.lock().unwrap();
        let set_aside = self.set_aside.lock().unwrap();
        Ok(alerts
            .iter()
            .filter(|(a, _)| a.publication == Publication::Pending && !set_aside.contains(&a.seq))
            .take(limit as usize)
            .map(|(a, _)| {
                if self.unreadable.lock().unwrap().contains(&a.seq) {
                    Claimed::Unreadable {
                        seq: a.seq,
                        error: StoreError::permanent("stored origin is not valid"),
                    }
                } else {
                    Claimed::Ready(self.pending(a))
                }
            })
            .collect())
    }

    async fn set_aside(&self, seq: i64, _: &str) -> Result<(), StoreError> {
        self.set_aside.lock().unwrap().push(seq);
        Ok(())
    }

    async fn mark_progress(&self, id: AlertId, parts: u32) -> Result<(), StoreError> {
        let mut progress = self.progress.lock().unwrap();
        let p = progress.entry(id).or_default();
        *p = (*p).max(parts);
        Ok(())
    }

    async fn release(&self, _: AlertId) -> Result<(), StoreError> {
        *self.released.lock().unwrap() += 1;
        Ok(())
    }

    async fn mark_published(&self, id: AlertId) -> Result<(), StoreError> {
        for (a, _) in self.alerts.lock().unwrap().iter_mut() {
            if a.id == id {
                a.publication = Publication::Published;
            }
        }
        Ok(())
    }

    async fn mark_failed(&self, _: AlertId, _: &str, _: Duration) -> Result<(), StoreError> {
        Ok(())
    }

    async fn forget_keys_older_than(&self, _: Duration) -> Result<u64, StoreError> {
        if self.housekeeping_fails {
            return Err(StoreError::permanent("DELETE command denied"));
        }
        Ok(0)
    }
}

impl FakeAlerts {
    fn with_flight() -> Self {
        Self {
            flights: vec![FlightSchedule {
                flight_number: FlightNumber::parse("UA123").unwrap(),
                departure_date: "2026-12-01".parse().unwrap(),
                origin: AirportCode::parse("SFO").unwrap(),
                destination: AirportCode::parse("JFK").unwrap(),
                scheduled_departure: parse_time("2026-12-01T08:05:00-08:00").unwrap(),
            }],
            ..Self::default()
        }
    }

    fn pending(&self, a: &Alert) -> PendingAlert {
        PendingAlert {
            alert: a.clone(),
            flight: self.flights[0].clone(),
            recipients: (0..self.recipients.max(1))
                .map(|i| PhoneNumber::parse(&format!("+1415555{i:04}")).unwrap())
                .collect(),
            attempts: 1,
            parts_published: self
                .progress
                .lock()
                .unwrap()
                .get(&a.id)
                .copied()
                .unwrap_or(0),
        }
    }
}

/// Records what is published; fails every publish while `down`.
#[derive(Default)]
struct FakeBus {
    down: bool,
    /// How long each publish takes.
    takes: Duration,
    published: Mutex<Vec<AlertMessage>>,
}

#[async_trait]
impl AlertBus for FakeBus {
    async fn publish(&self, message: &AlertMessage) -> Result<(), BusError> {
        if self.down {
            return Err(BusError("topic unreachable".into()));
        }
        tokio::time::sleep(self.takes).await;
        self.published.lock().unwrap().push(message.clone());
        Ok(())
    }
}

fn delayed_to(t: &str) -> Notification {
    Notification {
        flight: "UA123-2026-12-01".parse().unwrap(),
        event: FlightEvent::Delayed {
            estimated_departure: parse_time(t).unwrap(),
        },
        reason: None,
    }
}

#[tokio::test]
async fn a_new_alert_is_published_at_once() {
    let (store, bus) = (FakeAlerts::with_flight(), FakeBus::default());
    let notified = notify(
        &store,
        &store,
        &bus,
        &delayed_to("2026-12-01T10:30:00-08:00"),
        None,
        limits(),
    )
    .await
    .unwrap();
    assert!(notified.created);
    assert_eq!(notified.alert.publication, Publication::Published);
    assert_eq!(bus.published.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn an_alert_the_bus_refuses_is_accepted_and_left_pending_for_the_relay() {
    let (store, bus) = (
        FakeAlerts::with_flight(),
        FakeBus {
            down: true,
            ..FakeBus::default()
        },
    );
    let notified = notify(
        &store,
        &store,
        &bus,
        &delayed_to("2026-12-01T10:30:00-08:00"),
        None,
        limits(),
    )
    .await
    .unwrap();
    assert!(notified.created);
    assert_eq!(notified.alert.publication, Publication::Pending);
}

#[tokio::test]
async fn an_unknown_flight_and_a_delay_that_is_no_delay_are_refused_before_recording() {
    let (store, bus) = (FakeAlerts::default(), FakeBus::default());
    let e = notify(
        &store,
        &store,
        &bus,
        &delayed_to("2026-12-01T10:30:00-08:00"),
        None,
        limits(),
    )
    .await;
    assert!(matches!(e, Err(NotifyError::UnknownFlight(_))), "{e:?}");
    let store = FakeAlerts::with_flight();
    let e = notify(
        &store,
        &store,
        &bus,
        &delayed_to("2026-12-01T08:00:00-08:00"),
        None,
        limits(),
    )
    .await;
    assert!(matches!(e, Err(NotifyError::Contradicts(_))), "{e:?}");
    assert!(store.alerts.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_key_is_replayed_with_its_first_answer_and_refused_for_another_request() {
    let (store, bus) = (FakeAlerts::with_flight(), FakeBus::default());
    let first = delayed_to("2026-12-01T10:30:00-08:00");
    let key = idempotency::for_notification("k1".into(), &first);
    let a = notify(&store, &store, &bus, &first, Some(&key), limits())
        .await
        .unwrap();
    let b = notify(&store, &store, &bus, &first, Some(&key), limits())
        .await
        .unwrap();
    assert_eq!(a.alert.id, b.alert.id);
    assert_eq!(bus.published.lock().unwrap().len(), 1, "texted once");
    let other = delayed_to("2026-12-01T11:00:00-08:00");
    let reused = idempotency::for_notification("k1".into(), &other);
    let e = notify(&store, &store, &bus, &other, Some(&reused), limits()).await;
    assert!(matches!(e, Err(NotifyError::KeyReused)), "{e:?}");
}

#[tokio::test]
async fn alerts_are_listed_a_page_at_a_time() {
    let (store, bus) = (FakeAlerts::with_flight(), FakeBus::default());
    for t in ["10:30", "11:00", "11:30"] {
        let n = delayed_to(&format!("2026-12-01T{t}:00-08:00"));
        notify(&store, &store, &bus, &n, None, limits())
            .await
            .unwrap();
    }
    let query = AlertQuery {
        limit: 2,
        ..AlertQuery::default()
    };
    let first = list(&store, &query).await.unwrap();
    assert_eq!(first.alerts.len(), 2);
    let next = AlertQuery {
        before_seq: first.next_before,
        ..query
    };
    let second = list(&store, &next).await.unwrap();
    assert_eq!(second.alerts.len(), 1);
    assert_eq!(second.next_before, None, "no empty last page");
}

#[tokio::test]
async fn the_relay_sets_aside_what_it_cannot_read_and_housekeeping_never_stops_it() {
    let store = FakeAlerts {
        housekeeping_fails: true,
        ..FakeAlerts::with_flight()
    };
    let down = FakeBus {
        down: true,
        ..FakeBus::default()
    };
    for t in ["10:30", "11:00"] {
        let n = delayed_to(&format!("2026-12-01T{t}:00-08:00"));
        notify(&store, &store, &down, &n, None, limits())
            .await
            .unwrap();
    }
    store.unreadable.lock().unwrap().push(1);
    let bus = FakeBus::default();
    let report = relay::relay(&store, &bus, 10, Duration::from_secs(1))
        .await
        .unwrap();
    assert_eq!((report.published, report.set_aside), (1, 1));
    assert_eq!(*store.set_aside.lock().unwrap(), [1]);
}

#[tokio::test]
async fn a_flight_gone_for_a_day_is_refused_before_recording() {
    let (store, bus) = (FakeAlerts::with_flight(), FakeBus::default());
    let cancelled = Notification {
        event: FlightEvent::Cancelled,
        ..delayed_to("2026-12-01T10:30:00-08:00")
    };
    let two_days_later = Limits {
        now: parse_time("2026-12-03T12:00:00Z").unwrap().to_utc(),
        ..limits()
    };
    let e = notify(&store, &store, &bus, &cancelled, None, two_days_later).await;
    assert!(
        matches!(e, Err(NotifyError::Refused(Refusal::Departed { .. }))),
        "{e:?}"
    );
    assert!(store.alerts.lock().unwrap().is_empty());
    assert!(bus.published.lock().unwrap().is_empty());
}

#[tokio::test]
async fn alerts_past_the_daily_limit_are_refused_with_when_to_retry() {
    let (store, bus) = (FakeAlerts::with_flight(), FakeBus::default());
    let two_a_day = Limits {
        spend: SpendLimits { alerts_per_day: 2 },
        ..limits()
    };
    for t in ["10:30", "11:00"] {
        let n = delayed_to(&format!("2026-12-01T{t}:00-08:00"));
        notify(&store, &store, &bus, &n, None, two_a_day)
            .await
            .unwrap();
    }
    let third = delayed_to("2026-12-01T11:30:00-08:00");
    let e = notify(&store, &store, &bus, &third, None, two_a_day).await;
    let Err(NotifyError::Refused(Refusal::TooManyAlerts { limit, retry_after })) = e else {
        panic!("{e:?}")
    };
    assert_eq!(limit, 2);
    assert!(
        retry_after > Duration::from_secs(23 * 3600),
        "{retry_after:?}"
    );
    assert_eq!(bus.published.lock().unwrap().len(), 2);
}

#[tokio::test]
async fn a_pass_out_of_time_between_parts_hands_the_rest_to_the_next_pass() {
    let store = FakeAlerts {
        recipients: 1200, // three parts of at most 500
        ..FakeAlerts::with_flight()
    };
    let down = FakeBus {
        down: true,
        ..FakeBus::default()
    };
    notify(
        &store,
        &store,
        &down,
        &delayed_to("2026-12-01T10:30:00-08:00"),
        None,
        limits(),
    )
    .await
    .unwrap();
    // Each publish takes longer than the whole budget: one part per pass, none twice.
    let slow = FakeBus {
        takes: Duration::from_millis(5),
        ..FakeBus::default()
    };
    let budget = Duration::from_millis(2);
    for pass in 1..=2 {
        let report = relay::relay(&store, &slow, 10, budget).await.unwrap();
        assert_eq!((report.published, report.paused), (0, 1), "pass {pass}");
        assert_eq!(slow.published.lock().unwrap().len(), pass);
    }
    let report = relay::relay(&store, &slow, 10, budget).await.unwrap();
    assert_eq!((report.published, report.paused), (1, 0));
    let parts: Vec<u32> = slow
        .published
        .lock()
        .unwrap()
        .iter()
        .map(|m| m.part)
        .collect();
    assert_eq!(parts, [1, 2, 3]);
    assert_eq!(*store.released.lock().unwrap(), 2);
}
