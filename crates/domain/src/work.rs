//! The work an order costs and what it costs: counted work (invocations, transitions,
//! events, DynamoDB capacity units, API requests), DynamoDB's capacity rules, and the
//! price table that turns work into money. Both targets report [`Work`]; one formula
//! prices it.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// DynamoDB reads a strongly consistent read unit per 4 KB, and writes a unit per 1 KB.
const READ_UNIT_BYTES: u64 = 4096;
const WRITE_UNIT_BYTES: u64 = 1024;

/// The size DynamoDB gives an item of these attributes (a JSON object as the adapters
/// write it): names and values in UTF-8 bytes, numbers by their digits, maps and lists
/// with their overhead. Not an object: the size of the value alone.
pub fn item_size(item: &Value) -> u64 {
    match item {
        Value::Object(attributes) => attributes
            .iter()
            .map(|(name, value)| name.len() as u64 + value_size(value))
            .sum(),
        other => value_size(other),
    }
}

fn value_size(value: &Value) -> u64 {
    match value {
        Value::Null | Value::Bool(_) => 1,
        Value::String(text) => text.len() as u64,
        // One byte per two significant digits, plus one.
        Value::Number(number) => {
            let digits = number
                .to_string()
                .chars()
                .filter(char::is_ascii_digit)
                .count() as u64;
            digits.div_ceil(2) + 1
        }
        // Three bytes of overhead, one per element.
        Value::Array(values) => {
            3 + values
                .iter()
                .map(|value| 1 + value_size(value))
                .sum::<u64>()
        }
        Value::Object(attributes) => {
            3 + attributes
                .iter()
                .map(|(name, value)| 1 + name.len() as u64 + value_size(value))
                .sum::<u64>()
        }
    }
}

/// Read units of a strongly consistent read of `bytes` (a missing item costs one).
pub fn read_units(bytes: u64) -> u64 {
    bytes.div_ceil(READ_UNIT_BYTES).max(1)
}

/// Write units of a write of an item of `bytes`, alone (a refused conditional write
/// costs the same); a transaction costs twice as much per item.
pub fn write_units(bytes: u64, transactional: bool) -> u64 {
    let units = bytes.div_ceil(WRITE_UNIT_BYTES).max(1);
    if transactional { 2 * units } else { units }
}

/// What a number of orders cost in work. A figure the target cannot count is `None`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Work {
    /// Lambda invocations per function.
    pub invocations: BTreeMap<String, u64>,
    /// Billed Lambda duration: each invocation rounded up to the millisecond.
    pub billed_ms: Option<u64>,
    /// Step Functions state transitions (states entered).
    pub transitions: u64,
    /// Events published to the bus.
    pub events: u64,
    /// Events handed to rule targets.
    pub deliveries: Option<u64>,
    /// DynamoDB read and write request units.
    pub read_units: Option<u64>,
    pub write_units: Option<u64>,
    /// HTTP API and REST API requests.
    pub http_requests: u64,
    pub rest_requests: u64,
    /// Bytes of logs written.
    pub log_bytes: Option<u64>,
}

fn add_option(left: Option<u64>, right: Option<u64>) -> Option<u64> {
    Some(left? + right?)
}

impl Work {
    pub fn invocation_total(&self) -> u64 {
        self.invocations.values().sum()
    }

    /// The work of both, figure by figure (a figure either lacks is lacking).
    pub fn plus(&self, other: &Work) -> Work {
        let mut invocations = self.invocations.clone();
        for (function, count) in &other.invocations {
            *invocations.entry(function.clone()).or_default() += count;
        }
        Work {
            invocations,
            billed_ms: add_option(self.billed_ms, other.billed_ms),
            transitions: self.transitions + other.transitions,
            events: self.events + other.events,
            deliveries: add_option(self.deliveries, other.deliveries),
            read_units: add_option(self.read_units, other.read_units),
            write_units: add_option(self.write_units, other.write_units),
            http_requests: self.http_requests + other.http_requests,
            rest_requests: self.rest_requests + other.rest_requests,
            log_bytes: add_option(self.log_bytes, other.log_bytes),
        }
    }

