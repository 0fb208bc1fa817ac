//! Reports and exports for finance staff and automated checks.
//!
//! The tabular writer the exports and reports share (CSV or JSON, to stdout or a file,
//! streamed), and the reports: [`settlement`] (the daily settlement), [`exceptions`],
//! [`ageing`], [`collection`], [`customers`] (key customers, payment behaviour). XLSX/HTML and
//! publishing are still to come (issue 6).

pub mod ageing;
pub mod collection;
pub mod customers;
pub mod deliver;
pub mod exceptions;
pub mod html;
pub mod labels;
pub mod publish;
pub mod settlement;
pub mod xlsx;

use std::io::Write;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TableFormat {
    Csv,
    Json,
}

pub use crate::config::ReportKind;

/// A report's columns and rows of text cells.
pub type Table = (&'static [&'static str], Vec<Vec<Option<String>>>);

impl ReportKind {
    /// Computes the report for `date`.
    pub async fn build(
        &self,
        config: &crate::config::Config,
        store: &crate::store::Store,
        date: chrono::NaiveDate,
    ) -> Result<Table, crate::store::StoreError> {
        Ok(match self {
            ReportKind::DailySettlement => (
                settlement::COLUMNS,
                settlement::daily_settlement(store, date).await?,
            ),
            ReportKind::SettlementLines => (
                settlement::LINE_COLUMNS,
                settlement::lines(store, date).await?,
            ),
            ReportKind::Exceptions => (
                exceptions::COLUMNS,
                exceptions::exceptions(store, date).await?,
            ),
            ReportKind::Ageing => (ageing::COLUMNS, ageing::ageing(config, store, date).await?),
            ReportKind::CollectionRate => (
                collection::COLUMNS,
                collection::collection_rate(store, date).await?,
            ),
            ReportKind::KeyCustomers => (
                customers::KEY_COLUMNS,
                customers::key_customers(store, date).await?,
            ),
            ReportKind::PaymentBehaviour => (
                customers::BEHAVIOUR_COLUMNS,
                customers::payment_behaviour(store, date).await?,
            ),
        })
    }
}

/// The chart of a report's HTML page: (label column, value column), from its columns.
pub fn chart_of(columns: &[&str]) -> Option<(&'static str, &'static str)> {
    [
        ("bank_id", "received"),
        ("group", "total"),
        ("group", "collection_rate_pct"),
        ("reason", "open_amount"),
        ("account_no", "billed"),
        ("account_no", "on_time_rate_pct"),
    ]
    .into_iter()
    .find(|(l, v)| columns.contains(l) && columns.contains(v))
}

/// A CSV cell that a spreadsheet will not run as a formula: text starting with `=`, `+`, `@`,
/// a tab or a carriage return, or with `-` not followed by a digit (a negative amount stays a
/// number), gets a leading `'`. Bank texts (payer names, remittance) come from outside.
pub fn excel_safe(cell: &str) -> std::borrow::Cow<'_, str> {
    let mut chars = cell.chars();
    let risky = match chars.next() {
        Some('=' | '+' | '@' | '\t' | '\r') => true,
        Some('-') => !chars.next().is_some_and(|c| c.is_ascii_digit() || c == '.'),
        _ => false,
    };
    if risky {
        std::borrow::Cow::Owned(format!("'{cell}"))
    } else {
        std::borrow::Cow::Borrowed(cell)
    }
}

/// Writes rows of text cells as CSV (header first) or as a JSON array of objects, one row at
/// a time.
pub struct TableWriter<W: Write> {
    format: TableFormat,
    columns: Vec<String>,
    csv: Option<csv::Writer<W>>,
    json: Option<W>,
    rows: u64,
}

impl<W: Write> TableWriter<W> {
    pub fn new(out: W, format: TableFormat, columns: &[&str]) -> std::io::Result<Self> {
        Self::with_bom(out, format, columns, false)
    }

