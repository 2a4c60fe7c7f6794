//! The alert store on SQLite.

use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use flightwatch_domain::ports::{
    AlertStore, Claimed, Idempotency, PendingAlert, Recorded, StoreError,
};
use flightwatch_domain::{
    AirportCode, Alert, AlertId, AlertQuery, FlightKey, FlightNumber, FlightSchedule, Notification,
    PhoneNumber, Publication, Reason,
};
use sqlx::sqlite::SqliteRow;
use sqlx::{QueryBuilder, Row, Sqlite, SqliteConnection, SqlitePool};

use crate::time;

#[derive(Clone)]
pub struct SqliteAlertStore {
    pool: SqlitePool,
}

impl SqliteAlertStore {
    pub fn new(pool: SqlitePool) -> Self {
        Self { pool }
    }
}

const ALERT_COLUMNS: &str =
    "a.seq, a.alert_id, a.flight_number, a.departure_date, a.event, a.reason, \
     a.estimated_departure_utc, a.estimated_offset_min, a.recipients, a.created_at, o.published_at, o.set_aside_at";

fn invalid(what: &str) -> sqlx::Error {
    sqlx::Error::Decode(format!("stored {what} is not valid").into())
}

fn alert_from_row(r: &SqliteRow) -> Result<Alert, sqlx::Error> {
    let estimated = match (
        r.try_get::<Option<i64>, _>("estimated_departure_utc")?,
        r.try_get::<Option<i64>, _>("estimated_offset_min")?,
    ) {
        (Some(t), Some(off)) => {
            Some(time::join(t, off).ok_or_else(|| invalid("estimated_departure"))?)
        }
        _ => None,
    };
    Ok(Alert {
        seq: r.try_get("seq")?,
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
            r.try_get::<Option<i64>, _>("published_at")?,
            r.try_get::<Option<i64>, _>("set_aside_at")?,
        ) {
            (Some(_), _) => Publication::Published,
            (None, Some(_)) => Publication::Failed,
            (None, None) => Publication::Pending,
        },
        created_at: time::from_micros(r.try_get("created_at")?)
            .ok_or_else(|| invalid("created_at"))?,
    })
}

async fn load_alert(conn: &mut SqliteConnection, seq: i64) -> Result<Alert, sqlx::Error> {
    let row = sqlx::query(&format!(
        "SELECT {ALERT_COLUMNS} FROM alerts a JOIN alert_outbox o ON o.alert_seq = a.seq WHERE a.seq = ?"
    ))
    .bind(seq)
    .fetch_one(conn)
    .await?;
    alert_from_row(&row)
}

async fn schedule(
    conn: &mut SqliteConnection,
    flight: &FlightKey,
) -> Result<Option<FlightSchedule>, sqlx::Error> {
    let row: Option<(String, String, i64, i64)> = sqlx::query_as(
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
            scheduled_departure: time::join(dep, off).ok_or_else(|| invalid("departure"))?,
        })
    })
    .transpose()
}

