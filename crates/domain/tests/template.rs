//! Checks the SAM template against the code it deploys: its EventBridge rules against
//! `RULES` (which the local bus uses too), the state machine's substitutions against the
//! definition file, and its functions against the Lambda crates.

use ewf_domain::events::{FunctionName, RULES};
use ewf_domain::{PaymentId, ServiceError, workflow_errors};
use serde_yaml_ng::Value;
use std::collections::BTreeSet;
use std::path::Path;

const TEMPLATE: &str = include_str!("../../../template.yaml");
const DEFINITION: &str = include_str!("../../../statemachine/order-workflow.asl.json");
const DEFINITION_URI: &str = "statemachine/order-workflow.asl.json";

/// The stack outputs the `ewf` CLI reads.
const CLI_OUTPUTS: &[&str] = &[
    "CustomerTable",
    "InventoryTable",
    "PaymentTable",
    "DeliveryTable",
    "OrderTable",
    "EventStoreTable",
    "LedgerTable",
    "EventBusName",
    "StateMachineArn",
    "HttpApiUrl",
    "CreateOrderApiUrl",
    "CustomerFunction",
    "OrderFunction",
    "InventoryFunction",
    "PaymentFunction",
    "DeliveryFunction",
    "EventStoreFunction",
    "AddFunction",
    "EventsDeadLetterQueueUrl",
    "AsyncFailureQueueUrl",
];

/// What one rule matches.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Matches {
    DetailTypes(BTreeSet<String>),
    /// Every event on the bus.
    Everything,
}

/// Rules as (target function name, what it matches), sorted.
type RuleSet = Vec<(String, Matches)>;

fn template() -> Value {
    serde_yaml_ng::from_str(TEMPLATE).unwrap()
}

/// The resources of one type, with their logical ids.
fn resources<'a>(template: &'a Value, kind: &'a str) -> impl Iterator<Item = (&'a str, &'a Value)> {
    template["Resources"]
        .as_mapping()
        .unwrap()
        .iter()
        .filter(move |(_, resource)| resource["Type"].as_str() == Some(kind))
        .map(|(id, resource)| (id.as_str().unwrap(), resource))
}

/// The argument of an intrinsic function, in short (`!Ref x`) or long (`{Ref: x}`) form.
fn intrinsic<'a>(value: &'a Value, name: &str) -> Option<&'a Value> {
    match value {
        Value::Tagged(tagged) if tagged.tag == name => Some(&tagged.value),
        Value::Mapping(map) if map.len() == 1 => {
            map.get(name).or_else(|| map.get(format!("Fn::{name}")))
        }
        _ => None,
    }
}

fn ref_name(value: &Value) -> Option<&str> {
    intrinsic(value, "Ref")?.as_str()
}

/// `Resource.Attribute` of a `!GetAtt`, from its string or list form.
fn get_att(value: &Value) -> Option<String> {
    match intrinsic(value, "GetAtt")? {
        Value::String(path) => Some(path.clone()),
        Value::Sequence(parts) => {
            let parts: Option<Vec<&str>> = parts.iter().map(Value::as_str).collect();
            Some(parts?.join("."))
        }
        _ => None,
    }
}

/// A service rule matches on detail-type only; the catch-all matches this account's events.
fn pattern_matches(pattern: &Value) -> Matches {
    let pattern = pattern.as_mapping().unwrap();
    if let Some(types) = pattern.get("detail-type") {
        assert_eq!(
            pattern.len(),
            1,
            "a service rule matches on detail-type only: {pattern:?}"
        );
        let types = types.as_sequence().unwrap().iter();
        return Matches::DetailTypes(types.map(|t| t.as_str().unwrap().to_owned()).collect());
    }
    let accounts = pattern.get("account").and_then(Value::as_sequence);
    let this_account =
        accounts.is_some_and(|a| a.len() == 1 && ref_name(&a[0]) == Some("AWS::AccountId"));
    assert!(
        pattern.len() == 1 && this_account,
        "a rule without detail-types must match every event (account: [!Ref AWS::AccountId]): {pattern:?}"
    );
    Matches::Everything
}

/// The rules of the template: the EventBridgeRule events of its functions.
fn template_rules(template: &Value) -> RuleSet {
    assert_eq!(
        resources(template, "AWS::Events::Rule").count(),
        0,
        "declare rules as EventBridgeRule events of their function, where this check reads them"
    );
    let mut rules = Vec::new();
    for (id, function) in resources(template, "AWS::Serverless::Function") {
        let Some(events) = function["Properties"]["Events"].as_mapping() else {
            continue;
        };
        let bus_events = events
            .values()
            .filter(|e| e["Type"].as_str() == Some("EventBridgeRule"));
        for event in bus_events {
            let properties = &event["Properties"];
            assert_eq!(
                ref_name(&properties["EventBusName"]),
                Some("AppEventBus"),
                "{id}"
            );
            assert!(
                properties["RetryPolicy"]["MaximumRetryAttempts"].is_u64(),
                "{id}"
            );
            assert!(
                properties["RetryPolicy"]["MaximumEventAgeInSeconds"].is_u64(),
                "{id}"
            );
            assert!(
                get_att(&properties["DeadLetterConfig"]["Arn"]).is_some(),
                "{id}"
            );
            let target = id.strip_suffix("Function").unwrap_or(id);
            rules.push((target.to_owned(), pattern_matches(&properties["Pattern"])));
        }
    }
    rules.sort();
    rules
}

