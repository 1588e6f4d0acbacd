//! Plain-text tables for people; `--json` output is for scripts.

/// Renders `rows` under `headers`, columns padded to their widest cell, cells cut at `max`
/// characters.
pub fn render(headers: &[&str], rows: &[Vec<String>], max: usize) -> String {
    let cut = |s: &str| -> String {
        let one_line = s.replace(['\n', '\r', '\t'], " ");
        if one_line.chars().count() > max {
            let mut t: String = one_line.chars().take(max.saturating_sub(1)).collect();
            t.push('…');
            t
        } else {
            one_line
        }
    };
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| r.iter().map(|c| cut(c)).collect())
        .collect();
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for r in &cells {
        for (i, c) in r.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(c.chars().count());
            }
        }
    }
    let line = |r: &[String]| -> String {
        let parts: Vec<String> = r
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        parts.join("  ").trim_end().to_owned()
    };
    let mut out = line(&headers.iter().map(|h| h.to_string()).collect::<Vec<_>>());
    out.push('\n');
    for r in &cells {
        out.push_str(&line(r));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pads_and_cuts() {
        let t = render(
            &["id", "content"],
            &[
                vec!["a".into(), "x".repeat(10)],
                vec!["bbb".into(), "y\nz".into()],
            ],
            5,
        );
        assert_eq!(t, "id   content\na    xxxx…\nbbb  y z\n");
    }
}
