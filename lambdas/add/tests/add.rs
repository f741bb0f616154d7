use ewf_add::AddService;
use ewf_domain::entry::{FunctionError, invoke};
use serde_json::{Value, json};

fn fixture() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/invoke.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

async fn add(numbers: Value) -> Result<Value, FunctionError> {
    let mut payload = fixture();
    payload["numbers"] = numbers;
    invoke(&AddService, payload).await
}

#[tokio::test]
async fn the_workflow_payload_sums_to_a_decimal_string() {
    assert_eq!(
        invoke(&AddService, fixture()).await.unwrap(),
        json!({"sum": "412.33"})
    );
}

#[tokio::test]
async fn numbers_may_be_json_numbers_or_decimal_strings() {
    for (numbers, sum) in [
        (json!([399.99, 12.34]), "412.33"),
        (json!([0.1, 0.2]), "0.3"),
        (json!([1, "2.50", " 0.5 "]), "4.00"),
        (json!(["-5", 2]), "-3"),
        (json!([1e3]), "1000.0"),
        (json!(["7"]), "7"),
    ] {
        assert_eq!(
            add(numbers.clone()).await.unwrap(),
            json!({ "sum": sum }),
            "{numbers}"
        );
    }
}

#[tokio::test]
async fn anything_but_a_list_of_numbers_is_bad_input() {
    for numbers in [
        json!([]),
        json!("1,2"),
        json!(null),
        json!(["abc"]),
        json!([true]),
        json!([[1]]),
        json!(["79228162514264337593543950335", 1]),
    ] {
        let err = add(numbers.clone()).await.unwrap_err();
        assert_eq!(err.error_type, "BadInput", "{numbers}");
    }
    let err = invoke(&AddService, json!({"values": [1]}))
        .await
        .unwrap_err();
    assert!(
        err.error_message.contains("numbers"),
        "{}",
        err.error_message
    );
}

#[tokio::test]
async fn events_are_refused() {
    let event = json!({
        "version": "0", "id": "e-1", "detail-type": "OrderCreated", "source": "Order",
        "account": "111122223333", "time": "2026-01-01T12:00:00Z", "region": "eu-west-2",
        "resources": [], "detail": {"numbers": [1]}
    });
    assert_eq!(
        invoke(&AddService, event).await.unwrap_err().error_type,
        "BadInput"
    );
}
