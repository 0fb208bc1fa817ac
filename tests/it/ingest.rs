//! Ingest: archive before parse, one transaction per file, quarantine with a reason, real
//! third-party files.

use crate::helpers::{fixture, real_fixture, Pay, TestApp};
use billrecon::ingest::{IngestError, IngestOutcome};
use sha2::{Digest, Sha256};

#[tokio::test]
async fn every_file_is_archived_byte_for_byte_under_its_digest() {
    let t = TestApp::spawn().await;
    t.import_fixtures().await;
    let f = fixture("banks/icbc/ICBC_20261112_camt054.xml");
    t.ingest("ICBC", std::slice::from_ref(&f)).await;
    let bytes = std::fs::read(&f).unwrap();
    let digest = hex::encode(Sha256::digest(&bytes));
    let archived = t
        .data_dir()
        .join("archive")
        .join(&digest[..2])
        .join(&digest);
    assert_eq!(std::fs::read(archived).unwrap(), bytes);
}

#[tokio::test]
async fn a_real_camt053_from_another_project_ingests_under_warn_and_is_quarantined_under_strict() {
    // ../shared/fixtures/real/camt053/oca-test-camt053.xml (OCA/bank-statement-import, AGPL-3.0):
    // a direct debit (debit), a returned direct debit (reversal) and a credit with no RmtInf.
    // Its balances do not close: 15568.27 - 754.25 - 594.05 + 1405.31 = 15625.28, not the
    // closing 15121.12 it states.
    let t = TestApp::spawn_with(
        "[[bank]]\nid = \"WARN\"\nname = \"Warn\"\nformat = \"auto\"\nchecks = \"warn\"\n",
    )
    .await;
    let file = real_fixture("camt053/oca-test-camt053.xml");
    // strict (TEST, the default): quarantined for the failed balance check, nothing stored
    let bank = t.app.bank("TEST").unwrap().clone();
    let (results, _) = t
        .app
        .ingest_paths(&bank, std::slice::from_ref(&file))
        .await
        .unwrap();
    match &results[0].result {
        Err(IngestError::Rejected { error, .. }) => {
            assert!(error.location.starts_with("line 49"), "{error}");
            assert!(error.reason.contains("failed check `balance`"), "{error}");
            assert!(error.reason.contains("15121.12"), "{error}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(t.count("bank_files").await, 0);

    // warn: ingested, and the finding is stored with the file
    let (out, summary) = t.ingest("WARN", std::slice::from_ref(&file)).await;
    assert!(
        matches!(
            out[0],
            IngestOutcome::Ingested {
                payments: 3,
                statements: 1,
                findings: 1,
                ..
            }
        ),
        "{out:?}"
    );
    let (check, line, declared, computed, severity, policy): (
        String,
        i64,
        String,
        String,
        String,
        String,
    ) = sqlx::query_as(
        "SELECT check_name, line, declared, computed, severity, policy FROM file_findings",
    )
    .fetch_one(t.app.store.pool())
    .await
    .unwrap();
    assert_eq!(
        (check.as_str(), line, declared.as_str(), computed.as_str()),
        ("balance", 49, "15121.12", "15625.28")
    );
    assert_eq!((severity.as_str(), policy.as_str()), ("error", "warn"));
    assert_eq!(summary.processed, 3);
    let ps = t.payments().await;
    let amounts: Vec<&str> = ps.iter().map(|p| p["amount"].as_str()).collect();
    assert_eq!(amounts, vec!["-754.25", "-594.05", "1405.31"]);
    let reasons: Vec<&str> = ps.iter().map(|p| p["exception_reason"].as_str()).collect();
    // EUR into a CNY ledger: the debit is caught first as a debit, the credit as a currency mismatch
    assert_eq!(
        reasons,
        vec![
            "unexpected_debit",
            "reversal_unmatched",
            "currency_mismatch"
        ]
    );
    t.assert_verified().await;
}

#[tokio::test]
async fn a_broken_file_is_quarantined_with_its_reason_and_nothing_is_stored() {
    let t = TestApp::spawn().await;
    t.bills(&[("B-1", "4100000001", "10.00", "2026-10-20", "")])
        .await;
    t.pay("good", &[Pay::new("R1", "10.00").reference("B-1")])
        .await;
    let before = (
        t.count("payments").await,
        t.count("bank_files").await,
        t.count("allocations").await,
    );

    // a file that contradicts itself: the entry's batch declares a total of 11.00, the entry
    // is 10.00 (a failed check of severity error: a strict bank quarantines the file)
    let good = crate::helpers::camt054("BAD", &[Pay::new("R2", "10.00").reference("B-1")]);
    let broken = good.replace(
        "<NtryDtls>",
        "<NtryDtls><Btch><TtlAmt Ccy=\"CNY\">11.00</TtlAmt></Btch>",
    );
    let f = t.write("broken.xml", &broken);
    let bank = t.app.bank("TEST").unwrap().clone();
    let (results, _) = t.app.ingest_paths(&bank, &[f]).await.unwrap();
    let err = results.into_iter().next().unwrap().result.unwrap_err();
    let IngestError::Rejected {
        error,
        quarantined_to,
    } = err
    else {
        panic!("{err}")
    };
    assert_eq!(error.file, "broken.xml");
    assert!(error.location.contains("line"), "{}", error.location);
    assert!(
        error.reason.contains("batch_total") && error.reason.contains("11.00"),
        "{}",
        error.reason
    );
    assert_eq!(std::fs::read_to_string(&quarantined_to).unwrap(), broken);
    let reason_file = format!("{}.reason.json", quarantined_to.display());
    let record: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(reason_file).unwrap()).unwrap();
    assert_eq!(record["bank_id"], "TEST");
    assert_eq!(record["reason"], error.reason.as_str());
    // the record lists every failed check with its figures
    assert_eq!(record["findings"][0]["check"], "batch_total");
    assert_eq!(record["findings"][0]["declared"], "11.00 CNY CRDT");
    assert_eq!(record["findings"][0]["computed"], "10.00 CNY CRDT");

    let after = (
        t.count("payments").await,
        t.count("bank_files").await,
        t.count("allocations").await,
    );
    assert_eq!(
        before, after,
        "the database is untouched by a rejected file"
    );
    t.assert_verified().await;
}

#[tokio::test]
async fn broken_parser_fixtures_are_all_rejected_cleanly() {
    let t = TestApp::spawn().await;
    let dir = fixture("formats/camt/broken");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(
        files.len() >= 5,
        "expected broken fixtures in {}",
        dir.display()
    );
    let bank = t.app.bank("TEST").unwrap().clone();
    let (results, _) = t.app.ingest_paths(&bank, &files).await.unwrap();
    for r in results {
        match r.result {
            Err(IngestError::Rejected {
                error,
                quarantined_to,
            }) => {
                assert!(!error.reason.is_empty());
                assert!(quarantined_to.exists());
            }
            other => panic!("{}: expected a rejection, got {other:?}", r.path.display()),
        }
    }
    assert_eq!(t.count("payments").await, 0);
    assert_eq!(t.count("bank_files").await, 0);
}

fn zip_of(dir: &std::path::Path, name: &str, members: &[(&str, Vec<u8>)]) -> std::path::PathBuf {
    use std::io::Write;
    let p = dir.join(name);
    let mut z = zip::ZipWriter::new(std::fs::File::create(&p).unwrap());
    for (n, bytes) in members {
        z.start_file(*n, zip::write::SimpleFileOptions::default())
            .unwrap();
        z.write_all(bytes).unwrap();
    }
    z.finish().unwrap();
    p
}

#[tokio::test]
async fn a_zip_delivery_is_one_file_in_one_transaction() {
    let t = TestApp::spawn().await;
    t.import_fixtures().await;
    let day1 = std::fs::read(fixture("banks/icbc/ICBC_20261112_camt054.xml")).unwrap();
    let day2 = std::fs::read(fixture("banks/icbc/ICBC_20261113_camt054.xml")).unwrap();
    let z = zip_of(
        t.dir.path(),
        "ICBC_2026111x.zip",
        &[("d1.xml", day1.clone()), ("d2.xml", day2.clone())],
    );
    let (out, _) = t.ingest("ICBC", std::slice::from_ref(&z)).await;
    let IngestOutcome::Ingested { statements, .. } = out[0] else {
        panic!("{out:?}")
    };
    assert_eq!(t.count("bank_files").await, 1);
    // the same statements and payments as delivering the two files one by one
    let u = TestApp::spawn().await;
    u.import_fixtures().await;
    let (plain, _) = u
        .ingest(
            "ICBC",
            &[
                fixture("banks/icbc/ICBC_20261112_camt054.xml"),
                fixture("banks/icbc/ICBC_20261113_camt054.xml"),
            ],
        )
        .await;
    let plain_statements: i64 = plain
        .iter()
        .map(|o| match o {
            IngestOutcome::Ingested { statements, .. } => *statements,
            _ => 0,
        })
        .sum();
    assert_eq!(statements, plain_statements);
    let strip =
        |ps: Vec<std::collections::HashMap<String, String>>| -> Vec<(String, String, String)> {
            ps.into_iter()
                .map(|p| {
                    (
                        p["bank_ref"].clone(),
                        p["amount"].clone(),
                        p["status"].clone(),
                    )
                })
                .collect()
        };
    assert_eq!(strip(t.payments().await), strip(u.payments().await));
    t.assert_verified().await;

    // a zip with one broken member: quarantined whole, nothing stored
    let v = TestApp::spawn().await;
    v.import_fixtures().await;
    let bad = zip_of(
        v.dir.path(),
        "bad.zip",
        &[
            ("d1.xml", day1),
            ("d2.xml", day2[..day2.len() / 2].to_vec()),
        ],
    );
    let bank = v.app.bank("ICBC").unwrap().clone();
    let (results, _) = v.app.ingest_paths(&bank, &[bad]).await.unwrap();
    match &results[0].result {
        Err(IngestError::Rejected { error, .. }) => {
            assert_eq!(error.file, "bad.zip/d2.xml", "{error}")
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(v.count("payments").await, 0);
    assert_eq!(v.count("bank_files").await, 0);
}

#[tokio::test]
async fn a_gzip_delivery_ingests_like_the_plain_file() {
    use std::io::Write;
    let t = TestApp::spawn().await;
    t.import_fixtures().await;
    let gz = t.dir.path().join("CMB_20261112_camt053.xml.gz");
    let mut enc = flate2::write::GzEncoder::new(
        std::fs::File::create(&gz).unwrap(),
        flate2::Compression::best(),
    );
    enc.write_all(&std::fs::read(fixture("banks/cmb/CMB_20261112_camt053.xml")).unwrap())
        .unwrap();
    enc.finish().unwrap();
    let (out, summary) = t.ingest("CMB", &[gz]).await;
    assert!(matches!(out[0], IngestOutcome::Ingested { payments, .. } if payments > 0));
    assert!(summary.processed > 0);
    t.assert_verified().await;
}
