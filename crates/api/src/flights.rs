//! The flights function's API: `POST /flights` registers a flight with its insured passengers,
//! `GET /flights/{flightId}` reads it back with contacts masked.

use std::sync::Arc;

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use flightwatch_domain::flight::{parse_time, FlightSummary, RegistrationError};
use flightwatch_domain::ports::{FlightAnnouncements, FlightStore};
use flightwatch_domain::{
    AirportCode, Email, FlightIdError, FlightKey, FlightNumber, FlightRegistration, Passenger,
    PassengerName, PhoneNumber,
};
use serde::{Deserialize, Serialize};

use crate::body::{Fields, JsonBody};
use crate::problem::ApiError;
use crate::wire;

/// What the flights handlers borrow, built once per cold start: the store, and where
/// registrations are announced (off: `None`).
#[derive(Clone)]
pub struct FlightsState {
    pub store: Arc<dyn FlightStore>,
    pub announcements: Option<Arc<dyn FlightAnnouncements>>,
}

pub fn router(state: FlightsState) -> Router {
    Router::new()
        .route("/flights", post(register))
        .route("/flights/{flight_id}", get(find))
        .layer(axum::extract::DefaultBodyLimit::max(
            crate::body::MAX_BODY_BYTES,
        ))
        .with_state(state)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RegistrationRequest {
    flight_number: Option<String>,
    origin: Option<String>,
    destination: Option<String>,
    scheduled_departure: Option<String>,
    scheduled_arrival: Option<String>,
    passengers: Option<Vec<PassengerRequest>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PassengerRequest {
    name: Option<String>,
    email: Option<String>,
    phone: Option<String>,
}

impl RegistrationRequest {
    /// Parses every field, reporting all that are wrong at once.
    pub fn parse(self) -> Result<FlightRegistration, ApiError> {
        let mut f = Fields::default();
        let number = f.required(
            "/flightNumber",
            self.flight_number.as_deref(),
            FlightNumber::parse,
        );
        let origin = f.required("/origin", self.origin.as_deref(), AirportCode::parse);
        let destination = f.required(
            "/destination",
            self.destination.as_deref(),
            AirportCode::parse,
        );
        let departure = f.required(
            "/scheduledDeparture",
            self.scheduled_departure.as_deref(),
            parse_time,
        );
        let arrival = f.required(
            "/scheduledArrival",
            self.scheduled_arrival.as_deref(),
            parse_time,
        );
        let mut passengers = Vec::new();
        match self.passengers {
            None => f.fail("/passengers", "is required"),
            Some(list) if list.is_empty() || list.len() > FlightRegistration::MAX_PASSENGERS => f
                .fail(
                    "/passengers",
                    format!(
                        "must list 1 to {} passengers",
                        FlightRegistration::MAX_PASSENGERS
                    ),
                ),
            Some(list) => {
                for (i, p) in list.into_iter().enumerate() {
                    let at = |field: &str| format!("/passengers/{i}/{field}");
                    let name = f.required(&at("name"), p.name.as_deref(), PassengerName::parse);
                    let email = f.required(&at("email"), p.email.as_deref(), Email::parse);
                    let phone = f.required(&at("phone"), p.phone.as_deref(), PhoneNumber::parse);
                    if let (Some(name), Some(email), Some(phone)) = (name, email, phone) {
                        passengers.push(Passenger { name, email, phone });
                    }
                }
            }
        }
        let (Some(number), Some(origin), Some(destination), Some(departure), Some(arrival)) =
            (number, origin, destination, departure, arrival)
        else {
            return Err(f.into_error());
        };
        if !f.is_empty() {
            return Err(f.into_error());
        }
        FlightRegistration::new(number, origin, destination, departure, arrival, passengers)
            .map_err(|errors| {
                for e in errors {
                    let pointer = match &e {
                        RegistrationError::SameAirports => "/destination".to_owned(),
                        RegistrationError::ArrivalNotAfterDeparture => {
                            "/scheduledArrival".to_owned()
                        }
                        RegistrationError::PassengerCount { .. } => "/passengers".to_owned(),
                        RegistrationError::DuplicatePhone { index, .. } => {
                            format!("/passengers/{index}/phone")
                        }
                    };
                    f.fail(&pointer, e);
                }
                f.into_error()
            })
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FlightResponse {
    flight_id: String,
    flight_number: String,
    departure_date: String,
    origin: String,
    destination: String,
    scheduled_departure: String,
    scheduled_arrival: String,
    passenger_count: u32,
}

impl From<&FlightSummary> for FlightResponse {
    fn from(f: &FlightSummary) -> Self {
        Self {
            flight_id: f.key.id(),
            flight_number: f.key.number.to_string(),
            departure_date: f.key.date.to_string(),
            origin: f.origin.to_string(),
            destination: f.destination.to_string(),
            scheduled_departure: wire::local_time(f.departure),
            scheduled_arrival: wire::local_time(f.arrival),
            passenger_count: f.passenger_count,
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FlightDetailsResponse {
    #[serde(flatten)]
    flight: FlightResponse,
    passengers: Vec<MaskedPassenger>,
}

/// A passenger as the API shows it: the name, and contacts masked.
#[derive(Serialize)]
pub struct MaskedPassenger {
    name: String,
    email: String,
    phone: String,
}

#[tracing::instrument(skip_all, fields(flight_number, created))]
async fn register(
    State(state): State<FlightsState>,
    JsonBody(request): JsonBody<RegistrationRequest>,
) -> Result<Response, ApiError> {
    let registration = request.parse()?;
    tracing::Span::current().record("flight_number", registration.key().number.as_str());
    let registered = flightwatch_app::register(
        state.store.as_ref(),
        state.announcements.as_deref(),
        &registration,
    )
    .await?;
    tracing::Span::current().record("created", registered.created);
    let body = Json(FlightResponse::from(&registered.flight));
    Ok(if registered.created {
        let location = format!("/flights/{}", registered.flight.key.id());
        (StatusCode::CREATED, [(header::LOCATION, location)], body).into_response()
    } else {
        (StatusCode::OK, body).into_response()
    })
}

async fn find(
    State(state): State<FlightsState>,
    flight_id: Result<Path<String>, PathRejection>,
) -> Result<Json<FlightDetailsResponse>, ApiError> {
    let Path(flight_id) = flight_id.map_err(|e| ApiError::invalid(e.body_text()))?;
    let key: FlightKey = flight_id.parse().map_err(|e| match e {
        // It matches the id's pattern in openapi.yaml, so it is a well-formed id of no flight.
        FlightIdError::NoSuchDate => ApiError::NotFound(format!("no flight {flight_id}: it {e}")),
        FlightIdError::Malformed => ApiError::invalid(format!("flightId {e}")),
    })?;
    let (flight, passengers) = flightwatch_app::find(state.store.as_ref(), &key)
        .await?
        .ok_or_else(|| {
            ApiError::NotFound(format!(
                "no flight {} departing {} is registered",
                key.number, key.date
            ))
        })?;
    Ok(Json(FlightDetailsResponse {
        flight: FlightResponse::from(&flight),
        passengers: passengers
            .iter()
            .map(|p| MaskedPassenger {
                name: p.name.as_str().to_owned(),
                email: p.email.masked(),
                phone: p.phone.masked(),
            })
            .collect(),
    }))
}
