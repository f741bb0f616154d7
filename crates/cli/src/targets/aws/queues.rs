//! The deployed stack's dead letters, in two SQS queues: the rules' dead-letter queue
//! (events EventBridge could not hand to a function: the event itself, with the failure
//! in message attributes) and the functions' on-failure destination (events a function
//! failed to handle after Lambda's retries: an invocation record holding the event).
//! SQS cannot peek, so reading a queue hides what it returns; what is not deleted is
//! released again at once.

use super::errors::aws_error;
use crate::error::Result;
use crate::targets::DeadLetter;
use aws_sdk_sqs::types::{
    ChangeMessageVisibilityBatchRequestEntry, Message, MessageSystemAttributeName,
    QueueAttributeName,
};
use ewf_domain::OrderId;
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::Duration;

/// How long a read keeps messages from other readers: for a listing, until they are
/// released; for a redrive, until each is published and deleted.
pub const LIST_HIDE: Duration = Duration::from_secs(15);
pub const REDRIVE_HIDE: Duration = Duration::from_secs(120);
/// SQS returns at most 10 messages a call, and changes at most 10 in a batch.
const PAGE: usize = 10;

/// A message read from a queue, held until deleted or released.
pub struct Held {
    queue: String,
    receipt: String,
    pub letter: DeadLetter,
}

pub struct DeadLetterQueues {
    sqs: aws_sdk_sqs::Client,
    urls: Vec<String>,
    /// The stack's functions, by physical name: their service's name.
    services: BTreeMap<String, String>,
}

impl DeadLetterQueues {
    /// `outputs` maps `<Service>Function` to each function's physical name.
    pub fn new(
        sqs: aws_sdk_sqs::Client,
        urls: Vec<String>,
        outputs: &BTreeMap<String, String>,
    ) -> Self {
        let services = outputs
            .iter()
            .filter_map(|(key, name)| Some((name.clone(), key.strip_suffix("Function")?.into())))
            .collect();
        Self {
            sqs,
            urls,
            services,
        }
    }

    /// Every message of every queue, hidden from other readers for `hide`.
    pub async fn read(&self, hide: Duration) -> Result<Vec<Held>> {
        let mut held = Vec::new();
        for url in &self.urls {
            // Stop once the queue's count is read: a last, empty long poll would cost a
            // second per queue, and most of the time the queues are empty.
            let count = self.count(url).await?;
            let mut read = 0;
            while read < count {
                let page = self
                    .sqs
                    .receive_message()
                    .queue_url(url)
                    .max_number_of_messages(PAGE as i32)
                    .visibility_timeout(i32::try_from(hide.as_secs()).unwrap_or(i32::MAX))
                    .wait_time_seconds(1)
                    .message_system_attribute_names(MessageSystemAttributeName::All)
                    .message_attribute_names("All")
                    .send()
                    .await
                    .map_err(|err| aws_error("ReceiveMessage", err))?;
                let messages = page.messages.unwrap_or_default();
                if messages.is_empty() {
                    break;
                }
                read += messages.len();
                held.extend(messages.iter().filter_map(|message| {
                    Some(Held {
                        queue: url.clone(),
                        receipt: message.receipt_handle.clone()?,
                        letter: self.letter(message),
                    })
                }));
            }
        }
        held.sort_by_key(|held| held.letter.dead_at);
        Ok(held)
    }

    async fn count(&self, url: &str) -> Result<usize> {
        let attributes = self
            .sqs
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .send()
            .await
            .map_err(|err| aws_error("GetQueueAttributes", err))?;
        Ok(attributes
            .attributes
            .and_then(|attributes| {
                attributes
                    .get(&QueueAttributeName::ApproximateNumberOfMessages)?
                    .parse()
                    .ok()
            })
            .unwrap_or_default())
    }

