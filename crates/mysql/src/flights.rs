//! The flight store: flights and passengers, owned by the flights function.

use async_trait::async_trait;
use chrono::{NaiveDateTime, Utc};
use flightwatch_domain::flight::FlightSummary;
use flightwatch_domain::ports::{FlightStore, Registered, StoreError};
use flightwatch_domain::{
    AirportCode, Email, FlightKey, FlightRegistration, Passenger, PassengerName, PhoneNumber,
};
use sqlx::{MySql, MySqlPool, QueryBuilder, Row, Transaction};

use crate::time;

#[derive(Clone)]
pub struct MySqlFlightStore {
    pool: MySqlPool,
}

impl MySqlFlightStore {
    pub fn new(pool: MySqlPool) -> Self {
        Self { pool }
    }
}

type FlightRow = (u64, String, String, NaiveDateTime, i16, NaiveDateTime, i16);

fn corrupt(what: &str) -> StoreError {
    StoreError::permanent(format!("stored {what} is not valid"))
}

#[async_trait]
impl FlightStore for MySqlFlightStore {
    #[tracing::instrument(skip_all, fields(flight_number = %flight.key().number, passengers = flight.passengers().len()))]
    async fn register(&self, flight: &FlightRegistration) -> Result<Registered, StoreError> {
        // A concurrent first registration of the same flight loses the insert race, then merges
        // like any other re-registration.
        let mut attempt = 1;
        loop {
            match register_once(&self.pool, flight).await {
                Err(e) if attempt < crate::ATTEMPTS && crate::is_contention(&e) => attempt += 1,
                other => return other.map_err(crate::store_error),
            }
        }
    }

