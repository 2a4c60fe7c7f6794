//! Watching locally: registrations announced in-process to the watch use case, on their own task
//! as SNS invokes the watch Lambda, against an AeroAPI at `FLIGHTWATCH_AEROAPI_URL` (the fake
//! provider, `fake-aeroapi`, or the real one), which delivers to this stack's
//! `/feeds/flightaware`. The sweep runs on a timer, as the hourly schedule does in AWS.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use flightwatch_aeroapi::AeroApi;
use flightwatch_domain::ports::{BusError, FlightAnnouncements, FlightWatcher};
use flightwatch_domain::watch::FlightRegistered;
use secrecy::SecretString;

/// The provider as the local stack reaches it.
#[derive(Clone, Debug)]
pub struct WatchOptions {
    /// `FLIGHTWATCH_AEROAPI_URL`.
    pub aeroapi_url: String,
    /// `FLIGHTWATCH_AEROAPI_KEY`; the fake takes whatever it was started with (`local` by
    /// default).
    pub aeroapi_key: SecretString,
}

/// Hands each announcement to the watch use case on its own task; a failure is logged, as Lambda
/// would record a failed invocation (the local stack has no dead-letter queue).
pub struct InProcessWatch {
    provider: Arc<dyn FlightWatcher>,
}

impl InProcessWatch {
    /// `feed_url`: this stack's `/feeds/flightaware` with its token, for the provider to call.
    pub fn new(options: &WatchOptions, feed_url: SecretString) -> anyhow::Result<Self> {
        let aeroapi = AeroApi::new(&options.aeroapi_url, options.aeroapi_key.clone(), feed_url)?;
        Ok(Self {
            provider: Arc::new(aeroapi),
        })
    }

    /// Ends the watches of departed flights every `every`, as the watch function's schedule.
    pub fn sweep_every(&self, every: Duration) -> tokio::task::JoinHandle<()> {
        let provider = self.provider.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let now = chrono::Utc::now();
                if let Err(e) = flightwatch_app::watch::sweep(provider.as_ref(), now).await {
                    tracing::warn!(error = %e, "watch sweep failed");
                }
            }
        })
    }
}

#[async_trait]
impl FlightAnnouncements for InProcessWatch {
    async fn registered(&self, message: &FlightRegistered) -> Result<(), BusError> {
        let provider = self.provider.clone();
        let message = message.clone();
        tokio::spawn(async move {
            let now = chrono::Utc::now();
            if let Err(e) = flightwatch_app::watch::watch(provider.as_ref(), &message, now).await {
                tracing::error!(error = %e, flight_number = %message.flight.flight_number, "watch failed");
            }
        });
        Ok(())
    }
}
