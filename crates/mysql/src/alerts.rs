//! The alert store: alerts, recipients, outbox and idempotency keys, owned by the alerts
//! function; flights data only through the `flight_schedules` and `passenger_phones` views.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{NaiveDateTime, Utc};
use flightwatch_domain::ports::{
    AlertStore, Claimed, Idempotency, PendingAlert, Recorded, StoreError,
};
use flightwatch_domain::{
    AirportCode, Alert, AlertId, AlertQuery, FlightKey, FlightNumber, FlightSchedule, Notification,
    PhoneNumber, Publication, Reason,
};
use sqlx::mysql::MySqlRow;
use sqlx::{MySql, MySqlConnection, MySqlPool, QueryBuilder, Row};

use crate::time;

#[derive(Clone)]
pub struct MySqlAlertStore {
    pool: MySqlPool,
}

impl MySqlAlertStore {
    pub fn new(pool: MySqlPool) -> Self {
        Self { pool }
    }
}

const ALERT_COLUMNS: &str =
    "a.seq, a.alert_id, a.flight_number, a.departure_date, a.event, a.reason, \
     a.estimated_departure_utc, a.estimated_offset_min, a.recipients, a.created_at, o.published_at, o.set_aside_at";

fn invalid(what: &str) -> sqlx::Error {
    sqlx::Error::Decode(format!("stored {what} is not valid").into())
}

fn alert_from_row(r: &MySqlRow) -> Result<Alert, sqlx::Error> {
    let estimated = match (
        r.try_get::<Option<NaiveDateTime>, _>("estimated_departure_utc")?,
        r.try_get::<Option<i16>, _>("estimated_offset_min")?,
    ) {
        (Some(t), Some(off)) => Some(time::join(t, off)),
        _ => None,
    };
    Ok(Alert {
        seq: r.try_get::<u64, _>("seq")? as i64,
        id: r
            .try_get::<&str, _>("alert_id")?
            .parse()
            .map_err(|_| invalid("alert_id"))?,
        flight_number: FlightNumber::parse(r.try_get("flight_number")?)
            .map_err(|_| invalid("flight_number"))?,
        departure_date: r.try_get("departure_date")?,
        event: r
            .try_get::<&str, _>("event")?
            .parse()
            .map_err(|_| invalid("event"))?,
        reason: r
            .try_get::<Option<&str>, _>("reason")?
            .map(Reason::parse)
            .transpose()
            .map_err(|_| invalid("reason"))?,
        estimated_departure: estimated,
        recipients: r.try_get("recipients")?,
        publication: match (
            r.try_get::<Option<NaiveDateTime>, _>("published_at")?,
            r.try_get::<Option<NaiveDateTime>, _>("set_aside_at")?,
        ) {
            (Some(_), _) => Publication::Published,
            (None, Some(_)) => Publication::Failed,
            (None, None) => Publication::Pending,
        },
        created_at: time::utc(r.try_get("created_at")?),
    })
}

async fn load_alert(conn: &mut MySqlConnection, seq: u64) -> Result<Alert, sqlx::Error> {
    let row = sqlx::query(&format!(
        "SELECT {ALERT_COLUMNS} FROM alerts a JOIN alert_outbox o ON o.alert_seq = a.seq WHERE a.seq = ?"
    ))
    .bind(seq)
    .fetch_one(conn)
    .await?;
    alert_from_row(&row)
}

async fn schedule(
    conn: &mut MySqlConnection,
    flight: &FlightKey,
) -> Result<Option<FlightSchedule>, sqlx::Error> {
    let row: Option<(String, String, NaiveDateTime, i16)> = sqlx::query_as(
        "SELECT origin, destination, departure_utc, departure_offset_min FROM flight_schedules \
         WHERE flight_number = ? AND departure_date = ?",
    )
    .bind(flight.number.as_str())
    .bind(flight.date)
    .fetch_optional(conn)
    .await?;
    row.map(|(origin, destination, dep, off)| {
        Ok(FlightSchedule {
            flight_number: flight.number.clone(),
            departure_date: flight.date,
            origin: AirportCode::parse(&origin).map_err(|_| invalid("origin"))?,
            destination: AirportCode::parse(&destination).map_err(|_| invalid("destination"))?,
            scheduled_departure: time::join(dep, off),
        })
    })
    .transpose()
}