    async fn find(
        &self,
        key: &FlightKey,
    ) -> Result<Option<(FlightSummary, Vec<Passenger>)>, StoreError> {
        let mut conn = self.pool.acquire().await.map_err(crate::store_error)?;
        let row: Option<FlightRow> = sqlx::query_as(
            "SELECT id, origin, destination, departure_utc, departure_offset_min, arrival_utc, \
             arrival_offset_min FROM flights WHERE flight_number = ? AND departure_date = ?",
        )
        .bind(key.number.as_str())
        .bind(key.date)
        .fetch_optional(&mut *conn)
        .await
        .map_err(crate::store_error)?;
        let Some(row) = row else { return Ok(None) };
        let rows = sqlx::query(
            "SELECT name, email, phone FROM passengers WHERE flight_id = ? ORDER BY id",
        )
        .bind(row.0)
        .fetch_all(&mut *conn)
        .await
        .map_err(crate::store_error)?;
        let passengers = rows
            .iter()
            .map(|r| {
                let get = |col: &str| r.try_get::<&str, _>(col).map_err(crate::store_error);
                Ok(Passenger {
                    name: PassengerName::parse(get("name")?).map_err(|_| corrupt("name"))?,
                    email: Email::parse(get("email")?).map_err(|_| corrupt("email"))?,
                    phone: PhoneNumber::parse(get("phone")?).map_err(|_| corrupt("phone"))?,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        let summary = summary(key, &row, passengers.len() as u32)?;
        Ok(Some((summary, passengers)))
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(crate::store_error)?;
        Ok(())
    }
}

fn summary(
    key: &FlightKey,
    row: &FlightRow,
    passenger_count: u32,
) -> Result<FlightSummary, StoreError> {
    Ok(FlightSummary {
        key: key.clone(),
        origin: AirportCode::parse(&row.1).map_err(|_| corrupt("origin"))?,
        destination: AirportCode::parse(&row.2).map_err(|_| corrupt("destination"))?,
        departure: time::join(row.3, row.4),
        arrival: time::join(row.5, row.6),
        passenger_count,
    })
}

async fn register_once(
    pool: &MySqlPool,
    flight: &FlightRegistration,
) -> Result<Registered, sqlx::Error> {
    let now = Utc::now().naive_utc();
    let key = flight.key();
    let (dep, dep_off) = time::split(flight.departure());
    let (arr, arr_off) = time::split(flight.arrival());
    let mut tx = pool.begin().await?;
    // Lock the flight row only once it is known to exist: a locking read of a missing row takes a
    // gap lock, and two first registrations holding gap locks deadlock on their inserts. A lost
    // insert race fails with a unique violation instead, and the retry finds the row.
    let exists: Option<u64> =
        sqlx::query_scalar("SELECT id FROM flights WHERE flight_number = ? AND departure_date = ?")
            .bind(key.number.as_str())
            .bind(key.date)
            .fetch_optional(&mut *tx)
            .await?;
    let existing: Option<FlightRow> = match exists {
        None => None,
        Some(id) => Some(
            sqlx::query_as(
                "SELECT id, origin, destination, departure_utc, departure_offset_min, arrival_utc, \
                 arrival_offset_min FROM flights WHERE id = ? FOR UPDATE",
            )
            .bind(id)
            .fetch_one(&mut *tx)
            .await?,
        ),
    };
    let wanted = (
        flight.origin().as_str().to_owned(),
        flight.destination().as_str().to_owned(),
        dep,
        dep_off,
        arr,
        arr_off,
    );
    let (flight_id, created) = match existing {
        None => {
            let id = sqlx::query(
                "INSERT INTO flights (flight_number, departure_date, origin, destination, departure_utc, \
                 departure_offset_min, arrival_utc, arrival_offset_min, created_at, updated_at) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(key.number.as_str())
            .bind(key.date)
            .bind(&wanted.0)
            .bind(&wanted.1)
            .bind(dep)
            .bind(dep_off)
            .bind(arr)
            .bind(arr_off)
            .bind(now)
            .bind(now)
            .execute(&mut *tx)
            .await?
            .last_insert_id();
            (id, true)
        }
        Some(row) => {
            // The latest registration is the truth for the schedule; unchanged rows stay untouched.
            if (row.1.clone(), row.2.clone(), row.3, row.4, row.5, row.6) != wanted {
                sqlx::query(
                    "UPDATE flights SET origin = ?, destination = ?, departure_utc = ?, departure_offset_min = ?, \
                     arrival_utc = ?, arrival_offset_min = ?, updated_at = ? WHERE id = ?",
                )
                .bind(&wanted.0)
                .bind(&wanted.1)
                .bind(dep)
                .bind(dep_off)
                .bind(arr)
                .bind(arr_off)
                .bind(now)
                .bind(row.0)
                .execute(&mut *tx)
                .await?;
            }
            (row.0, false)
        }
    };
    upsert_passengers(&mut tx, flight_id, flight.passengers(), now).await?;
    let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM passengers WHERE flight_id = ?")
        .bind(flight_id)
        .fetch_one(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(Registered {
        flight: FlightSummary {
            key: key.clone(),
            origin: flight.origin(),
            destination: flight.destination(),
            departure: flight.departure(),
            arrival: flight.arrival(),
            passenger_count: count as u32,
        },
        created,
    })
}

async fn upsert_passengers(
    tx: &mut Transaction<'_, MySql>,
    flight_id: u64,
    passengers: &[Passenger],
    now: NaiveDateTime,
) -> Result<(), sqlx::Error> {
    // 1000 passengers x 6 binds stays far under MySQL's 65535 placeholders: one statement.
    let mut qb = QueryBuilder::<MySql>::new(
        "INSERT INTO passengers (flight_id, phone, name, email, created_at, updated_at) ",
    );
    qb.push_values(passengers, |mut row, p| {
        row.push_bind(flight_id)
            .push_bind(p.phone.expose())
            .push_bind(p.name.as_str())
            .push_bind(p.email.expose())
            .push_bind(now)
            .push_bind(now);
    });
    // updated_at first: MySQL evaluates assignments left to right, so it still sees the old values.
    // Compared as bytes: a change of case is a change.
    qb.push(
        " ON DUPLICATE KEY UPDATE \
         updated_at = IF(CAST(name AS BINARY) <> CAST(VALUES(name) AS BINARY) \
         OR CAST(email AS BINARY) <> CAST(VALUES(email) AS BINARY), VALUES(updated_at), updated_at), \
         name = VALUES(name), email = VALUES(email)",
    );
    qb.build().execute(&mut **tx).await?;
    Ok(())
}
