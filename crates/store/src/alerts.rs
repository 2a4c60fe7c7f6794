//! The alert store: alerts, recipients, outbox and idempotency keys, owned by the alerts
//! function; flights data only through the `flight_schedules` and `passenger_phones` views.

use std::num::NonZeroU32;
use std::time::Duration;

use async_trait::async_trait;
use chrono::DateTime;
use chrono::Utc;
use flightwatch_domain::delivery::timing;
use flightwatch_domain::ports::{
    AlertListing, AlertStore, Claimed, DeliveryLedger, Handout, Idempotency, Notifications, Outbox,
    Recorded, Settled, StoreError, PACE_WINDOW,
};
use flightwatch_domain::{
    AirportCode, Alert, AlertId, AlertQuery, CarrierOutcome, DeliveryCounts, DeliveryReport,
    DeliveryState, FailureClass, FlightKey, FlightNumber, FlightSchedule, Notification, Outcome,
    PhoneNumber, Publication, Reason, RecipientDelivery, SpendLimits,
};
use sqlx::Pool;

use crate::{invalid, local, parse, split, stamp, store_error, Arg, Dialect, Done};

pub struct SqlAlertStore<DB: Dialect> {
    pool: Pool<DB>,
}

impl<DB: Dialect> Clone for SqlAlertStore<DB> {
    fn clone(&self) -> Self {
        Self::new(self.pool.clone())
    }
}

impl<DB: Dialect> SqlAlertStore<DB> {
    pub fn new(pool: Pool<DB>) -> Self {
        Self { pool }
    }
}

const ALERT_COLUMNS: &str =
    "a.seq, a.alert_id, a.flight_number, a.departure_date, a.event, a.reason, \
     a.estimated_departure_utc, a.estimated_offset_min, a.recipients, a.created_at, \
     o.published_at, o.set_aside_at";

const ALERT_FROM: &str = "FROM alerts a JOIN alert_outbox o ON o.alert_seq = a.seq";

fn alert_from_row<DB: Dialect>(r: &DB::Row) -> Result<Alert, sqlx::Error> {
    Ok(Alert {
        seq: DB::int(r, "seq")?,
        id: parse::<DB, _, _>(r, "alert_id", str::parse)?,
        flight_number: parse::<DB, _, _>(r, "flight_number", FlightNumber::parse)?,
        departure_date: DB::date(r, "departure_date")?,
        event: parse::<DB, _, _>(r, "event", str::parse)?,
        reason: DB::opt_text(r, "reason")?
            .as_deref()
            .map(Reason::parse)
            .transpose()
            .map_err(|_| invalid("reason"))?,
        estimated_departure: local::<DB>(r, "estimated_departure_utc", "estimated_offset_min")?,
        recipients: u32::try_from(DB::int(r, "recipients")?).map_err(|_| invalid("recipients"))?,
        publication: match (
            DB::opt_stamp(r, "published_at")?,
            DB::opt_stamp(r, "set_aside_at")?,
        ) {
            (Some(_), _) => Publication::Published,
            (None, Some(_)) => Publication::Failed,
            (None, None) => Publication::Pending,
        },
        created_at: stamp::<DB>(r, "created_at")?,
    })
}

#[async_trait]
impl<DB: Dialect> Notifications for SqlAlertStore<DB> {
    async fn schedule(&self, flight: &FlightKey) -> Result<Option<FlightSchedule>, StoreError> {
        let mut conn = self.pool.acquire().await.map_err(store_error::<DB>)?;
        schedule::<DB>(&mut conn, flight)
            .await
            .map_err(store_error::<DB>)
    }

    async fn flight_departing(
        &self,
        number: &FlightNumber,
        at: DateTime<Utc>,
    ) -> Result<Option<FlightSchedule>, StoreError> {
        let result = async {
            let mut conn = self.pool.acquire().await?;
            let rows = DB::fetch_all(
                &mut conn,
                "SELECT departure_date FROM flight_schedules \
                 WHERE flight_number = ? AND departure_utc = ?",
                vec![Arg::Text(number.as_str()), Arg::At(at)],
            )
            .await?;
            let Some(date) = rows
                .first()
                .map(|r| DB::date(r, "departure_date"))
                .transpose()?
            else {
                return Ok(None);
            };
            let key = FlightKey {
                number: number.clone(),
                date,
            };
            schedule::<DB>(&mut conn, &key).await
        };
        result.await.map_err(store_error::<DB>)
    }

    async fn record(
        &self,
        id: AlertId,
        notification: &Notification,
        idempotency: Option<&Idempotency>,
        limits: &SpendLimits,
    ) -> Result<Recorded, StoreError> {
        let (recorded, _) = self
            .record_with(id, notification, idempotency, limits, None)
            .await?;
        Ok(recorded)
    }

    async fn record_and_hand_out(
        &self,
        id: AlertId,
        notification: &Notification,
        idempotency: Option<&Idempotency>,
        limits: &SpendLimits,
        limit: u32,
        per_second: Option<NonZeroU32>,
    ) -> Result<(Recorded, Vec<Claimed>), StoreError> {
        self.record_with(
            id,
            notification,
            idempotency,
            limits,
            Some((limit, per_second)),
        )
        .await
    }

