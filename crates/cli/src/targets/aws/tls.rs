//! The extra certificate authorities every HTTPS client of `ewf` trusts (the AWS SDK's
//! and the HTTP API's): the bundle named by AWS_CA_BUNDLE, else by the profile's
//! `ca_bundle`, as for the AWS CLI. Behind a TLS-inspecting proxy, or with an emulator
//! serving HTTPS, the system's roots alone do not do.

use crate::error::{CliError, Result};
use aws_runtime::env_config::file::EnvConfigFiles;
use aws_smithy_http_client::tls::{self, TlsContext, TrustStore};
use aws_smithy_runtime_api::client::http::SharedHttpClient;
use aws_types::os_shim_internal::{Env, Fs};
use std::borrow::Cow;
use std::path::PathBuf;

const VARIABLE: &str = "AWS_CA_BUNDLE";
const PROFILE_KEY: &str = "ca_bundle";

/// A PEM bundle of certificate authorities, and where it came from.
#[derive(Clone, Debug)]
pub struct CaBundle {
    pub path: PathBuf,
    pub source: &'static str,
    pub pem: Vec<u8>,
}

impl CaBundle {
    /// The bundle configured for `profile` (the selected one when `None`), if any.
    pub async fn configured(profile: Option<&str>) -> Result<Option<Self>> {
        Self::configured_in(&Fs::real(), &Env::real(), profile).await
    }

    async fn configured_in(fs: &Fs, env: &Env, profile: Option<&str>) -> Result<Option<Self>> {
        let (path, source) = match env.get(VARIABLE).ok().filter(|path| !path.is_empty()) {
            Some(path) => (path, VARIABLE),
            None => match profile_setting(fs, env, profile).await? {
                Some(path) => (path, "the profile's ca_bundle"),
                None => return Ok(None),
            },
        };
        let path = PathBuf::from(path);
        let pem = std::fs::read(&path).map_err(|err| {
            CliError::config(format!(
                "cannot read the CA bundle {} (from {source}): {err}",
                path.display()
            ))
            .hint(format!(
                "fix or unset {VARIABLE}, or the profile's ca_bundle"
            ))
        })?;
        Ok(Some(Self { path, source, pem }))
    }

    /// The bundle's certificates, for reqwest. Reqwest checks each when its client is
    /// built; that is where a malformed bundle is refused, before the SDK sees it.
    pub fn certificates(&self) -> Result<Vec<reqwest::Certificate>> {
        let certificates = reqwest::Certificate::from_pem_bundle(&self.pem)
            .map_err(|err| self.invalid(&err.to_string()))?;
        if certificates.is_empty() {
            return Err(self.invalid("no PEM certificate in it"));
        }
        Ok(certificates)
    }

    pub fn invalid(&self, why: &str) -> CliError {
        CliError::config(format!(
            "the CA bundle {} (from {}) is not usable: {why}",
            self.path.display(),
            self.source
        ))
        .hint("give a file of PEM certificates (-----BEGIN CERTIFICATE-----)")
    }

    /// An HTTPS client for the AWS SDK that trusts the system's roots and this bundle.
    /// Call after [`Self::certificates`] has accepted the bundle: the SDK's TLS setup
    /// does not return an error for a malformed certificate.
    pub fn sdk_client(&self) -> Result<SharedHttpClient> {
        let trust = TrustStore::default().with_pem_certificate(self.pem.clone());
        let context = TlsContext::builder()
            .with_trust_store(trust)
            .build()
            .map_err(|err| self.invalid(&err.to_string()))?;
        Ok(aws_smithy_http_client::Builder::new()
            .tls_provider(tls::Provider::Rustls(
                tls::rustls_provider::CryptoMode::AwsLc,
            ))
            .tls_context(context)
            .build_https())
    }
}

/// The profile's `ca_bundle`, read from the AWS config files as the SDK reads them.
async fn profile_setting(fs: &Fs, env: &Env, profile: Option<&str>) -> Result<Option<String>> {
    let selected = profile.map(|name| Cow::Owned(name.to_owned()));
    match aws_config::profile::load(fs, env, &EnvConfigFiles::default(), selected).await {
        Ok(profiles) => Ok(profiles.get(PROFILE_KEY).map(str::to_owned)),
        // A broken config file is the SDK's to report, with its own words, when it loads.
        Err(err) => {
            tracing::debug!(error = %err, "AWS config files not read for ca_bundle");
            Ok(None)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Exit;

    /// A certificate authority made for the tests (never trusted anywhere else).
    const TEST_CA: &str = include_str!("../../../tests/fixtures/test-ca.pem");

    fn pem_file(text: &str) -> tempfile::NamedTempFile {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), text).unwrap();
        file
    }

    #[tokio::test]
    async fn the_variable_beats_the_profile_and_the_profile_is_read_otherwise() {
        let from_env = pem_file(TEST_CA);
        let from_profile = pem_file(TEST_CA);
        let config = format!(
            "[profile dev]\nregion = eu-west-2\nca_bundle = {}\n",
            from_profile.path().display()
        );
        let fs = Fs::from_slice(&[("/home/me/.aws/config", config.as_str())]);
        let env_path = from_env.path().to_str().unwrap();

        let env = Env::from_slice(&[("HOME", "/home/me"), (VARIABLE, env_path)]);
        let bundle = CaBundle::configured_in(&fs, &env, Some("dev"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (bundle.path.as_path(), bundle.source),
            (from_env.path(), VARIABLE)
        );

        // Empty, as unset: the profile's.
        let env = Env::from_slice(&[("HOME", "/home/me"), (VARIABLE, "")]);
        let bundle = CaBundle::configured_in(&fs, &env, Some("dev"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(bundle.path, from_profile.path());
        assert_eq!(bundle.certificates().unwrap().len(), 1);

        // Another profile without one: none.
        let none = CaBundle::configured_in(&fs, &env, Some("other"))
            .await
            .unwrap();
        assert!(none.is_none());
    }

    #[tokio::test]
    async fn a_missing_or_empty_bundle_is_a_configuration_error() {
        let fs = Fs::from_slice(&[]);
        let env = Env::from_slice(&[(VARIABLE, "/nonexistent/ca.pem")]);
        let missing = CaBundle::configured_in(&fs, &env, None).await.unwrap_err();
        assert_eq!(missing.exit, Exit::Config);
        assert!(
            missing.message.contains("/nonexistent/ca.pem"),
            "{}",
            missing.message
        );

        let empty = pem_file("not a certificate\n");
        let env = Env::from_slice(&[(VARIABLE, empty.path().to_str().unwrap())]);
        let bundle = CaBundle::configured_in(&fs, &env, None)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(bundle.certificates().unwrap_err().exit, Exit::Config);
    }
}
