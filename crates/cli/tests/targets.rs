//! Which target a command runs against: AWS-only options never silently fall back to the
//! local stack, the implicit choice is always said on stderr and named in JSON, and an
//! endpoint that cannot be reached is a configuration error naming it.

mod common;

use common::{ewf, run};
use std::path::Path;

fn no_local_state(dir: &Path) {
    assert!(!dir.join(".ewf").exists(), "the local stack was used");
}

#[test]
fn aws_options_without_a_stack_are_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        &["--region", "eu-west-2", "seed"][..],
        &[
            "--endpoint-url",
            "http://127.0.0.1:9",
            "order",
            "describe",
            "customer-1",
            "01KDX8Q7V3M2N4P6R8S0T2W4Y6",
        ],
        &["--profile", "dev", "set-fail-probability", "0"],
        &["stack", "--region", "eu-west-2"],
        &["demo", "--endpoint-url", "http://127.0.0.1:9"],
        &["dead-letters", "--profile", "dev"],
    ] {
        let refused = run(ewf(dir.path()), args);
        let line = refused.expect_error(2);
        assert!(
            line.contains("no stack named") && line.contains("--stack NAME"),
            "{args:?}: {line}"
        );
        no_local_state(dir.path());
    }
    // With --local, or on commands that only run locally, they would be ignored.
    for args in [
        &["--local", "--region", "eu-west-2", "seed"][..],
        &["bench", "--endpoint-url", "http://127.0.0.1:9"],
        &["local", "serve", "--profile", "dev"],
    ] {
        let refused = run(ewf(dir.path()), args);
        let line = refused.expect_error(2);
        assert!(
            line.contains("for a deployed stack only"),
            "{args:?}: {line}"
        );
        no_local_state(dir.path());
    }
}

#[test]
fn the_implicit_local_stack_is_said_on_stderr_and_named_in_json() {
    let dir = tempfile::tempdir().unwrap();
    let seeded = run(ewf(dir.path()), &["seed", "--output", "json"]);
    seeded.expect_success();
    // Not a terminal, and still said: a script must learn that AWS was not reached.
    assert_eq!(seeded.stderr.lines().count(), 1, "{}", seeded.stderr);
    assert!(
        seeded.stderr.contains("using the local stack in .ewf"),
        "{}",
        seeded.stderr
    );
    assert_eq!(seeded.json()["target"], "local stack in .ewf");
    // Chosen explicitly, nothing is said, and the document still names it.
    let explicit = run(
        ewf(dir.path()),
        &["--local", "set-fail-probability", "0", "--output", "json"],
    );
    explicit.expect_success();
    assert_eq!(explicit.stderr, "");
    assert_eq!(explicit.json()["target"], "local stack in .ewf");
}

#[cfg(feature = "aws")]
#[test]
fn an_endpoint_that_refuses_connections_is_a_configuration_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    // A port nobody listens on: bound, then released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let mut command = ewf(dir.path());
    command
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_CONFIG_FILE", dir.path().join("none"))
        .env("AWS_SHARED_CREDENTIALS_FILE", dir.path().join("none"));
    let refused = run(
        command,
        &["--stack", "ewf-test", "--endpoint-url", &url, "seed"],
    );
    let line = refused.expect_error(4);
    assert!(line.contains(&format!("cannot connect to {url}")), "{line}");
    no_local_state(dir.path());
}

/// The README's demo build has no AWS SDK: a stack is refused, saying how to get one.
#[cfg(not(feature = "aws"))]
#[test]
fn an_ewf_built_without_aws_refuses_a_stack_naming_the_feature() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        &["--stack", "ewf-test", "seed"][..],
        &["demo", "--stack", "ewf-test"],
    ] {
        let refused = run(ewf(dir.path()), args);
        let line = refused.expect_error(4);
        assert!(
            line.contains("built without AWS support") && line.contains("ewf-test"),
            "{args:?}: {line}"
        );
        assert!(
            refused.stderr.contains("--features aws"),
            "{}",
            refused.stderr
        );
        no_local_state(dir.path());
    }
}