    async fn replay(&self, idempotency: &Idempotency) -> Result<Option<Recorded>, StoreError> {
        self.replay_key(idempotency)
            .await
            .map_err(store_error::<DB>)
    }
}

#[async_trait]
impl<DB: Dialect> AlertListing for SqlAlertStore<DB> {
    async fn list(&self, q: &AlertQuery) -> Result<Vec<(Alert, DeliveryCounts)>, StoreError> {
        let mut sql = format!("SELECT {ALERT_COLUMNS} {ALERT_FROM} WHERE TRUE");
        let mut args = Vec::new();
        if let Some(n) = &q.flight_number {
            sql.push_str(" AND a.flight_number = ?");
            args.push(Arg::Text(n.as_str()));
        }
        if let Some(d) = q.departure_date {
            sql.push_str(" AND a.departure_date = ?");
            args.push(Arg::Date(d));
        }
        if let Some(e) = q.event {
            sql.push_str(" AND a.event = ?");
            args.push(Arg::Text(e.as_str()));
        }
        if let Some(since) = q.since {
            sql.push_str(" AND a.created_at >= ?");
            args.push(Arg::Stamp(since));
        }
        if let Some(before) = q.before_seq {
            sql.push_str(" AND a.seq < ?");
            args.push(Arg::Int(before.max(0)));
        }
        sql.push_str(" ORDER BY a.seq DESC LIMIT ?");
        args.push(Arg::Int(i64::from(q.limit)));
        let result = async {
            let mut conn = self.pool.acquire().await?;
            let alerts = DB::fetch_all(&mut conn, &sql, args)
                .await?
                .iter()
                .map(alert_from_row::<DB>)
                .collect::<Result<Vec<_>, _>>()?;
            let mut counts = delivery_counts::<DB>(&mut conn, &alerts).await?;
            Ok(alerts
                .into_iter()
                .map(|a| {
                    let c = counts.remove(&a.seq).unwrap_or_default();
                    (a, c)
                })
                .collect())
        };
        result.await.map_err(store_error::<DB>)
    }