fn expected_rules() -> RuleSet {
    let mut rules: RuleSet = RULES
        .iter()
        .map(|rule| {
            let matches = match rule.detail_types {
                Some(types) => {
                    Matches::DetailTypes(types.iter().map(|t| t.as_str().to_owned()).collect())
                }
                None => Matches::Everything,
            };
            (rule.target.as_str().to_owned(), matches)
        })
        .collect();
    rules.sort();
    rules
}

/// The names of the `${...}` placeholders in a definition.
fn placeholders(text: &str) -> BTreeSet<&str> {
    text.split("${")
        .skip(1)
        .map(|rest| rest.split_once('}').map_or(rest, |(name, _)| name))
        .collect()
}

/// Every IAM action named anywhere in the template (under an `Action` key).
fn actions<'a>(value: &'a Value, found: &mut Vec<&'a str>) {
    match value {
        Value::Mapping(map) => {
            for (key, inner) in map {
                if key.as_str() == Some("Action") {
                    match inner {
                        Value::Sequence(list) => {
                            found.extend(list.iter().filter_map(Value::as_str))
                        }
                        other => found.extend(other.as_str()),
                    }
                }
                actions(inner, found);
            }
        }
        Value::Sequence(items) => items.iter().for_each(|item| actions(item, found)),
        Value::Tagged(tagged) => actions(&tagged.value, found),
        _ => {}
    }
}

