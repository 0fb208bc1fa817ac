//! A report as one self-contained HTML page: a table and, for the report's main amount, an
//! inline SVG bar chart. No scripts, no external fonts, styles or images, so it opens
//! anywhere, archives as one file, and prints on A4.

use rust_decimal::Decimal;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Bars for `chart_column` by `label_column` (rows without a number are left out).
pub fn bar_chart(
    columns: &[&str],
    rows: &[Vec<Option<String>>],
    label_column: &str,
    chart_column: &str,
) -> String {
    let (Some(li), Some(vi)) = (
        columns.iter().position(|c| *c == label_column),
        columns.iter().position(|c| *c == chart_column),
    ) else {
        return String::new();
    };
    // amounts of different currencies side by side: say which
    let ci = columns.iter().position(|c| *c == "currency");
    let bars: Vec<(String, Decimal)> = rows
        .iter()
        .filter_map(|r| {
            let mut label = r.get(li).cloned().flatten()?;
            if let Some(ccy) = ci.and_then(|i| r.get(i).cloned().flatten()) {
                label = format!("{label} {ccy}");
            }
            let v: Decimal = r.get(vi).cloned().flatten()?.parse().ok()?;
            Some((label, v.max(Decimal::ZERO)))
        })
        .collect();
    let max = bars.iter().map(|b| b.1).max().unwrap_or_default();
    if bars.is_empty() || max.is_zero() {
        return String::new();
    }
    let (bar_w, gap, height) = (40i64, 20i64, 200i64);
    let width = (bar_w + gap) * bars.len() as i64 + gap;
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{}\" role=\"img\" aria-label=\"{}\">",
        height + 40,
        esc(chart_column)
    );
    for (i, (label, v)) in bars.iter().enumerate() {
        let h = (*v * Decimal::from(height) / max).round().to_string();
        let h: i64 = h.parse().unwrap_or(0);
        let x = gap + i as i64 * (bar_w + gap);
        svg.push_str(&format!(
            "<rect x=\"{x}\" y=\"{}\" width=\"{bar_w}\" height=\"{h}\" fill=\"#2b6cb0\"><title>{}: {}</title></rect>\
             <text x=\"{}\" y=\"{}\" font-size=\"10\" text-anchor=\"middle\">{}</text>",
            height - h,
            esc(label),
            v,
            x + bar_w / 2,
            height + 14,
            esc(label)
        ));
    }
    svg.push_str("</svg>");
    svg
}

/// The page.
pub fn page(
    title: &str,
    columns: &[&str],
    rows: &[Vec<Option<String>>],
    chart: Option<(&str, &str)>,
    language: &str,
) -> String {
    let mut h =
        String::from("<!DOCTYPE html>\n<html lang=\"zh-CN\"><head><meta charset=\"utf-8\">");
    h.push_str(&format!("<title>{}</title>", esc(title)));
    h.push_str(
        "<style>@page{size:A4 landscape;margin:12mm}body{font-family:sans-serif;font-size:10pt}\
         table{border-collapse:collapse}th,td{border:1px solid #999;padding:2px 6px}\
         td.n{text-align:right}th{background:#eee}</style></head><body>",
    );
    h.push_str(&format!("<h1>{}</h1>", esc(title)));
    if let Some((label, value)) = chart {
        h.push_str(&bar_chart(columns, rows, label, value));
    }
    h.push_str("<table><thead><tr>");
    for c in columns {
        h.push_str(&format!(
            "<th>{}</th>",
            esc(&super::labels::heading(c, language))
        ));
    }
    h.push_str("</tr></thead><tbody>");
    for r in rows {
        h.push_str("<tr>");
        for cell in r {
            let v = cell.as_deref().unwrap_or("");
            let numeric = v.parse::<Decimal>().is_ok();
            h.push_str(&format!(
                "<td{}>{}</td>",
                if numeric { " class=\"n\"" } else { "" },
                esc(v)
            ));
        }
        h.push_str("</tr>");
    }
    h.push_str("</tbody></table></body></html>\n");
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_are_proportional_and_the_page_is_self_contained() {
        let cols = ["bank_id", "received"];
        let rows = vec![
            vec![Some("ICBC".into()), Some("200.00".into())],
            vec![Some("CMB<&>".into()), Some("50.00".into())],
            vec![Some("ALL".into()), None],
        ];
        let svg = bar_chart(&cols, &rows, "bank_id", "received");
        assert!(
            svg.contains("height=\"200\""),
            "the largest bar is full height: {svg}"
        );
        assert!(svg.contains("height=\"50\""), "a quarter of it: {svg}");
        assert!(svg.contains("CMB&lt;&amp;&gt;"));
        let html = page(
            "Daily settlement",
            &cols,
            &rows,
            Some(("bank_id", "received")),
            "zh",
        );
        assert!(html.contains("<th>收款金额</th>"));
        assert!(html.contains("<svg") && html.contains("<td class=\"n\">200.00</td>"));
        for banned in ["<script", "http://", "https://", "<link", "@import"] {
            let without_svg_ns = html.replace("http://www.w3.org/2000/svg", "");
            assert!(!without_svg_ns.contains(banned), "{banned} in the page");
        }
    }
}