    /// With `bom`, CSV starts with a UTF-8 byte-order mark, so that Excel reads Chinese text
    /// right when the file is opened by double-click.
    pub fn with_bom(
        mut out: W,
        format: TableFormat,
        columns: &[&str],
        bom: bool,
    ) -> std::io::Result<Self> {
        let columns: Vec<String> = columns.iter().map(|c| c.to_string()).collect();
        match format {
            TableFormat::Csv => {
                if bom {
                    out.write_all("\u{feff}".as_bytes())?;
                }
                let mut w = csv::Writer::from_writer(out);
                w.write_record(&columns)?;
                Ok(TableWriter {
                    format,
                    columns,
                    csv: Some(w),
                    json: None,
                    rows: 0,
                })
            }
            TableFormat::Json => {
                let mut out = out;
                out.write_all(b"[")?;
                Ok(TableWriter {
                    format,
                    columns,
                    csv: None,
                    json: Some(out),
                    rows: 0,
                })
            }
        }
    }

    pub fn row(&mut self, cells: Vec<Option<String>>) -> std::io::Result<()> {
        match self.format {
            TableFormat::Csv => {
                if let Some(w) = self.csv.as_mut() {
                    w.write_record(
                        cells
                            .iter()
                            .map(|c| excel_safe(c.as_deref().unwrap_or("")).into_owned()),
                    )?;
                }
            }
            TableFormat::Json => {
                if let Some(w) = self.json.as_mut() {
                    let obj: serde_json::Map<String, serde_json::Value> = self
                        .columns
                        .iter()
                        .zip(cells)
                        .map(|(k, v)| {
                            (
                                k.clone(),
                                v.map(serde_json::Value::String)
                                    .unwrap_or(serde_json::Value::Null),
                            )
                        })
                        .collect();
                    if self.rows > 0 {
                        w.write_all(b",")?;
                    }
                    w.write_all(b"\n")?;
                    serde_json::to_writer(&mut *w, &obj)?;
                }
            }
        }
        self.rows += 1;
        Ok(())
    }

    pub fn finish(mut self) -> std::io::Result<()> {
        if let Some(mut w) = self.csv.take() {
            w.flush()?;
        }
        if let Some(mut w) = self.json.take() {
            w.write_all(b"\n]\n")?;
            w.flush()?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_and_json_carry_the_same_cells() {
        let mut buf = Vec::new();
        let mut w = TableWriter::new(&mut buf, TableFormat::Csv, &["a", "b"]).unwrap();
        w.row(vec![Some("1,5".into()), None]).unwrap();
        w.finish().unwrap();
        assert_eq!(String::from_utf8(buf).unwrap(), "a,b\n\"1,5\",\n");

        let mut buf = Vec::new();
        let mut w = TableWriter::new(&mut buf, TableFormat::Json, &["a", "b"]).unwrap();
        w.row(vec![Some("1,5".into()), None]).unwrap();
        w.row(vec![Some("2".into()), Some("x".into())]).unwrap();
        w.finish().unwrap();
        let v: serde_json::Value = serde_json::from_slice(&buf).unwrap();
        assert_eq!(v[0]["a"], "1,5");
        assert!(v[0]["b"].is_null());
        assert_eq!(v[1]["b"], "x");
    }

    #[test]
    fn cells_a_spreadsheet_would_run_are_quoted_and_numbers_are_left_alone() {
        for (cell, safe) in [
            ("=HYPERLINK(\"http://x\")", "'=HYPERLINK(\"http://x\")"),
            ("+1+1", "'+1+1"),
            ("@SUM(A1)", "'@SUM(A1)"),
            ("-cmd|' /C calc'!A0", "'-cmd|' /C calc'!A0"),
            ("-15.00", "-15.00"),
            ("-.5", "-.5"),
            ("张伟", "张伟"),
            ("", ""),
        ] {
            assert_eq!(excel_safe(cell), safe);
        }
        let mut out = Vec::new();
        let mut w = TableWriter::with_bom(&mut out, TableFormat::Csv, &["name"], true).unwrap();
        w.row(vec![Some("=1+2".into())]).unwrap();
        w.finish().unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "\u{feff}name\n'=1+2\n");
    }
}
