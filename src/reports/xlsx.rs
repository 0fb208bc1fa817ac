//! A report as an Excel workbook (rust_xlsxwriter): one sheet, bold frozen header, amounts as
//! numbers with two decimals and thousands separators, counts as whole numbers, identifiers
//! (account numbers, bill ids) as text. The document's creation time is the report's date, so
//! the same report gives the same bytes.

use chrono::{Datelike, NaiveDate};
use rust_xlsxwriter::{DocProperties, ExcelDateTime, Format, Workbook};

/// Columns holding counts (whole numbers).
const COUNT_COLUMNS: &[&str] = &[
    "bills",
    "rank",
    "files",
    "on_time",
    "late",
    "reversed_payments",
    "days_overdue",
];

fn is_count(column: &str) -> bool {
    column.contains("count")
        || COUNT_COLUMNS.contains(&column)
        || column.starts_with("open_") && column.ends_with("_days")
}

pub fn workbook(
    title: &str,
    columns: &[&str],
    rows: &[Vec<Option<String>>],
    date: NaiveDate,
    language: &str,
) -> Result<Vec<u8>, String> {
    let err = |e: rust_xlsxwriter::XlsxError| e.to_string();
    let mut wb = Workbook::new();
    let created = ExcelDateTime::from_ymd(date.year() as u16, date.month() as u8, date.day() as u8)
        .map_err(err)?;
    wb.set_properties(
        &DocProperties::new()
            .set_title(title)
            .set_creation_datetime(&created),
    );
    let header = Format::new().set_bold();
    let money = Format::new().set_num_format("#,##0.00");
    let whole = Format::new().set_num_format("0");
    let sheet = wb.add_worksheet();
    let name: String = title.chars().take(31).collect();
    sheet.set_name(&name).map_err(err)?;
    for (c, col) in columns.iter().enumerate() {
        sheet
            .write_string_with_format(0, c as u16, super::labels::heading(col, language), &header)
            .map_err(err)?;
        let widest = rows
            .iter()
            .filter_map(|r| r.get(c).cloned().flatten())
            .map(|v| v.chars().count())
            .max()
            .unwrap_or(0)
            .max(col.len());
        sheet
            .set_column_width(c as u16, (widest as f64 + 2.0).min(60.0))
            .map_err(err)?;
    }
    sheet.set_freeze_panes(1, 0).map_err(err)?;
    for (r, row) in rows.iter().enumerate() {
        let r = (r + 1) as u32;
        for (c, cell) in row.iter().enumerate() {
            let Some(v) = cell else { continue };
            let column = columns.get(c).copied().unwrap_or("");
            let number = v.parse::<f64>().ok().filter(|_| {
                let amount = v.contains('.') && !v.contains(' ');
                amount || is_count(column)
            });
            match number {
                Some(n) if is_count(column) => {
                    sheet.write_number_with_format(r, c as u16, n, &whole)
                }
                Some(n) => sheet.write_number_with_format(r, c as u16, n, &money),
                None => sheet.write_string(r, c as u16, v),
            }
            .map_err(err)?;
        }
    }
    wb.save_to_buffer().map_err(err)
}
