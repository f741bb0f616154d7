//! Expression attribute names and values. Expressions are written with placeholders
//! only: attribute names are our constants, every value travels as a bound value.

use aws_sdk_dynamodb::types::AttributeValue;
use std::collections::HashMap;

#[derive(Clone, Debug, Default)]
pub(crate) struct Expr {
    names: HashMap<String, String>,
    values: HashMap<String, AttributeValue>,
}

impl Expr {
    /// The placeholder of an attribute name.
    pub fn name(&mut self, attribute: &'static str) -> String {
        let placeholder = format!("#{attribute}");
        self.names.insert(placeholder.clone(), attribute.to_owned());
        placeholder
    }

    /// The placeholder of a value.
    pub fn value(&mut self, value: AttributeValue) -> String {
        let placeholder = format!(":v{}", self.values.len());
        self.values.insert(placeholder.clone(), value);
        placeholder
    }

    /// `#attribute = :value`.
    pub fn equals(&mut self, attribute: &'static str, value: AttributeValue) -> String {
        format!("{} = {}", self.name(attribute), self.value(value))
    }

    /// `#attribute IN (:value, ...)`.
    pub fn one_of(
        &mut self,
        attribute: &'static str,
        values: impl IntoIterator<Item = AttributeValue>,
    ) -> String {
        let name = self.name(attribute);
        let values: Vec<String> = values.into_iter().map(|value| self.value(value)).collect();
        format!("{name} IN ({})", values.join(", "))
    }

    /// `attribute_exists(#attribute)`.
    pub fn exists(&mut self, attribute: &'static str) -> String {
        format!("attribute_exists({})", self.name(attribute))
    }

    /// `attribute_not_exists(#attribute)`.
    pub fn absent(&mut self, attribute: &'static str) -> String {
        format!("attribute_not_exists({})", self.name(attribute))
    }

    // DynamoDB refuses empty maps: absent means none.
    pub fn names(&self) -> Option<HashMap<String, String>> {
        (!self.names.is_empty()).then(|| self.names.clone())
    }

    pub fn values(&self) -> Option<HashMap<String, AttributeValue>> {
        (!self.values.is_empty()).then(|| self.values.clone())
    }
}
