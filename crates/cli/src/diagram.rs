//! An order's timeline as a Mermaid sequence diagram: the services, the bus and the
//! state machine as participants; the events, invocations and callbacks as messages, in
//! order; the compensation shaded. The same drawing on both targets, from [`Timeline`].

use crate::targets::{Timeline, TimelineEntry, function_of};
use ewf_domain::Mode;
use ewf_domain::events::{DetailType, FunctionName, targets};
use std::fmt::Write;

const BUS: &str = "Bus";
const MACHINE: &str = "StateMachine";
const CLIENT: &str = "Client";
/// The shade of the compensation.
const COMPENSATION: &str = "rect rgb(255, 236, 236)";

/// The diagram of one order.
pub fn sequence(timeline: &Timeline) -> String {
    let messages = match timeline.mode {
        Mode::Events => choreography(&timeline.entries),
        Mode::Workflow => orchestration(&timeline.entries),
    };
    let mut participants: Vec<&str> = vec![CLIENT];
    if timeline.mode == Mode::Workflow {
        participants.push(MACHINE);
    }
    for line in &messages {
        if let Line::Message { from, to, .. } = line {
            for name in [from.as_str(), to.as_str()] {
                if !participants.contains(&name) {
                    participants.push(name);
                }
            }
        }
    }
    let mut text = String::from("sequenceDiagram\n");
    for participant in participants {
        let label = match participant {
            BUS => "EventBridge bus",
            MACHINE => "Step Functions",
            CLIENT => "ewf",
            other => other,
        };
        let _ = writeln!(text, "    participant {participant} as {label}");
    }
    let mut shaded = false;
    for line in messages {
        match line {
            Line::Compensation(why) if !shaded => {
                shaded = true;
                let _ = writeln!(text, "    {COMPENSATION}");
                let _ = writeln!(
                    text,
                    "    Note over {CLIENT}: compensation: {}",
                    clean(&why)
                );
            }
            Line::Compensation(_) => {}
            Line::Message {
                from,
                to,
                arrow,
                label,
            } => {
                let _ = writeln!(text, "    {from}{arrow}{to}: {}", clean(&label));
            }
        }
    }
    if shaded {
        text.push_str("    end\n");
    }
    text
}

enum Line {
    Message {
        from: String,
        to: String,
        arrow: &'static str,
        label: String,
    },
    /// From here on, the saga undoes what it did.
    Compensation(String),
}

fn message(from: &str, to: &str, arrow: &'static str, label: impl Into<String>) -> Line {
    Line::Message {
        from: participant(from),
        to: participant(to),
        arrow,
        label: label.into(),
    }
}

/// A participant id Mermaid takes: letters and digits.
fn participant(name: &str) -> String {
    let id: String = name.chars().filter(char::is_ascii_alphanumeric).collect();
    if id.is_empty() { "Unknown".into() } else { id }
}

/// Message text without what Mermaid reads as syntax.
fn clean(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            ';' | '#' | '\n' | '\r' | '%' | '{' | '}' | '<' | '>' => ' ',
            other => other,
        })
        .collect()
}

/// The events that start a compensation (or a cancellation's undoing).
fn starts_compensation(kind: &str) -> bool {
    kind.starts_with("Error")
        || matches!(
            kind,
            "PaymentFailed" | "ItemNotAvailable" | "DeliveryCanceled" | "OrderTimedOut"
        )
}

/// Events mode: each event from its source to the bus, then from the bus to every rule
/// target but the event store (which gets every event).
fn choreography(entries: &[TimelineEntry]) -> Vec<Line> {
    let mut lines = Vec::new();
    if entries
        .first()
        .is_some_and(|entry| entry.kind == "OrderCreated")
    {
        lines.push(message(CLIENT, "Order", "->>", "GET /order/create"));
    }
    for entry in entries {
        if starts_compensation(&entry.kind) {
            lines.push(Line::Compensation(entry.kind.clone()));
        }
        let source = if entry.source == ewf_domain::events::LOGISTICS_SOURCE {
            CLIENT
        } else {
            entry.source.as_str()
        };
        lines.push(message(source, BUS, "->>", entry.kind.as_str()));
        let Ok(detail_type) = entry.kind.parse::<DetailType>() else {
            continue;
        };
        for target in targets(detail_type).filter(|target| *target != FunctionName::EventStore) {
            lines.push(message(BUS, target.as_str(), "-)", entry.kind.as_str()));
        }
    }
    lines
}

