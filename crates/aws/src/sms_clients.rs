//! The sms function's AWS clients, built together on the first event rather than at cold start,
//! so that the runtime asks for its first event as soon as a hello-world function would; the
//! first event pays for them instead (the SDK configuration, two clients and their TLS roots).

use async_trait::async_trait;
use flightwatch_domain::ports::{
    BusError, Claim, DeliveryReports, OutgoingSms, SendError, SmsClaims, SmsSender,
};
use flightwatch_domain::{AlertMessage, DeliveryReport};
use tokio::sync::OnceCell;

use crate::{S3Claims, SnsSmsSender, SnsTopic};

/// What the clients are built from.
#[derive(Clone, Debug)]
pub struct SmsClientSettings {
    pub sender_id: Option<String>,
    pub claims_bucket: String,
    pub reports_topic_arn: String,
}

struct Clients {
    sender: SnsSmsSender,
    claims: S3Claims,
    reports: SnsTopic,
}

/// The sender, the claims and the reports topic, behind one lazily built set of clients.
pub struct LazySmsClients {
    settings: SmsClientSettings,
    clients: OnceCell<Clients>,
}

impl LazySmsClients {
    pub fn new(settings: SmsClientSettings) -> Self {
        Self {
            settings,
            clients: OnceCell::new(),
        }
    }

    async fn clients(&self) -> &Clients {
        self.clients
            .get_or_init(|| async {
                let sdk = crate::sdk_config().await;
                let s = &self.settings;
                Clients {
                    sender: SnsSmsSender::from_config(&sdk, s.sender_id.clone()),
                    claims: S3Claims::from_config(&sdk, s.claims_bucket.clone()),
                    reports: SnsTopic::from_config(&sdk, s.reports_topic_arn.clone()),
                }
            })
            .await
    }
}

#[async_trait]
impl SmsSender for LazySmsClients {
    async fn send(&self, sms: &OutgoingSms) -> Result<String, SendError> {
        self.clients().await.sender.send(sms).await
    }
}

#[async_trait]
impl SmsClaims for LazySmsClients {
    async fn claim(&self, message: &AlertMessage, index: usize) -> Result<Claim, BusError> {
        self.clients().await.claims.claim(message, index).await
    }

    async fn record_sent(
        &self,
        message: &AlertMessage,
        index: usize,
        message_id: &str,
    ) -> Result<(), BusError> {
        let claims = &self.clients().await.claims;
        claims.record_sent(message, index, message_id).await
    }
}

#[async_trait]
impl DeliveryReports for LazySmsClients {
    async fn report(&self, report: &DeliveryReport) -> Result<(), BusError> {
        self.clients().await.reports.report(report).await
    }
}
