//! SNS `Publish`, the one SNS call the functions make (a message on a topic, or an SMS to a
//! phone number), as an operation on the SDK's runtime (`operation`) in SNS's query protocol: a
//! signed form POST, answered in XML.

use std::sync::LazyLock;

use aws_runtime::auth::SigningOptions;
use aws_runtime::retries::classifiers::AwsErrorCodeClassifier;
use aws_smithy_runtime::client::orchestrator::operation::Operation;
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse, OrchestratorError};
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::error::metadata::{ErrorMetadata, ProvideErrorMetadata};

/// SNS in the configuration's region.
#[derive(Clone, Debug)]
pub struct Sns {
    publish: Operation<Publish, MessageId, PublishError>,
}

/// The id SNS gives a published message.
#[derive(Debug)]
struct MessageId(String);

/// A message to publish, with its message attributes.
pub struct Publish {
    target: Target,
    message: String,
    /// Name, data type (`String`, `Number`), value.
    attributes: Vec<(String, &'static str, String)>,
}

enum Target {
    Topic(String),
    Phone(String),
}

impl Publish {
    pub fn to_topic(topic_arn: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(Target::Topic(topic_arn.into()), message.into())
    }

    /// An SMS to an E.164 number.
    pub fn to_phone(number: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(Target::Phone(number.into()), message.into())
    }

    fn new(target: Target, message: String) -> Self {
        Self {
            target,
            message,
            attributes: Vec::new(),
        }
    }

    /// A message attribute of type `String`.
    pub fn text(self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.attribute(name.into(), "String", value.into())
    }

    /// A message attribute of type `Number`.
    pub fn number(self, name: impl Into<String>, value: impl ToString) -> Self {
        self.attribute(name.into(), "Number", value.to_string())
    }

    fn attribute(mut self, name: String, data_type: &'static str, value: String) -> Self {
        self.attributes.push((name, data_type, value));
        self
    }

    /// The request's body, as SNS's query protocol has it.
    fn form(&self) -> String {
        let mut form = form_urlencoded::Serializer::new(String::new());
        form.append_pair("Action", "Publish")
            .append_pair("Version", "2010-03-31");
        match &self.target {
            Target::Topic(arn) => form.append_pair("TopicArn", arn),
            Target::Phone(number) => form.append_pair("PhoneNumber", number),
        };
        form.append_pair("Message", &self.message);
        for (i, (name, data_type, value)) in self.attributes.iter().enumerate() {
            let entry = format!("MessageAttributes.entry.{}", i + 1);
            form.append_pair(&format!("{entry}.Name"), name)
                .append_pair(&format!("{entry}.Value.DataType"), data_type)
                .append_pair(&format!("{entry}.Value.StringValue"), value);
        }
        form.finish()
    }
}

/// What the runtime's trace logging may show of a message: where it goes (a phone number
/// never), how long it is, its attributes' names.
impl std::fmt::Debug for Publish {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let target = match &self.target {
            Target::Topic(arn) => arn.as_str(),
            Target::Phone(_) => "a phone number",
        };
        let names: Vec<&str> = self.attributes.iter().map(|a| a.0.as_str()).collect();
        write!(
            f,
            "Publish to {target}: {} bytes, attributes {names:?}",
            self.message.len()
        )
    }
}

/// SNS's refusal, or no answer.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// SNS refused: the HTTP status, and SNS's error code and message.
    #[error("SNS answered {status} {}: {}", .meta.code().unwrap_or("(no code)"), .meta.message().unwrap_or_default())]
    Refused { status: u16, meta: ErrorMetadata },
    /// No answer (connection, timeout, credentials) after the retries.
    #[error("{0}")]
    Failed(String),
}

/// SNS's error code and message, which the runtime's retries read for throttling.
impl ProvideErrorMetadata for PublishError {
    fn meta(&self) -> &ErrorMetadata {
        static NONE: LazyLock<ErrorMetadata> = LazyLock::new(|| ErrorMetadata::builder().build());
        match self {
            Self::Refused { meta, .. } => meta,
            Self::Failed(_) => &NONE,
        }
    }
}

