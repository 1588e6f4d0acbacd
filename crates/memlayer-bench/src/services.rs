//! The local services, reached through `cargo xtask services`, which owns starting them: a
//! task asks for the services it needs and reads the environment xtask prints.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};

/// Starts the services `ids` (idempotently) and returns their environment, as
/// `cargo xtask services env` prints it.
pub fn up(ids: &[String]) -> Result<Vec<(String, String)>> {
    let out = crate::cargo()
        .args(["xtask", "services", "env"])
        .args(ids)
        .current_dir(crate::root())
        .stderr(std::process::Stdio::inherit())
        .output()
        .context("running `cargo xtask services env`")?;
    if !out.status.success() {
        bail!("`cargo xtask services env {}` failed", ids.join(" "));
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(parse_export)
        .collect())
}

/// `export K='V'` (single-quoted for the shell, a quote inside written `'\''`) as `(K, V)`.
fn parse_export(line: &str) -> Option<(String, String)> {
    let (key, value) = line.strip_prefix("export ")?.split_once('=')?;
    let value = value.strip_prefix('\'')?.strip_suffix('\'')?;
    Some((key.to_owned(), value.replace("'\\''", "'")))
}

/// A model directory: from `var` if set, else from the `models` service.
pub fn model_dir(var: &str) -> Result<PathBuf> {
    if let Ok(dir) = std::env::var(var) {
        return Ok(dir.into());
    }
    up(&["models".to_owned()])?
        .into_iter()
        .find(|(k, _)| k == var)
        .map(|(_, v)| PathBuf::from(v))
        .with_context(|| format!("the models service gave no {var}"))
}

#[cfg(test)]
mod tests {
    use super::parse_export;

    #[test]
    fn exports_parse_back_to_their_values() {
        assert_eq!(
            parse_export("export A='x'"),
            Some(("A".to_owned(), "x".to_owned()))
        );
        assert_eq!(
            parse_export("export B='it'\\''s'"),
            Some(("B".to_owned(), "it's".to_owned()))
        );
        assert_eq!(parse_export("noise"), None);
    }
}