    /// Makes messages visible again at once. Best effort: they come back by themselves
    /// when their hiding ends.
    pub async fn release(&self, held: &[Held]) {
        for url in &self.urls {
            let of_queue: Vec<&Held> = held.iter().filter(|held| &held.queue == url).collect();
            for page in of_queue.chunks(PAGE) {
                let entries = page.iter().enumerate().filter_map(|(index, held)| {
                    ChangeMessageVisibilityBatchRequestEntry::builder()
                        .id(index.to_string())
                        .receipt_handle(&held.receipt)
                        .visibility_timeout(0)
                        .build()
                        .ok()
                });
                let released = self
                    .sqs
                    .change_message_visibility_batch()
                    .queue_url(url)
                    .set_entries(Some(entries.collect()))
                    .send()
                    .await;
                if let Err(err) = released {
                    tracing::warn!(error = %aws_error("ChangeMessageVisibilityBatch", err), "dead letters stay hidden until their time is up");
                }
            }
        }
    }

    pub async fn delete(&self, held: &Held) -> Result<()> {
        self.sqs
            .delete_message()
            .queue_url(&held.queue)
            .receipt_handle(&held.receipt)
            .send()
            .await
            .map_err(|err| aws_error("DeleteMessage", err))?;
        Ok(())
    }

    /// A message as a dead letter, whichever queue it comes from.
    fn letter(&self, message: &Message) -> DeadLetter {
        let body = message.body.as_deref().unwrap_or_default();
        let body: Value = serde_json::from_str(body).unwrap_or_else(|_| Value::from(body));
        let system = |name: MessageSystemAttributeName| {
            message.attributes.as_ref()?.get(&name).map(String::as_str)
        };
        let custom = |name: &str| {
            message
                .message_attributes
                .as_ref()?
                .get(name)?
                .string_value
                .as_deref()
        };
        let sent = system(MessageSystemAttributeName::SentTimestamp)
            .and_then(|millis| millis.parse().ok())
            .and_then(chrono::DateTime::from_timestamp_millis)
            .unwrap_or_default();
        let id = message.message_id.clone().unwrap_or_default();
        if body.get("requestContext").is_some() && body.get("requestPayload").is_some() {
            // Lambda's invocation record: the event, and what the function answered.
            let context = &body["requestContext"];
            let response = &body["responsePayload"];
            let error = [&response["errorType"], &response["errorMessage"]]
                .into_iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(": ");
            let error = if error.is_empty() {
                text(&context["condition"])
            } else {
                error
            };
            let attempts = context["approximateInvokeCount"].as_u64().unwrap_or(1);
            let time = body["timestamp"]
                .as_str()
                .and_then(|time| chrono::DateTime::parse_from_rfc3339(time).ok())
                .map_or(sent, |time| time.to_utc());
            return DeadLetter::new(
                id,
                self.service(&text(&context["functionArn"])),
                body["requestPayload"].clone(),
                (error, u32::try_from(attempts).unwrap_or(u32::MAX)),
                time,
            );
        }
        // EventBridge's: the event, the failure in attributes.
        let error = [custom("ERROR_CODE"), custom("ERROR_MESSAGE")]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(": ");
        let retries: u32 = custom("RETRY_ATTEMPTS")
            .and_then(|retries| retries.parse().ok())
            .unwrap_or_default();
        DeadLetter::new(
            id,
            self.service(custom("TARGET_ARN").unwrap_or_default()),
            body,
            (error, retries.saturating_add(1)),
            sent,
        )
    }

    /// The service of a function's ARN (`arn:...:function:<name>[:<qualifier>]`), or
    /// the ARN when it is none of the stack's.
    fn service(&self, arn: &str) -> String {
        let name = arn
            .split(':')
            .skip_while(|part| *part != "function")
            .nth(1)
            .unwrap_or(arn);
        self.services
            .get(name)
            .cloned()
            .unwrap_or_else(|| arn.to_owned())
    }
}

fn text(value: &Value) -> String {
    value.as_str().unwrap_or_default().to_owned()
}

impl DeadLetter {
    /// Whether the letter holds an event that can be published again.
    pub fn is_event(&self) -> bool {
        !self.event_type.is_empty() && !self.source.is_empty() && self.event["detail"].is_object()
    }

