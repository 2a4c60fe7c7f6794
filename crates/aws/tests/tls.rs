//! The functions' HTTPS as it runs in AWS, where every call is TLS (moto, the tests' stand-in for
//! S3 and SNS, speaks plain HTTP): an S3 read through `flightwatch_aws::http_client`, whose roots
//! are the system's (`rustls-native-certs`, which reads `SSL_CERT_FILE` as it reads the system's
//! bundle in Lambda), from a local TLS server with a certificate for `localhost`. Its own test
//! binary: the client reads the roots once per process.

use std::sync::Arc;

use aws_credential_types::provider::SharedCredentialsProvider;
use aws_credential_types::Credentials;
use flightwatch_aws::S3Objects;
use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::rustls;

/// A CA, and a certificate it signed for `localhost` with its key.
fn certificates() -> (rcgen::Certificate, rcgen::Certificate, KeyPair) {
    let ca_key = KeyPair::generate().expect("key");
    let mut ca = CertificateParams::new(Vec::<String>::new()).expect("params");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca.self_signed(&ca_key).expect("CA");
    let key = KeyPair::generate().expect("key");
    let cert = CertificateParams::new(vec!["localhost".to_owned()])
        .expect("params")
        .signed_by(&key, &ca_cert, &ca_key)
        .expect("certificate");
    (ca_cert, cert, key)
}

/// Serves one TLS connection on a free port: answers its request with `body`.
async fn serve(cert: rcgen::Certificate, key: KeyPair, body: &'static str) -> u16 {
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("TLS versions")
    .with_no_client_auth()
    .with_single_cert(
        vec![cert.der().clone()],
        rustls::pki_types::PrivateKeyDer::try_from(key.serialize_der()).expect("key"),
    )
    .expect("server config");
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let Ok(mut tls) = acceptor.accept(tcp).await else {
                continue;
            };
            let mut request = vec![0u8; 8192];
            let _ = tls.read(&mut request).await;
            let answer = format!(
                "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{body}",
                body.len()
            );
            let _ = tls.write_all(answer.as_bytes()).await;
            let _ = tls.shutdown().await;
        }
    });
    port
}

fn sdk(port: u16) -> aws_config::SdkConfig {
    aws_config::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
            "AKIDEXAMPLE",
            "secret",
            None,
            None,
            "test",
        )))
        .endpoint_url(format!("https://localhost:{port}"))
        .http_client(flightwatch_aws::http_client())
        .build()
}

#[tokio::test]
async fn https_is_verified_against_the_systems_roots() {
    let (ca, cert, key) = certificates();
    let roots = std::env::temp_dir().join(format!("flightwatch-tls-{}.pem", std::process::id()));
    std::fs::write(&roots, ca.pem()).expect("CA file");
    // Before the client's first use, which reads the roots.
    std::env::set_var("SSL_CERT_FILE", &roots);

    let port = serve(cert, key, "jdbc.url=ok").await;
    let read = S3Objects::new(&sdk(port), "config")
        .get("dev/flights.properties")
        .await;
    assert_eq!(read.expect("read over TLS"), b"jdbc.url=ok");

    // A certificate from a CA the roots do not hold is refused.
    let (_, stranger, stranger_key) = certificates();
    let port = serve(stranger, stranger_key, "forged").await;
    let refused = S3Objects::new(&sdk(port), "config")
        .get("dev/flights.properties")
        .await;
    let error = refused.expect_err("an unknown CA");
    assert!(error.status().is_none(), "{error}");
    assert!(
        error.to_string().contains("invalid peer certificate"),
        "{error}"
    );
    let _ = std::fs::remove_file(&roots);
}
