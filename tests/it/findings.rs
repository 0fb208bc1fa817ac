//! A bank's `checks` policy, end to end: a `strict` bank's file with a failed check is
//! quarantined (its reason record lists every finding) and nothing is stored; a `warn` bank's
//! is ingested in one transaction with each finding stored beside it (both backends), counted
//! in the daily settlement, in `/metrics` and (tests/it/cli.rs) in `banks status`; warnings are
//! stored under either policy; a re-delivery stores nothing twice.

use crate::daemon::{metric, Daemon};
use crate::helpers::{real_fixture, TestApp};
use billrecon::formats::{self, Format, ParsedFile, Severity};
use billrecon::ingest::{IngestError, IngestOutcome};
use std::path::Path;

const BANKS: &str = r#"
[[bank]]
id = "WARN"
name = "A bank whose excerpts never close"
format = "mt940"
checks = "warn"

[[bank]]
id = "STRICT"
name = "Strict"
format = "mt940"

[[bank]]
id = "CAMT"
name = "camt.052, strict"
format = "camt052"
"#;

/// The ABN AMRO file of WoLpH/mt940 (../shared/fixtures/real, SOURCES.md): two statements,
/// neither of which closes.
const ABN: &str = "mt940/wolph_jejik_abnamro.sta";

fn parsed(rel: &str, format: Format) -> ParsedFile {
    let bytes = std::fs::read(real_fixture(rel)).unwrap();
    formats::parse_all(Some(format), &bytes[..], rel).unwrap()
}

async fn policy_end_to_end(t: TestApp) {
    let file = real_fixture(ABN);
    // what the reader finds in the file (the expectation is derived, not typed)
    let expected = parsed(ABN, Format::Mt940);
    assert!(expected.errors().count() >= 2, "{:?}", expected.checks);

    // strict: quarantined for the first failed check, every finding in the reason record
    let bank = t.app.bank("STRICT").unwrap().clone();
    let (results, _) = t
        .app
        .ingest_paths(&bank, std::slice::from_ref(&file))
        .await
        .unwrap();
    let Err(IngestError::Rejected {
        error,
        quarantined_to,
    }) = &results[0].result
    else {
        panic!("{:?}", results[0].result)
    };
    let first = expected.errors().next().unwrap();
    assert_eq!(error.location, first.location);
    assert!(error.reason.contains("failed check `balance`"), "{error}");
    let record: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(format!("{}.reason.json", quarantined_to.display())).unwrap(),
    )
    .unwrap();
    assert_eq!(
        record["findings"].as_array().unwrap().len(),
        expected.checks.len()
    );
    assert_eq!(t.count("bank_files").await, 0);
    assert_eq!(t.count("file_findings").await, 0);

    // warn: ingested, each finding stored with its file, statement, line and figures
    let (out, _) = t.ingest("WARN", std::slice::from_ref(&file)).await;
    let IngestOutcome::Ingested {
        file_id,
        payments,
        findings,
        ..
    } = out[0]
    else {
        panic!("{out:?}")
    };
    assert_eq!(payments as usize, expected.entries().count());
    assert_eq!(findings as usize, expected.checks.len());
    let mut conn = t.app.store.pool().acquire().await.unwrap();
    let mut stored = billrecon::store::files::findings(&mut conn, Some("WARN"), 100)
        .await
        .unwrap();
    drop(conn);
    stored.reverse();
    assert_eq!(stored.len(), expected.checks.len());
    for (s, f) in stored.iter().zip(&expected.checks) {
        assert_eq!(s.file_id, file_id);
        assert_eq!(s.check, f.check);
        assert_eq!(s.severity, f.severity.as_str());
        assert_eq!(s.line as u64, f.line);
        assert_eq!(s.location, f.location);
        assert_eq!((&s.declared, &s.computed), (&f.declared, &f.computed));
        assert_eq!(s.statement_id, f.statement);
        assert_eq!(s.policy, "warn");
        assert_eq!(s.file_name, "wolph_jejik_abnamro.sta");
    }
    // each statement's finding is filed under that statement (1 and 2)
    let seqs: Vec<Option<i64>> = stored.iter().map(|s| s.statement_seq).collect();
    assert_eq!(seqs, vec![Some(1), Some(2)]);

    // the same bytes again: nothing stored twice
    let (out, _) = t.ingest("WARN", std::slice::from_ref(&file)).await;
    assert!(
        matches!(out[0], IngestOutcome::DuplicateFile { .. }),
        "{out:?}"
    );
    assert_eq!(t.count("file_findings").await, expected.checks.len() as i64);

    // the daily settlement counts them for the bank, on each day the file's lines are booked
    let days: std::collections::BTreeSet<String> = t
        .payments()
        .await
        .into_iter()
        .filter(|p| p["bank_id"] == "WARN")
        .map(|p| p["booking_date"].clone())
        .collect();
    assert!(!days.is_empty());
    let cols = billrecon::reports::settlement::COLUMNS;
    let want = format!("{} (balance {} error)", findings, findings);
    for day in &days {
        let date = chrono::NaiveDate::parse_from_str(day, "%Y-%m-%d").unwrap();
        let rows = billrecon::reports::settlement::daily_settlement(&t.app.store, date)
            .await
            .unwrap();
        let report = crate::helpers::to_maps(cols, rows);
        for bank in ["WARN", "ALL"] {
            let row = report.iter().find(|r| r["bank_id"] == bank).unwrap();
            assert_eq!(row["findings"], want, "{day} {bank}");
        }
    }

    // a warning (a batch count that counts the bank's whole batch) is stored under strict
    let camt = "camt052/genkgo_camt052.v2.xml";
    let warned = parsed(camt, Format::Camt052);
    assert_eq!(warned.errors().count(), 0);
    assert_eq!(warned.checks[0].severity, Severity::Warning);
    let (out, _) = t.ingest("CAMT", &[real_fixture(camt)]).await;
    assert!(
        matches!(out[0], IngestOutcome::Ingested { findings: 1, .. }),
        "{out:?}"
    );
    let mut conn = t.app.store.pool().acquire().await.unwrap();
    let w = billrecon::store::files::findings(&mut conn, Some("CAMT"), 10)
        .await
        .unwrap();
    drop(conn);
    assert_eq!(
        (
            w[0].check.as_str(),
            w[0].severity.as_str(),
            w[0].policy.as_str()
        ),
        ("batch_count", "warning", "strict")
    );
    t.assert_verified().await;
}