    /// Whether the letter is about `order` (any letter when no order is given).
    pub fn concerns(&self, order: Option<&OrderId>) -> bool {
        order.is_none_or(|order| self.order_id.as_deref() == Some(order.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_sqs::types::MessageAttributeValue;
    use serde_json::json;

    fn queues() -> DeadLetterQueues {
        let config = aws_sdk_sqs::Config::builder()
            .behavior_version(aws_sdk_sqs::config::BehaviorVersion::latest())
            .build();
        let outputs = BTreeMap::from([
            (
                "PaymentFunction".to_owned(),
                "app-PaymentFunction-X1".to_owned(),
            ),
            ("OrderTable".to_owned(), "app-OrderTable-Y2".to_owned()),
        ]);
        DeadLetterQueues::new(aws_sdk_sqs::Client::from_conf(config), vec![], &outputs)
    }

    fn event() -> Value {
        json!({
            "version": "0", "id": "e-1", "detail-type": "DeliveryEstimated", "source": "Delivery",
            "time": "2024-01-02T03:04:05Z",
            "detail": {"customerId": "customer-1", "orderId": "01JORDER", "itemId": "item-1"}
        })
    }

    fn attribute(value: &str) -> MessageAttributeValue {
        MessageAttributeValue::builder()
            .data_type("String")
            .string_value(value)
            .build()
            .unwrap()
    }

    #[test]
    fn an_eventbridge_dead_letter_is_the_event_with_its_failure_in_attributes() {
        let message = Message::builder()
            .message_id("m-1")
            .body(event().to_string())
            .attributes(MessageSystemAttributeName::SentTimestamp, "1704164645250")
            .message_attributes("ERROR_CODE", attribute("SDK_CLIENT_ERROR"))
            .message_attributes("ERROR_MESSAGE", attribute("Lambda throttled"))
            .message_attributes("RETRY_ATTEMPTS", attribute("8"))
            .message_attributes(
                "TARGET_ARN",
                attribute("arn:aws:lambda:eu-west-2:123456789012:function:app-PaymentFunction-X1"),
            )
            .build();
        let letter = queues().letter(&message);
        assert_eq!(
            (
                letter.id.as_str(),
                letter.order_id.as_deref(),
                letter.event_type.as_str(),
                letter.source.as_str(),
                letter.target.as_str(),
                letter.last_error.as_str(),
                letter.attempts,
            ),
            (
                "m-1",
                Some("01JORDER"),
                "DeliveryEstimated",
                "Delivery",
                "Payment",
                "SDK_CLIENT_ERROR: Lambda throttled",
                9
            )
        );
        assert_eq!(letter.dead_at.timestamp_millis(), 1_704_164_645_250);
        assert!(letter.is_event());
    }

    #[test]
    fn a_lambda_failure_record_holds_the_event_and_the_function_error() {
        let record = json!({
            "version": "1.0",
            "timestamp": "2024-01-02T03:04:05.250Z",
            "requestContext": {
                "requestId": "r-1",
                "functionArn": "arn:aws:lambda:eu-west-2:123456789012:function:app-PaymentFunction-X1:$LATEST",
                "condition": "RetriesExhausted",
                "approximateInvokeCount": 3
            },
            "requestPayload": event(),
            "responseContext": {"statusCode": 200, "functionError": "Unhandled"},
            "responsePayload": {"errorType": "ServiceUnavailable", "errorMessage": "DynamoDB throttled"}
        });
        let message = Message::builder()
            .message_id("m-2")
            .body(record.to_string())
            .build();
        let letter = queues().letter(&message);
        assert_eq!(letter.event, event());
        assert_eq!(
            (
                letter.target.as_str(),
                letter.last_error.as_str(),
                letter.attempts
            ),
            ("Payment", "ServiceUnavailable: DynamoDB throttled", 3)
        );
        assert_eq!(letter.dead_at.to_rfc3339(), "2024-01-02T03:04:05.250+00:00");
    }

    #[test]
    fn a_message_that_is_no_event_is_listed_but_not_an_event() {
        let message = Message::builder().message_id("m-3").body("oops").build();
        let letter = queues().letter(&message);
        assert_eq!(letter.event, json!("oops"));
        assert!(!letter.is_event());
        assert_eq!(letter.target, "");
    }
}
