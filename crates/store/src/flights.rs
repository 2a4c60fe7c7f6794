//! The flight store: flights and passengers, owned by the flights function.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use flightwatch_domain::flight::FlightSummary;
use flightwatch_domain::ports::{FlightStore, RegisterError, Registered, StoreError};
use flightwatch_domain::{
    AirportCode, Email, FlightKey, FlightRegistration, Passenger, PassengerName, PhoneNumber,
};
use sqlx::Pool;

use crate::{at, invalid, join, parse, split, store_error, Arg, Dialect};

pub struct SqlFlightStore<DB: Dialect> {
    pool: Pool<DB>,
}

impl<DB: Dialect> Clone for SqlFlightStore<DB> {
    fn clone(&self) -> Self {
        Self::new(self.pool.clone())
    }
}

impl<DB: Dialect> SqlFlightStore<DB> {
    pub fn new(pool: Pool<DB>) -> Self {
        Self { pool }
    }
}

const FLIGHT_COLUMNS: &str = "id, origin, destination, departure_utc, departure_offset_min, \
                              arrival_utc, arrival_offset_min";

/// A flight row as stored: instants with their offsets, so that a registration that only
/// changes the offset a time is given in is a change too.
#[derive(PartialEq)]
struct Schedule {
    origin: String,
    destination: String,
    departure: (DateTime<Utc>, i64),
    arrival: (DateTime<Utc>, i64),
}

fn schedule<DB: Dialect>(row: &DB::Row) -> Result<(i64, Schedule), sqlx::Error> {
    let instant = |utc, offset| Ok::<_, sqlx::Error>((at::<DB>(row, utc)?, DB::int(row, offset)?));
    Ok((
        DB::int(row, "id")?,
        Schedule {
            origin: DB::text(row, "origin")?,
            destination: DB::text(row, "destination")?,
            departure: instant("departure_utc", "departure_offset_min")?,
            arrival: instant("arrival_utc", "arrival_offset_min")?,
        },
    ))
}

#[async_trait]
impl<DB: Dialect> FlightStore for SqlFlightStore<DB> {
    #[tracing::instrument(skip_all, fields(flight_number = %flight.key().number, passengers = flight.passengers().len()))]
    async fn register(&self, flight: &FlightRegistration) -> Result<Registered, RegisterError> {
        // A concurrent first registration of the same flight loses the insert race, then merges
        // like any other re-registration.
        let mut attempt = 1;
        loop {
            match self.register_once(flight).await {
                Err(e) if attempt < crate::ATTEMPTS && DB::is_contention(&e) => attempt += 1,
                Ok(Err(full)) => return Err(full),
                Ok(Ok(registered)) => return Ok(registered),
                Err(e) => return Err(store_error::<DB>(e).into()),
            }
        }
    }

    async fn find(
        &self,
        key: &FlightKey,
    ) -> Result<Option<(FlightSummary, Vec<Passenger>)>, StoreError> {
        self.find_flight(key).await.map_err(store_error::<DB>)
    }

    async fn ping(&self) -> Result<(), StoreError> {
        let mut conn = self.pool.acquire().await.map_err(store_error::<DB>)?;
        DB::exec(&mut conn, "SELECT 1", vec![])
            .await
            .map_err(store_error::<DB>)?;
        Ok(())
    }
}