#[async_trait]
impl AlertStore for MySqlAlertStore {
    async fn schedule(&self, flight: &FlightKey) -> Result<Option<FlightSchedule>, StoreError> {
        let mut conn = self.pool.acquire().await.map_err(crate::store_error)?;
        schedule(&mut conn, flight)
            .await
            .map_err(crate::store_error)
    }

    #[tracing::instrument(skip_all, fields(flight_number = %notification.flight.number, alert_id = %id))]
    async fn record(
        &self,
        id: AlertId,
        notification: &Notification,
        idempotency: Option<&Idempotency>,
    ) -> Result<Recorded, StoreError> {
        // A concurrent identical event can win the insert between our check and our insert: the
        // second pass then finds it and answers with it.
        let mut attempt = 1;
        loop {
            match record_once(&self.pool, id, notification, idempotency).await {
                Err(e) if attempt < crate::ATTEMPTS && crate::is_contention(&e) => attempt += 1,
                other => return other.map_err(crate::store_error),
            }
        }
    }

    async fn replay(&self, idempotency: &Idempotency) -> Result<Option<Recorded>, StoreError> {
        replay(&self.pool, idempotency)
            .await
            .map_err(crate::store_error)
    }

    async fn list(&self, q: &AlertQuery) -> Result<Vec<Alert>, StoreError> {
        let mut qb = QueryBuilder::<MySql>::new(format!(
            "SELECT {ALERT_COLUMNS} FROM alerts a JOIN alert_outbox o ON o.alert_seq = a.seq WHERE TRUE"
        ));
        if let Some(n) = &q.flight_number {
            qb.push(" AND a.flight_number = ").push_bind(n.as_str());
        }
        if let Some(d) = q.departure_date {
            qb.push(" AND a.departure_date = ").push_bind(d);
        }
        if let Some(e) = q.event {
            qb.push(" AND a.event = ").push_bind(e.as_str());
        }
        if let Some(since) = q.since {
            qb.push(" AND a.created_at >= ")
                .push_bind(since.naive_utc());
        }
        if let Some(before) = q.before_seq {
            qb.push(" AND a.seq < ").push_bind(before.max(0) as u64);
        }
        qb.push(" ORDER BY a.seq DESC LIMIT ").push_bind(q.limit);
        let rows = qb
            .build()
            .fetch_all(&self.pool)
            .await
            .map_err(crate::store_error)?;
        rows.iter()
            .map(alert_from_row)
            .collect::<Result<_, _>>()
            .map_err(crate::store_error)
    }

    async fn claim(
        &self,
        id: AlertId,
        lease: Duration,
    ) -> Result<Option<PendingAlert>, StoreError> {
        let mut conn = self.pool.acquire().await.map_err(crate::store_error)?;
        let seq: Option<u64> = sqlx::query_scalar("SELECT seq FROM alerts WHERE alert_id = ?")
            .bind(id.to_string())
            .fetch_optional(&mut *conn)
            .await
            .map_err(crate::store_error)?;
        let Some(seq) = seq else { return Ok(None) };
        claim_seq(&mut conn, seq, lease)
            .await
            .map_err(crate::store_error)
    }