impl Sns {
    pub fn new(sdk: &aws_config::SdkConfig) -> Self {
        let region = crate::operation::region(sdk);
        let endpoint = crate::operation::regional_endpoint(sdk, "sns", &region);
        let call = crate::operation::Call {
            service: "sns",
            operation: "Publish",
            signing: SigningOptions::default(),
            sensitive_output: false,
        };
        let publish = crate::operation::operation::<PublishError>(sdk, &region, &endpoint, call)
            // Throttling answers (400 `Throttling` and the like) are retried, as the SDK's client does.
            .retry_classifier(AwsErrorCodeClassifier::<PublishError>::new())
            .serializer(|publish: Publish| {
                let form = publish.form();
                let request = http::Request::builder()
                    .method("POST")
                    .uri("/")
                    .header(
                        "content-type",
                        "application/x-www-form-urlencoded; charset=utf-8",
                    )
                    .header("content-length", form.len())
                    .body(SdkBody::from(form))?;
                Ok(HttpRequest::try_from(request)?)
            })
            .deserializer(answer)
            .build();
        Self { publish }
    }

    /// Publishes the message; the id SNS gave it.
    pub async fn publish(&self, message: Publish) -> Result<String, PublishError> {
        match self.publish.invoke(message).await {
            Ok(id) => Ok(id.0),
            Err(SdkError::ServiceError(e)) => Err(e.into_err()),
            Err(other) => Err(PublishError::Failed(crate::describe(&other))),
        }
    }
}

/// The message id of a 2xx answer, else SNS's refusal with its code and message.
fn answer(response: &HttpResponse) -> Result<MessageId, OrchestratorError<PublishError>> {
    let body = response.body().bytes().unwrap_or_default();
    let text = |tag| crate::operation::xml_text(body, tag);
    if response.status().is_success() {
        return Ok(MessageId(text("MessageId").unwrap_or_default().to_owned()));
    }
    let mut meta = ErrorMetadata::builder();
    if let Some(code) = text("Code") {
        meta = meta.code(code);
    }
    if let Some(message) = text("Message") {
        meta = meta.message(message);
    }
    Err(OrchestratorError::operation(PublishError::Refused {
        status: response.status().as_u16(),
        meta: meta.build(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_publish_is_the_query_protocols_form() {
        let publish = Publish::to_topic("arn:aws:sns:eu-west-1:1:alerts", "{\"a\":\"b c\"}")
            .number("version", 2)
            .text("event", "CANCELLED");
        assert_eq!(
            publish.form(),
            "Action=Publish&Version=2010-03-31&TopicArn=arn%3Aaws%3Asns%3Aeu-west-1%3A1%3Aalerts\
             &Message=%7B%22a%22%3A%22b+c%22%7D\
             &MessageAttributes.entry.1.Name=version&MessageAttributes.entry.1.Value.DataType=Number\
             &MessageAttributes.entry.1.Value.StringValue=2\
             &MessageAttributes.entry.2.Name=event&MessageAttributes.entry.2.Value.DataType=String\
             &MessageAttributes.entry.2.Value.StringValue=CANCELLED"
        );
        let sms = Publish::to_phone("+14155550100", "hi").form();
        assert!(
            sms.contains("PhoneNumber=%2B14155550100&Message=hi"),
            "{sms}"
        );
    }

    #[test]
    fn a_phone_number_never_reaches_a_log() {
        let sms = Publish::to_phone("+14155550100", "UA123 is cancelled")
            .text("AWS.SNS.SMS.SMSType", "Transactional");
        let logged = format!("{sms:?}");
        assert!(!logged.contains("4155550100"), "{logged}");
        assert!(!logged.contains("cancelled"), "{logged}");
    }

    #[test]
    fn snss_answers_are_read_from_its_xml() {
        let ok = HttpResponse::new(
            200.try_into().expect("status"),
            SdkBody::from("<PublishResponse><PublishResult><MessageId>94f2-11</MessageId></PublishResult></PublishResponse>"),
        );
        assert!(matches!(answer(&ok), Ok(MessageId(id)) if id == "94f2-11"));
        let refused = HttpResponse::new(
            400.try_into().expect("status"),
            SdkBody::from("<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error></ErrorResponse>"),
        );
        let error = answer(&refused).err();
        let error = error.as_ref().and_then(|e| e.as_operation_error());
        assert_eq!(error.and_then(|e| e.code()), Some("Throttling"));
        assert_eq!(
            error.map(ToString::to_string).as_deref(),
            Some("SNS answered 400 Throttling: Rate exceeded")
        );
    }
}