impl<DB: Dialect> SqlFlightStore<DB> {
    async fn find_flight(
        &self,
        key: &FlightKey,
    ) -> Result<Option<(FlightSummary, Vec<Passenger>)>, sqlx::Error> {
        let mut conn = self.pool.acquire().await?;
        let sql = format!(
            "SELECT {FLIGHT_COLUMNS} FROM flights WHERE flight_number = ? AND departure_date = ?"
        );
        let rows = DB::fetch_all(
            &mut conn,
            &sql,
            vec![Arg::Text(key.number.as_str()), Arg::Date(key.date)],
        )
        .await?;
        let Some(row) = rows.first() else {
            return Ok(None);
        };
        let (id, flight) = schedule::<DB>(row)?;
        let passengers = DB::fetch_all(
            &mut conn,
            "SELECT name, email, phone FROM passengers WHERE flight_id = ? ORDER BY id",
            vec![Arg::Int(id)],
        )
        .await?
        .iter()
        .map(|r| {
            Ok(Passenger {
                name: parse::<DB, _, _>(r, "name", PassengerName::parse)?,
                email: parse::<DB, _, _>(r, "email", Email::parse)?,
                phone: parse::<DB, _, _>(r, "phone", PhoneNumber::parse)?,
            })
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()?;
        let summary = FlightSummary {
            key: key.clone(),
            origin: AirportCode::parse(&flight.origin).map_err(|_| invalid("origin"))?,
            destination: AirportCode::parse(&flight.destination)
                .map_err(|_| invalid("destination"))?,
            departure: join(flight.departure.0, flight.departure.1)?,
            arrival: join(flight.arrival.0, flight.arrival.1)?,
            passenger_count: passengers.len() as u32,
        };
        Ok(Some((summary, passengers)))
    }

    /// `Ok(Err(Full))` when the merge would overfill the flight: rolled back.
    async fn register_once(
        &self,
        flight: &FlightRegistration,
    ) -> Result<Result<Registered, RegisterError>, sqlx::Error> {
        let now = Utc::now();
        let key = flight.key();
        let (dep, dep_off) = split(flight.departure());
        let (arr, arr_off) = split(flight.arrival());
        let wanted = Schedule {
            origin: flight.origin().as_str().to_owned(),
            destination: flight.destination().as_str().to_owned(),
            departure: (dep, dep_off),
            arrival: (arr, arr_off),
        };
        let mut tx = DB::begin_write(&self.pool).await?;
        // Lock the flight row only once it is known to exist: on MySQL a locking read of a
        // missing row takes a gap lock, and two first registrations holding gap locks deadlock
        // on their inserts. A lost insert race fails with a unique violation instead, and the
        // retry finds the row. Where the write transaction already holds the database (SQLite),
        // the first read is the one.
        let sql = format!(
            "SELECT {FLIGHT_COLUMNS} FROM flights WHERE flight_number = ? AND departure_date = ?"
        );
        let found = DB::fetch_all(
            &mut tx,
            &sql,
            vec![Arg::Text(key.number.as_str()), Arg::Date(key.date)],
        )
        .await?;
        let mut existing = found.first().map(schedule::<DB>).transpose()?;
        if let (Some((id, _)), false) = (&existing, DB::FOR_UPDATE.is_empty()) {
            let sql = format!(
                "SELECT {FLIGHT_COLUMNS} FROM flights WHERE id = ?{}",
                DB::FOR_UPDATE
            );
            let locked = DB::fetch_all(&mut tx, &sql, vec![Arg::Int(*id)]).await?;
            existing = locked.first().map(schedule::<DB>).transpose()?;
        }
        let (origin, destination) = (flight.origin(), flight.destination());
        let schedule_args = || {
            vec![
                Arg::Text(origin.as_str()),
                Arg::Text(destination.as_str()),
                Arg::At(dep),
                Arg::Int(dep_off),
                Arg::At(arr),
                Arg::Int(arr_off),
            ]
        };
        let (flight_id, created) = match existing {
            None => {
                let mut args = vec![Arg::Text(key.number.as_str()), Arg::Date(key.date)];
                args.extend(schedule_args());
                args.extend([Arg::Stamp(now), Arg::Stamp(now)]);
                let done = DB::exec(
                    &mut tx,
                    "INSERT INTO flights (flight_number, departure_date, origin, destination, \
                     departure_utc, departure_offset_min, arrival_utc, arrival_offset_min, \
                     created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    args,
                )
                .await?;
                (done.last_id, true)
            }
            Some((id, stored)) => {
                // The latest registration is the truth for the schedule; unchanged rows stay
                // untouched.
                if stored != wanted {
                    let mut args = schedule_args();
                    args.extend([Arg::Stamp(now), Arg::Int(id)]);
                    DB::exec(
                        &mut tx,
                        "UPDATE flights SET origin = ?, destination = ?, departure_utc = ?, \
                         departure_offset_min = ?, arrival_utc = ?, arrival_offset_min = ?, \
                         updated_at = ? WHERE id = ?",
                        args,
                    )
                    .await?;
                }
                (id, false)
            }
        };
        // One statement for every passenger: 1000 passengers are 6000 placeholders, far under
        // either database's limit.
        let passengers = flight.passengers();
        let mut sql = String::from(
            "INSERT INTO passengers (flight_id, phone, name, email, created_at, updated_at) VALUES ",
        );
        let mut args = Vec::with_capacity(passengers.len() * 6);
        for (i, p) in passengers.iter().enumerate() {
            sql.push_str(if i == 0 {
                "(?, ?, ?, ?, ?, ?)"
            } else {
                ", (?, ?, ?, ?, ?, ?)"
            });
            args.extend([
                Arg::Int(flight_id),
                Arg::Text(p.phone.expose()),
                Arg::Text(p.name.as_str()),
                Arg::Text(p.email.expose()),
                Arg::Stamp(now),
                Arg::Stamp(now),
            ]);
        }
        sql.push_str(DB::UPSERT_PASSENGERS);
        DB::exec(&mut tx, &sql, args).await?;
        let counted = DB::fetch_all(
            &mut tx,
            "SELECT COUNT(*) AS n FROM passengers WHERE flight_id = ?",
            vec![Arg::Int(flight_id)],
        )
        .await?;
        let count = counted
            .first()
            .map(|r| DB::int(r, "n"))
            .transpose()?
            .unwrap_or(0);
        if count > FlightRegistration::MAX_PASSENGERS as i64 {
            tx.rollback().await?;
            return Ok(Err(RegisterError::Full {
                would_hold: u32::try_from(count).unwrap_or(u32::MAX),
                max: FlightRegistration::MAX_PASSENGERS,
            }));
        }
        tx.commit().await?;
        Ok(Ok(Registered {
            flight: FlightSummary {
                key: key.clone(),
                origin: flight.origin(),
                destination: flight.destination(),
                departure: flight.departure(),
                arrival: flight.arrival(),
                passenger_count: count as u32,
            },
            created,
        }))
    }
}