    async fn claim_due(&self, limit: u32, lease: Duration) -> Result<Vec<Claimed>, StoreError> {
        let mut conn = self.pool.acquire().await.map_err(crate::store_error)?;
        let now = Utc::now().naive_utc();
        let due: Vec<u64> = sqlx::query_scalar(
            "SELECT alert_seq FROM alert_outbox WHERE published_at IS NULL \
             AND set_aside_at IS NULL AND (lease_until IS NULL OR lease_until < ?) \
             ORDER BY alert_seq LIMIT ?",
        )
        .bind(now)
        .bind(limit)
        .fetch_all(&mut *conn)
        .await
        .map_err(crate::store_error)?;
        let mut claimed = Vec::with_capacity(due.len());
        for seq in due {
            // Another relay may take it between the select and the claim: the claim decides.
            match claim_seq(&mut conn, seq, lease).await {
                Ok(Some(p)) => claimed.push(Claimed::Ready(p)),
                Ok(None) => {}
                Err(e) => match crate::store_error(e) {
                    e if e.is_transient() => return Err(e),
                    error => claimed.push(Claimed::Unreadable {
                        seq: seq as i64,
                        error,
                    }),
                },
            }
        }
        Ok(claimed)
    }

    async fn mark_progress(&self, id: AlertId, parts: u32) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE alert_outbox SET parts_published = GREATEST(parts_published, ?) \
             WHERE alert_seq = (SELECT seq FROM alerts WHERE alert_id = ?)",
        )
        .bind(parts)
        .bind(id.to_string())
        .execute(&self.pool)
        .await
        .map_err(crate::store_error)?;
        Ok(())
    }

    async fn mark_published(&self, id: AlertId) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE alert_outbox SET published_at = ?, lease_until = NULL, last_error = NULL \
             WHERE alert_seq = (SELECT seq FROM alerts WHERE alert_id = ?)",
        )
        .bind(Utc::now().naive_utc())
        .bind(id.to_string())
        .execute(&self.pool)
        .await
        .map_err(crate::store_error)?;
        Ok(())
    }

    async fn mark_failed(
        &self,
        id: AlertId,
        error: &str,
        retry_after: Duration,
    ) -> Result<(), StoreError> {
        let due =
            Utc::now().naive_utc() + chrono::Duration::from_std(retry_after).unwrap_or_default();
        let error: String = error.chars().take(500).collect();
        sqlx::query(
            "UPDATE alert_outbox SET last_error = ?, lease_until = ? \
             WHERE alert_seq = (SELECT seq FROM alerts WHERE alert_id = ?)",
        )
        .bind(error)
        .bind(due)
        .bind(id.to_string())
        .execute(&self.pool)
        .await
        .map_err(crate::store_error)?;
        Ok(())
    }

    async fn set_aside(&self, seq: i64, error: &str) -> Result<(), StoreError> {
        let error: String = error.chars().take(500).collect();
        sqlx::query(
            "UPDATE alert_outbox SET set_aside_at = ?, last_error = ?, lease_until = NULL \
             WHERE alert_seq = ? AND published_at IS NULL",
        )
        .bind(Utc::now().naive_utc())
        .bind(error)
        .bind(seq.max(0) as u64)
        .execute(&self.pool)
        .await
        .map_err(crate::store_error)?;
        Ok(())
    }

    async fn forget_keys_older_than(&self, age: Duration) -> Result<u64, StoreError> {
        let before = Utc::now().naive_utc() - chrono::Duration::from_std(age).unwrap_or_default();
        let done = sqlx::query("DELETE FROM idempotency_keys WHERE created_at < ?")
            .bind(before)
            .execute(&self.pool)
            .await
            .map_err(crate::store_error)?;
        Ok(done.rows_affected())
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(crate::store_error)?;
        Ok(())
    }
}

