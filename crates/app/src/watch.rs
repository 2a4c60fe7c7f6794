//! The watch function's use cases: a registered flight is watched at the flight-status provider
//! (once, however often its registration is announced), and watches whose flight has left are
//! ended, along with any second watch two announcements delivered at once may have made.

use chrono::{DateTime, Utc};
use flightwatch_domain::ports::FlightWatcher;
use flightwatch_domain::watch::{FlightRegistered, ProviderError, Watch, WatchRequest};
use serde::Serialize;

/// What an announcement came to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(
    rename_all = "SCREAMING_SNAKE_CASE",
    tag = "outcome",
    content = "watchId"
)]
pub enum Watched {
    /// A new watch, with the provider's id.
    Started(String),
    /// The provider already watches this flight: the announcement was delivered again, or the
    /// flight was registered again (more passengers).
    Already(String),
    /// The flight has already departed: there is nothing left to watch for.
    Departed,
}

/// Asks the provider to watch the announced flight, unless it already does or the flight has
/// left. Two deliveries of one announcement at once may both start a watch; `sweep` ends the
/// younger, and the feed's own idempotency texts nobody twice meanwhile.
pub async fn watch(
    provider: &dyn FlightWatcher,
    announced: &FlightRegistered,
    now: DateTime<Utc>,
) -> Result<Watched, ProviderError> {
    let flight = &announced.flight;
    if flight.scheduled_departure.to_utc() <= now {
        tracing::info!(flight_number = %flight.flight_number, "departed already: not watched");
        return Ok(Watched::Departed);
    }
    let request = WatchRequest::for_flight(flight);
    let existing = provider.watching().await?;
    if let Some(watch) = existing
        .iter()
        .filter(|w| w.is_for(&request))
        .min_by(|a, b| a.age_order().cmp(&b.age_order()))
    {
        tracing::info!(flight_number = %flight.flight_number, watch_id = %watch.id, "already watched");
        return Ok(Watched::Already(watch.id.clone()));
    }
    let id = provider.watch(&request).await?;
    tracing::info!(flight_number = %flight.flight_number, watch_id = %id, "watch started");
    Ok(Watched::Started(id))
}

/// What a sweep ended.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Swept {
    /// Watches of flights that have left (their last possible day of departure is over).
    pub departed: Vec<String>,
    /// Second watches of one flight: the oldest stays.
    pub duplicates: Vec<String>,
}

/// Ends the watches of flights that have left and the duplicates of any flight, from the
/// provider's own list (the provider is the record of what is watched). Watches not ours (a
/// flight we cannot name) are left alone. One failed `unwatch` does not stop the others; the
/// first failure is returned after all were tried, so the scheduler runs the sweep again.
pub async fn sweep(
    provider: &dyn FlightWatcher,
    now: DateTime<Utc>,
) -> Result<Swept, ProviderError> {
    let mut watches = provider.watching().await?;
    watches.sort_by(|a, b| a.age_order().cmp(&b.age_order()));
    let mut swept = Swept::default();
    let mut kept: Vec<&Watch> = Vec::new();
    for watch in &watches {
        if watch.is_over(now) {
            swept.departed.push(watch.id.clone());
        } else if watch.flight_number.is_some()
            && kept
                .iter()
                .any(|k| k.flight_number == watch.flight_number && k.first_day == watch.first_day)
        {
            swept.duplicates.push(watch.id.clone());
        } else {
            kept.push(watch);
        }
    }
    let mut failure = None;
    for id in swept.departed.iter().chain(&swept.duplicates) {
        if let Err(e) = provider.unwatch(id).await {
            tracing::warn!(watch_id = %id, error = %e, "could not end a watch");
            failure.get_or_insert(e);
        }
    }
    tracing::info!(
        departed = swept.departed.len(),
        duplicates = swept.duplicates.len(),
        watching = kept.len(),
        "watches swept"
    );
    match failure {
        Some(e) => Err(e),
        None => Ok(swept),
    }
}