#[tokio::test]
async fn the_checks_policy_decides_quarantine_or_stored_findings_sqlite() {
    policy_end_to_end(TestApp::spawn_with(BANKS).await).await;
}

#[tokio::test]
async fn the_checks_policy_decides_quarantine_or_stored_findings_postgres() {
    policy_end_to_end(TestApp::spawn_pg_with(BANKS).await).await;
}

#[tokio::test]
async fn metrics_count_stored_findings_per_bank_and_check() {
    let d = Daemon::start(
        r#"
[[bank]]
id = "WARN"
name = "Warn"
format = "mt940"
checks = "warn"
source = { kind = "directory", path = "{dir}/inbox" }
"#,
    )
    .await;
    std::fs::create_dir_all(d.path("inbox")).unwrap();
    let part = d.path("inbox/abn.sta.part");
    std::fs::copy(real_fixture(ABN), &part).unwrap();
    std::fs::rename(&part, d.path("inbox/abn.sta")).unwrap();
    d.until("the file is ingested", || async {
        d.runs("WARN")
            .await
            .iter()
            .any(|r| r.stats.files == 1 && r.finished_at.is_some())
    })
    .await;
    let expected = parsed(ABN, Format::Mt940);
    let (code, m) = d.get("/metrics").await;
    assert_eq!(code, 200);
    assert_eq!(
        metric(
            &m,
            "billrecon_file_findings_total{bank=\"WARN\",check=\"balance\",severity=\"error\"}"
        ),
        Some(expected.checks.len() as f64),
        "{m}"
    );
    // a scrape again does not count them twice
    let (_, m) = d.get("/metrics").await;
    assert_eq!(
        metric(
            &m,
            "billrecon_file_findings_total{bank=\"WARN\",check=\"balance\",severity=\"error\"}"
        ),
        Some(expected.checks.len() as f64)
    );
    assert!(Path::new(&d.path("inbox"))
        .read_dir()
        .unwrap()
        .next()
        .is_none());
    d.stop().await;
}