/// `EventStore` → `event-store`: the Lambda crate's directory and binary name.
fn kebab(name: &str) -> String {
    let mut out = String::new();
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('-');
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

#[test]
fn the_template_rules_are_the_routing_table() {
    assert_eq!(template_rules(&template()), expected_rules());
}

#[test]
fn a_rule_that_strays_from_the_routing_table_is_caught() {
    let mut changed = template();
    let order_rule = &mut changed["Resources"]["OrderFunction"]["Properties"]["Events"]["Bus"];
    let order_types = &mut order_rule["Properties"]["Pattern"]["detail-type"];
    order_types.as_sequence_mut().unwrap().pop();
    assert_ne!(template_rules(&changed), expected_rules());

    let mut catch_all_removed = template();
    let store = &mut catch_all_removed["Resources"]["EventStoreFunction"]["Properties"];
    store.as_mapping_mut().unwrap().remove("Events");
    assert_ne!(template_rules(&catch_all_removed), expected_rules());
}

#[test]
fn the_state_machine_gets_exactly_the_substitutions_its_definition_uses() {
    let template = template();
    let machines: Vec<_> = resources(&template, "AWS::Serverless::StateMachine")
        .filter(|(_, m)| m["Properties"]["DefinitionUri"].as_str() == Some(DEFINITION_URI))
        .collect();
    assert_eq!(
        machines.len(),
        1,
        "one state machine deploys {DEFINITION_URI}"
    );
    let properties = &machines[0].1["Properties"];

    let substitutions = properties["DefinitionSubstitutions"].as_mapping().unwrap();
    let names: BTreeSet<&str> = substitutions.keys().map(|k| k.as_str().unwrap()).collect();
    let used = placeholders(DEFINITION);
    assert!(!used.is_empty());
    assert_eq!(names, used);

    // Each `<X>Arn` is the ARN of function `<X>`, and the machine's role may invoke it.
    let role = get_att(&properties["Role"]).expect("the state machine has a Role");
    let role = role.strip_suffix(".Arn").unwrap();
    let policies = template["Resources"][role]["Properties"]["Policies"]
        .as_sequence()
        .unwrap();
    let invocable: BTreeSet<String> = policies
        .iter()
        .flat_map(|policy| policy["PolicyDocument"]["Statement"].as_sequence().unwrap())
        .filter(|statement| statement["Action"].as_str() == Some("lambda:InvokeFunction"))
        .flat_map(|statement| statement["Resource"].as_sequence().unwrap())
        .filter_map(get_att)
        .collect();
    for (name, value) in substitutions {
        let function = name.as_str().unwrap().strip_suffix("Arn").unwrap();
        assert_eq!(get_att(value), Some(format!("{function}.Arn")));
        assert!(
            invocable.contains(&format!("{function}.Arn")),
            "the state machine may not invoke {function}"
        );
    }
}

#[test]
fn placeholders_are_read_from_definition_text() {
    let text = r#"{"a": "${OneArn}", "b.$": "$$.Execution.Name", "c": "x${TwoArn}y${OneArn}"}"#;
    assert_eq!(placeholders(text), BTreeSet::from(["OneArn", "TwoArn"]));
}

#[test]
fn every_function_builds_its_lambda_crate_binary() {
    let template = template();
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    for name in FunctionName::ALL {
        let id = format!("{name}Function");
        let function = &template["Resources"][id.as_str()];
        assert_eq!(
            function["Type"].as_str(),
            Some("AWS::Serverless::Function"),
            "{id}"
        );
        assert_eq!(
            function["Metadata"]["BuildMethod"].as_str(),
            Some("rust-cargolambda")
        );
        let binary = kebab(name.as_str());
        let built = function["Metadata"]["BuildProperties"]["Binary"].as_str();
        assert_eq!(built, Some(binary.as_str()), "{id}");
        let manifest = workspace
            .join("lambdas")
            .join(&binary)
            .join("function/Cargo.toml");
        let manifest = std::fs::read_to_string(manifest).unwrap();
        assert!(
            manifest.contains(&format!("[[bin]]\nname = \"{binary}\"")),
            "{binary}"
        );
    }
}

#[test]
fn the_template_has_every_output_the_cli_reads() {
    let template = template();
    let outputs = template["Outputs"].as_mapping().unwrap();
    for key in CLI_OUTPUTS {
        assert!(outputs.contains_key(*key), "missing output {key}");
    }
}

#[test]
fn no_policy_grants_a_wildcard_action() {
    let template = template();
    let mut found = Vec::new();
    actions(&template, &mut found);
    assert!(
        found.contains(&"states:SendTaskSuccess") && found.contains(&"states:SendTaskFailure"),
        "the walk reaches inline policies"
    );
    let wildcards: Vec<_> = found.iter().filter(|action| action.contains('*')).collect();
    assert!(wildcards.is_empty(), "wildcard actions: {wildcards:?}");
}

#[test]
fn every_function_has_one_written_out_policy_document() {
    // SAM policy templates (`DynamoDBReadPolicy: ...`) and several documents per
    // function are SAM's to expand; a single statement document is created as written
    // by every CloudFormation implementation, the rehearsal's emulator included.
    let template = template();
    let mut functions = 0;
    for (name, function) in resources(&template, "AWS::Serverless::Function") {
        functions += 1;
        let Some(policies) = function["Properties"].get("Policies") else {
            continue;
        };
        let documents = policies.as_sequence().unwrap();
        assert_eq!(documents.len(), 1, "{name}: one policy document");
        let document = documents[0].as_mapping().unwrap();
        assert_eq!(
            document
                .keys()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>(),
            ["Statement"],
            "{name}: a statement document, not a SAM policy template"
        );
    }
    assert_eq!(functions, 7);
}

#[test]
fn the_sample_delivery_event_names_an_order() {
    // The detail a user sends as Logistics' Delivered or DeliveryCanceled.
    let sample = include_str!("../../../data/deliveryEvent.json");
    let order: ewf_domain::OrderRef = serde_json::from_str(sample).unwrap();
    assert_eq!(order.customer_id.as_str(), "customer-1");
}

/// Every name in an `ErrorEquals` of the definition.
fn matched_error_names(value: &serde_json::Value, found: &mut BTreeSet<String>) {
    use serde_json::Value::{Array, Object};
    match value {
        Object(fields) => {
            if let Some(Array(names)) = fields.get("ErrorEquals") {
                found.extend(
                    names
                        .iter()
                        .filter_map(|name| name.as_str())
                        .map(str::to_owned),
                );
            }
            fields
                .values()
                .for_each(|field| matched_error_names(field, found));
        }
        Array(items) => items
            .iter()
            .for_each(|item| matched_error_names(item, found)),
        _ => {}
    }
}

#[test]
fn the_definition_matches_exactly_the_errors_the_services_raise() {
    let definition: serde_json::Value = serde_json::from_str(DEFINITION).unwrap();
    let mut matched = BTreeSet::new();
    matched_error_names(&definition, &mut matched);
    let ours: BTreeSet<String> = matched
        .into_iter()
        .filter(|name| !workflow_errors::is_service_name(name))
        .collect();
    let listed: BTreeSet<String> = workflow_errors::MATCHED
        .iter()
        .map(|name| name.to_string())
        .collect();
    assert_eq!(
        ours, listed,
        "the definition's error names and workflow_errors::MATCHED differ"
    );
    // And the services raise them: each is the name of the error it stands for.
    let raised = [
        ServiceError::conflict(workflow_errors::ITEM_NOT_AVAILABLE, "x").name(),
        ServiceError::not_found("Item", "item-1").name(),
        ServiceError::Unavailable("x".into()).name(),
        ServiceError::PaymentFailed {
            amount: "1.00".into(),
            payment_id: PaymentId::parse("01KDX8Q7V3M2N4P6R8S0T2W4Y6").unwrap(),
        }
        .name(),
    ];
    for name in raised {
        assert!(listed.contains(&name), "{name} is raised but not listed");
    }
}
