//! The SDK's HTTPS client: HTTP/1.1 on hyper's pooled client, TLS by rustls on ring with the
//! system's root certificates, the SDK's connect and read timeouts, and its connection poisoning.
//!
//! Not `aws-smithy-http-client`, the SDK's own hyper client: it always compiles HTTP/2, and its
//! `http2` feature on hyper-util also turns HTTP/2 on in the Lambda runtime's client, so every
//! function linked h2 twice for a protocol none of its calls speaks (SNS and S3 answer
//! HTTP/1.1). Issue 13's size budgets; `scripts/build.sh` prints what it saved.

use std::collections::HashMap;
use std::error::Error;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::connection::{CaptureSmithyConnection, ConnectionMetadata};
use aws_smithy_runtime_api::client::connector_metadata::ConnectorMetadata;
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::retry::ErrorKind;
use http::Uri;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::{capture_connection, HttpConnector as Tcp};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use tokio::time::error::Elapsed;

/// The HTTPS client every SDK client of ours is given (functions, deployer, local stack, tests).
pub fn http_client() -> SharedHttpClient {
    SharedHttpClient::new(Https::default())
}

/// A connection pool per pair of timeouts the SDK asks for (in practice one), as the SDK
/// expects of its client: the connectors are cached, not rebuilt per request.
#[derive(Debug, Default)]
struct Https {
    connectors: Mutex<HashMap<Timeouts, SharedHttpConnector>>,
}

/// Connect and read timeouts.
type Timeouts = (Option<Duration>, Option<Duration>);

impl HttpClient for Https {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        _: &RuntimeComponents,
    ) -> SharedHttpConnector {
        let timeouts = (settings.connect_timeout(), settings.read_timeout());
        self.connectors
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(timeouts)
            .or_insert_with(|| SharedHttpConnector::new(Connector::new(timeouts)))
            .clone()
    }

    fn connector_metadata(&self) -> Option<ConnectorMetadata> {
        Some(ConnectorMetadata::new("hyper-1.x", None))
    }
}

#[derive(Debug)]
struct Connector {
    client: Client<Bounded, SdkBody>,
    read_timeout: Option<Duration>,
}

impl Connector {
    fn new((connect_timeout, read_timeout): Timeouts) -> Self {
        let mut tcp = Tcp::new();
        tcp.enforce_http(false);
        tcp.set_nodelay(true);
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls().as_ref().clone())
            // http: for an endpoint by URL such as an emulator's; AWS endpoints are https.
            .https_or_http()
            .enable_http1()
            .wrap_connector(tcp);
        // The whole connect (DNS, TCP to each address, TLS), as the SDK's client bounds it; none
        // set, none imposed.
        let https = Bounded {
            inner: https,
            limit: connect_timeout.unwrap_or(Duration::MAX),
        };
        let client = Client::builder(TokioExecutor::new())
            // The pool's idle timeout only runs with a timer.
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(Duration::from_secs(90))
            .build(https);
        Self {
            client,
            read_timeout,
        }
    }
}

/// The HTTPS connector with a time limit on the whole connect.
#[derive(Clone, Debug)]
struct Bounded {
    inner: HttpsConnector<Tcp>,
    limit: Duration,
}

type Connecting<R> = Pin<Box<dyn Future<Output = Result<R, BoxError>> + Send>>;

impl tower_service::Service<Uri> for Bounded {
    type Response = <HttpsConnector<Tcp> as tower_service::Service<Uri>>::Response;
    type Error = BoxError;
    type Future = Connecting<Self::Response>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let connecting = self.inner.call(uri);
        let limit = self.limit;
        Box::pin(async move {
            tokio::time::timeout(limit, connecting)
                .await
                .unwrap_or_else(|elapsed| Err(elapsed.into()))
        })
    }
}

/// rustls on ring with the system's roots, read once per process (a cold start's first call).
fn tls() -> &'static Arc<rustls::ClientConfig> {
    static TLS: OnceLock<Arc<rustls::ClientConfig>> = OnceLock::new();
    TLS.get_or_init(|| {
        let found = rustls_native_certs::load_native_certs();
        for error in &found.errors {
            tracing::warn!(%error, "a system root certificate could not be read");
        }
        let mut roots = rustls::RootCertStore::empty();
        let (_, unparsable) = roots.add_parsable_certificates(found.certs);
        if unparsable > 0 || roots.is_empty() {
            tracing::warn!(unparsable, usable = roots.len(), "system root certificates");
        }
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap_or_else(|_| unreachable!("ring offers TLS 1.2 and 1.3"))
        .with_root_certificates(roots)
        .with_no_client_auth();
        Arc::new(config)
    })
}

