//! The Amazon Location estimator against the rehearsal's stand-in for Amazon Location
//! (scripts/rehearse-location.py): the SDK's requests are the ones the stand-in answers,
//! and its figures are the local stack's, so both targets quote the same prices.

use aws_config::{BehaviorVersion, Region};
use aws_sdk_geoplaces::config::Credentials;
use ewf_aws::LocationEstimator;
use ewf_domain::ports::Estimator;
use ewf_domain::{Address, ServiceError};
use ewf_sqlite::gazetteer::{Gazetteer, SAMPLE_GAZETTEER};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// The stand-in, stopped when dropped.
struct StandIn {
    child: Child,
    url: String,
}

impl StandIn {
    fn start() -> Self {
        let script =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/rehearse-location.py");
        let mut child = Command::new("python3")
            .arg(script)
            .args(["--port", "0"])
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 runs scripts/rehearse-location.py");
        let mut url = String::new();
        let stdout = child.stdout.take().expect("piped stdout");
        BufReader::new(stdout).read_line(&mut url).unwrap();
        assert!(
            url.starts_with("http://127.0.0.1:"),
            "stand-in said {url:?}"
        );
        Self {
            child,
            url: url.trim().to_owned(),
        }
    }
}

impl Drop for StandIn {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn estimator(url: &str) -> LocationEstimator {
    let config = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(url)
        .credentials_provider(Credentials::new("test", "test", None, None, "test"))
        .load()
        .await;
    LocationEstimator::new(
        aws_sdk_geoplaces::Client::new(&config),
        aws_sdk_georoutes::Client::new(&config),
        Address::parse("60 Holborn Viaduct, London EC1A 2FD, UK").unwrap(),
    )
}

#[tokio::test]
async fn the_stand_in_quotes_every_place_of_the_gazetteer_as_the_local_stack_does() {
    let stand_in = StandIn::start();
    let location = estimator(&stand_in.url).await;
    let gazetteer = Gazetteer::sample();
    let data: serde_json::Value = serde_json::from_str(SAMPLE_GAZETTEER).unwrap();
    let places = data["places"].as_array().unwrap();
    assert!(!places.is_empty());
    for place in places {
        let address = Address::parse(place["address"].as_str().unwrap()).unwrap();
        assert_eq!(
            location.estimate(&address).await.unwrap(),
            gazetteer.estimate(&address).unwrap(),
            "{address}"
        );
    }
    let nowhere = Address::parse("1 Nowhere Lane, Atlantis").unwrap();
    assert_eq!(
        location.estimate(&nowhere).await.unwrap_err(),
        ServiceError::not_found("Address", &nowhere)
    );
}