    async fn details(
        &self,
        id: AlertId,
    ) -> Result<Option<(Alert, Vec<RecipientDelivery>)>, StoreError> {
        let result = async {
            let mut conn = self.pool.acquire().await?;
            let id = id.to_string();
            let sql = format!("SELECT {ALERT_COLUMNS} {ALERT_FROM} WHERE a.alert_id = ?");
            let rows = DB::fetch_all(&mut conn, &sql, vec![Arg::Text(&id)]).await?;
            let Some(alert) = rows.first().map(alert_from_row::<DB>).transpose()? else {
                return Ok(None);
            };
            let recipients = DB::fetch_all(
                &mut conn,
                "SELECT phone, state, failure, updated_at FROM alert_recipients \
                 WHERE alert_seq = ? ORDER BY phone",
                vec![Arg::Int(alert.seq)],
            )
            .await?
            .iter()
            .map(|r| {
                Ok(RecipientDelivery {
                    phone: parse::<DB, _, _>(r, "phone", PhoneNumber::parse)?,
                    state: parse::<DB, _, _>(r, "state", str::parse)?,
                    failure: DB::opt_text(r, "failure")?
                        .map(|f| f.parse().map_err(|_| invalid("failure")))
                        .transpose()?,
                    updated_at: DB::opt_stamp(r, "updated_at")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()?;
            Ok(Some((alert, recipients)))
        };
        result.await.map_err(store_error::<DB>)
    }
}

/// `alert_recipients.handed_out`: not out; out without the bus's acknowledgement; on the bus.
const NOT_OUT: i64 = 0;
const UNCONFIRMED: i64 = 1;
const ON_THE_BUS: i64 = 2;

#[async_trait]
impl<DB: Dialect> DeliveryLedger for SqlAlertStore<DB> {
    #[tracing::instrument(skip_all, fields(alert_id = %report.alert_id, attempt = report.attempt, outcomes = report.outcomes.len()))]
    async fn record_outcomes(
        &self,
        report: &DeliveryReport,
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let id = report.alert_id.to_string();
        // The alert by its id inside each statement, rather than looked up first: a report whose
        // outcomes are all of one kind (the usual: all sent) is then one statement, which is its
        // own transaction, one round trip instead of four (BEGIN, the lookup, the update, COMMIT),
        // and holds the database that much less (on SQLite, its one connection).
        const SEQ: &str = "alert_seq = (SELECT seq FROM alerts WHERE alert_id = ?)";
        let attempt = i64::from(report.attempt);
        let retry_at = timing::after(now, timing::backoff(report.attempt));
        // One statement per kind of outcome (and per 200 recipients), not per recipient.
        let mut sent: Vec<(&str, &str)> = Vec::new();
        let mut failed: std::collections::BTreeMap<&str, Vec<&str>> = Default::default();
        let (mut retry, mut unknown, mut untried) = (Vec::new(), Vec::new(), Vec::new());
        for o in &report.outcomes {
            let phone = o.phone.expose();
            match &o.outcome {
                Outcome::Sent { message_id } => sent.push((phone, message_id.as_str())),
                Outcome::Failed { class } => failed.entry(class.as_str()).or_default().push(phone),
                Outcome::Retry => retry.push(phone),
                Outcome::Unknown => unknown.push(phone),
                Outcome::Untried => untried.push(phone),
            }
        }
        let mut statements: Vec<(String, Vec<Arg<'_>>)> = Vec::new();
        // A settled state never goes back to pending. A SENT report is the truth whatever the
        // ledger had concluded (a failure for want of news, say); a failure settles only what
        // is still pending; a retry, an untried or an unknown recipient changes only if it is
        // still out on this very attempt, so a late report cannot undo a later one.
        for chunk in sent.chunks(200) {
            let cases = vec!["WHEN ? THEN ?"; chunk.len()].join(" ");
            let marks = vec!["?"; chunk.len()].join(", ");
            let sql = format!(
                "UPDATE alert_recipients SET state = 'SENT', \
                 message_id = CASE phone {cases} END, failure = NULL, handed_out = 0, \
                 updated_at = ? WHERE {SEQ} AND phone IN ({marks}) \
                 AND state IN ('PENDING', 'FAILED') \
                 AND (failure IS NULL OR failure <> 'UNDELIVERED')"
            );
            let mut args = Vec::with_capacity(chunk.len() * 3 + 2);
            for (phone, id) in chunk {
                args.extend([Arg::Text(phone), Arg::Text(id)]);
            }
            args.extend([Arg::Stamp(now), Arg::Text(&id)]);
            args.extend(chunk.iter().map(|(phone, _)| Arg::Text(phone)));
            statements.push((sql, args));
        }
        let groups: Vec<(&str, Vec<Arg<'_>>, &[&str])> = failed
            .iter()
            .map(|(class, phones)| {
                (
                    "SET state = 'FAILED', failure = ?, handed_out = 0, updated_at = ? \
                     WHERE {SEQ} AND state = 'PENDING'",
                    vec![Arg::Text(class), Arg::Stamp(now), Arg::Text(&id)],
                    phones.as_slice(),
                )
            })
            .chain([
                (
                    "SET handed_out = 0, due_at = ?, updated_at = ? WHERE {SEQ} \
                     AND state = 'PENDING' AND handed_out <> 0 AND attempts = ?",
                    vec![
                        Arg::Stamp(retry_at),
                        Arg::Stamp(now),
                        Arg::Text(&id),
                        Arg::Int(attempt),
                    ],
                    retry.as_slice(),
                ),
                (
                    "SET state = 'FAILED', failure = 'OUTCOME_UNKNOWN', handed_out = 0, \
                     updated_at = ? WHERE {SEQ} AND state = 'PENDING' AND attempts = ?",
                    vec![Arg::Stamp(now), Arg::Text(&id), Arg::Int(attempt)],
                    unknown.as_slice(),
                ),
                (
                    "SET handed_out = 0, due_at = ?, attempts = attempts - 1, updated_at = ? \
                     WHERE {SEQ} AND state = 'PENDING' AND handed_out <> 0 AND attempts = ?",
                    vec![
                        Arg::Stamp(now),
                        Arg::Stamp(now),
                        Arg::Text(&id),
                        Arg::Int(attempt),
                    ],
                    untried.as_slice(),
                ),
            ])
            .collect();
        for (clause, head, phones) in groups {
            for chunk in phones.chunks(200) {
                let marks = vec!["?"; chunk.len()].join(", ");
                let clause = clause.replace("{SEQ}", SEQ);
                let sql = format!("UPDATE alert_recipients {clause} AND phone IN ({marks})");
                let mut args = head.clone();
                args.extend(chunk.iter().map(|phone| Arg::Text(phone)));
                statements.push((sql, args));
            }
        }
        let result = async {
            let mut changed = 0;
            if let [(sql, args)] = statements.as_slice() {
                let mut conn = self.pool.acquire().await?;
                changed = DB::exec(&mut conn, sql, args.clone()).await?.rows;
            } else if !statements.is_empty() {
                let mut tx = DB::begin_write(&self.pool).await?;
                for (sql, args) in &statements {
                    changed += DB::exec(&mut tx, sql, args.clone()).await?.rows;
                }
                tx.commit().await?;
            }
            if changed == 0 {
                // Only then is it worth knowing whether the alert is ours at all.
                let mut conn = self.pool.acquire().await?;
                let known = DB::fetch_all(
                    &mut conn,
                    "SELECT seq FROM alerts WHERE alert_id = ?",
                    vec![Arg::Text(&id)],
                )
                .await?;
                if known.is_empty() {
                    // Not ours (another stage's alert, a hand-made message): nothing to record.
                    tracing::warn!("delivery report for an unknown alert ignored");
                }
            }
            Ok(changed)
        };
        result.await.map_err(store_error::<DB>)
    }

    async fn record_carrier(
        &self,
        outcomes: &[CarrierOutcome],
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let result = async {
            let mut conn = self.pool.acquire().await?;
            let mut changed = 0;
            for o in outcomes {
                // Only a SENT recipient learns from the carrier; DELIVERED is final.
                let (state, failure) = if o.delivered {
                    ("DELIVERED", None)
                } else {
                    ("FAILED", Some(FailureClass::Undelivered.as_str()))
                };
                changed += DB::exec(
                    &mut conn,
                    "UPDATE alert_recipients SET state = ?, failure = ?, updated_at = ? \
                     WHERE message_id = ? AND state = 'SENT'",
                    vec![
                        Arg::Text(state),
                        Arg::OptText(failure),
                        Arg::Stamp(now),
                        Arg::Text(&o.message_id),
                    ],
                )
                .await?
                .rows;
            }
            Ok(changed)
        };
        result.await.map_err(store_error::<DB>)
    }
}

#[async_trait]
impl<DB: Dialect> Outbox for SqlAlertStore<DB> {
    async fn settle(&self, now: DateTime<Utc>) -> Result<Settled, StoreError> {
        let unknown = self
            .exec(
                "UPDATE alert_recipients SET state = 'FAILED', failure = 'OUTCOME_UNKNOWN', \
                 handed_out = 0, updated_at = ? \
                 WHERE state = 'PENDING' AND handed_out = ? AND due_at <= ?",
                vec![Arg::Stamp(now), Arg::Int(ON_THE_BUS), Arg::Stamp(now)],
            )
            .await?
            .rows;
        // due_at is already past: due again at once.
        let unconfirmed = self
            .exec(
                "UPDATE alert_recipients SET handed_out = ? \
                 WHERE state = 'PENDING' AND handed_out = ? AND due_at <= ?",
                vec![Arg::Int(NOT_OUT), Arg::Int(UNCONFIRMED), Arg::Stamp(now)],
            )
            .await?
            .rows;
        // Not while out: the report may still come.
        let expired = self
            .exec(
                "UPDATE alert_recipients SET state = 'FAILED', failure = 'EXPIRED', updated_at = ? \
                 WHERE state = 'PENDING' AND handed_out = ? AND alert_seq IN \
                 (SELECT seq FROM alerts WHERE deliver_until <= ?)",
                vec![Arg::Stamp(now), Arg::Int(NOT_OUT), Arg::Stamp(now)],
            )
            .await?
            .rows;
        Ok(Settled {
            unknown,
            unconfirmed,
            expired,
        })
    }

    async fn hand_out(
        &self,
        alert: Option<AlertId>,
        limit: u32,
        per_second: Option<NonZeroU32>,
        now: DateTime<Utc>,
    ) -> Result<Vec<Claimed>, StoreError> {
        let result = async {
            let mut tx = DB::begin_write(&self.pool).await?;
            let id = alert.map(|a| a.to_string());
            let claimed = self
                .hand_out_in(&mut tx, id.as_deref(), limit, per_second, now)
                .await?;
            tx.commit().await?;
            Ok(claimed)
        };
        result.await.map_err(store_error::<DB>)
    }

    async fn confirm(
        &self,
        seq: i64,
        attempt: u32,
        recipients: &[PhoneNumber],
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let result = async {
            let mut conn = self.pool.acquire().await?;
            let wait = timing::after(now, timing::REPORT_WAIT);
            for chunk in recipients.chunks(500) {
                let marks = vec!["?"; chunk.len()].join(", ");
                // Only what is still out unconfirmed on this attempt: the report may be in first.
                let sql = format!(
                    "UPDATE alert_recipients SET handed_out = ?, due_at = ? WHERE alert_seq = ? \
                     AND state = 'PENDING' AND handed_out = ? AND attempts = ? AND phone IN ({marks})"
                );
                let mut args = vec![
                    Arg::Int(ON_THE_BUS),
                    Arg::Stamp(wait),
                    Arg::Int(seq),
                    Arg::Int(UNCONFIRMED),
                    Arg::Int(i64::from(attempt)),
                ];
                args.extend(chunk.iter().map(|p| Arg::Text(p.expose())));
                DB::exec(&mut conn, &sql, args).await?;
            }
            // Published once every recipient has been on the bus (or settled without it).
            DB::exec(
                &mut conn,
                "UPDATE alert_outbox SET published_at = ?, last_error = NULL \
                 WHERE alert_seq = ? AND published_at IS NULL AND NOT EXISTS \
                 (SELECT 1 FROM alert_recipients r WHERE r.alert_seq = ? \
                  AND r.state = 'PENDING' AND r.handed_out <> ?)",
                vec![
                    Arg::Stamp(now),
                    Arg::Int(seq),
                    Arg::Int(seq),
                    Arg::Int(ON_THE_BUS),
                ],
            )
            .await?;
            Ok(())
        };
        result.await.map_err(store_error::<DB>)
    }

    async fn set_aside(&self, seq: i64, error: &str, now: DateTime<Utc>) -> Result<(), StoreError> {
        let error: String = error.chars().take(500).collect();
        self.exec(
            "UPDATE alert_outbox SET set_aside_at = ?, last_error = ? \
             WHERE alert_seq = ? AND published_at IS NULL",
            vec![Arg::Stamp(now), Arg::Text(&error), Arg::Int(seq)],
        )
        .await?;
        self.exec(
            "UPDATE alert_recipients SET state = 'FAILED', failure = 'NOT_PUBLISHED', \
             handed_out = 0, updated_at = ? WHERE alert_seq = ? AND state = 'PENDING'",
            vec![Arg::Stamp(now), Arg::Int(seq)],
        )
        .await
        .map(drop)
    }

    async fn forget_keys_older_than(&self, age: Duration) -> Result<u64, StoreError> {
        let before = Utc::now() - chrono::Duration::from_std(age).unwrap_or_default();
        let sql = "DELETE FROM idempotency_keys WHERE created_at < ?";
        Ok(self.exec(sql, vec![Arg::Stamp(before)]).await?.rows)
    }
}

#[async_trait]
impl<DB: Dialect> AlertStore for SqlAlertStore<DB> {
    async fn ping(&self) -> Result<(), StoreError> {
        self.exec("SELECT 1", vec![]).await.map(drop)
    }
}

impl<DB: Dialect> SqlAlertStore<DB> {
    async fn exec(&self, sql: &str, args: Vec<Arg<'_>>) -> Result<Done, StoreError> {
        let mut conn = self.pool.acquire().await.map_err(store_error::<DB>)?;
        DB::exec(&mut conn, sql, args)
            .await
            .map_err(store_error::<DB>)
    }

    /// `Outbox::hand_out` inside the write transaction `tx` (of `alert`, by id, or of any).
    /// Fails only on what fails the transaction; an alert it cannot read comes back
    /// `Unreadable`.
    async fn hand_out_in(
        &self,
        tx: &mut DB::Connection,
        alert: Option<&str>,
        limit: u32,
        per_second: Option<NonZeroU32>,
        now: DateTime<Utc>,
    ) -> Result<Vec<Claimed>, sqlx::Error> {
        // Under a budget: the first free slot, and how many slots are free in the window.
        let (limit, mut next_slot) = match per_second {
            None => (limit, None),
            Some(rate) => {
                let free_from = lock_pace::<DB>(tx).await?.map_or(now, |t| t.max(now));
                let window = timing::after(now, PACE_WINDOW) - free_from;
                let free = window.num_microseconds().unwrap_or(0).max(0) * i64::from(rate.get())
                    / 1_000_000;
                (
                    limit.min(u32::try_from(free).unwrap_or(u32::MAX)),
                    Some((free_from, rate)),
                )
            }
        };
        if limit == 0 {
            return Ok(Vec::new());
        }
        let due = self.due_recipients(tx, alert, limit, now).await?;
        let mut claimed = Vec::new();
        for (seq, phones) in due {
            let handed = async {
                let (alert, flight) = load_with_facts::<DB>(tx, seq).await?;
                let wait = timing::after(now, timing::UNCONFIRMED_WAIT);
                // Marked out, then read back with their attempts: one message says one attempt.
                let mut by_attempt = std::collections::BTreeMap::<u32, Vec<PhoneNumber>>::new();
                for chunk in phones.chunks(500) {
                    let marks = vec!["?"; chunk.len()].join(", ");
                    let sql = format!(
                        "UPDATE alert_recipients SET handed_out = ?, attempts = attempts + 1, \
                         due_at = ? WHERE alert_seq = ? AND phone IN ({marks})"
                    );
                    let mut args = vec![Arg::Int(UNCONFIRMED), Arg::Stamp(wait), Arg::Int(seq)];
                    args.extend(chunk.iter().map(|p| Arg::Text(p)));
                    DB::exec(tx, &sql, args).await?;
                    let sql = format!(
                        "SELECT phone, attempts FROM alert_recipients \
                         WHERE alert_seq = ? AND phone IN ({marks}) ORDER BY phone"
                    );
                    let mut args = vec![Arg::Int(seq)];
                    args.extend(chunk.iter().map(|p| Arg::Text(p)));
                    for r in DB::fetch_all(tx, &sql, args).await? {
                        let attempt = u32::try_from(DB::int(&r, "attempts")?)
                            .map_err(|_| invalid("attempts"))?;
                        by_attempt
                            .entry(attempt)
                            .or_default()
                            .push(parse::<DB, _, _>(&r, "phone", PhoneNumber::parse)?);
                    }
                }
                Ok::<_, sqlx::Error>(by_attempt.into_iter().map(move |(attempt, recipients)| {
                    Handout {
                        alert: alert.clone(),
                        flight: flight.clone(),
                        attempt,
                        recipients,
                        pace: None,
                    }
                }))
            }
            .await;
            match handed {
                Ok(handouts) => {
                    for mut h in handouts {
                        // Each hand-out's slots follow the one before.
                        if let Some((first, rate)) = next_slot {
                            h.pace = Some((first, rate));
                            let n = h.recipients.len() as i64;
                            let takes = chrono::Duration::microseconds(
                                n * 1_000_000 / i64::from(rate.get()),
                            );
                            next_slot = Some((first + takes, rate));
                        }
                        claimed.push(Claimed::Ready(h));
                    }
                }
                Err(e) if DB::is_transient(&e) => return Err(e),
                Err(e) => claimed.push(Claimed::Unreadable {
                    seq,
                    error: store_error::<DB>(e),
                }),
            }
        }
        if let Some((next, _)) = next_slot {
            DB::exec(
                tx,
                "UPDATE sms_pace SET next_slot_at = ? WHERE id = 1",
                vec![Arg::Stamp(next)],
            )
            .await?;
        }
        Ok(claimed)
    }

    /// The recipients due at `now`, locked until the transaction ends, by alert, oldest first.
    async fn due_recipients(
        &self,
        tx: &mut DB::Connection,
        alert: Option<&str>,
        limit: u32,
        now: DateTime<Utc>,
    ) -> Result<Vec<(i64, Vec<String>)>, sqlx::Error> {
        let mut sql = String::from(
            "SELECT r.alert_seq, r.phone FROM alert_recipients r \
             JOIN alert_outbox o ON o.alert_seq = r.alert_seq \
             WHERE r.state = 'PENDING' AND r.handed_out = 0 AND r.due_at <= ? \
             AND o.set_aside_at IS NULL",
        );
        let mut args = vec![Arg::Stamp(now)];
        if let Some(id) = alert {
            sql.push_str(" AND r.alert_seq = (SELECT seq FROM alerts WHERE alert_id = ?)");
            args.push(Arg::Text(id));
        }
        sql.push_str(" ORDER BY r.alert_seq, r.phone LIMIT ?");
        sql.push_str(DB::FOR_UPDATE);
        args.push(Arg::Int(i64::from(limit)));
        let mut due: Vec<(i64, Vec<String>)> = Vec::new();
        for r in DB::fetch_all(tx, &sql, args).await? {
            let seq = DB::int(&r, "alert_seq")?;
            let phone = DB::text(&r, "phone")?;
            match due.last_mut() {
                Some((s, phones)) if *s == seq => phones.push(phone),
                _ => due.push((seq, vec![phone])),
            }
        }
        Ok(due)
    }

    #[tracing::instrument(skip_all, fields(flight_number = %notification.flight.number, alert_id = %id))]
    async fn record_with(
        &self,
        id: AlertId,
        notification: &Notification,
        idempotency: Option<&Idempotency>,
        limits: &SpendLimits,
        hand_out: Option<(u32, Option<NonZeroU32>)>,
    ) -> Result<(Recorded, Vec<Claimed>), StoreError> {
        // A concurrent identical event can win the insert between our check and our insert: the
        // second pass then finds it and answers with it.
        let mut attempt = 1;
        loop {
            match self
                .record_once(id, notification, idempotency, limits, hand_out)
                .await
            {
                Err(e) if attempt < crate::ATTEMPTS && DB::is_contention(&e) => attempt += 1,
                other => return other.map_err(store_error::<DB>),
            }
        }
    }

    /// Records the alert; hands out its recipients in the same transaction when `hand_out` says
    /// how many at most and within which budget.
    async fn record_once(
        &self,
        id: AlertId,
        n: &Notification,
        idempotency: Option<&Idempotency>,
        limits: &SpendLimits,
        hand_out: Option<(u32, Option<NonZeroU32>)>,
    ) -> Result<(Recorded, Vec<Claimed>), sqlx::Error> {
        let now = Utc::now();
        let mut tx = DB::begin_write(&self.pool).await?;
        if matches!(hand_out, Some((_, Some(_)))) && !DB::FOR_UPDATE.is_empty() {
            // Where rows are locked one by one (MySQL), the budget's row is taken first, in the
            // order a relay pass takes it and then the recipients: taken after this alert's new
            // recipients, a pass waiting on them could hold it, and the two would deadlock.
            lock_pace::<DB>(&mut tx).await?;
        }
        if let Some(idem) = idempotency {
            // A concurrent request with the same key waits here on the primary key until the
            // first one commits, then sees its answer.
            let claimed = DB::exec(
                &mut tx,
                "INSERT INTO idempotency_keys (idem_key, fingerprint, created_at) VALUES (?, ?, ?)",
                vec![
                    Arg::Text(&idem.key),
                    Arg::Text(&idem.fingerprint),
                    Arg::Stamp(now),
                ],
            )
            .await;
            match claimed {
                Ok(_) => {}
                Err(e) if crate::is_unique_violation(&e) => {
                    tx.rollback().await?;
                    // The duplicate key is committed (we waited on it), so it is there to replay.
                    let replayed = self
                        .replay_key(idem)
                        .await?
                        .ok_or_else(|| invalid("idempotency key vanished"))?;
                    return Ok((replayed, Vec::new()));
                }
                Err(e) => return Err(e),
            }
        }
        // A duplicate is an event identical to the flight's latest alert: the same report again.
        // The same event after a different one (10:30, then 11:00, then back to 10:30) is news.
        // The latest alerts also tell whether one more fits in the day's limit.
        let dedup = n.event.dedup_key();
        let recent = DB::fetch_all(
            &mut tx,
            "SELECT seq, event_key, created_at FROM alerts \
             WHERE flight_number = ? AND departure_date = ? ORDER BY seq DESC LIMIT ?",
            vec![
                Arg::Text(n.flight.number.as_str()),
                Arg::Date(n.flight.date),
                Arg::Int(i64::from(limits.alerts_per_day.max(1))),
            ],
        )
        .await?;
        let latest = recent
            .first()
            .map(|r| Ok::<_, sqlx::Error>((DB::int(r, "seq")?, DB::text(r, "event_key")?)))
            .transpose()?;
        if let Some((seq, key)) = &latest {
            if key.split('#').next() == Some(dedup.as_str()) {
                remember::<DB>(&mut tx, idempotency, *seq, false).await?;
                let alert = load_alert::<DB>(&mut tx, *seq).await?;
                tx.commit().await?;
                return Ok((Recorded::Duplicate(alert), Vec::new()));
            }
        }
        let created = recent
            .iter()
            .map(|r| stamp::<DB>(r, "created_at"))
            .collect::<Result<Vec<_>, _>>()?;
        if let Err(refusal) = limits.check_rate(now, &created) {
            // Rolled back: the key too, so the same request may come again once it fits.
            tx.rollback().await?;
            return Ok((Recorded::Refused(refusal), Vec::new()));
        }
        // The alert this one follows, unique per flight: of two reports racing past the checks
        // above, the second fails on the unique key and, retried, sees the first (a duplicate, or
        // one more alert against the limit). Part of the event key too, for the same reason.
        let follows = latest.map_or(0, |(seq, _)| seq);
        let event_key = format!("{dedup}#{follows}");
        // The facts the SMS will state, as they are now, in this transaction.
        let flight = schedule::<DB>(&mut tx, &n.flight)
            .await?
            .ok_or_else(|| invalid("the flight of a recorded alert is not registered"))?;
        let (sched, sched_off) = split(flight.scheduled_departure);
        let (est, est_off) = match n.event.estimated_departure() {
            Some(t) => {
                let (utc, off) = split(t);
                (Some(utc), Some(off))
            }
            None => (None, None),
        };
        let alert_id = id.to_string();
        let departs = est.unwrap_or(sched);
        let seq = DB::exec(
            &mut tx,
            "INSERT INTO alerts (alert_id, flight_number, departure_date, event, event_key, reason, \
             estimated_departure_utc, estimated_offset_min, recipients, created_at, origin, \
             destination, scheduled_departure_utc, scheduled_offset_min, follows_seq, \
             deliver_until) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?, ?, ?, ?, ?)",
            vec![
                Arg::Text(&alert_id),
                Arg::Text(n.flight.number.as_str()),
                Arg::Date(n.flight.date),
                Arg::Text(n.event.kind().as_str()),
                Arg::Text(&event_key),
                Arg::OptText(n.reason.as_ref().map(Reason::as_str)),
                Arg::OptAt(est),
                Arg::OptInt(est_off),
                Arg::Stamp(now),
                Arg::Text(flight.origin.as_str()),
                Arg::Text(flight.destination.as_str()),
                Arg::At(sched),
                Arg::Int(sched_off),
                Arg::Int(follows),
                Arg::Stamp(timing::deliver_until(now, departs)),
            ],
        )
        .await?
        .last_id;
        // Every recipient due at once, in the ledger.
        let recipients = DB::exec(
            &mut tx,
            "INSERT INTO alert_recipients (alert_seq, phone, due_at) \
             SELECT ?, phone, ? FROM passenger_phones WHERE flight_number = ? AND departure_date = ?",
            vec![
                Arg::Int(seq),
                Arg::Stamp(now),
                Arg::Text(n.flight.number.as_str()),
                Arg::Date(n.flight.date),
            ],
        )
        .await?
        .rows;
        DB::exec(
            &mut tx,
            "UPDATE alerts SET recipients = ? WHERE seq = ?",
            vec![Arg::Int(recipients as i64), Arg::Int(seq)],
        )
        .await?;
        // An alert to nobody has nothing to publish.
        DB::exec(
            &mut tx,
            "INSERT INTO alert_outbox (alert_seq, published_at) VALUES (?, ?)",
            vec![
                Arg::Int(seq),
                Arg::OptStamp((recipients == 0).then_some(now)),
            ],
        )
        .await?;
        remember::<DB>(&mut tx, idempotency, seq, true).await?;
        let claimed = match hand_out {
            Some((limit, per_second)) => {
                self.hand_out_in(&mut tx, Some(&alert_id), limit, per_second, now)
                    .await?
            }
            None => Vec::new(),
        };
        // A hand-out has read the alert already, in this transaction.
        let handed = claimed.iter().find_map(|c| match c {
            Claimed::Ready(h) => Some(h.alert.clone()),
            Claimed::Unreadable { .. } => None,
        });
        let alert = match handed {
            Some(alert) => alert,
            None => load_alert::<DB>(&mut tx, seq).await?,
        };
        tx.commit().await?;
        Ok((Recorded::Created(alert), claimed))
    }

    /// The first answer for this key, or `KeyReused`; `None` when the key is new.
    async fn replay_key(&self, idem: &Idempotency) -> Result<Option<Recorded>, sqlx::Error> {
        let mut conn = self.pool.acquire().await?;
        let rows = DB::fetch_all(
            &mut conn,
            "SELECT fingerprint, alert_seq, created FROM idempotency_keys WHERE idem_key = ?",
            vec![Arg::Text(&idem.key)],
        )
        .await?;
        let Some(row) = rows.first() else {
            return Ok(None);
        };
        if DB::text(row, "fingerprint")? != idem.fingerprint {
            return Ok(Some(Recorded::KeyReused));
        }
        // The key row and its alert are committed together, so a visible key has its alert.
        let seq = DB::opt_int(row, "alert_seq")?
            .ok_or_else(|| invalid("idempotency key without its alert"))?;
        let created = DB::bool(row, "created")?;
        let alert = load_alert::<DB>(&mut conn, seq).await?;
        Ok(Some(Recorded::Replayed { alert, created }))
    }
}

/// Each listed alert's recipients counted by state, in one query for the page.
async fn delivery_counts<DB: Dialect>(
    conn: &mut DB::Connection,
    alerts: &[Alert],
) -> Result<std::collections::HashMap<i64, DeliveryCounts>, sqlx::Error> {
    let mut counts = std::collections::HashMap::new();
    if alerts.is_empty() {
        return Ok(counts);
    }
    let marks = vec!["?"; alerts.len()].join(", ");
    let sql = format!(
        "SELECT alert_seq, state, COUNT(*) AS n FROM alert_recipients \
         WHERE alert_seq IN ({marks}) GROUP BY alert_seq, state"
    );
    let args = alerts.iter().map(|a| Arg::Int(a.seq)).collect();
    for r in DB::fetch_all(conn, &sql, args).await? {
        let state: DeliveryState = parse::<DB, _, _>(&r, "state", str::parse)?;
        let n = u32::try_from(DB::int(&r, "n")?).map_err(|_| invalid("count"))?;
        counts
            .entry(DB::int(&r, "alert_seq")?)
            .or_insert_with(DeliveryCounts::default)
            .add(state, n);
    }
    Ok(counts)
}

async fn load_alert<DB: Dialect>(
    conn: &mut DB::Connection,
    seq: i64,
) -> Result<Alert, sqlx::Error> {
    let sql = format!("SELECT {ALERT_COLUMNS} {ALERT_FROM} WHERE a.seq = ?");
    let rows = DB::fetch_all(conn, &sql, vec![Arg::Int(seq)]).await?;
    alert_from_row::<DB>(rows.first().ok_or(sqlx::Error::RowNotFound)?)
}

async fn schedule<DB: Dialect>(
    conn: &mut DB::Connection,
    flight: &FlightKey,
) -> Result<Option<FlightSchedule>, sqlx::Error> {
    let rows = DB::fetch_all(
        conn,
        "SELECT origin, destination, departure_utc, departure_offset_min FROM flight_schedules \
         WHERE flight_number = ? AND departure_date = ?",
        vec![Arg::Text(flight.number.as_str()), Arg::Date(flight.date)],
    )
    .await?;
    rows.first()
        .map(|r| {
            Ok(FlightSchedule {
                flight_number: flight.number.clone(),
                departure_date: flight.date,
                origin: parse::<DB, _, _>(r, "origin", AirportCode::parse)?,
                destination: parse::<DB, _, _>(r, "destination", AirportCode::parse)?,
                scheduled_departure: local::<DB>(r, "departure_utc", "departure_offset_min")?
                    .ok_or_else(|| invalid("departure"))?,
            })
        })
        .transpose()
}

/// The SMS budget's next free send slot, its row locked until the transaction ends (MySQL; a
/// SQLite write transaction holds the whole database already).
async fn lock_pace<DB: Dialect>(
    tx: &mut DB::Connection,
) -> Result<Option<DateTime<Utc>>, sqlx::Error> {
    let sql = format!(
        "SELECT next_slot_at FROM sms_pace WHERE id = 1{}",
        DB::FOR_UPDATE
    );
    let rows = DB::fetch_all(tx, &sql, vec![]).await?;
    rows.first()
        .map(|r| stamp::<DB>(r, "next_slot_at"))
        .transpose()
}

/// An alert with the flight as it was when the alert was recorded (what its SMS says), in one
/// query: a hand-out needs both.
async fn load_with_facts<DB: Dialect>(
    conn: &mut DB::Connection,
    seq: i64,
) -> Result<(Alert, FlightSchedule), sqlx::Error> {
    let sql = format!(
        "SELECT {ALERT_COLUMNS}, a.origin, a.destination, a.scheduled_departure_utc, \
         a.scheduled_offset_min {ALERT_FROM} WHERE a.seq = ?"
    );
    let rows = DB::fetch_all(conn, &sql, vec![Arg::Int(seq)]).await?;
    let r = rows.first().ok_or(sqlx::Error::RowNotFound)?;
    let alert = alert_from_row::<DB>(r)?;
    let (Some(origin), Some(destination), Some(departure)) = (
        DB::opt_text(r, "origin")?,
        DB::opt_text(r, "destination")?,
        local::<DB>(r, "scheduled_departure_utc", "scheduled_offset_min")?,
    ) else {
        return Err(invalid("alert facts (route, scheduled departure)"));
    };
    let flight = FlightSchedule {
        flight_number: alert.flight_number.clone(),
        departure_date: alert.departure_date,
        origin: AirportCode::parse(&origin).map_err(|_| invalid("origin"))?,
        destination: AirportCode::parse(&destination).map_err(|_| invalid("destination"))?,
        scheduled_departure: departure,
    };
    Ok((alert, flight))
}

async fn remember<DB: Dialect>(
    conn: &mut DB::Connection,
    idempotency: Option<&Idempotency>,
    seq: i64,
    created: bool,
) -> Result<(), sqlx::Error> {
    if let Some(idem) = idempotency {
        DB::exec(
            conn,
            "UPDATE idempotency_keys SET alert_seq = ?, created = ? WHERE idem_key = ?",
            vec![Arg::Int(seq), Arg::Bool(created), Arg::Text(&idem.key)],
        )
        .await?;
    }
    Ok(())
}