    /// The work done between `earlier` and this later reading of the same counters.
    pub fn since(&self, earlier: &Work) -> Work {
        let minus = |later: Option<u64>, before: Option<u64>| Some(later?.saturating_sub(before?));
        let invocations = self
            .invocations
            .iter()
            .map(|(function, count)| {
                let before = earlier.invocations.get(function).copied().unwrap_or(0);
                (function.clone(), count.saturating_sub(before))
            })
            .filter(|(_, count)| *count > 0)
            .collect();
        Work {
            invocations,
            billed_ms: minus(self.billed_ms, earlier.billed_ms),
            transitions: self.transitions.saturating_sub(earlier.transitions),
            events: self.events.saturating_sub(earlier.events),
            deliveries: minus(self.deliveries, earlier.deliveries),
            read_units: minus(self.read_units, earlier.read_units),
            write_units: minus(self.write_units, earlier.write_units),
            http_requests: self.http_requests.saturating_sub(earlier.http_requests),
            rest_requests: self.rest_requests.saturating_sub(earlier.rest_requests),
            log_bytes: minus(self.log_bytes, earlier.log_bytes),
        }
    }
}

/// One unit price, and where it was read.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UnitPrice {
    /// The price of `per` units.
    pub price: Decimal,
    pub per: Decimal,
    pub unit: String,
    /// The AWS pricing page the price is on.
    pub source: String,
    /// When the price was read from that page (ISO date); `None` when not checked.
    pub read: Option<String>,
    /// How it was checked, where that page alone did not show it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checked: Option<String>,
}

impl UnitPrice {
    /// The price of `quantity` units.
    pub fn of(&self, quantity: Decimal) -> Decimal {
        if self.per.is_zero() {
            return Decimal::ZERO;
        }
        self.price * quantity / self.per
    }
}

/// The unit prices of one region (`data/prices.json`, or `ewf compare --prices FILE`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PriceTable {
    pub region: String,
    pub currency: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    pub lambda_requests: UnitPrice,
    /// Per GB-second, for the functions' architecture.
    pub lambda_gb_seconds: UnitPrice,
    pub state_transitions: UnitPrice,
    pub events_published: UnitPrice,
    pub read_units: UnitPrice,
    pub write_units: UnitPrice,
    pub http_api_requests: UnitPrice,
    pub rest_api_requests: UnitPrice,
    /// Per GB of logs ingested.
    pub log_ingestion_gb: UnitPrice,
}

/// The price table shipped with ewf (us-east-1).
pub const BUILTIN_PRICES: &str = include_str!("../../../data/prices.json");

impl PriceTable {
    pub fn parse(text: &str) -> Result<Self, String> {
        serde_json::from_str(text).map_err(|err| err.to_string())
    }

    pub fn builtin() -> Result<Self, String> {
        Self::parse(BUILTIN_PRICES)
    }

    /// Every unit price, in the table's order.
    pub fn units(&self) -> [&UnitPrice; 9] {
        [
            &self.lambda_requests,
            &self.lambda_gb_seconds,
            &self.state_transitions,
            &self.events_published,
            &self.read_units,
            &self.write_units,
            &self.http_api_requests,
            &self.rest_api_requests,
            &self.log_ingestion_gb,
        ]
    }
}

/// One line of a cost: what is paid for, how much of it per order, and its cost per
/// million orders. No quantity: the target could not count it, so it is not priced.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CostLine {
    pub service: &'static str,
    pub item: &'static str,
    pub per_order: Option<Decimal>,
    pub per_million_orders: Option<Decimal>,
}

const MILLION: Decimal = Decimal::from_parts(1_000_000, 0, 0, false, 0);
const BYTES_PER_GB: Decimal = Decimal::from_parts(1_073_741_824, 0, 0, false, 0);
const MB_PER_GB: Decimal = Decimal::from_parts(1024, 0, 0, false, 0);
const MS_PER_SECOND: Decimal = Decimal::from_parts(1000, 0, 0, false, 0);

