//! Every format through the daemon's ingest path: good files are stored and matched, every
//! broken fixture of every format is quarantined with its place and reason and leaves nothing
//! behind, and `auto` banks say which format they found.

use crate::helpers::{fixture, real_fixture, TestApp};
use billrecon::ingest::{IngestError, IngestOutcome};
use std::path::{Path, PathBuf};

/// Banks with an explicit format each, the two example text profiles among them.
fn format_banks() -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut banks = String::from(
        "[[bank]]\nid = \"MT\"\nname = \"MT940 bank\"\nformat = \"mt940\"\n\
         [[bank]]\nid = \"MT2\"\nname = \"MT942 bank\"\nformat = \"mt942\"\n\
         [[bank]]\nid = \"BAI\"\nname = \"BAI2 bank\"\nformat = \"bai2\"\n",
    );
    for profile in [
        "config/banks/abc-gbk-pipe.toml",
        "config/banks/ccb-fixed-width.toml",
    ] {
        banks.push_str(&std::fs::read_to_string(root.join(profile)).unwrap());
        banks.push('\n');
    }
    banks
}

async fn app() -> TestApp {
    let t = TestApp::spawn_with(&format_banks()).await;
    t.import_fixtures().await;
    t
}

fn files_in(dir: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(fixture(dir))
        .map(|rd| {
            rd.flatten()
                .map(|e| e.path())
                .filter(|p| p.is_file())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// Which bank reads a broken fixture: the format of the folder it is in.
fn bank_for(path: &Path) -> &'static str {
    let s = path.to_string_lossy();
    let name = path.file_name().unwrap().to_string_lossy();
    if s.contains("/camt/") {
        "ICBC"
    } else if s.contains("/mt940/") {
        if name.contains("942") {
            "MT2"
        } else {
            "MT"
        }
    } else if s.contains("/bai2/") {
        "BAI"
    } else if name.starts_with("ccb") {
        "CCB"
    } else {
        "ABC"
    }
}

#[tokio::test]
async fn every_broken_fixture_of_every_format_is_quarantined_and_leaves_nothing() {
    let t = app().await;
    let mut broken = Vec::new();
    for dir in [
        "formats/camt/broken",
        "formats/mt940/broken",
        "formats/bai2/broken",
        "formats/text/broken",
    ] {
        broken.extend(files_in(dir));
    }
    assert!(broken.len() >= 30, "{broken:?}");
    for f in &broken {
        let bank = t.app.bank(bank_for(f)).unwrap().clone();
        let (results, _) = t
            .app
            .ingest_paths(&bank, std::slice::from_ref(f))
            .await
            .unwrap();
        match &results[0].result {
            Err(IngestError::Rejected {
                error,
                quarantined_to,
            }) => {
                let name = f.file_name().unwrap().to_string_lossy();
                assert!(
                    error.file.contains(name.as_ref()),
                    "{}: {error}",
                    f.display()
                );
                assert!(
                    !error.location.is_empty() && !error.reason.is_empty(),
                    "{error}"
                );
                assert!(quarantined_to.exists(), "{}", quarantined_to.display());
                let mut record = quarantined_to.clone().into_os_string();
                record.push(".reason.json");
                let record = std::fs::read_to_string(&record).unwrap();
                assert!(
                    record.contains(&error.location.replace('"', "\\\"")),
                    "{record}"
                );
            }
            other => panic!("{} ({}) was not rejected: {other:?}", f.display(), bank.id),
        }
    }
    assert_eq!(
        t.count("bank_files").await,
        0,
        "nothing of a broken file is stored"
    );
    assert_eq!(t.count("payments").await, 0);
    assert_eq!(t.count("statements").await, 0);
}

#[tokio::test]
async fn text_files_of_both_example_profiles_are_ingested_and_matched() {
    let t = app().await;
    for (bank, file) in [
        ("ABC", "formats/text/abc_20261112.txt"),
        ("CCB", "formats/text/ccb_20261112.txt"),
    ] {
        let path = fixture(file);
        let layout = t.app.bank(bank).unwrap().layout.clone();
        let parsed = billrecon::formats::compressed::open_file(
            Some(billrecon::formats::Format::Text),
            layout,
            &path,
            file,
        )
        .and_then(|ev| billrecon::formats::collect(ev, file))
        .unwrap();
        let expected = parsed.entries().count() as i64;
        let (out, summary) = t.ingest(bank, &[path]).await;
        assert!(
            matches!(out[0], IngestOutcome::Ingested { payments, .. } if payments == expected),
            "{bank}: {out:?}"
        );
        assert!(
            summary.applied + summary.partially_applied > 0,
            "{bank}: {summary}"
        );
    }
    // the 户号 column names the customer: ABC's first line pays account 3100000001's bill
    let p = t.payment("ABC20261112000001").await;
    assert_eq!(p["account_no"], "3100000001");
    assert_eq!(p["amount"], "256.80");
    t.assert_verified().await;
}

#[tokio::test]
async fn a_bai2_report_is_ingested_and_its_dollars_are_exceptions_for_a_yuan_ledger() {
    let t = app().await;
    let (out, summary) = t
        .ingest("BAI", &[fixture("formats/bai2/daily_lockbox_ach_usd.bai")])
        .await;
    let IngestOutcome::Ingested {
        payments,
        statements,
        ..
    } = out[0]
    else {
        panic!("{out:?}")
    };
    assert_eq!(statements, 3);
    assert!(payments > 0);
    // the ledger is in CNY: USD credits are held as currency_mismatch, debits as unexpected
    assert_eq!(summary.applied, 0);
    let reasons: std::collections::HashSet<String> = t
        .exceptions()
        .await
        .into_iter()
        .map(|e| e["reason"].clone())
        .collect();
    assert!(reasons.contains("currency_mismatch"), "{reasons:?}");
    t.assert_verified().await;
}

#[tokio::test]
async fn an_auto_bank_detects_each_format_and_records_which() {
    let t = app().await;
    let mut files = vec![
        (fixture("banks/icbc/ICBC_20261112_camt054.xml"), "camt054"),
        (fixture("banks/cmb/CMB_20261112_camt053.xml"), "camt053"),
        (fixture("formats/camt/camt052_v08_cny.xml"), "camt052"),
        (fixture("formats/bai2/daily_lockbox_ach_usd.bai"), "bai2"),
    ];
    for f in ["mt940/oca-ing.940", "mt940/oca-rabo.swi"] {
        files.push((real_fixture(f), "mt940"));
    }
    for (f, expect) in &files {
        let (out, _) = t.ingest("TEST", std::slice::from_ref(f)).await;
        let IngestOutcome::Ingested { file_id, .. } = out[0] else {
            panic!("{}: {out:?}", f.display())
        };
        let format: String = sqlx::query_scalar("SELECT format FROM bank_files WHERE id = $1")
            .bind(file_id)
            .fetch_one(t.app.store.pool())
            .await
            .unwrap();
        assert_eq!(&format, expect, "{}", f.display());
    }
}

#[tokio::test]
async fn mt940_statements_are_ingested_matched_and_balanced() {
    let t = app().await;
    let (out, summary) = t
        .ingest("MT", &[fixture("formats/mt940/cny_utility.940")])
        .await;
    assert!(
        matches!(out[0], IngestOutcome::Ingested { statements: 2, .. }),
        "{out:?}"
    );
    assert!(
        summary.applied > 0,
        "bill ids and 户号 in :86: name the bills: {summary}"
    );
    // the real files of other projects ingest too (EUR: exceptions in a CNY ledger)
    for f in ["mt940/oca-ing.940", "mt940/oca-rabo.swi"] {
        let (out, _) = t.ingest("MT", &[real_fixture(f)]).await;
        assert!(
            matches!(out[0], IngestOutcome::Ingested { .. }),
            "{f}: {out:?}"
        );
    }
    let (out, _) = t
        .ingest("MT2", &[fixture("formats/mt940/interim.942")])
        .await;
    assert!(matches!(out[0], IngestOutcome::Ingested { .. }), "{out:?}");
    t.assert_verified().await;
}
