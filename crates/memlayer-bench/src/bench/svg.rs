//! The latency chart (`target/bench/latency.svg`, copied to `docs/bench-latency.svg`).

use serde_json::Value;

use super::report::is_synthetic;

pub(crate) fn svg(rows: &[Value]) -> String {
    // The synthetic sets only: a dataset's rows are one size, not a line against size.
    let rows: Vec<&Value> = rows.iter().filter(|r| is_synthetic(r)).collect();
    // One panel per search op: p50 latency (log) against items (log), a line per backend.
    let ops = ["keyword", "vector", "hybrid"];
    let backends: Vec<String> = {
        let mut b: Vec<String> = rows
            .iter()
            .filter(|r| ops.contains(&r["op"].as_str().unwrap_or("")))
            .filter_map(|r| r["backend"].as_str().map(str::to_owned))
            .collect();
        b.sort();
        b.dedup();
        b
    };
    let colors = [
        "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b",
    ];
    let (pw, ph, m) = (300.0, 220.0, 50.0);
    let width = m + ops.len() as f64 * (pw + m);
    let height = ph + 2.0 * m + 20.0 * backends.len() as f64;
    let pts = |op: &str, b: &str| -> Vec<(f64, f64)> {
        let mut v: Vec<(f64, f64)> = rows
            .iter()
            .filter(|r| {
                r["op"] == op
                    && r["backend"] == b
                    && r["clients"] == 1
                    && r["filter_selectivity"].as_f64() == Some(1.0)
            })
            .filter_map(|r| Some((r["items"].as_f64()?, r["p50_ms"].as_f64()?)))
            .collect();
        v.sort_by(|a, b| a.0.total_cmp(&b.0));
        v
    };
    let all: Vec<(f64, f64)> = ops
        .iter()
        .flat_map(|o| backends.iter().flat_map(move |b| pts(o, b)))
        .collect();
    let (xmin, xmax) = all
        .iter()
        .fold((f64::MAX, f64::MIN), |(a, b), p| (a.min(p.0), b.max(p.0)));
    let (ymin, ymax) = all.iter().fold((f64::MAX, f64::MIN), |(a, b), p| {
        (a.min(p.1.max(0.001)), b.max(p.1))
    });
    let (lx0, lx1) = ((xmin.max(1.0)).log10() - 0.2, xmax.max(1.0).log10() + 0.2);
    let (ly0, ly1) = (
        ymin.log10().floor(),
        ymax.log10().ceil().max(ymin.log10().floor() + 1.0),
    );
    let mut s = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="11"><rect width="100%" height="100%" fill="white"/>"#
    );
    for (pi, op) in ops.iter().enumerate() {
        let x0 = m + pi as f64 * (pw + m);
        let y0 = m;
        let sx = |x: f64| x0 + (x.max(1.0).log10() - lx0) / (lx1 - lx0) * pw;
        let sy = |y: f64| y0 + ph - (y.max(0.001).log10() - ly0) / (ly1 - ly0) * ph;
        s.push_str(&format!(
            r##"<rect x="{x0}" y="{y0}" width="{pw}" height="{ph}" fill="none" stroke="#999"/><text x="{}" y="{}" text-anchor="middle" font-size="13">{op} search, p50 latency (ms), 1 client</text>"##,
            x0 + pw / 2.0,
            y0 - 10.0
        ));
        let mut e = ly0;
        while e <= ly1 {
            let y = sy(10f64.powf(e));
            s.push_str(&format!(
                r##"<line x1="{x0}" x2="{}" y1="{y}" y2="{y}" stroke="#eee"/><text x="{}" y="{}" text-anchor="end">{}</text>"##,
                x0 + pw,
                x0 - 4.0,
                y + 4.0,
                10f64.powf(e)
            ));
            e += 1.0;
        }
        let mut sizes: Vec<f64> = all.iter().map(|p| p.0).collect();
        sizes.sort_by(f64::total_cmp);
        sizes.dedup();
        for x in sizes {
            s.push_str(&format!(
                r#"<text x="{}" y="{}" text-anchor="middle">{} items</text>"#,
                sx(x),
                y0 + ph + 14.0,
                x
            ));
        }
        for (bi, b) in backends.iter().enumerate() {
            let c = colors[bi % colors.len()];
            let p = pts(op, b);
            let path: Vec<String> = p
                .iter()
                .map(|(x, y)| format!("{:.1},{:.1}", sx(*x), sy(*y)))
                .collect();
            if path.len() > 1 {
                s.push_str(&format!(
                    r#"<polyline points="{}" fill="none" stroke="{c}" stroke-width="2"/>"#,
                    path.join(" ")
                ));
            }
            for (x, y) in &p {
                s.push_str(&format!(
                    r#"<circle cx="{:.1}" cy="{:.1}" r="3" fill="{c}"/>"#,
                    sx(*x),
                    sy(*y)
                ));
            }
        }
    }
    for (bi, b) in backends.iter().enumerate() {
        let c = colors[bi % colors.len()];
        let y = m + ph + 40.0 + 20.0 * bi as f64;
        s.push_str(&format!(
            r#"<rect x="{m}" y="{}" width="12" height="12" fill="{c}"/><text x="{}" y="{}">{b}</text>"#,
            y - 10.0,
            m + 18.0,
            y
        ));
    }
    s.push_str("</svg>\n");
    s
}
