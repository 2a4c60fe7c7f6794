//! The use cases over in-memory fakes of the ports: what each decides, without a database. The
//! same behaviours run against MySQL and SQLite in the storage contract and end to end.

#![allow(clippy::unwrap_used)] // a test that cannot unwrap has failed

use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use flightwatch_app::notify::{notify, Limits, NotifyError};
use flightwatch_app::{idempotency, list, relay};
use flightwatch_domain::flight::parse_time;
use flightwatch_domain::ports::{
    AlertBus, AlertListing, BusError, Claimed, Handout, Idempotency, Notifications, Outbox,
    Recorded, Settled, StoreError,
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
        per_second: None,
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
    /// Recipients of every alert (2 unless a test wants a big one).
    recipients: usize,
    /// The ledger: each alert's recipients, and whether each is out.
    ledger: Mutex<std::collections::BTreeMap<i64, Vec<(PhoneNumber, bool)>>>,
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
            recipients: self.recipients() as u32,
            publication: Publication::Pending,
            created_at: now,
        };
        let phones = (0..self.recipients())
            .map(|i| {
                (
                    PhoneNumber::parse(&format!("+1415555{i:04}")).unwrap(),
                    false,
                )
            })
            .collect();
        self.ledger.lock().unwrap().insert(alert.seq, phones);
        alerts.push((alert.clone(), idempotency.cloned()));
        Ok(Recorded::Created(alert))
    }

    async fn record_and_hand_out(
        &self,
        id: AlertId,
        n: &Notification,
        idempotency: Option<&Idempotency>,
        limits: &SpendLimits,
        limit: u32,
        per_second: Option<NonZeroU32>,
    ) -> Result<(Recorded, Vec<Claimed>), StoreError> {
        let recorded = self.record(id, n, idempotency, limits).await?;
        let claimed = match &recorded {
            Recorded::Created(_) => {
                Outbox::hand_out(self, Some(id), limit, per_second, Utc::now()).await?
            }
            _ => Vec::new(),
        };
        Ok((recorded, claimed))
    }

    async fn flight_departing(
        &self,
        number: &FlightNumber,
        at: DateTime<Utc>,
    ) -> Result<Option<FlightSchedule>, StoreError> {
        Ok(self
            .flights
            .iter()
            .find(|f| &f.flight_number == number && f.scheduled_departure.to_utc() == at)
            .cloned())
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
    async fn settle(&self, _: DateTime<Utc>) -> Result<Settled, StoreError> {
        Ok(Settled::default())
    }

    async fn hand_out(
        &self,
        id: Option<AlertId>,
        limit: u32,
        _: Option<NonZeroU32>,
        _: DateTime<Utc>,
    ) -> Result<Vec<Claimed>, StoreError> {
        let alerts = self.alerts.lock().unwrap();
        let set_aside = self.set_aside.lock().unwrap();
        let mut ledger = self.ledger.lock().unwrap();
        let mut left = limit as usize;
        let mut claimed = Vec::new();
        for (a, _) in alerts.iter() {
            if id.is_some_and(|id| id != a.id) || set_aside.contains(&a.seq) || left == 0 {
                continue;
            }
            let due: Vec<_> = ledger
                .get_mut(&a.seq)
                .unwrap()
                .iter_mut()
                .filter(|(_, out)| !out)
                .take(left)
                .map(|(phone, out)| {
                    *out = true;
                    phone.clone()
                })
                .collect();
            if due.is_empty() {
                continue;
            }
            left -= due.len();
            if self.unreadable.lock().unwrap().contains(&a.seq) {
                claimed.push(Claimed::Unreadable {
                    seq: a.seq,
                    error: StoreError::permanent("stored origin is not valid"),
                });
            } else {
                claimed.push(Claimed::Ready(Handout {
                    alert: a.clone(),
                    flight: self.flights[0].clone(),
                    attempt: 1,
                    recipients: due,
                    pace: None,
                }));
            }
        }
        Ok(claimed)
    }

    async fn confirm(
        &self,
        seq: i64,
        _: u32,
        _: &[PhoneNumber],
        _: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let ledger = self.ledger.lock().unwrap();
        for (a, _) in self.alerts.lock().unwrap().iter_mut() {
            if a.seq == seq && ledger[&a.seq].iter().all(|(_, out)| *out) {
                a.publication = Publication::Published;
            }
        }
        Ok(())
    }

    async fn set_aside(&self, seq: i64, _: &str, _: DateTime<Utc>) -> Result<(), StoreError> {
        self.set_aside.lock().unwrap().push(seq);
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

    fn recipients(&self) -> usize {
        if self.recipients == 0 {
            2
        } else {
            self.recipients
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
    // Recorded, not yet handed out.
    for t in ["10:30", "11:00"] {
        let n = delayed_to(&format!("2026-12-01T{t}:00-08:00"));
        store
            .record(AlertId::new(), &n, None, &SpendLimits::default())
            .await
            .unwrap();
    }
    store.unreadable.lock().unwrap().push(1);
    let bus = FakeBus::default();
    let report = relay::relay(&store, &bus, None, Duration::from_secs(1), limits().now)
        .await
        .unwrap();
    assert_eq!((report.handed_out, report.set_aside), (2, 1));
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
async fn a_pass_hands_out_no_more_than_the_sms_budget_sends_before_the_next() {
    let store = FakeAlerts {
        recipients: 1200,
        ..FakeAlerts::with_flight()
    };
    let down = FakeBus {
        down: true,
        ..FakeBus::default()
    };
    // 5 a second: 300 a minute, the relay's interval.
    let five_a_second = NonZeroU32::new(5);
    let paced = Limits {
        per_second: five_a_second,
        ..limits()
    };
    let n = delayed_to("2026-12-01T10:30:00-08:00");
    let notified = notify(&store, &store, &down, &n, None, paced)
        .await
        .unwrap();
    assert_eq!(notified.alert.publication, Publication::Pending);
    let bus = FakeBus::default();
    let mut per_pass = Vec::new();
    for _ in 0..4 {
        let pass = relay::relay(
            &store,
            &bus,
            five_a_second,
            Duration::from_secs(1),
            limits().now,
        );
        per_pass.push(pass.await.unwrap().handed_out);
    }
    // The request's 300 went to a bus that was down (due again after the wait, in the store).
    assert_eq!(per_pass, [300, 300, 300, 0]);
    let published: usize = bus
        .published
        .lock()
        .unwrap()
        .iter()
        .map(|m| m.recipients.len())
        .sum();
    assert_eq!(published, 900);
}
