//! `ewf dead-letters`: the events that failed every delivery attempt, and their redrive.

use crate::cli::{DeadLettersArgs, DeadLettersCommand, Global, RedriveArgs};
use crate::error::Result;
use crate::output::Output;
use crate::targets::DeadLetter;
use comfy_table::Table;
use serde_json::json;

pub async fn run(global: &Global, output: &Output, args: DeadLettersArgs) -> Result<()> {
    let target = global.open(output).await?;
    match args.command {
        None => {
            let spinner = output.spinner("reading the dead letters");
            let letters = target.dead_letters(args.order.as_ref()).await?;
            drop(spinner);
            if !letters.is_empty() {
                output.note(
                    "fix what the errors say, then `ewf dead-letters redrive --order ID` (or --all)",
                );
            }
            output.show(&json!({ "deadLetters": letters }), |_| {
                table(output, &letters)
            });
        }
        Some(DeadLettersCommand::Redrive(RedriveArgs { order, all: _ })) => {
            // The group makes --order and --all exclusive: no order means all.
            let spinner = output.spinner("redriving the dead letters");
            let letters = target.redrive(order.as_ref()).await?;
            drop(spinner);
            output.show(
                &json!({ "redriven": letters.len(), "deadLetters": letters }),
                |_| table(output, &letters),
            );
            if !output.is_json() {
                output.print(&format!("{} dead letter(s) redriven", letters.len()));
            }
        }
    }
    Ok(())
}

fn table(output: &Output, letters: &[DeadLetter]) -> Table {
    let mut table = output.table(&["order", "event", "target", "last error", "attempts", "age"]);
    table.add_rows(letters.iter().map(|letter| {
        vec![
            letter.order_id.clone().unwrap_or_default(),
            letter.event_type.clone(),
            letter.target.clone(),
            letter.last_error.clone(),
            letter.attempts.to_string(),
            age(letter.age_seconds),
        ]
    }));
    table
}

/// An age in its largest whole unit, as people read it.
fn age(seconds: i64) -> String {
    match seconds {
        ..60 => format!("{seconds}s"),
        60..3600 => format!("{}m", seconds / 60),
        3600..86_400 => format!("{}h", seconds / 3600),
        _ => format!("{}d", seconds / 86_400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_are_shown_in_their_largest_unit() {
        assert_eq!(age(0), "0s");
        assert_eq!(age(59), "59s");
        assert_eq!(age(61), "1m");
        assert_eq!(age(7200), "2h");
        assert_eq!(age(3 * 86_400 + 5), "3d");
    }
}