/// The cost of `orders` orders that did `work`, per million orders, line by line, for
/// functions of `memory_mb` megabytes.
pub fn cost_per_million(
    work: &Work,
    orders: u64,
    prices: &PriceTable,
    memory_mb: u64,
) -> Vec<CostLine> {
    let orders = Decimal::from(orders.max(1));
    let per_order = |quantity: Option<u64>| quantity.map(|value| Decimal::from(value) / orders);
    let gb_seconds = work
        .billed_ms
        .map(|ms| Decimal::from(ms) / MS_PER_SECOND * Decimal::from(memory_mb) / MB_PER_GB);
    let log_gb = work
        .log_bytes
        .map(|bytes| Decimal::from(bytes) / BYTES_PER_GB);
    let lines: [(&'static str, &'static str, Option<Decimal>, &UnitPrice); 9] = [
        (
            "Lambda",
            "requests",
            per_order(Some(work.invocation_total())),
            &prices.lambda_requests,
        ),
        (
            "Lambda",
            "duration (GB-s)",
            gb_seconds.map(|gb| gb / orders),
            &prices.lambda_gb_seconds,
        ),
        (
            "Step Functions",
            "state transitions",
            per_order(Some(work.transitions)),
            &prices.state_transitions,
        ),
        (
            "EventBridge",
            "events published",
            per_order(Some(work.events)),
            &prices.events_published,
        ),
        (
            "DynamoDB",
            "read units",
            per_order(work.read_units),
            &prices.read_units,
        ),
        (
            "DynamoDB",
            "write units",
            per_order(work.write_units),
            &prices.write_units,
        ),
        (
            "API Gateway",
            "HTTP API requests",
            per_order(Some(work.http_requests)),
            &prices.http_api_requests,
        ),
        (
            "API Gateway",
            "REST API requests",
            per_order(Some(work.rest_requests)),
            &prices.rest_api_requests,
        ),
        (
            "CloudWatch Logs",
            "ingested (GB)",
            log_gb.map(|gb| gb / orders),
            &prices.log_ingestion_gb,
        ),
    ];
    lines
        .into_iter()
        .map(|(service, item, quantity, price)| CostLine {
            service,
            item,
            per_order: quantity.map(|quantity| quantity.round_dp(6).normalize()),
            per_million_orders: quantity
                .map(|quantity| price.of(quantity * MILLION).round_dp(4).normalize()),
        })
        .collect()
}

