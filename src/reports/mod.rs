//! Reports and exports for finance staff and automated checks.
//!
//! The tabular writer the exports and reports share (CSV or JSON, to stdout or a file,
//! streamed), and the reports: [`settlement`] (the daily settlement), [`exceptions`],
//! [`ageing`], [`collection`], [`customers`] (key customers, payment behaviour). XLSX/HTML and
//! publishing are still to come (issue 6).

pub mod ageing;
pub mod collection;
pub mod customers;
pub mod exceptions;
pub mod settlement;

use std::io::Write;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TableFormat {
    Csv,
    Json,
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
        let columns: Vec<String> = columns.iter().map(|c| c.to_string()).collect();
        match format {
            TableFormat::Csv => {
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
                    w.write_record(cells.iter().map(|c| c.as_deref().unwrap_or("")))?;
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
}