/// Workflow mode: each task an invocation from the state machine and its reply; a
/// task that waits for its token is resumed by the delivery service's callback.
fn orchestration(entries: &[TimelineEntry]) -> Vec<Line> {
    let mut lines = Vec::new();
    let mut state = String::new();
    let mut function = String::from("Unknown");
    let mut failed_in: Option<String> = None;
    for entry in entries {
        let detail = &entry.detail;
        let waits = detail["resource"]
            .as_str()
            .is_some_and(|resource| resource.ends_with(".waitForTaskToken"));
        match entry.kind.as_str() {
            "ExecutionStarted" => lines.push(message(CLIENT, MACHINE, "->>", "StartExecution")),
            kind if kind.ends_with("StateEntered") => {
                state = detail["name"].as_str().unwrap_or_default().to_owned();
                if failed_in.take().is_some_and(|failed| failed != state) {
                    lines.push(Line::Compensation(state.clone()));
                }
            }
            "TaskScheduled" => {
                let parameters = &detail["parameters"];
                function = parameters["FunctionName"]
                    .as_str()
                    .and_then(function_of)
                    .map_or_else(|| "Unknown".to_owned(), |name| name.to_string());
                let action = parameters["Payload"]["action"].as_str().unwrap_or("invoke");
                let arrow = if waits { "-)" } else { "->>" };
                lines.push(message(
                    MACHINE,
                    &function,
                    arrow,
                    format!("{action} ({state})"),
                ));
            }
            "TaskSucceeded" if waits => {
                lines.push(message(&function, MACHINE, "-)", "SendTaskSuccess"));
            }
            "TaskSucceeded" => lines.push(message(&function, MACHINE, "-->>", "ok")),
            "TaskFailed" | "TaskTimedOut" => {
                let error = detail["error"].as_str().unwrap_or(entry.kind.as_str());
                let label = if waits {
                    format!("SendTaskFailure {error}")
                } else {
                    error.to_owned()
                };
                lines.push(message(&function, MACHINE, "--x", label));
                failed_in = Some(state.clone());
            }
            "ExecutionSucceeded" | "ExecutionFailed" | "ExecutionTimedOut" | "ExecutionAborted" => {
                lines.push(message(MACHINE, CLIENT, "-->>", entry.kind.as_str()));
            }
            _ => {}
        }
    }
    lines
}

