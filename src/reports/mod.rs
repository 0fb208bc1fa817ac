//! Reports and exports for finance staff and automated checks.
//!
//! The tabular writer the exports and reports share (CSV or JSON, to stdout or a file,
//! streamed), and the reports: [`settlement`] (the daily settlement), [`exceptions`],
//! [`ageing`], [`collection`], [`customers`] (key customers, payment behaviour); each as CSV,
//! JSON, XLSX ([`xlsx`]) and a page for people ([`html`]: title, summary, charts from
//! [`chart`], the detail), laid out per report by [`view`], with the words of [`labels`];
//! [`publish`] writes a day's set, [`deliver`] posts it; [`dashboard`] is the workbench's
//! morning check.

pub mod ageing;
pub mod chart;
pub mod collection;
pub mod customers;
pub mod dashboard;
pub mod deliver;
pub mod exceptions;
pub mod html;
pub mod labels;
pub mod publish;
pub mod settlement;
pub mod view;
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

/// A CSV cell of `column` that a spreadsheet will not run as a formula, decided by the
/// column's kind ([`labels::kind`]), not by the look of the cell: in a text column (names,
/// references, remittance: they come from outside) a cell starting with `=`, `+`, `-`, `@`, a
/// tab or a carriage return gets a leading `'`, whatever follows (`-2+3` is a formula); in a
/// number column (amounts, counts, percentages) a number is left a number, and anything else
/// is treated as text.
pub fn excel_safe_in<'a>(column: &str, cell: &'a str) -> std::borrow::Cow<'a, str> {
    if labels::kind(column).is_number() && cell.parse::<rust_decimal::Decimal>().is_ok() {
        return std::borrow::Cow::Borrowed(cell);
    }
    excel_safe(cell)
}

/// A text cell that a spreadsheet will not run as a formula: starting with `=`, `+`, `-`,
/// `@`, a tab or a carriage return, it gets a leading `'`.
pub fn excel_safe(cell: &str) -> std::borrow::Cow<'_, str> {
    if cell.starts_with(['=', '+', '-', '@', '\t', '\r']) {
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
                    w.write_record(cells.iter().enumerate().map(|(i, c)| {
                        let column = self.columns.get(i).map(String::as_str).unwrap_or("");
                        excel_safe_in(column, c.as_deref().unwrap_or("")).into_owned()
                    }))?;
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
    fn text_columns_are_always_neutralized_and_number_columns_stay_numbers() {
        for (cell, safe) in [
            ("=HYPERLINK(\"http://x\")", "'=HYPERLINK(\"http://x\")"),
            ("+1+1", "'+1+1"),
            ("@SUM(A1)", "'@SUM(A1)"),
            ("-cmd|' /C calc'!A0", "'-cmd|' /C calc'!A0"),
            // by the column, not by the look: in a name, a minus and a digit is a formula
            ("-2+3", "'-2+3"),
            ("-1+1+cmd|' /C calc'!A0", "'-1+1+cmd|' /C calc'!A0"),
            ("-15.00", "'-15.00"),
            ("张伟", "张伟"),
            ("", ""),
        ] {
            assert_eq!(excel_safe_in("name", cell), safe, "name {cell}");
            assert_eq!(excel_safe_in("payer_name", cell), safe, "payer_name {cell}");
        }
        // amounts and counts stay numbers; anything else in them is neutralized all the same
        for (column, cell, safe) in [
            ("amount", "-15.00", "-15.00"),
            ("outstanding", "-.5", "-.5"),
            ("received_count", "12", "12"),
            ("share_pct", "-0.50", "-0.50"),
            ("amount", "-2+3", "'-2+3"),
            ("billed", "=1+1", "'=1+1"),
        ] {
            assert_eq!(excel_safe_in(column, cell), safe, "{column} {cell}");
        }
        let mut out = Vec::new();
        let mut w =
            TableWriter::with_bom(&mut out, TableFormat::Csv, &["name", "billed"], true).unwrap();
        w.row(vec![Some("=1+2".into()), Some("-3.00".into())])
            .unwrap();
        w.row(vec![Some("-2+3".into()), Some("4.00".into())])
            .unwrap();
        w.finish().unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "\u{feff}name,billed\n'=1+2,-3.00\n'-2+3,4.00\n"
        );
    }
}