/// The total of the lines that could be priced.
pub fn total(lines: &[CostLine]) -> Decimal {
    lines
        .iter()
        .filter_map(|line| line.per_million_orders)
        .sum::<Decimal>()
        .normalize()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn price(price: &str, per: u64) -> UnitPrice {
        UnitPrice {
            price: price.parse().unwrap(),
            per: Decimal::from(per),
            unit: "unit".into(),
            source: "https://aws.amazon.com/".into(),
            read: None,
            checked: None,
        }
    }

    fn prices() -> PriceTable {
        PriceTable {
            region: "us-east-1".into(),
            currency: "USD".into(),
            note: None,
            lambda_requests: price("0.20", 1_000_000),
            lambda_gb_seconds: price("0.0000133334", 1),
            state_transitions: price("0.025", 1000),
            events_published: price("1.00", 1_000_000),
            read_units: price("0.125", 1_000_000),
            write_units: price("0.625", 1_000_000),
            http_api_requests: price("1.00", 1_000_000),
            rest_api_requests: price("3.50", 1_000_000),
            log_ingestion_gb: price("0.50", 1),
        }
    }

    #[test]
    fn the_cost_of_two_orders_is_priced_as_computed_by_hand() {
        // Two orders: 20 invocations, 40 ms billed, 30 transitions, 4 events, 10 read
        // and 24 write units, 2 REST requests; the logs were not counted.
        let work = Work {
            invocations: [("Order".to_owned(), 12), ("Inventory".to_owned(), 8)].into(),
            billed_ms: Some(40),
            transitions: 30,
            events: 4,
            deliveries: Some(8),
            read_units: Some(10),
            write_units: Some(24),
            http_requests: 0,
            rest_requests: 2,
            log_bytes: None,
        };
        let lines = cost_per_million(&work, 2, &prices(), 128);
        let cost = |item: &str| {
            lines
                .iter()
                .find(|line| line.item == item)
                .and_then(|line| line.per_million_orders)
                .map(|cost| cost.to_string())
        };
        // 10 invocations an order, 10 M per million orders at 0.20 per million: 2.
        assert_eq!(cost("requests").as_deref(), Some("2"));
        // 20 ms an order at 1/8 GB: 0.0025 GB-s; 2,500 GB-s per million at
        // 0.0000133334: 0.0333335.
        assert_eq!(cost("duration (GB-s)").as_deref(), Some("0.0333"));
        // 15 transitions an order, 15 M at 0.025 per thousand: 375.
        assert_eq!(cost("state transitions").as_deref(), Some("375"));
        assert_eq!(cost("events published").as_deref(), Some("2"));
        // 5 read units an order: 5 M at 0.125 per million: 0.625.
        assert_eq!(cost("read units").as_deref(), Some("0.625"));
        // 12 write units an order: 12 M at 0.625 per million: 7.5.
        assert_eq!(cost("write units").as_deref(), Some("7.5"));
        assert_eq!(cost("REST API requests").as_deref(), Some("3.5"));
        assert_eq!(cost("HTTP API requests").as_deref(), Some("0"));
        assert_eq!(cost("ingested (GB)"), None);
        assert_eq!(total(&lines).to_string(), "390.6583");
    }

    #[test]
    fn capacity_follows_the_on_demand_rules() {
        assert_eq!(read_units(0), 1);
        assert_eq!(read_units(4096), 1);
        assert_eq!(read_units(4097), 2);
        assert_eq!(write_units(1024, false), 1);
        assert_eq!(write_units(1025, false), 2);
        assert_eq!(write_units(100, true), 2);
        // "id" (2) + "a-1" (3); "n" (1) + 3 digits (2 + 1); "ok" (2) + true (1);
        // "l" (1) + list (3 + 1 + "x" (1)).
        let item = json!({"id": "a-1", "n": 123, "ok": true, "l": ["x"]});
        assert_eq!(item_size(&item), 5 + 4 + 3 + 6);
    }

    #[test]
    fn work_since_an_earlier_reading_is_the_difference() {
        let earlier = Work {
            invocations: [("Order".to_owned(), 3)].into(),
            billed_ms: Some(5),
            events: 2,
            ..Work::default()
        };
        let later = Work {
            invocations: [("Order".to_owned(), 5), ("Add".to_owned(), 1)].into(),
            billed_ms: Some(9),
            events: 2,
            ..Work::default()
        };
        let done = later.since(&earlier);
        assert_eq!(
            done.invocations,
            [("Add".to_owned(), 1), ("Order".to_owned(), 2)].into()
        );
        assert_eq!(done.billed_ms, Some(4));
        assert_eq!(done.events, 0);
        assert_eq!(done.plus(&done).invocation_total(), 6);
    }

    #[test]
    fn the_builtin_price_table_reads() {
        let table = PriceTable::builtin().unwrap();
        assert_eq!(table.currency, "USD");
        for unit in table.units() {
            assert!(
                ["https://aws.amazon.com/", "https://docs.aws.amazon.com/"]
                    .iter()
                    .any(|page| unit.source.starts_with(page)),
                "{} is priced from an AWS page: {}",
                unit.unit,
                unit.source
            );
            let read = unit.read.as_deref().unwrap_or_default();
            assert!(
                chrono::NaiveDate::parse_from_str(read, "%Y-%m-%d").is_ok(),
                "{} has the date it was read: {read:?}",
                unit.unit
            );
        }
    }
}
