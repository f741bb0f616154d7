//! The sample data of `data/`, compiled in so that `ewf seed` works from any directory.

use crate::{Customer, Item};
use std::path::Path;

const CUSTOMERS: &str = include_str!("../../../data/customers.json");
const ITEMS: &str = include_str!("../../../data/items.json");

/// A set of customers and items to seed.
#[derive(Clone, Debug, PartialEq)]
pub struct SampleData {
    pub customers: Vec<Customer>,
    pub items: Vec<Item>,
}

impl SampleData {
    pub fn builtin() -> Self {
        Self::parse(CUSTOMERS, ITEMS).expect("the built-in sample data is valid")
    }

    /// Reads `customers.json` and `items.json` from a directory.
    pub fn from_dir(dir: &Path) -> Result<Self, String> {
        let read = |name: &str| {
            let path = dir.join(name);
            std::fs::read_to_string(&path)
                .map_err(|err| format!("cannot read {}: {err}", path.display()))
        };
        Self::parse(&read("customers.json")?, &read("items.json")?)
    }

    pub fn parse(customers: &str, items: &str) -> Result<Self, String> {
        let customers: Vec<Customer> =
            serde_json::from_str(customers).map_err(|err| format!("customers.json: {err}"))?;
        let items: Vec<serde_json::Value> =
            serde_json::from_str(items).map_err(|err| format!("items.json: {err}"))?;
        // Prices follow the one grammar of amounts, read from their text.
        for (index, item) in items.iter().enumerate() {
            crate::ids::amount_from_json("price", &item["price"])
                .map_err(|err| format!("items.json: item {}: {err}", index + 1))?;
        }
        let items: Vec<Item> = serde_json::from_value(serde_json::Value::Array(items))
            .map_err(|err| format!("items.json: {err}"))?;
        if let Some(item) = items
            .iter()
            .find(|item| item.available < 0 || item.reserved < 0)
        {
            return Err(format!("items.json: {} has negative stock", item.item_id));
        }
        Ok(Self { customers, items })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_data_matches_the_specification() {
        let data = SampleData::builtin();
        assert_eq!(data.customers.len(), 3);
        let stock: Vec<_> = data
            .items
            .iter()
            .map(|item| (item.item_id.as_str(), item.available))
            .collect();
        assert_eq!(stock, [("item-1", 10), ("item-2", 5), ("item-3", 100)]);
        assert_eq!(data.items[0].price.to_string(), "399.99");
    }
}