impl HttpConnector for Connector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let mut request = match request.try_into_http1x() {
            Ok(request) => request,
            Err(e) => return HttpConnectorFuture::ready(Err(ConnectorError::user(e.into()))),
        };
        // The SDK poisons a connection after a transient failure on it, so that the retry
        // opens a new one rather than reusing it.
        let captured = capture_connection(&mut request);
        if let Some(smithy) = request.extensions().get::<CaptureSmithyConnection>() {
            smithy.set_connection_retriever(move || {
                let proxied = captured.connection_metadata().as_ref()?.is_proxied();
                let connection = captured.clone();
                Some(
                    ConnectionMetadata::builder()
                        .proxied(proxied)
                        .poison_fn(move || {
                            if let Some(connected) = connection.connection_metadata().as_ref() {
                                connected.poison();
                            }
                        })
                        .build(),
                )
            });
        }
        let response = self.client.request(request);
        let read_timeout = self.read_timeout;
        HttpConnectorFuture::new(async move {
            let response = match read_timeout {
                Some(limit) => tokio::time::timeout(limit, response)
                    .await
                    .map_err(|elapsed| ConnectorError::timeout(elapsed.into()))?,
                None => response.await,
            };
            match response {
                Ok(response) => HttpResponse::try_from(response.map(SdkBody::from_body_1_x))
                    .map_err(|e| ConnectorError::other(e.into(), None)),
                Err(e) => Err(classify(e)),
            }
        })
    }
}

/// Which failures the SDK's retries treat as transient: anything before or during the exchange
/// on the wire (connect, DNS, reset, closed, cut short); a request hyper refused is the caller's.
fn classify(error: hyper_util::client::legacy::Error) -> ConnectorError {
    if find::<Elapsed>(&error).is_some() {
        return ConnectorError::timeout(error.into());
    }
    let hyper = find::<hyper::Error>(&error);
    if hyper.is_some_and(hyper::Error::is_user) {
        return ConnectorError::user(error.into());
    }
    if hyper.is_some_and(hyper::Error::is_timeout) {
        return ConnectorError::timeout(error.into());
    }
    if error.is_connect()
        || find::<std::io::Error>(&error).is_some()
        || hyper.is_some_and(|e| e.is_closed() || e.is_canceled())
    {
        return ConnectorError::io(error.into());
    }
    if hyper.is_some_and(hyper::Error::is_incomplete_message) {
        return ConnectorError::other(error.into(), Some(ErrorKind::TransientError));
    }
    ConnectorError::other(error.into(), None)
}

/// The first error of type `E` in `error`'s chain.
fn find<'a, E: Error + 'static>(error: &'a (dyn Error + 'static)) -> Option<&'a E> {
    std::iter::successors(Some(error), |&e| e.source()).find_map(|e| e.downcast_ref::<E>())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A GET of `url` as the SDK hands it to the connector.
    fn get(url: String) -> HttpRequest {
        let request = http::Request::builder()
            .uri(url)
            .body(SdkBody::empty())
            .expect("request");
        HttpRequest::try_from(request).expect("request")
    }

    /// A port that accepts a connection and then says nothing, while the task runs.
    async fn silent_server() -> (u16, tokio::task::JoinHandle<()>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let accepting = tokio::spawn(async move {
            let _connection = listener.accept().await;
            std::future::pending::<()>().await;
        });
        (port, accepting)
    }

    /// A refused connection is I/O, which the SDK's standard retries retry.
    #[tokio::test]
    async fn a_refused_connection_is_transient() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        drop(listener);
        let connector = Connector::new((Some(Duration::from_secs(1)), None));
        let request = get(format!("http://127.0.0.1:{port}/"));
        let error = connector.call(request).await.expect_err("nothing listens");
        assert!(error.is_io(), "{error:?}");
    }

    /// A connect that does not complete (here a TLS handshake nobody answers) is a timeout
    /// after the connect timeout.
    #[tokio::test]
    async fn a_handshake_that_never_ends_times_out_as_a_connect() {
        let (port, server) = silent_server().await;
        let connector = Connector::new((Some(Duration::from_millis(200)), None));
        let started = std::time::Instant::now();
        let request = get(format!("https://127.0.0.1:{port}/"));
        let error = connector.call(request).await.expect_err("no handshake");
        assert!(error.is_timeout(), "{error:?}");
        assert!(started.elapsed() < Duration::from_secs(2));
        server.abort();
    }

    /// An answer that never comes is a timeout after the read timeout.
    #[tokio::test]
    async fn a_silent_server_times_out() {
        let (port, server) = silent_server().await;
        let connector = Connector::new((None, Some(Duration::from_millis(200))));
        let request = get(format!("http://127.0.0.1:{port}/"));
        let error = connector.call(request).await.expect_err("no answer");
        assert!(error.is_timeout(), "{error:?}");
        server.abort();
    }
}
