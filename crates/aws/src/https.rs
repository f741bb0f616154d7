//! The SDK clients' HTTPS client, trusting the roots of Amazon Trust Services, compiled in.
//!
//! The SDK's default client trusts the platform's store: on Linux it reads the bundle and
//! then each of the ~140 files under /etc/ssl/certs, and parses them all again for every
//! SDK client built, all before a function's first poll. The functions only call AWS
//! endpoints, whose certificates chain to Amazon Trust Services (Amazon Root CA 1 to 4, and
//! Starfield Services Root G2, which cross-signs them): five roots, parsed in microseconds.

use aws_smithy_http_client::tls::rustls_provider::CryptoMode;
use aws_smithy_http_client::tls::{Provider, TlsContext, TrustStore};
use aws_smithy_http_client::{Builder, HttpClientError};
use aws_smithy_runtime_api::client::http::SharedHttpClient;

/// The five roots, as PEM (from Mozilla's store; each with its SHA-256 fingerprint).
const AMAZON_TRUST_SERVICES: &[u8] = include_bytes!("amazon-trust-services.pem");

/// An HTTPS client (rustls over aws-lc, as the SDK's default) with the compiled-in roots.
pub(crate) fn client() -> Result<SharedHttpClient, HttpClientError> {
    let roots = TrustStore::empty().with_pem_certificate(AMAZON_TRUST_SERVICES);
    let tls = TlsContext::builder().with_trust_store(roots).build()?;
    Ok(Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::AwsLc))
        .tls_context(tls)
        .build_https())
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_config::{BehaviorVersion, Region};

    #[test]
    fn the_compiled_in_roots_are_the_five_of_amazon_trust_services() {
        let pem = String::from_utf8_lossy(AMAZON_TRUST_SERVICES);
        assert_eq!(pem.matches("-----BEGIN CERTIFICATE-----").count(), 5);
        for name in [
            "Amazon Root CA 1",
            "Amazon Root CA 2",
            "Amazon Root CA 3",
            "Amazon Root CA 4",
            "Starfield Services Root Certificate Authority - G2",
        ] {
            assert!(pem.contains(&format!("CN = {name}\n")), "{name}");
        }
    }

    /// Building an SDK client builds its connector, which parses every root (and
    /// panics on one it cannot parse).
    #[tokio::test]
    async fn an_sdk_client_accepts_the_roots() {
        let config = aws_config::defaults(BehaviorVersion::latest())
            .http_client(client().unwrap())
            .region(Region::new("eu-west-1"))
            .load()
            .await;
        let _client = aws_sdk_dynamodb::Client::new(&config);
    }
}