async fn record_once(
    pool: &MySqlPool,
    id: AlertId,
    n: &Notification,
    idempotency: Option<&Idempotency>,
) -> Result<Recorded, sqlx::Error> {
    let now = Utc::now().naive_utc();
    let mut tx = pool.begin().await?;
    if let Some(idem) = idempotency {
        // A concurrent request with the same key waits here on the primary key until the first
        // one commits, then sees its answer.
        let claimed = sqlx::query(
            "INSERT INTO idempotency_keys (idem_key, fingerprint, created_at) VALUES (?, ?, ?)",
        )
        .bind(&idem.key)
        .bind(&idem.fingerprint)
        .bind(now)
        .execute(&mut *tx)
        .await;
        match claimed {
            Ok(_) => {}
            Err(e) if crate::is_unique_violation(&e) => {
                tx.rollback().await?;
                // The duplicate key is committed (we waited on it), so it is there to replay.
                return replay(pool, idem)
                    .await?
                    .ok_or_else(|| invalid("idempotency key vanished"));
            }
            Err(e) => return Err(e),
        }
    }
    // A duplicate is an event identical to the flight's latest alert: the same report again.
    // The same event after a different one (10:30, then 11:00, then back to 10:30) is news.
    let dedup = n.event.dedup_key();
    let latest: Option<(u64, String)> = sqlx::query_as(
        "SELECT seq, event_key FROM alerts WHERE flight_number = ? AND departure_date = ? \
         ORDER BY seq DESC LIMIT 1",
    )
    .bind(n.flight.number.as_str())
    .bind(n.flight.date)
    .fetch_optional(&mut *tx)
    .await?;
    if let Some((seq, key)) = &latest {
        if key.split('#').next() == Some(dedup.as_str()) {
            let seq = *seq;
            remember(&mut tx, idempotency, seq, false).await?;
            let alert = load_alert(&mut tx, seq).await?;
            tx.commit().await?;
            return Ok(Recorded::Duplicate(alert));
        }
    }
    // Unique per flight with the alert it follows: of two identical reports racing past the
    // check above, the second fails on the unique key and, retried, finds the first.
    let event_key = format!("{dedup}#{}", latest.map_or(0, |(seq, _)| seq));
    // The facts the SMS will state, as they are now, in this transaction.
    let flight = schedule(&mut tx, &n.flight)
        .await?
        .ok_or_else(|| invalid("the flight of a recorded alert is not registered"))?;
    let (sched, sched_off) = time::split(flight.scheduled_departure);
    let (est, est_off) = match n.event.estimated_departure() {
        Some(t) => {
            let (utc, off) = time::split(t);
            (Some(utc), Some(off))
        }
        None => (None, None),
    };
    let seq = sqlx::query(
        "INSERT INTO alerts (alert_id, flight_number, departure_date, event, event_key, reason, \
         estimated_departure_utc, estimated_offset_min, recipients, created_at, origin, destination, \
         scheduled_departure_utc, scheduled_offset_min) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?, ?, ?)",
    )
    .bind(id.to_string())
    .bind(n.flight.number.as_str())
    .bind(n.flight.date)
    .bind(n.event.kind().as_str())
    .bind(&event_key)
    .bind(n.reason.as_ref().map(Reason::as_str))
    .bind(est)
    .bind(est_off)
    .bind(now)
    .bind(flight.origin.as_str())
    .bind(flight.destination.as_str())
    .bind(sched)
    .bind(sched_off)
    .execute(&mut *tx)
    .await?
    .last_insert_id();
    let recipients = sqlx::query(
        "INSERT INTO alert_recipients (alert_seq, phone) \
         SELECT ?, phone FROM passenger_phones WHERE flight_number = ? AND departure_date = ?",
    )
    .bind(seq)
    .bind(n.flight.number.as_str())
    .bind(n.flight.date)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    sqlx::query("UPDATE alerts SET recipients = ? WHERE seq = ?")
        .bind(recipients)
        .bind(seq)
        .execute(&mut *tx)
        .await?;
    sqlx::query("INSERT INTO alert_outbox (alert_seq) VALUES (?)")
        .bind(seq)
        .execute(&mut *tx)
        .await?;
    remember(&mut tx, idempotency, seq, true).await?;
    let alert = load_alert(&mut tx, seq).await?;
    tx.commit().await?;
    Ok(Recorded::Created(alert))
}

