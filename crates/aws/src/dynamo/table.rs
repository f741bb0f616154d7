//! One DynamoDB table and the guarded writes every store is made of (a write and its
//! saga step in one transaction is the ledger's: [`super::ledger::DynamoLedger::write`]).

use super::capacity;
use super::codec::Attributes;
use super::expr::Expr;
use crate::denied::is_access_denied;
use crate::retry::Backoff;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{BuildError, DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::delete_item::DeleteItemError;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{
    KeysAndAttributes, Put, PutRequest, ReturnConsumedCapacity, ReturnValue,
    ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update, WriteRequest,
};
use ewf_domain::{StoreError, WriteError};
use std::collections::HashSet;

/// BatchWriteItem takes at most 25 requests.
const BATCH_SIZE: usize = 25;
/// BatchGetItem takes at most 100 keys.
const BATCH_GET_SIZE: usize = 100;
pub(crate) const CONDITION_FAILED: &str = "ConditionalCheckFailed";
pub(crate) const TRANSACTION_CONFLICT: &str = "TransactionConflict";

#[derive(Clone, Debug)]
pub(crate) struct Table {
    client: Client,
    name: String,
}

/// A write that happens only if its condition holds.
pub(crate) struct Guarded {
    change: Change,
    condition: String,
    expr: Expr,
}

enum Change {
    Put(Attributes),
    Update { key: Attributes, expression: String },
}

impl Guarded {
    pub fn put(item: Attributes, condition: String, expr: Expr) -> Self {
        Self {
            change: Change::Put(item),
            condition,
            expr,
        }
    }

    pub fn update(key: Attributes, expression: String, condition: String, expr: Expr) -> Self {
        Self {
            change: Change::Update { key, expression },
            condition,
            expr,
        }
    }
}

/// Why a guarded write was refused, from the item as it was (`ALL_OLD`).
pub(crate) fn refusal(current: Option<&Attributes>) -> WriteError {
    match current {
        Some(_) => WriteError::ConditionFailed,
        None => WriteError::NotFound,
    }
}

impl Table {
    pub fn new(client: Client, name: impl Into<String>) -> Self {
        Self {
            client,
            name: name.into(),
        }
    }

    pub(crate) fn client(&self) -> &Client {
        &self.client
    }

    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// The key of the item a guarded update changes (`None` for a put).
    pub(crate) fn updated_key(guarded: &Guarded) -> Option<Attributes> {
        match &guarded.change {
            Change::Update { key, .. } => Some(key.clone()),
            Change::Put(_) => None,
        }
    }

    /// A failed request, told apart by its error code: refused credentials or
    /// permissions, or anything else.
    pub(crate) fn failed<E, R>(&self, action: &str, err: SdkError<E, R>) -> StoreError
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug,
    {
        let denied = is_access_denied(err.code());
        let message = format!(
            "DynamoDB {action} on table {} failed: {}",
            self.name,
            DisplayErrorContext(err)
        );
        if denied {
            StoreError::access_denied(message)
        } else {
            StoreError::new(message)
        }
    }

    /// A request that could not be built from the items given.
    fn malformed(&self, action: &str, err: BuildError) -> StoreError {
        StoreError::new(format!(
            "DynamoDB {action} on table {}: the request cannot be built: {err}",
            self.name
        ))
    }

    /// The item with this key, read consistently.
    pub async fn get(&self, key: Attributes) -> Result<Option<Attributes>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.name)
            .set_key(Some(key))
            .consistent_read(true)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await
            .map_err(|err| self.failed("GetItem", err))?;
        capacity::read(output.consumed_capacity());
        Ok(output.item)
    }

    /// Writes an item whatever is there.
    pub async fn put(&self, item: Attributes) -> Result<(), StoreError> {
        let output = self
            .client
            .put_item()
            .table_name(&self.name)
            .set_item(Some(item))
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await
            .map_err(|err| self.failed("PutItem", err))?;
        capacity::written(output.consumed_capacity());
        Ok(())
    }

    /// Writes many items whatever is there, in batches, retrying unprocessed items.
    pub async fn batch_put(&self, items: Vec<Attributes>) -> Result<(), StoreError> {
        let requests = items
            .into_iter()
            .map(|item| {
                let put = PutRequest::builder().set_item(Some(item)).build();
                put.map(|put| WriteRequest::builder().put_request(put).build())
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(|err| self.malformed("BatchWriteItem", err))?;
        let backoff = Backoff::DEFAULT;
        for batch in requests.chunks(BATCH_SIZE) {
            let left = backoff
                .drain(batch.to_vec(), |pending| async move {
                    let output = self
                        .client
                        .batch_write_item()
                        .request_items(&self.name, pending)
                        .return_consumed_capacity(ReturnConsumedCapacity::Total)
                        .send()
                        .await
                        .map_err(|err| self.failed("BatchWriteItem", err))?;
                    capacity::written(output.consumed_capacity());
                    Ok(output
                        .unprocessed_items
                        .and_then(|mut tables| tables.remove(&self.name))
                        .unwrap_or_default())
                })
                .await?;
            if !left.is_empty() {
                return Err(StoreError::new(format!(
                    "DynamoDB left {} items unprocessed in table {} after {} attempts",
                    left.len(),
                    self.name,
                    backoff.attempts
                )));
            }
        }
        Ok(())
    }

    /// The items of a secondary index whose hash key `attribute` is `value`, in sort
    /// key order, every page of them.
    pub async fn query_index(
        &self,
        index: &str,
        attribute: &'static str,
        value: &str,
    ) -> Result<Vec<Attributes>, StoreError> {
        let mut expr = Expr::default();
        let condition = expr.equals(attribute, super::codec::text(value));
        let mut pages = self
            .client
            .query()
            .table_name(&self.name)
            .index_name(index)
            .key_condition_expression(condition)
            .set_expression_attribute_names(expr.names())
            .set_expression_attribute_values(expr.values())
            .scan_index_forward(true)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .into_paginator()
            .send();
        let mut found = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|err| self.failed("Query", err))?;
            capacity::read(page.consumed_capacity());
            found.extend(page.items.unwrap_or_default());
        }
        Ok(found)
    }

    /// The items that match `filter` (written with `expr`'s placeholders), every page
    /// of a scan: for sweeps, which are rare and look at the whole table.
    pub async fn scan(&self, filter: String, expr: Expr) -> Result<Vec<Attributes>, StoreError> {
        let mut pages = self
            .client
            .scan()
            .table_name(&self.name)
            .filter_expression(filter)
            .set_expression_attribute_names(expr.names())
            .set_expression_attribute_values(expr.values())
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .into_paginator()
            .send();
        let mut found = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|err| self.failed("Scan", err))?;
            capacity::read(page.consumed_capacity());
            found.extend(page.items.unwrap_or_default());
        }
        Ok(found)
    }

    /// Performs a guarded write. Returns the item after an update (`None` after a put).
    pub async fn write(&self, guarded: Guarded) -> Result<Option<Attributes>, WriteError> {
        let Guarded {
            change,
            condition,
            expr,
        } = guarded;
        match change {
            Change::Put(item) => {
                let result = self
                    .client
                    .put_item()
                    .table_name(&self.name)
                    .set_item(Some(item))
                    .condition_expression(condition)
                    .set_expression_attribute_names(expr.names())
                    .set_expression_attribute_values(expr.values())
                    .return_values_on_condition_check_failure(
                        ReturnValuesOnConditionCheckFailure::AllOld,
                    )
                    .return_consumed_capacity(ReturnConsumedCapacity::Total)
                    .send()
                    .await;
                match result {
                    Ok(output) => {
                        capacity::written(output.consumed_capacity());
                        Ok(None)
                    }
                    Err(err) => match err.as_service_error() {
                        Some(PutItemError::ConditionalCheckFailedException(failed)) => {
                            capacity::refused(1);
                            Err(refusal(failed.item()))
                        }
                        _ => Err(self.failed("PutItem", err).into()),
                    },
                }
            }
            Change::Update { key, expression } => {
                let result = self
                    .client
                    .update_item()
                    .table_name(&self.name)
                    .set_key(Some(key))
                    .update_expression(expression)
                    .condition_expression(condition)
                    .set_expression_attribute_names(expr.names())
                    .set_expression_attribute_values(expr.values())
                    .return_values(ReturnValue::AllNew)
                    .return_values_on_condition_check_failure(
                        ReturnValuesOnConditionCheckFailure::AllOld,
                    )
                    .return_consumed_capacity(ReturnConsumedCapacity::Total)
                    .send()
                    .await;
                match result {
                    Ok(output) => {
                        capacity::written(output.consumed_capacity());
                        Ok(output.attributes)
                    }
                    Err(err) => match err.as_service_error() {
                        Some(UpdateItemError::ConditionalCheckFailedException(failed)) => {
                            capacity::refused(1);
                            Err(refusal(failed.item()))
                        }
                        _ => Err(self.failed("UpdateItem", err).into()),
                    },
                }
            }
        }
    }

    /// Puts every item in one transaction if every condition holds. Returns false,
    /// having written nothing, when one does not.
    pub async fn put_all(&self, puts: Vec<Guarded>) -> Result<bool, StoreError> {
        let items = puts
            .into_iter()
            .map(|put| self.transact_item(put))
            .collect::<Result<Vec<_>, _>>()?;
        let result = self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await;
        match result {
            Ok(output) => {
                capacity::written(output.consumed_capacity());
                Ok(true)
            }
            Err(err) => match err.as_service_error() {
                Some(TransactWriteItemsError::TransactionCanceledException(canceled))
                    if canceled
                        .cancellation_reasons()
                        .iter()
                        .any(|reason| reason.code() == Some(CONDITION_FAILED)) =>
                {
                    capacity::refused(2 * canceled.cancellation_reasons().len() as u64);
                    Ok(false)
                }
                _ => Err(self.failed("TransactWriteItems", err)),
            },
        }
    }

    /// Deletes the item with this key if `condition` holds.
    pub async fn delete(
        &self,
        key: Attributes,
        condition: String,
        expr: Expr,
    ) -> Result<(), WriteError> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.name)
            .set_key(Some(key))
            .condition_expression(condition)
            .set_expression_attribute_names(expr.names())
            .set_expression_attribute_values(expr.values())
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await;
        match result {
            Ok(output) => {
                capacity::written(output.consumed_capacity());
                Ok(())
            }
            Err(err) => match err.as_service_error() {
                Some(DeleteItemError::ConditionalCheckFailedException(_)) => {
                    capacity::refused(1);
                    Err(WriteError::ConditionFailed)
                }
                _ => Err(self.failed("DeleteItem", err).into()),
            },
        }
    }

    /// Which of `keys` (single-attribute keys named `key_attribute`) are in the table:
    /// their values, read consistently, 100 keys a request.
    pub async fn present(
        &self,
        keys: Vec<Attributes>,
        key_attribute: &'static str,
    ) -> Result<HashSet<String>, StoreError> {
        let backoff = Backoff::DEFAULT;
        // Filled by each attempt of the requests below (a retry reads only what is left).
        let present = std::sync::Mutex::new(HashSet::new());
        for chunk in keys.chunks(BATCH_GET_SIZE) {
            let left = backoff
                .drain(chunk.to_vec(), |pending| {
                    let present = &present;
                    async move {
                        let request = KeysAndAttributes::builder()
                            .set_keys(Some(pending))
                            .projection_expression("#k")
                            .expression_attribute_names("#k", key_attribute)
                            .consistent_read(true)
                            .build()
                            .map_err(|err| self.malformed("BatchGetItem", err))?;
                        let output = self
                            .client
                            .batch_get_item()
                            .request_items(&self.name, request)
                            .return_consumed_capacity(ReturnConsumedCapacity::Total)
                            .send()
                            .await
                            .map_err(|err| self.failed("BatchGetItem", err))?;
                        capacity::read(output.consumed_capacity());
                        let found = output
                            .responses
                            .and_then(|mut tables| tables.remove(&self.name))
                            .unwrap_or_default();
                        present
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner)
                            .extend(found.into_iter().filter_map(|mut item| {
                                item.remove(key_attribute)?.as_s().ok().cloned()
                            }));
                        Ok(output
                            .unprocessed_keys
                            .and_then(|mut tables| tables.remove(&self.name))
                            .map(|unprocessed| unprocessed.keys)
                            .unwrap_or_default())
                    }
                })
                .await?;
            if !left.is_empty() {
                return Err(StoreError::new(format!(
                    "DynamoDB left {} keys unprocessed in table {} after {} attempts",
                    left.len(),
                    self.name,
                    backoff.attempts
                )));
            }
        }
        Ok(present
            .into_inner()
            .unwrap_or_else(std::sync::PoisonError::into_inner))
    }

    /// The write as one item of a transaction.
    pub fn transact_item(&self, guarded: Guarded) -> Result<TransactWriteItem, StoreError> {
        let Guarded {
            change,
            condition,
            expr,
        } = guarded;
        let on_failure = ReturnValuesOnConditionCheckFailure::AllOld;
        let item = match change {
            Change::Put(item) => Put::builder()
                .table_name(&self.name)
                .set_item(Some(item))
                .condition_expression(condition)
                .set_expression_attribute_names(expr.names())
                .set_expression_attribute_values(expr.values())
                .return_values_on_condition_check_failure(on_failure)
                .build()
                .map(|put| TransactWriteItem::builder().put(put).build()),
            Change::Update { key, expression } => Update::builder()
                .table_name(&self.name)
                .set_key(Some(key))
                .update_expression(expression)
                .condition_expression(condition)
                .set_expression_attribute_names(expr.names())
                .set_expression_attribute_values(expr.values())
                .return_values_on_condition_check_failure(on_failure)
                .build()
                .map(|update| TransactWriteItem::builder().update(update).build()),
        };
        item.map_err(|err| self.malformed("TransactWriteItems", err))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_dynamodb::error::ErrorMetadata;
    use aws_sdk_dynamodb::operation::get_item::GetItemError;
    use aws_smithy_runtime_api::http::{Response, StatusCode};
    use aws_smithy_types::body::SdkBody;

    fn answered(code: &str) -> SdkError<GetItemError, Response> {
        let error = GetItemError::generic(ErrorMetadata::builder().code(code).build());
        let response = Response::new(StatusCode::try_from(400).unwrap(), SdkBody::empty());
        SdkError::service_error(error, response)
    }

    #[test]
    fn refused_credentials_are_told_from_other_failures_by_their_code() {
        let config = aws_sdk_dynamodb::Config::builder()
            .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
            .build();
        let table = Table::new(Client::from_conf(config), "Orders");
        for code in ["AccessDeniedException", "UnrecognizedClientException"] {
            let err = table.failed("GetItem", answered(code));
            assert!(err.access_denied, "{code}: {err}");
            assert!(
                err.message.starts_with("DynamoDB GetItem on table Orders"),
                "{err}"
            );
        }
        let throttled = table.failed(
            "GetItem",
            answered("ProvisionedThroughputExceededException"),
        );
        assert!(!throttled.access_denied, "{throttled}");
    }
}
