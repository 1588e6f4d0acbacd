//! `memlayer import --from <format>` for another system's export (memlayer's own format is
//! read by `transfer::import`).

use serde_json::json;

use crate::importers::{self, Format, Mapping};
use crate::{Outcome, err, plural, print_json, raw};

/// Maps `file` from `from` and writes it to the store at `url`; prints what was imported, or
/// every record that could not be mapped (and then writes nothing).
pub(crate) async fn foreign(
    url: &str,
    file: &str,
    from: Format,
    namespace: &str,
    map: &[String],
    json_out: bool,
) -> Outcome {
    let mapping = match from {
        Format::Jsonl | Format::Csv => Some(Mapping::parse(map)?),
        _ => None,
    };
    let text = if file == "-" {
        std::io::read_to_string(std::io::stdin().lock())
            .map_err(|e| format!("reading standard input: {e}"))?
    } else {
        std::fs::read_to_string(file).map_err(|e| format!("reading {file}: {e}"))?
    };
    let store = raw(url).await?;
    let done = importers::import(&store, from, &text, namespace, mapping.as_ref())
        .await
        .map_err(err)?;
    if !done.refused.is_empty() {
        for line in &done.refused {
            eprintln!("{file}: {line}");
        }
        if done.records == 0 {
            return Err(format!("nothing was imported: {file} does not parse"));
        }
        return Err(format!(
            "nothing was imported: {} of {} could not be mapped from {}",
            plural(done.refused.len(), "record"),
            done.records,
            from.name()
        ));
    }
    if json_out {
        return print_json(&json!({"imported": done.items, "records": done.records}));
    }
    println!(
        "imported {} from {} ({})",
        plural(done.items, "item"),
        from.name(),
        plural(done.records, "record")
    );
    Ok(())
}