/// The structure Mermaid's sequence diagram grammar requires of what [`sequence`]
/// draws: the header, declared participants, messages between declared participants
/// with a known arrow and a text free of syntax, notes, and balanced blocks. `Err`
/// names the first line that breaks it. (`scripts/check-diagrams.sh` renders them.)
#[cfg(test)]
pub fn check(text: &str) -> Result<(), String> {
    const ARROWS: &[&str] = &["-->>", "->>", "--x", "-x", "-)", "-->", "->"];
    let mut lines = text.lines();
    if lines.next() != Some("sequenceDiagram") {
        return Err("the first line is not sequenceDiagram".into());
    }
    let mut participants = Vec::new();
    let mut depth = 0usize;
    let is_id = |id: &str| !id.is_empty() && id.chars().all(|c| c.is_ascii_alphanumeric());
    let is_text = |text: &str| !text.trim().is_empty() && !text.contains([';', '#', '%', '{', '}']);
    for (number, line) in text.lines().enumerate().skip(1) {
        let fail = |why: &str| Err(format!("line {}: {why}: {line:?}", number + 1));
        let line = line.trim();
        if let Some(rest) = line.strip_prefix("participant ") {
            let (id, label) = rest.split_once(" as ").unwrap_or((rest, rest));
            if !is_id(id) || !is_text(label) || participants.contains(&id) {
                return fail("a bad or repeated participant");
            }
            participants.push(id);
        } else if line.starts_with("rect rgb(") && line.ends_with(')') {
            depth += 1;
        } else if line == "end" {
            depth = match depth.checked_sub(1) {
                Some(depth) => depth,
                None => return fail("an end without a block"),
            };
        } else if let Some(rest) = line.strip_prefix("Note over ") {
            let Some((who, note)) = rest.split_once(": ") else {
                return fail("a note without text");
            };
            if !participants.contains(&who) || !is_text(note) {
                return fail("a note over an undeclared participant");
            }
        } else {
            let Some((ends, label)) = line.split_once(": ") else {
                return fail("neither a message nor a known statement");
            };
            let Some((from, arrow, to)) = ARROWS
                .iter()
                .find_map(|arrow| ends.split_once(arrow).map(|(from, to)| (from, *arrow, to)))
            else {
                return fail("a message without a known arrow");
            };
            if arrow.is_empty()
                || !participants.contains(&from)
                || !participants.contains(&to)
                || !is_text(label)
            {
                return fail("a message between undeclared participants or without text");
            }
        }
    }
    if depth == 0 {
        Ok(())
    } else {
        Err("a block is not closed".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::demo::{SCENARIOS, demo_data};
    use crate::targets::local::LocalTarget;
    use crate::targets::{Target, finish_delivery};
    use ewf_domain::{CustomerId, ItemId, OrderStatus};
    use std::time::Duration;

    #[tokio::test]
    async fn every_scenario_of_both_modes_draws_a_well_formed_diagram() {
        let dir = tempfile::tempdir().unwrap();
        let target = LocalTarget::open(dir.path().to_path_buf(), Some(3), None).unwrap();
        target.seed(&demo_data(), true).await.unwrap();
        let settle = Duration::from_secs(60);
        for scenario in SCENARIOS {
            target
                .set_fail_probability(scenario.fail_probability)
                .await
                .unwrap();
            let customer = CustomerId::parse(scenario.customer).unwrap();
            let item = ItemId::parse(scenario.item).unwrap();
            for mode in [Mode::Workflow, Mode::Events] {
                let mut order = target
                    .start_order(mode, &customer, &item, true, settle)
                    .await
                    .unwrap();
                if let Some(outcome) = scenario.finish {
                    order = finish_delivery(&target, &customer, &order.order_id, outcome, settle)
                        .await
                        .unwrap();
                }
                assert_eq!(order.order_status, scenario.expected, "{}", scenario.name);
                let timeline = target.timeline(&order.order_id).await.unwrap().unwrap();
                let drawn = sequence(&timeline);
                check(&drawn)
                    .unwrap_or_else(|err| panic!("{} ({mode}): {err}\n{drawn}", scenario.name));
                // A failure or a cancellation shows its compensation; a delivery has none.
                let compensates = scenario.expected != OrderStatus::Delivered;
                assert_eq!(
                    drawn.contains(COMPENSATION),
                    compensates,
                    "{}\n{drawn}",
                    scenario.name
                );
                let messages = drawn
                    .lines()
                    .filter(|line| line.contains(": ") && !line.contains("Note"))
                    .count();
                assert!(messages >= 3, "{}: {drawn}", scenario.name);
            }
        }
    }

    #[test]
    fn the_check_refuses_what_mermaid_would() {
        let good =
            "sequenceDiagram\n    participant A as a\n    participant B as b\n    A->>B: hello\n";
        assert_eq!(check(good), Ok(()));
        for bad in [
            "graph TD\n",
            "sequenceDiagram\n    participant A as a\n    A->>C: hello\n",
            "sequenceDiagram\n    participant A as a\n    A=>A: hello\n",
            "sequenceDiagram\n    participant A as a\n    A->>A: a; b\n",
            "sequenceDiagram\n    participant A as a\n    rect rgb(1, 2, 3)\n    A->>A: x\n",
            "sequenceDiagram\n    participant A as a\n    end\n",
        ] {
            assert!(check(bad).is_err(), "{bad}");
        }
    }
}
