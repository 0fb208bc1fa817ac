//! A report as one self-contained HTML page for people: a title in the report's language, the
//! day and the clock it uses, a summary read in five seconds, charts (inline SVG, see
//! [`super::chart`]), then the detail in sections with human column names; or, for a report
//! without rows, the reason it is empty. No scripts, no external fonts, styles or images, so
//! it opens anywhere, archives as one file, and prints on A4 (portrait, or landscape for the
//! wide customer lists).
//!
//! The summary's figures carry `data-key` and `data-value` (the figure as in the CSV), and
//! each drawn chart element its value, so a test reads back what a person sees.

use super::view::{self, View};
use super::ReportKind;
use chrono::NaiveDate;

pub use super::chart::esc;

const STYLE: &str = "\
body{font-family:'Noto Sans CJK SC','WenQuanYi Micro Hei','Microsoft YaHei','PingFang SC',sans-serif;\
font-size:10pt;color:#1d2733;margin:16px auto;max-width:1000px;padding:0 12px}\
h1{font-size:20pt;margin:0 0 2px}h2{font-size:12pt;margin:18px 0 6px;page-break-after:avoid;break-after:avoid}\
.date{font-size:12pt;margin:0;color:#1f3a5f;font-weight:bold}.clock{color:#555;font-size:9pt;margin:4px 0 10px}\
.summary{border:1px solid #c9d3df;background:#f5f8fb;padding:8px 12px;margin:8px 0 12px;break-inside:avoid}\
.facts{display:flex;flex-wrap:wrap;gap:6px 22px;margin:6px 0 0}.fact dt{font-size:8.5pt;color:#555}\
.group dd{color:#1f3a5f;font-weight:bold;font-size:11pt;margin:0}.fact dd{margin:0;font-size:13pt;font-weight:bold;font-variant-numeric:tabular-nums}\
table{border-collapse:collapse;margin:4px 0 8px}th,td{border:1px solid #b8c2cc;padding:2px 6px;vertical-align:top}\
th{background:#eef1f5;font-weight:600;text-align:left}td.n,th.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}\
table.equation td,table.equation th{border:none;padding:2px 5px}table.equation td.op{color:#777;text-align:center}\
table.equation td.fig{font-weight:bold}.ok{color:#2f855a;font-weight:bold}.bad{color:#c53030;font-weight:bold}\
tr{break-inside:avoid}.charts svg{display:block;width:100%;max-width:180mm;height:auto;margin:8px 0;break-inside:avoid}\
.empty{font-size:12pt;border:1px solid #e0c97b;background:#fff8e1;padding:10px 14px}\
footer{color:#888;font-size:8pt;margin-top:14px}\
@media print{body{margin:0;max-width:none}}";

/// The page of a report, in `language` (`zh` or `en`).
pub fn report_page(
    kind: ReportKind,
    date: NaiveDate,
    columns: &[&str],
    rows: &[Vec<Option<String>>],
    language: &str,
) -> String {
    let v = view::view(kind, date, columns, rows, language);
    page(&v, columns, rows)
}

