//! Runs tests with the conformance log on and summarises scenario outcomes per backend.

use std::collections::BTreeMap;

use anyhow::{Result, bail};

use crate::{cargo, root, run};

/// Runs `cargo <args>` with every backend in `ids` required, then prints, per backend, how
/// many scenarios passed, failed and were skipped. Fails if any failed or any backend ran
/// fewer scenarios than the suite has.
pub fn run_tests(ids: &[String], also_required: &[&str], args: &[&str]) -> Result<()> {
    let log = std::env::temp_dir().join(format!("memlayer-conformance-{}.log", std::process::id()));
    let _ = std::fs::remove_file(&log);
    let tested = run(cargo()
        .args(args)
        .env("MEMLAYER_CONFORMANCE_LOG", &log)
        .env(
            "MEMLAYER_REQUIRE_BACKENDS",
            ids.iter()
                .map(String::as_str)
                .chain(also_required.iter().copied())
                .collect::<Vec<_>>()
                .join(","),
        ));
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    let _ = std::fs::remove_file(&log);
    let total = scenario_count()?;
    let mut counts: BTreeMap<&str, (usize, usize, Vec<String>)> = BTreeMap::new();
    for line in text.lines() {
        let mut f = line.split('\t');
        let (Some(backend), Some(scenario), Some(outcome)) = (f.next(), f.next(), f.next()) else {
            continue;
        };
        let entry = counts.entry(backend).or_default();
        match outcome {
            "passed" => entry.0 += 1,
            _ => {
                entry.1 += 1;
                entry.2.push(format!(
                    "{scenario} ({outcome}: {})",
                    f.next().unwrap_or("")
                ));
            }
        }
    }
    println!();
    println!("| backend | scenarios | passed | failed | skipped |");
    println!("|---|---|---|---|---|");
    let (mut passed, mut failed, mut skipped) = (0, 0, 0);
    // Variants of a backend's suite (`memory_hnsw`: the same backend configured otherwise)
    // are listed and counted under their own names.
    let mut shown: Vec<String> = ids.to_vec();
    for name in counts.keys() {
        if !ids.iter().any(|id| id == name)
            && ids.iter().any(|id| {
                name.strip_prefix(id.as_str())
                    .is_some_and(|r| r.starts_with('_'))
            })
        {
            shown.push((*name).to_owned());
        }
    }
    for id in &shown {
        let (p, s, why) = counts.get(id.as_str()).cloned().unwrap_or_default();
        let f = total.saturating_sub(p + s);
        println!("| {id} | {total} | {p} | {f} | {s} |");
        for w in why {
            println!("|   | skipped: {w} | | | |");
        }
        passed += p;
        failed += f;
        skipped += s;
    }
    println!();
    println!("conformance: {passed} passed, {failed} failed, {skipped} skipped");
    tested?;
    if failed > 0 {
        bail!("{failed} conformance scenarios did not pass");
    }
    Ok(())
}

/// How many scenarios the suite has, counted in its one list (the `__for_each_scenario!`
/// macro, one `name [capabilities] "contract";` line each), so the task runner need not
/// compile the suite to know what a full run is.
fn scenario_count() -> Result<usize> {
    let path = root().join("crates/memlayer-conformance/src/scenarios/mod.rs");
    let text = std::fs::read_to_string(&path)
        .map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))?;
    let count = text.lines().filter(|l| is_scenario_line(l)).count();
    if count == 0 {
        bail!("no scenarios found in {}", path.display());
    }
    Ok(count)
}

fn is_scenario_line(line: &str) -> bool {
    let line = line.trim();
    let Some((name, rest)) = line.split_once(' ') else {
        return false;
    };
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        && rest.starts_with('[')
        && line.ends_with("\";")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_scenario_lines_only() {
        assert!(is_scenario_line(
            r#"crud_roundtrip [] "1. Upsert then get.";"#
        ));
        assert!(is_scenario_line(
            r#"vector_exact_then_near ["vector_search"] "17. The exact vector ranks first.";"#
        ));
        assert!(!is_scenario_line("macro_rules! __for_each_scenario {"));
        assert!(!is_scenario_line(
            "$crate::__expand_scenarios! { [$($args)*]"
        ));
    }

    /// The text count is the suite's own: a line the reading missed would shrink every
    /// backend's expected total.
    #[test]
    fn count_matches_the_suite() {
        assert_eq!(
            scenario_count().unwrap(),
            memlayer_conformance::scenarios::SCENARIOS.len()
        );
    }
}