async fn remember(
    conn: &mut MySqlConnection,
    idempotency: Option<&Idempotency>,
    seq: u64,
    created: bool,
) -> Result<(), sqlx::Error> {
    if let Some(idem) = idempotency {
        sqlx::query("UPDATE idempotency_keys SET alert_seq = ?, created = ? WHERE idem_key = ?")
            .bind(seq)
            .bind(created)
            .bind(&idem.key)
            .execute(conn)
            .await?;
    }
    Ok(())
}

/// The first answer for this key, or `KeyReused`; `None` when the key is new.
async fn replay(pool: &MySqlPool, idem: &Idempotency) -> Result<Option<Recorded>, sqlx::Error> {
    let mut conn = pool.acquire().await?;
    let row: Option<(String, Option<u64>, bool)> = sqlx::query_as(
        "SELECT fingerprint, alert_seq, created FROM idempotency_keys WHERE idem_key = ?",
    )
    .bind(&idem.key)
    .fetch_optional(&mut *conn)
    .await?;
    let Some((fingerprint, seq, created)) = row else {
        return Ok(None);
    };
    if fingerprint != idem.fingerprint {
        return Ok(Some(Recorded::KeyReused));
    }
    // The key row and its alert are committed together, so a visible key has its alert.
    let seq = seq.ok_or_else(|| invalid("idempotency key without its alert"))?;
    let alert = load_alert(&mut conn, seq).await?;
    Ok(Some(Recorded::Replayed { alert, created }))
}

/// The flight as it was when the alert was recorded: what its SMS says.
async fn facts(
    conn: &mut MySqlConnection,
    seq: u64,
    alert: &Alert,
) -> Result<FlightSchedule, sqlx::Error> {
    let row: (
        Option<String>,
        Option<String>,
        Option<NaiveDateTime>,
        Option<i16>,
    ) = sqlx::query_as(
        "SELECT origin, destination, scheduled_departure_utc, scheduled_offset_min FROM alerts \
         WHERE seq = ?",
    )
    .bind(seq)
    .fetch_one(conn)
    .await?;
    let (Some(origin), Some(destination), Some(dep), Some(off)) = row else {
        return Err(invalid("alert facts (route, scheduled departure)"));
    };
    Ok(FlightSchedule {
        flight_number: alert.flight_number.clone(),
        departure_date: alert.departure_date,
        origin: AirportCode::parse(&origin).map_err(|_| invalid("origin"))?,
        destination: AirportCode::parse(&destination).map_err(|_| invalid("destination"))?,
        scheduled_departure: time::join(dep, off),
    })
}

async fn claim_seq(
    conn: &mut MySqlConnection,
    seq: u64,
    lease: Duration,
) -> Result<Option<PendingAlert>, sqlx::Error> {
    let now = Utc::now().naive_utc();
    let until = now + chrono::Duration::from_std(lease).unwrap_or_default();
    let taken = sqlx::query(
        "UPDATE alert_outbox SET lease_until = ?, attempts = attempts + 1 WHERE alert_seq = ? \
         AND published_at IS NULL AND (lease_until IS NULL OR lease_until < ?)",
    )
    .bind(until)
    .bind(seq)
    .bind(now)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if taken == 0 {
        return Ok(None);
    }
    let alert = load_alert(conn, seq).await?;
    let flight = facts(conn, seq, &alert).await?;
    // Ordered, so that a resumed publication splits the recipients into the same parts.
    let phones: Vec<String> =
        sqlx::query_scalar("SELECT phone FROM alert_recipients WHERE alert_seq = ? ORDER BY phone")
            .bind(seq)
            .fetch_all(&mut *conn)
            .await?;
    let recipients = phones
        .iter()
        .map(|p| PhoneNumber::parse(p).map_err(|_| invalid("phone")))
        .collect::<Result<_, _>>()?;
    let (attempts, parts_published): (u32, u32) =
        sqlx::query_as("SELECT attempts, parts_published FROM alert_outbox WHERE alert_seq = ?")
            .bind(seq)
            .fetch_one(&mut *conn)
            .await?;
    Ok(Some(PendingAlert {
        alert,
        flight,
        recipients,
        attempts,
        parts_published,
    }))
}