/// Renders a view of a table.
pub fn page(v: &View, columns: &[&str], rows: &[Vec<Option<String>>]) -> String {
    let lang = if super::labels::is_zh(&v.lang) {
        "zh-CN"
    } else {
        "en"
    };
    let table = view::Table { columns, rows };
    let mut h = format!(
        "<!DOCTYPE html>\n<html lang=\"{lang}\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{} · {}</title><style>@page{{size:A4 {};margin:12mm}}{STYLE}</style></head>\
         <body class=\"report {}\">",
        esc(&v.title),
        esc(&v.date_line),
        if v.landscape { "landscape" } else { "portrait" },
        v.kind.name()
    );
    h.push_str(&format!(
        "<header><h1 id=\"title\">{}</h1><p class=\"date\" id=\"date\">{}</p><p class=\"clock\" id=\"clock\">{}</p></header>",
        esc(&v.title),
        esc(&v.date_line),
        esc(&v.clock)
    ));
    if let Some(why) = &v.empty {
        h.push_str(&format!("<p class=\"empty\" id=\"empty\">{}</p>", esc(why)));
    } else {
        h.push_str("<section class=\"summary\" id=\"summary\">");
        if let Some(first) = v.lines.first() {
            h.push_str("<table class=\"equation\"><thead><tr><th></th>");
            for (op, f) in &first.parts {
                if !op.is_empty() {
                    h.push_str("<th></th>");
                }
                h.push_str(&format!("<th class=\"n\">{}</th>", esc(&f.label)));
            }
            h.push_str("<th></th></tr></thead><tbody>");
            for l in &v.lines {
                h.push_str(&format!("<tr class=\"line\"><th>{}</th>", esc(&l.label)));
                for (op, f) in &l.parts {
                    if !op.is_empty() {
                        h.push_str(&format!("<td class=\"op\">{}</td>", esc(op)));
                    }
                    h.push_str(&format!(
                        "<td class=\"n fig\" data-key=\"{}\" data-value=\"{}\">{}</td>",
                        esc(&f.key),
                        esc(&f.value),
                        esc(&f.text)
                    ));
                }
                h.push_str(&match (l.check, &l.note) {
                    (Some(true), _) => "<td class=\"ok check\">✓</td>".to_string(),
                    (Some(false), note) => format!(
                        "<td class=\"bad check\">✗ {}</td>",
                        esc(note.as_deref().unwrap_or(""))
                    ),
                    (None, _) => "<td></td>".to_string(),
                });
                h.push_str("</tr>");
            }
            h.push_str("</tbody></table>");
        }
        // the figures, a line per currency when there are several
        let mut groups: Vec<&str> = Vec::new();
        for f in &v.facts {
            if !groups.contains(&f.group.as_str()) {
                groups.push(&f.group);
            }
        }
        for g in &groups {
            h.push_str("<dl class=\"facts\">");
            if groups.len() > 1 && !g.is_empty() {
                h.push_str(&format!(
                    "<div class=\"group\"><dt>&nbsp;</dt><dd>{}</dd></div>",
                    esc(g)
                ));
            }
            for f in v.facts.iter().filter(|f| f.group == *g) {
                h.push_str(&format!(
                    "<div class=\"fact\" data-key=\"{}\" data-value=\"{}\"><dt>{}</dt><dd>{}</dd></div>",
                    esc(&f.key),
                    esc(&f.value),
                    esc(&f.label),
                    esc(&f.text)
                ));
            }
            h.push_str("</dl>");
        }
        h.push_str("</section>");
        let charts: Vec<&String> = v.charts.iter().filter(|c| !c.is_empty()).collect();
        if !charts.is_empty() {
            h.push_str("<section class=\"charts\" id=\"charts\">");
            for c in charts {
                h.push_str(c);
            }
            h.push_str("</section>");
        }
        for s in &v.sections {
            if s.rows.is_empty() || s.columns.is_empty() {
                continue;
            }
            h.push_str("<section class=\"detail\">");
            if !s.title.is_empty() {
                h.push_str(&format!("<h2>{}</h2>", esc(&s.title)));
            }
            h.push_str("<table><thead><tr>");
            for c in &s.columns {
                let n = super::labels::kind(c).is_number();
                h.push_str(&format!(
                    "<th{} data-column=\"{}\">{}</th>",
                    if n { " class=\"n\"" } else { "" },
                    esc(c),
                    esc(&s.heading(c, &v.lang))
                ));
            }
            h.push_str("</tr></thead><tbody>");
            for r in &s.rows {
                h.push_str("<tr>");
                for c in &s.columns {
                    let n = super::labels::kind(c).is_number();
                    h.push_str(&format!(
                        "<td{}>{}</td>",
                        if n { " class=\"n\"" } else { "" },
                        esc(&view::cell(&table, *r, c, &v.lang))
                    ));
                }
                h.push_str("</tr>");
            }
            h.push_str("</tbody></table></section>");
        }
    }
    h.push_str(&format!(
        "<footer>billrecon · {} · {}</footer></body></html>\n",
        v.kind.name(),
        esc(&v.date_line)
    ));
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_is_self_contained_titled_for_people_and_says_why_it_is_empty() {
        let cols = super::super::settlement::COLUMNS;
        let mut row = vec![None; cols.len()];
        for (c, v) in [
            ("bank_id", "CMB<&>"),
            ("currency", "CNY"),
            ("received_count", "1200"),
            ("received", "481840445.51"),
            ("applied", "481840445.51"),
            ("credit", "0.00"),
            ("held_in_exceptions", "0.00"),
            ("refunded", "0.00"),
            ("written_off", "0.00"),
        ] {
            row[cols.iter().position(|x| *x == c).unwrap()] = Some(v.into());
        }
        let day = NaiveDate::from_ymd_opt(2026, 11, 12).unwrap();
        let html = report_page(ReportKind::DailySettlement, day, cols, &[row], "zh");
        assert!(html.contains("<h1 id=\"title\">日结算报表</h1>"), "{html}");
        assert!(html.contains("记账日 2026年11月12日"));
        assert!(html.contains("¥481,840,445.51"));
        assert!(html.contains("<th class=\"n\" data-column=\"received\">收款金额</th>"));
        assert!(html.contains("CMB&lt;&amp;&gt;"));
        assert!(!html.contains("data-key=\"received:CMB<&>:CNY\""));
        assert!(html.contains("<svg"));
        let without_svg_ns = html.replace("http://www.w3.org/2000/svg", "");
        for banned in ["<script", "http://", "https://", "<link", "@import"] {
            assert!(!without_svg_ns.contains(banned), "{banned} in the page");
        }
        let empty = report_page(
            ReportKind::CollectionRate,
            day,
            super::super::collection::COLUMNS,
            &[],
            "zh",
        );
        assert!(empty.contains("<h1 id=\"title\">电费回收率</h1>"));
        assert!(
            empty.contains("id=\"empty\">2026年10月14日 至 2026年11月12日 期间没有开具账单"),
            "{empty}"
        );
        assert!(!empty.contains("<table"));
    }
}
