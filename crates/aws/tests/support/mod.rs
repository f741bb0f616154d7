//! Test support: a moto server (the one the test command started, named by
//! EWF_MOTO_ENDPOINT, or one of our own), an SDK configuration for it, and uniquely
//! named DynamoDB tables shaped like the stack's.
// Each test file uses its own part of this module.
#![allow(dead_code)]

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::Credentials;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType,
};
use ewf_aws::{
    DynamoCustomers, DynamoDeliveries, DynamoEvents, DynamoInventory, DynamoLedger, DynamoOrders,
    DynamoPayments,
};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

struct Moto {
    endpoint: String,
    /// Our own server, if we started one (see [`spawn`]).
    _server: Option<Child>,
}

static MOTO: OnceLock<Result<Moto, String>> = OnceLock::new();

/// The moto endpoint; fails the test when there is none.
pub fn endpoint() -> &'static str {
    match MOTO.get_or_init(start) {
        Ok(moto) => &moto.endpoint,
        Err(message) => panic!("no moto server for the AWS adapter tests: {message}"),
    }
}

fn start() -> Result<Moto, String> {
    if let Ok(endpoint) = std::env::var("EWF_MOTO_ENDPOINT") {
        wait_until_listening(&endpoint)?;
        return Ok(Moto {
            endpoint,
            _server: None,
        });
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let python = root.join(".venv/bin/python");
    if !python.exists() {
        return Err(format!(
            "EWF_MOTO_ENDPOINT is not set and {} does not exist (run scripts/setup-tools.sh)",
            python.display()
        ));
    }
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map_err(|err| format!("cannot find a free port: {err}"))?
        .port();
    let server = spawn(&python, &root.join("scripts/moto_server.py"), port)
        .map_err(|err| format!("cannot start moto's server: {err}"))?;
    let endpoint = format!("http://127.0.0.1:{port}");
    wait_until_listening(&endpoint)?;
    Ok(Moto {
        endpoint,
        _server: Some(server),
    })
}

/// Starts moto_server under a shell that stops it as soon as its stdin closes. Our end
/// of that pipe closes whenever this process ends, however it ends, which matters
/// because the server is shared by the tests through a static that is never dropped.
fn spawn(python: &Path, script: &Path, port: u16) -> std::io::Result<Child> {
    const SCRIPT: &str = r#""$0" "$1" -H 127.0.0.1 -p "$2" >/dev/null 2>&1 & server=$!; cat >/dev/null; kill "$server""#;
    Command::new("sh")
        .args(["-c", SCRIPT])
        .arg(python)
        .arg(script)
        .arg(port.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
}

fn wait_until_listening(endpoint: &str) -> Result<(), String> {
    let address = endpoint.trim_start_matches("http://").trim_end_matches('/');
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if TcpStream::connect(address).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err(format!("nothing listens on {endpoint} after 60 s"))
}

/// An SDK configuration for moto: dummy credentials, us-east-1.
pub async fn config() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint())
        .credentials_provider(Credentials::new("testing", "testing", None, None, "moto"))
        .load()
        .await
}

/// A name no other test of this run uses.
pub fn unique(kind: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "{kind}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

fn key(attribute: &str, key_type: KeyType) -> KeySchemaElement {
    KeySchemaElement::builder()
        .attribute_name(attribute)
        .key_type(key_type)
        .build()
        .unwrap()
}

fn string_attribute(attribute: &str) -> AttributeDefinition {
    AttributeDefinition::builder()
        .attribute_name(attribute)
        .attribute_type(ScalarAttributeType::S)
        .build()
        .unwrap()
}

/// Creates a table with string keys; returns its name.
pub async fn create_table(client: &Client, kind: &str, hash: &str, range: Option<&str>) -> String {
    let name = unique(kind);
    let mut request = client
        .create_table()
        .table_name(&name)
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(key(hash, KeyType::Hash))
        .attribute_definitions(string_attribute(hash));
    if let Some(range) = range {
        request = request
            .key_schema(key(range, KeyType::Range))
            .attribute_definitions(string_attribute(range));
    }
    request.send().await.unwrap();
    name
}

/// Every store over fresh tables, sharing one ledger.
pub struct Fixture {
    pub client: Client,
    pub ledger_table: String,
}

impl Fixture {
    pub async fn new() -> Self {
        let client = Client::new(&config().await);
        let ledger_table = create_table(&client, "ledger", "stepKey", None).await;
        Self {
            client,
            ledger_table,
        }
    }

    pub fn ledger(&self) -> DynamoLedger {
        DynamoLedger::new(self.client.clone(), &self.ledger_table)
    }

    pub async fn customers(&self) -> DynamoCustomers {
        DynamoCustomers::new(
            self.client.clone(),
            create_table(&self.client, "customer", "customerId", None).await,
        )
    }

    pub async fn inventory(&self) -> DynamoInventory {
        let table = create_table(&self.client, "inventory", "itemId", None).await;
        DynamoInventory::new(self.client.clone(), table, &self.ledger_table)
    }

    pub async fn payments(&self) -> DynamoPayments {
        let table = create_table(&self.client, "payment", "paymentId", None).await;
        DynamoPayments::new(self.client.clone(), table, &self.ledger_table)
    }

    pub async fn deliveries(&self) -> DynamoDeliveries {
        let table = create_table(&self.client, "delivery", "customerId", Some("orderId")).await;
        DynamoDeliveries::new(self.client.clone(), table, &self.ledger_table)
    }

    pub async fn orders(&self) -> DynamoOrders {
        let table = create_table(&self.client, "order", "customerId", Some("orderId")).await;
        DynamoOrders::new(self.client.clone(), table, &self.ledger_table)
    }

    /// EventStoreTable with its ByOrder index.
    pub async fn events(&self) -> DynamoEvents {
        let name = unique("events");
        let by_order = GlobalSecondaryIndex::builder()
            .index_name("ByOrder")
            .key_schema(key("orderId", KeyType::Hash))
            .key_schema(key("timeWhat", KeyType::Range))
            .projection(
                Projection::builder()
                    .projection_type(ProjectionType::All)
                    .build(),
            )
            .build()
            .unwrap();
        self.client
            .create_table()
            .table_name(&name)
            .billing_mode(BillingMode::PayPerRequest)
            .key_schema(key("who", KeyType::Hash))
            .key_schema(key("timeWhat", KeyType::Range))
            .attribute_definitions(string_attribute("who"))
            .attribute_definitions(string_attribute("timeWhat"))
            .attribute_definitions(string_attribute("orderId"))
            .global_secondary_indexes(by_order)
            .send()
            .await
            .unwrap();
        DynamoEvents::new(self.client.clone(), name)
    }
}
