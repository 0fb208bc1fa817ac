//! A report as an Excel workbook (rust_xlsxwriter). The first sheet, named by the report's
//! title, is the table: a bold frozen header with human column names, amounts as numbers with
//! thousands separators and two decimals, counts as whole numbers, percentages and days as
//! numbers, identifiers (account numbers, bill ids) and text as text, by each column's kind
//! ([`super::labels`]). The second sheet ("说明" / "About") holds the title, the day and the
//! clock the report uses, and the summary, or why the report is empty. The document's
//! creation time is the report's date, so the same report gives the same bytes.

use super::labels::{self, Kind};
use super::ReportKind;
use chrono::{Datelike, NaiveDate};
use rust_xlsxwriter::{DocProperties, ExcelDateTime, Format, Workbook};

/// The name of the table's sheet: the report's title when Excel allows it (31 characters).
pub fn sheet_name(kind: ReportKind, language: &str) -> String {
    let title = super::view::title(kind, language);
    if title.chars().count() <= 31 {
        title
    } else {
        kind.name().to_string()
    }
}

pub fn workbook(
    kind: ReportKind,
    columns: &[&str],
    rows: &[Vec<Option<String>>],
    date: NaiveDate,
    language: &str,
) -> Result<Vec<u8>, String> {
    let err = |e: rust_xlsxwriter::XlsxError| e.to_string();
    let view = super::view::view(kind, date, columns, rows, language);
    let mut wb = Workbook::new();
    let created = ExcelDateTime::from_ymd(date.year() as u16, date.month() as u8, date.day() as u8)
        .map_err(err)?;
    wb.set_properties(
        &DocProperties::new()
            .set_title(format!("{} {}", view.title, view.date_line))
            .set_subject(&view.clock)
            .set_creation_datetime(&created),
    );
    let header = Format::new().set_bold();
    let money = Format::new().set_num_format("#,##0.00");
    let whole = Format::new().set_num_format("#,##0");
    let pct = Format::new().set_num_format("0.00");
    let days = Format::new().set_num_format("0.0");
    let sheet = wb.add_worksheet();
    sheet.set_name(sheet_name(kind, language)).map_err(err)?;
    for (c, col) in columns.iter().enumerate() {
        let heading = labels::heading(col, language);
        sheet
            .write_string_with_format(0, c as u16, &heading, &header)
            .map_err(err)?;
        let widest = rows
            .iter()
            .filter_map(|r| r.get(c).cloned().flatten())
            .map(|v| v.chars().count() + 3)
            .max()
            .unwrap_or(0)
            .max(heading.chars().count() * 2);
        sheet
            .set_column_width(c as u16, (widest as f64 + 2.0).min(60.0))
            .map_err(err)?;
    }
    sheet.set_freeze_panes(1, 0).map_err(err)?;
    for (r, row) in rows.iter().enumerate() {
        let r = (r + 1) as u32;
        for (c, cell) in row.iter().enumerate() {
            let Some(v) = cell else { continue };
            let kind = labels::kind(columns.get(c).copied().unwrap_or(""));
            // a number column holds numbers; the text of a number kept as its decimal text
            let number = kind
                .is_number()
                .then(|| v.parse::<rust_decimal::Decimal>().ok())
                .flatten()
                .and_then(|d| d.to_string().parse::<f64>().ok());
            match (number, kind) {
                (Some(n), Kind::Count) => sheet.write_number_with_format(r, c as u16, n, &whole),
                (Some(n), Kind::Percent) => sheet.write_number_with_format(r, c as u16, n, &pct),
                (Some(n), Kind::Days) => sheet.write_number_with_format(r, c as u16, n, &days),
                (Some(n), _) => sheet.write_number_with_format(r, c as u16, n, &money),
                (None, _) => sheet.write_string(r, c as u16, v),
            }
            .map_err(err)?;
        }
    }
    // the about sheet
    let about = wb.add_worksheet();
    about
        .set_name(if labels::is_zh(language) {
            "说明"
        } else {
            "About"
        })
        .map_err(err)?;
    about.set_column_width(0, 40.0).map_err(err)?;
    about.set_column_width(1, 60.0).map_err(err)?;
    let big = Format::new().set_bold().set_font_size(14);
    about
        .write_string_with_format(0, 0, &view.title, &big)
        .map_err(err)?;
    about.write_string(1, 0, &view.date_line).map_err(err)?;
    about.write_string(2, 0, &view.clock).map_err(err)?;
    let mut r = 4u32;
    if let Some(why) = &view.empty {
        about.write_string(r, 0, why).map_err(err)?;
    }
    for l in &view.lines {
        let text = l
            .parts
            .iter()
            .map(|(op, f)| format!("{op} {} {}", f.label, f.text).trim().to_string())
            .collect::<Vec<_>>()
            .join(" ");
        about
            .write_string_with_format(r, 0, &l.label, &header)
            .map_err(err)?;
        about.write_string(r, 1, &text).map_err(err)?;
        r += 1;
    }
    for f in &view.facts {
        about.write_string(r, 0, &f.label).map_err(err)?;
        about.write_string(r, 1, &f.text).map_err(err)?;
        r += 1;
    }
    wb.save_to_buffer().map_err(err)
}