fn after(d: Duration) -> i64 {
    time::now().saturating_add(i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
}

#[async_trait]
impl AlertStore for SqliteAlertStore {
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
        let mut attempt = 1;
        loop {
            match record_once(&self.pool, id, notification, idempotency).await {
                Err(e) if attempt < crate::ATTEMPTS && crate::is_unique_violation(&e) => {
                    attempt += 1
                }
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
        let mut qb = QueryBuilder::<Sqlite>::new(format!(
            "SELECT {ALERT_COLUMNS} FROM alerts a JOIN alert_outbox o ON o.alert_seq = a.seq WHERE TRUE"
        ));
        if let Some(n) = &q.flight_number {
            qb.push(" AND a.flight_number = ")
                .push_bind(n.as_str().to_owned());
        }
        if let Some(d) = q.departure_date {
            qb.push(" AND a.departure_date = ").push_bind(d);
        }
        if let Some(e) = q.event {
            qb.push(" AND a.event = ").push_bind(e.as_str());
        }
        if let Some(since) = q.since {
            qb.push(" AND a.created_at >= ")
                .push_bind(time::micros(since));
        }
        if let Some(before) = q.before_seq {
            qb.push(" AND a.seq < ").push_bind(before);
        }
        qb.push(" ORDER BY a.seq DESC LIMIT ")
            .push_bind(i64::from(q.limit));
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
        let seq: Option<i64> = sqlx::query_scalar("SELECT seq FROM alerts WHERE alert_id = ?")
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
        let due: Vec<i64> = sqlx::query_scalar(
            "SELECT alert_seq FROM alert_outbox WHERE published_at IS NULL \
             AND set_aside_at IS NULL AND (lease_until IS NULL OR lease_until < ?) \
             ORDER BY alert_seq LIMIT ?",
        )
        .bind(time::now())
        .bind(i64::from(limit))
        .fetch_all(&mut *conn)
        .await
        .map_err(crate::store_error)?;
        let mut claimed = Vec::with_capacity(due.len());
        for seq in due {
            match claim_seq(&mut conn, seq, lease).await {
                Ok(Some(p)) => claimed.push(Claimed::Ready(p)),
                Ok(None) => {}
                Err(e) => match crate::store_error(e) {
                    e if e.is_transient() => return Err(e),
                    error => claimed.push(Claimed::Unreadable { seq, error }),
                },
            }
        }
        Ok(claimed)
    }

    async fn mark_progress(&self, id: AlertId, parts: u32) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE alert_outbox SET parts_published = MAX(parts_published, ?) \
             WHERE alert_seq = (SELECT seq FROM alerts WHERE alert_id = ?)",
        )
        .bind(i64::from(parts))
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
        .bind(time::micros(Utc::now()))
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
        let error: String = error.chars().take(500).collect();
        sqlx::query(
            "UPDATE alert_outbox SET last_error = ?, lease_until = ? \
             WHERE alert_seq = (SELECT seq FROM alerts WHERE alert_id = ?)",
        )
        .bind(error)
        .bind(after(retry_after))
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
        .bind(time::micros(Utc::now()))
        .bind(error)
        .bind(seq)
        .execute(&self.pool)
        .await
        .map_err(crate::store_error)?;
        Ok(())
    }

    async fn forget_keys_older_than(&self, age: Duration) -> Result<u64, StoreError> {
        let before = time::now().saturating_sub(i64::try_from(age.as_micros()).unwrap_or(i64::MAX));
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
    pool: &SqlitePool,
    id: AlertId,
    n: &Notification,
    idempotency: Option<&Idempotency>,
) -> Result<Recorded, sqlx::Error> {
    let now = time::now();
    let mut tx = pool.begin_with(crate::BEGIN_WRITE).await?;
    if let Some(idem) = idempotency {
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
    let latest: Option<(i64, String)> = sqlx::query_as(
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
    .last_insert_rowid();
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
        .bind(recipients as i64)
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
    conn: &mut SqliteConnection,
    idempotency: Option<&Idempotency>,
    seq: i64,
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
async fn replay(pool: &SqlitePool, idem: &Idempotency) -> Result<Option<Recorded>, sqlx::Error> {
    let mut conn = pool.acquire().await?;
    let row: Option<(String, Option<i64>, bool)> = sqlx::query_as(
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
    conn: &mut SqliteConnection,
    seq: i64,
    alert: &Alert,
) -> Result<FlightSchedule, sqlx::Error> {
    let row: (Option<String>, Option<String>, Option<i64>, Option<i64>) = sqlx::query_as(
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
        scheduled_departure: time::join(dep, off).ok_or_else(|| invalid("scheduled_departure"))?,
    })
}

async fn claim_seq(
    conn: &mut SqliteConnection,
    seq: i64,
    lease: Duration,
) -> Result<Option<PendingAlert>, sqlx::Error> {
    // One statement: the lease is taken atomically, whoever else is trying.
    let taken = sqlx::query(
        "UPDATE alert_outbox SET lease_until = ?, attempts = attempts + 1 WHERE alert_seq = ? \
         AND published_at IS NULL AND (lease_until IS NULL OR lease_until < ?)",
    )
    .bind(after(lease))
    .bind(seq)
    .bind(time::now())
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if taken == 0 {
        return Ok(None);
    }
    let alert = load_alert(conn, seq).await?;
    let flight = facts(conn, seq, &alert).await?;
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
