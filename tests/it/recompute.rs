//! Every figure of every report, recomputed from what a finance officer or an auditor has:
//! the exports (`billrecon export payments|allocations|late-fees`, `billrecon exceptions list
//! --all`),
//! the input files (customers.csv, bills.csv, the banks' camt files) and the dunning policy of
//! the config, on a data set whose files arrive a day late (`billrecon gen --days 3`: each
//! booking day's files are created the next morning and ingested after the day). All through
//! the real binary, on SQLite and on PostgreSQL.
//!
//! The definitions recomputed here are the ones README states: the settlement and the
//! exceptions report on the booking day, the others as of their date.

use crate::helpers::TestApp;
use chrono::NaiveDate;
use rust_decimal::Decimal;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_billrecon");

type Row = HashMap<String, String>;

fn dec(s: &str) -> Decimal {
    s.parse().unwrap_or_default()
}

fn date(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(&s[..s.len().min(10)], "%Y-%m-%d").unwrap()
}

fn read_csv(text: &str) -> Vec<Row> {
    let text = text.trim_start_matches('\u{feff}');
    let mut r = csv::Reader::from_reader(text.as_bytes());
    let headers = r.headers().unwrap().clone();
    r.records()
        .map(|rec| {
            let rec = rec.unwrap();
            headers
                .iter()
                .zip(rec.iter())
                .map(|(h, v)| (h.to_string(), v.to_string()))
                .collect()
        })
        .collect()
}

struct Bin {
    config: PathBuf,
}

impl Bin {
    fn ok(&self, args: &[&str]) -> String {
        let o = Command::new(BIN)
            .arg("--config")
            .arg(&self.config)
            .args(args)
            .env_remove("BILLRECON_DATABASE_URL")
            .env("RUST_LOG", "warn")
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "{args:?}: {}\n{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8(o.stdout).unwrap()
    }

    fn csv(&self, args: &[&str]) -> Vec<Row> {
        read_csv(&self.ok(args))
    }

    fn report(&self, kind: &str, day: NaiveDate) -> Vec<Row> {
        self.csv(&[
            "report",
            kind,
            "--date",
            &day.to_string(),
            "--format",
            "csv",
        ])
    }
}

/// What the camt files declare as credits: file name -> (currency, declared credit sum).
fn declared_credits(files: &[PathBuf]) -> HashMap<String, Decimal> {
    files
        .iter()
        .map(|f| {
            let x = std::fs::read_to_string(f).unwrap();
            let t = x.split("<TtlCdtNtries>").nth(1).unwrap();
            let sum = t.split("<Sum>").nth(1).unwrap().split('<').next().unwrap();
            (
                f.file_name().unwrap().to_string_lossy().into_owned(),
                dec(sum),
            )
        })
        .collect()
}

/// The data's days and the dates the as-of reports are checked on.
const DAYS: [&str; 3] = ["2026-11-12", "2026-11-13", "2026-11-14"];
/// Before any bill was issued, and before any payment was booked.
const EARLY: &str = "2026-06-15";
const BEFORE_PAYMENTS: &str = "2026-10-20";

#[tokio::test]
async fn every_figure_of_every_report_recomputes_from_the_exports_and_the_input_files() {
    recompute(TestApp::spawn().await).await;
}

#[tokio::test]
async fn every_figure_of_every_report_recomputes_on_postgres_too() {
    recompute(TestApp::spawn_pg().await).await;
}

async fn recompute(t: TestApp) {
    let dir = t.dir.path();
    let config = dir.join("recompute.toml");
    let toml = format!(
        "[storage]\ndatabase_url = \"{}\"\ndata_dir = \"{}\"\n\
         [[bank]]\nid = \"ICBC\"\nname = \"ICBC\"\nformat = \"camt054\"\n\
         [[bank]]\nid = \"CMB\"\nname = \"CMB\"\nformat = \"camt054\"\n",
        t.app.config.storage.database_url,
        dir.join("data").display()
    );
    std::fs::write(&config, &toml).unwrap();
    let policy = billrecon::config::Config::from_toml(&toml, "recompute").unwrap();
    let bin = Bin { config };
    let gen = dir.join("gen");
    bin.ok(&[
        "gen",
        "--customers",
        "150",
        "--bills",
        "700",
        "--payments",
        "900",
        "--days",
        "3",
        "--per-file",
        "160",
        "--seed",
        "21",
        "--out",
        gen.to_str().unwrap(),
    ]);
    bin.ok(&[
        "customers",
        "import",
        gen.join("customers.csv").to_str().unwrap(),
    ]);
    bin.ok(&["bills", "import", gen.join("bills.csv").to_str().unwrap()]);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&gen)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "xml"))
        .collect();
    files.sort();
    assert!(files.len() >= 6, "two files or more a day: {files:?}");
    // each day's files arrive the next morning, alternately from two banks; after each
    // morning, the settlement and the exceptions report of the day before agree with the
    // exports of that moment
    for day in DAYS {
        let tag = day.replace('-', "");
        for (i, f) in files
            .iter()
            .filter(|f| f.to_string_lossy().contains(&format!("GEN_{tag}_")))
            .enumerate()
        {
            let bank = if i % 2 == 0 { "ICBC" } else { "CMB" };
            bin.ok(&["ingest", "--bank", bank, f.to_str().unwrap()]);
        }
        let data = Data::read(&bin, &gen, &files);
        check_settlement(&bin, &data, date(day));
        check_exceptions(&bin, &data, date(day));
    }
    // people resolve some exceptions: a duplicate rejected, a payment refunded, one held as
    // credit; the reports follow
    bin.ok(&["users", "add", "li", "--role", "clerk"]);
    let open = bin.csv(&["exceptions", "list", "--format", "csv"]);
    let dup = open
        .iter()
        .find(|e| e["reason"] == "duplicate")
        .expect("gen makes duplicates");
    bin.ok(&[
        "exceptions",
        "resolve",
        &dup["exception_id"],
        "--by",
        "li",
        "--comment",
        "the bank sent it twice",
        "--reject-duplicate",
    ]);
    let unknown: Vec<&Row> = open
        .iter()
        .filter(|e| e["reason"] == "unknown_reference" && dec(&e["amount"]) > Decimal::ZERO)
        .collect();
    assert!(unknown.len() >= 2, "gen makes unknown references");
    bin.ok(&[
        "exceptions",
        "resolve",
        &unknown[0]["exception_id"],
        "--by",
        "li",
        "--comment",
        "payer asked for it back",
        "--refund",
    ]);
    bin.ok(&[
        "exceptions",
        "resolve",
        &unknown[1]["exception_id"],
        "--by",
        "li",
        "--comment",
        "the customer called",
        "--credit",
        "3200000007",
    ]);
    let data = Data::read(&bin, &gen, &files);
    assert!(data.payments.iter().any(|p| p["status"] == "rejected"));
    assert!(data.payments.iter().any(|p| p["status"] == "refunded"));
    let mut seen: HashMap<&str, Decimal> = HashMap::new();
    for day in DAYS {
        let d = date(day);
        check_settlement(&bin, &data, d);
        check_lines(&bin, &data, d);
        check_exceptions(&bin, &data, d);
        for r in bin.report("daily-settlement", d) {
            for c in [
                "held_in_exceptions",
                "refunded",
                "credit",
                "rejected_duplicates",
                "reversed",
                "debits",
            ] {
                *seen.entry(c).or_default() += dec(&r[c]).abs();
            }
        }
    }
    // the data set exercises every column that money goes to
    for (c, v) in &seen {
        assert!(*v > Decimal::ZERO, "no {c} in the data set");
    }
    let ageing = bin.report("ageing", date(DAYS[2]));
    let all = ageing.iter().find(|r| r["by"] == "all").unwrap();
    for c in ["not_yet_due", "days_1_30", "days_31_60", "late_fees"] {
        assert!(dec(&all[c]) > Decimal::ZERO, "ageing {c}: {all:?}");
    }
    let rate = bin.report("collection-rate", date(DAYS[2]));
    assert!(rate.iter().filter(|r| r["by"] == "bank").count() == 2);
    assert!(rate.iter().filter(|r| r["by"] == "day").count() > 20);
    for day in [EARLY, BEFORE_PAYMENTS, DAYS[0], DAYS[2]] {
        let d = date(day);
        check_ageing(&bin, &data, &policy, d);
        check_collection(&bin, &data, d);
        check_customers(&bin, &data, d);
    }
    // the late day: before any bill, every as-of report is empty
    for kind in [
        "ageing",
        "collection-rate",
        "key-customers",
        "payment-behaviour",
    ] {
        assert!(
            bin.report(kind, date(EARLY)).is_empty(),
            "{kind} on {EARLY}"
        );
    }
    // and before any payment was booked, everything issued by then was owed
    let owed = bin.report("ageing", date(BEFORE_PAYMENTS));
    let all = owed.iter().find(|r| r["by"] == "all").unwrap();
    let issued: Decimal = data
        .bills
        .iter()
        .filter(|b| date(&b["issued_on"]) <= date(BEFORE_PAYMENTS))
        .map(|b| dec(&b["amount"]))
        .sum();
    assert!(issued > Decimal::ZERO);
    assert_eq!(dec(&all["total"]), issued);
    assert!(bin.ok(&["verify"]).contains("verify: OK"));
}

/// The exports and the input files.
struct Data {
    payments: Vec<Row>,
    by_id: HashMap<String, usize>,
    allocations: Vec<Row>,
    late_fees: Vec<Row>,
    exceptions: Vec<Row>,
    customers: HashMap<String, Row>,
    bills: Vec<Row>,
    declared: HashMap<String, Decimal>,
}

impl Data {
    fn read(bin: &Bin, gen: &Path, files: &[PathBuf]) -> Data {
        let payments = bin.csv(&["export", "payments", "--format", "csv"]);
        let by_id = payments
            .iter()
            .enumerate()
            .map(|(i, p)| (p["payment_id"].clone(), i))
            .collect();
        Data {
            payments,
            by_id,
            allocations: bin.csv(&["export", "allocations", "--format", "csv"]),
            late_fees: bin.csv(&["export", "late-fees", "--format", "csv"]),
            exceptions: bin.csv(&["exceptions", "list", "--all", "--format", "csv"]),
            customers: read_csv(&std::fs::read_to_string(gen.join("customers.csv")).unwrap())
                .into_iter()
                .map(|c| (c["account_no"].clone(), c))
                .collect(),
            bills: read_csv(&std::fs::read_to_string(gen.join("bills.csv")).unwrap()),
            declared: declared_credits(files),
        }
    }

    fn payment(&self, id: &str) -> &Row {
        &self.payments[self.by_id[id]]
    }

    /// Allocations to bills' principal by payments booked on or before `d`: (bill, booking
    /// date, amount, bank, channel), in the order they were made.
    fn allocations_by(&self, d: NaiveDate) -> Vec<(String, NaiveDate, Decimal, String, String)> {
        self.allocations
            .iter()
            .filter(|a| a["part"] == "principal")
            .filter_map(|a| {
                let p = self.payment(&a["payment_id"]);
                if p["booking_date"].is_empty() || date(&p["booking_date"]) > d {
                    return None;
                }
                Some((
                    a["bill_id"].clone(),
                    date(&p["booking_date"]),
                    dec(&a["amount"]),
                    p["bank_id"].clone(),
                    p["channel"].clone(),
                ))
            })
            .collect()
    }
}

/// A movement of late fees: (charged | collected | waived, day, bill, bank, channel, amount).
type FeeMove = (&'static str, NaiveDate, String, String, String, Decimal);

impl Data {
    /// The late fees charged (charge and undo rows, on the booking day of the payment whose
    /// money they are on, or that undid them), collected (fee allocations, on the paying
    /// payment's booking day) and waived (on the day recorded) from `from` to `to`.
    fn fee_moves(&self, from: NaiveDate, to: NaiveDate) -> Vec<FeeMove> {
        let mut out = Vec::new();
        for f in &self.late_fees {
            let amount = dec(&f["amount"]);
            if f["kind"] == "charge" || f["kind"] == "undo" {
                let acting = if f["by_payment_id"].is_empty() {
                    &f["payment_id"]
                } else {
                    &f["by_payment_id"]
                };
                let p = self.payment(acting);
                let day = date(&p["booking_date"]);
                if (from..=to).contains(&day) {
                    out.push((
                        "charged",
                        day,
                        f["bill_id"].clone(),
                        p["bank_id"].clone(),
                        p["channel"].clone(),
                        amount,
                    ));
                }
            } else {
                let day = date(&f["created_at"]);
                if (from..=to).contains(&day) {
                    out.push((
                        "waived",
                        day,
                        f["bill_id"].clone(),
                        String::new(),
                        String::new(),
                        -amount,
                    ));
                }
            }
        }
        for a in self.allocations.iter().filter(|a| a["part"] == "late_fee") {
            let p = self.payment(&a["payment_id"]);
            if p["booking_date"].is_empty() {
                continue;
            }
            let day = date(&p["booking_date"]);
            if (from..=to).contains(&day) {
                out.push((
                    "collected",
                    day,
                    a["bill_id"].clone(),
                    p["bank_id"].clone(),
                    p["channel"].clone(),
                    dec(&a["amount"]),
                ));
            }
        }
        out
    }

    /// Each bill's late fee at the end of `d`: (accrued, charged, waived, paid), in minor units.
    fn fee_states(&self, d: NaiveDate) -> HashMap<String, billrecon::store::bills::BillFee> {
        let minor = |v: Decimal| -> i64 { (v * Decimal::from(100)).try_into().unwrap() };
        let mut out: HashMap<String, billrecon::store::bills::BillFee> = HashMap::new();
        for f in &self.late_fees {
            let s = out.entry(f["bill_id"].clone()).or_default();
            if f["kind"] == "charge" || f["kind"] == "undo" {
                let acting = if f["by_payment_id"].is_empty() {
                    &f["payment_id"]
                } else {
                    &f["by_payment_id"]
                };
                if date(&self.payment(acting)["booking_date"]) <= d {
                    s.accrued += minor(dec(&f["computed"]));
                    s.charged += minor(dec(&f["amount"]));
                }
            } else if date(&f["created_at"]) <= d {
                s.waived -= minor(dec(&f["amount"]));
                s.waived_flag = true;
            }
        }
        for (bill, _, amount, _, _) in self.fee_allocations_by(d) {
            out.entry(bill).or_default().paid += minor(amount);
        }
        out
    }

    /// Allocations to bills' late fees by payments booked on or before `d`.
    fn fee_allocations_by(
        &self,
        d: NaiveDate,
    ) -> Vec<(String, NaiveDate, Decimal, String, String)> {
        self.allocations
            .iter()
            .filter(|a| a["part"] == "late_fee")
            .filter_map(|a| {
                let p = self.payment(&a["payment_id"]);
                if p["booking_date"].is_empty() || date(&p["booking_date"]) > d {
                    return None;
                }
                Some((
                    a["bill_id"].clone(),
                    date(&p["booking_date"]),
                    dec(&a["amount"]),
                    p["bank_id"].clone(),
                    p["channel"].clone(),
                ))
            })
            .collect()
    }

    /// The customer of a bill.
    fn customer_of(&self, bill: &str) -> &Row {
        let b = self
            .bills
            .iter()
            .find(|b| b["bill_id"] == bill)
            .unwrap_or_else(|| panic!("no bill {bill}"));
        &self.customers[&b["account_no"]]
    }
}

fn find<'a>(report: &'a [Row], keys: &[(&str, &str)]) -> &'a Row {
    report
        .iter()
        .find(|r| keys.iter().all(|(k, v)| r[*k] == *v))
        .unwrap_or_else(|| panic!("no row {keys:?} in {report:?}"))
}

fn money(v: Decimal) -> String {
    format!("{:.2}", v.round_dp(2))
}

/// The daily settlement of `d`: per bank and currency and for all banks.
fn check_settlement(bin: &Bin, data: &Data, d: NaiveDate) {
    let report = bin.report("daily-settlement", d);
    let day = d.to_string();
    #[derive(Default, Debug)]
    struct S {
        n: i64,
        received: Decimal,
        went: [Decimal; 5],
        rejected: Decimal,
        reversals: i64,
        reversed: Decimal,
        debits_n: i64,
        debits: Decimal,
        files: std::collections::BTreeSet<String>,
        declared: Decimal,
        read: Decimal,
    }
    let mut sums: BTreeMap<(String, String), S> = BTreeMap::new();
    let day_lines: Vec<&Row> = data
        .payments
        .iter()
        .filter(|p| p["booking_date"] == day)
        .collect();
    for p in &day_lines {
        if ["confirmed", "transfer", "cancelled"].contains(&p["status"].as_str()) {
            continue;
        }
        for bank in [p["bank_id"].clone(), "ALL".to_string()] {
            let s = sums.entry((bank, p["currency"].clone())).or_default();
            let rejected = p["status"] == "rejected";
            if rejected {
                s.rejected += dec(&p["amount"]);
            } else if p["reversal"] == "true" {
                s.reversals += 1;
                s.reversed -= dec(&p["amount"]);
            } else if p["direction"] == "debit" {
                s.debits_n += 1;
                s.debits -= dec(&p["amount"]);
            } else {
                s.n += 1;
                s.received += dec(&p["amount"]);
                for (i, c) in ["applied", "credit", "held", "refunded", "written_off"]
                    .iter()
                    .enumerate()
                {
                    s.went[i] += dec(&p[*c]);
                }
            }
            s.files.insert(p["file_id"].clone());
        }
    }
    // the files that carry the day's lines: what they declare, and every credit read from them
    let mut day_files: Vec<(String, String)> = day_lines
        .iter()
        .map(|p| (p["file_name"].clone(), p["bank_id"].clone()))
        .collect();
    day_files.sort();
    day_files.dedup();
    for (file, bank) in &day_files {
        let read: Decimal = data
            .payments
            .iter()
            .filter(|p| &p["file_name"] == file && p["direction"] == "credit")
            .map(|p| dec(&p["amount"]))
            .sum();
        for b in [bank.clone(), "ALL".to_string()] {
            if let Some(s) = sums.get_mut(&(b, "CNY".to_string())) {
                s.declared += data.declared[file];
                s.read += read;
            }
        }
    }
    assert!(!sums.is_empty(), "lines booked on {day}");
    assert_eq!(report.len(), sums.len(), "{day}: {report:?}");
    for ((bank, ccy), s) in &sums {
        let r = find(&report, &[("bank_id", bank), ("currency", ccy)]);
        let at = format!("{day} {bank} {ccy}");
        assert_eq!(r["received_count"], s.n.to_string(), "{at}");
        assert_eq!(r["received"], money(s.received), "{at}");
        for (i, c) in [
            "applied",
            "credit",
            "held_in_exceptions",
            "refunded",
            "written_off",
        ]
        .iter()
        .enumerate()
        {
            assert_eq!(r[*c], money(s.went[i]), "{at} {c}");
        }
        // the money received adds up, per bank
        assert_eq!(s.went.iter().copied().sum::<Decimal>(), s.received, "{at}");
        let went: Decimal = [
            "applied",
            "credit",
            "held_in_exceptions",
            "refunded",
            "written_off",
        ]
        .iter()
        .map(|c| dec(&r[*c]))
        .sum();
        assert_eq!(
            went,
            dec(&r["received"]),
            "{at}: received = applied + credit + held + refunded + written off"
        );
        assert_eq!(r["rejected_duplicates"], money(s.rejected), "{at}");
        assert_eq!(r["reversal_count"], s.reversals.to_string(), "{at}");
        assert_eq!(r["reversed"], money(s.reversed), "{at}");
        assert_eq!(r["debit_count"], s.debits_n.to_string(), "{at}");
        assert_eq!(r["debits"], money(s.debits), "{at}");
        assert_eq!(r["files"], s.files.len().to_string(), "{at}");
        assert_eq!(r["declared_credits"], money(s.declared), "{at}");
        assert_eq!(r["read_credits"], money(s.read), "{at}");
        assert_eq!(r["difference"], money(s.read - s.declared), "{at}");
        assert_eq!(r["difference"], "0.00", "{at}: the files read as declared");
        assert_eq!(
            r["channels"],
            format!("file {} × {}", s.n, money(s.received)),
            "{at}"
        );
        for c in ["realtime_vs_file", "expected_transfer", "settlement"] {
            assert_eq!(r[c], "", "{at}: no partner bank");
        }
    }
    // late fees: charged and collected by the day's payments, per bank; waived that day and
    // outstanding at its end for all banks
    let moves = data.fee_moves(d, d);
    let owed: i64 = data.fee_states(d).values().map(|f| f.owed()).sum();
    for (bank, ccy) in sums.keys() {
        let r = find(&report, &[("bank_id", bank), ("currency", ccy)]);
        let at = format!("{day} {bank} {ccy} late fees");
        let of = |what: &str| -> Decimal {
            moves
                .iter()
                .filter(|m| m.0 == what && (bank == "ALL" || &m.3 == bank))
                .map(|m| m.5)
                .sum()
        };
        assert_eq!(r["late_fees_charged"], money(of("charged")), "{at}");
        assert_eq!(r["late_fees_collected"], money(of("collected")), "{at}");
        if bank == "ALL" {
            assert_eq!(r["late_fees_waived"], money(of("waived")), "{at}");
            assert_eq!(
                r["late_fees_outstanding"],
                money(Decimal::new(owed, 2)),
                "{at}"
            );
        } else {
            assert_eq!(r["late_fees_waived"], "", "{at}");
            assert_eq!(r["late_fees_outstanding"], "", "{at}");
        }
    }
}

/// The lines behind the settlement of `d`.
fn check_lines(bin: &Bin, data: &Data, d: NaiveDate) {
    let report = bin.report("settlement-lines", d);
    let day = d.to_string();
    let mut want: Vec<(String, String, String, String)> = data
        .payments
        .iter()
        .filter(|p| {
            p["booking_date"] == day
                && (["exception", "reversed", "refunded", "rejected", "cancelled"]
                    .contains(&p["status"].as_str())
                    || dec(&p["written_off"]) != Decimal::ZERO)
        })
        .map(|p| {
            (
                p["bank_ref"].clone(),
                p["amount"].clone(),
                p["status"].clone(),
                p["exception_reason"].clone(),
            )
        })
        .collect();
    let mut got: Vec<(String, String, String, String)> = report
        .iter()
        .map(|r| {
            (
                r["bank_ref"].clone(),
                r["amount"].clone(),
                r["status"].clone(),
                r["exception_reason"].clone(),
            )
        })
        .collect();
    want.sort();
    got.sort();
    assert!(!want.is_empty(), "{day}");
    assert_eq!(got, want, "{day}");
}

/// The exceptions report of `d`: on the booking day, as the settlement.
fn check_exceptions(bin: &Bin, data: &Data, d: NaiveDate) {
    let report = bin.report("exceptions", d);
    let day = d.to_string();
    #[derive(Default)]
    struct A {
        booked: i64,
        booked_amount: Decimal,
        open: i64,
        open_amount: Decimal,
        open_received: Decimal,
        resolved: i64,
        queue: i64,
        queue_amount: Decimal,
        ages: [i64; 4],
        escalated: i64,
        escalated_amount: Decimal,
    }
    let mut acc: BTreeMap<(String, String), A> = BTreeMap::new();
    for e in &data.exceptions {
        let booked = if e["booking_date"].is_empty() {
            date(&e["created_at"])
        } else {
            date(&e["booking_date"])
        };
        if booked > d {
            continue;
        }
        let p = data.payment(&e["payment_id"]);
        let open = e["status"] == "open";
        let amount = dec(&e["amount"]);
        for reason in [e["reason"].clone(), "all".to_string()] {
            let a = acc.entry((reason, e["currency"].clone())).or_default();
            if booked == d {
                a.booked += 1;
                a.booked_amount += amount;
                if open {
                    a.open += 1;
                    a.open_amount += amount;
                    if p["direction"] == "credit" && p["reversal"] == "false" {
                        a.open_received += dec(&p["held"]);
                    }
                } else {
                    a.resolved += 1;
                }
            }
            if open {
                a.queue += 1;
                a.queue_amount += amount;
                let age = (d - booked).num_days();
                a.ages[match age {
                    i64::MIN..=1 => 0,
                    2..=7 => 1,
                    8..=30 => 2,
                    _ => 3,
                }] += 1;
                if !e["escalated_at"].is_empty() {
                    a.escalated += 1;
                    a.escalated_amount += amount;
                }
            }
        }
    }
    acc.retain(|_, a| a.booked > 0 || a.queue > 0);
    assert!(!acc.is_empty(), "{day}: the day has exceptions");
    assert_eq!(report.len(), acc.len(), "{day}: {report:?}");
    for ((reason, ccy), a) in &acc {
        let r = find(&report, &[("reason", reason), ("currency", ccy)]);
        let at = format!("{day} {reason} {ccy}");
        assert_eq!(r["booked_count"], a.booked.to_string(), "{at}");
        assert_eq!(r["booked_amount"], money(a.booked_amount), "{at}");
        assert_eq!(r["open_count"], a.open.to_string(), "{at}");
        assert_eq!(r["open_amount"], money(a.open_amount), "{at}");
        assert_eq!(r["open_received_amount"], money(a.open_received), "{at}");
        assert_eq!(r["resolved_count"], a.resolved.to_string(), "{at}");
        assert_eq!(r["queue_count"], a.queue.to_string(), "{at}");
        assert_eq!(r["queue_amount"], money(a.queue_amount), "{at}");
        for (i, c) in [
            "queue_0_1_days",
            "queue_2_7_days",
            "queue_8_30_days",
            "queue_over_30_days",
        ]
        .iter()
        .enumerate()
        {
            assert_eq!(r[*c], a.ages[i].to_string(), "{at} {c}");
        }
        assert_eq!(r["escalated_count"], a.escalated.to_string(), "{at}");
        assert_eq!(r["escalated_amount"], money(a.escalated_amount), "{at}");
    }
    // the same clock as the settlement: what the day's money received holds in the queue is
    // the settlement's "held in exceptions" of all banks
    let settlement = bin.report("daily-settlement", d);
    for r in settlement.iter().filter(|r| r["bank_id"] == "ALL") {
        let held = report
            .iter()
            .find(|e| e["reason"] == "all" && e["currency"] == r["currency"])
            .map(|e| dec(&e["open_received_amount"]))
            .unwrap_or_default();
        assert_eq!(
            held,
            dec(&r["held_in_exceptions"]),
            "{day} {}: exceptions report and settlement agree",
            r["currency"]
        );
    }
}

/// Receivables ageing as of `d`.
fn check_ageing(bin: &Bin, data: &Data, config: &billrecon::config::Config, d: NaiveDate) {
    let report = bin.report("ageing", d);
    let mut paid: HashMap<String, Decimal> = HashMap::new();
    for (bill, _, amount, _, _) in data.allocations_by(d) {
        *paid.entry(bill).or_default() += amount;
    }
    #[derive(Default)]
    struct A {
        bills: i64,
        buckets: [Decimal; 5],
        fees: i64,
        fees_owed: i64,
    }
    let fee_states = data.fee_states(d);
    let mut acc: BTreeMap<(String, String), A> = BTreeMap::new();
    for b in &data.bills {
        if date(&b["issued_on"]) > d || b.get("status").is_some_and(|s| s == "cancelled") {
            continue;
        }
        let owed = (dec(&b["amount"]) - paid.get(&b["bill_id"]).copied().unwrap_or_default())
            .max(Decimal::ZERO);
        let state = fee_states.get(&b["bill_id"]).copied().unwrap_or_default();
        if owed <= Decimal::ZERO && state.owed() <= 0 {
            continue;
        }
        let due = date(&b["due_on"]);
        let days = (d - due).num_days();
        let i = billrecon::reports::ageing::bucket(days);
        let c = &data.customers[&b["account_no"]];
        // what is owed of the fees charged, plus what the principal accrued (the minimum on
        // the bill's total)
        let fee = billrecon::dunning::fees::fee_due(
            config.dunning.for_class(&c["class"]).late_fee,
            billrecon::domain::Currency::CNY,
            (owed * Decimal::from(100)).try_into().unwrap(),
            due,
            d,
            &state,
        );
        let manager = if c["manager"].is_empty() {
            "(none)".to_string()
        } else {
            c["manager"].clone()
        };
        for key in [
            ("class".to_string(), c["class"].clone()),
            ("manager".to_string(), manager),
            ("all".to_string(), "all".to_string()),
        ] {
            let a = acc.entry(key).or_default();
            a.bills += 1;
            a.buckets[i] += owed;
            a.fees += fee.total();
            a.fees_owed += fee.owed;
        }
    }
    assert_eq!(report.len(), acc.len(), "ageing {d}: {report:?}");
    for ((by, group), a) in &acc {
        let r = find(&report, &[("by", by), ("group", group)]);
        let at = format!("ageing {d} {by} {group}");
        assert_eq!(r["bills"], a.bills.to_string(), "{at}");
        for (i, c) in [
            "not_yet_due",
            "days_1_30",
            "days_31_60",
            "days_61_90",
            "over_90",
        ]
        .iter()
        .enumerate()
        {
            assert_eq!(r[*c], money(a.buckets[i]), "{at} {c}");
        }
        assert_eq!(r["total"], money(a.buckets.iter().copied().sum()), "{at}");
        assert_eq!(r["late_fees"], money(Decimal::new(a.fees, 2)), "{at}");
        assert_eq!(
            r["late_fees_owed"],
            money(Decimal::new(a.fees_owed, 2)),
            "{at}"
        );
    }
}

fn pct(part: Decimal, whole: Decimal) -> String {
    format!("{:.2}", (part * Decimal::from(100) / whole).round_dp(2))
}

/// The collection rate as of `d`: of the bills issued in the 30 days up to it.
fn check_collection(bin: &Bin, data: &Data, d: NaiveDate) {
    let report = bin.report("collection-rate", d);
    let from = d - chrono::Duration::days(29);
    let window: HashMap<&str, &Row> = data
        .bills
        .iter()
        .filter(|b| (from..=d).contains(&date(&b["issued_on"])))
        .map(|b| (b["bill_id"].as_str(), b))
        .collect();
    #[derive(Default)]
    struct A {
        billed: Decimal,
        collected: Decimal,
        day_weight: Decimal,
        weight: Decimal,
        /// late fees: charged, collected, waived in the window, outstanding at its end
        fees: [Decimal; 4],
    }
    let groups = |c: &Row| -> Vec<(String, String)> {
        vec![
            ("class".into(), c["class"].clone()),
            (
                "manager".into(),
                if c["manager"].is_empty() {
                    "(none)".into()
                } else {
                    c["manager"].clone()
                },
            ),
            ("all".into(), "all".into()),
        ]
    };
    let keys = |b: &Row| -> Vec<(String, String)> {
        let c = &data.customers[&b["account_no"]];
        vec![
            ("class".into(), c["class"].clone()),
            (
                "manager".into(),
                if c["manager"].is_empty() {
                    "(none)".into()
                } else {
                    c["manager"].clone()
                },
            ),
            ("all".into(), "all".into()),
        ]
    };
    let mut acc: BTreeMap<(String, String), A> = BTreeMap::new();
    let mut trend: BTreeMap<NaiveDate, (Decimal, Decimal)> = BTreeMap::new();
    for b in window.values() {
        for k in keys(b) {
            acc.entry(k).or_default().billed += dec(&b["amount"]);
        }
        trend.entry(date(&b["issued_on"])).or_default().0 += dec(&b["amount"]);
    }
    for (bill, booked, amount, bank, channel) in data.allocations_by(d) {
        let Some(b) = window.get(bill.as_str()) else {
            continue;
        };
        let days = (booked - date(&b["issued_on"])).num_days().max(0);
        let mut ks = keys(b);
        ks.push(("bank".into(), bank));
        ks.push(("channel".into(), channel));
        for k in ks {
            let a = acc.entry(k).or_default();
            a.collected += amount;
            a.day_weight += Decimal::from(days) * amount;
            a.weight += amount;
        }
        if booked >= from {
            trend.entry(booked).or_default().1 += amount;
        }
    }
    // late fees of the window, by the day of their payment or waiver, whatever the bill's
    // issue date; outstanding at its end
    let mut fee_days: BTreeMap<NaiveDate, [Decimal; 3]> = BTreeMap::new();
    for (what, day, bill, bank, channel, amount) in data.fee_moves(from, d) {
        let k = match what {
            "charged" => 0,
            "collected" => 1,
            _ => 2,
        };
        let mut ks = groups(data.customer_of(&bill));
        if what != "waived" {
            ks.push(("bank".into(), bank));
            ks.push(("channel".into(), channel));
        }
        for g in ks {
            acc.entry(g).or_default().fees[k] += amount;
        }
        fee_days.entry(day).or_default()[k] += amount;
    }
    for (bill, state) in data.fee_states(d) {
        if state.owed() != 0 {
            for g in groups(data.customer_of(&bill)) {
                acc.entry(g).or_default().fees[3] += Decimal::new(state.owed(), 2);
            }
        }
    }
    let days: std::collections::BTreeSet<NaiveDate> =
        trend.keys().chain(fee_days.keys()).copied().collect();
    assert_eq!(
        report.len(),
        acc.len() + days.len(),
        "collection {d}: {report:?}"
    );
    for ((by, group), a) in &acc {
        let r = find(&report, &[("by", by), ("group", group)]);
        let at = format!("collection {d} {by} {group}");
        let billed_by = by != "bank" && by != "channel";
        assert_eq!(
            r["billed"],
            if billed_by {
                money(a.billed)
            } else {
                String::new()
            },
            "{at}"
        );
        assert_eq!(r["collected"], money(a.collected), "{at}");
        let rate = if billed_by && a.billed > Decimal::ZERO {
            pct(a.collected, a.billed)
        } else {
            String::new()
        };
        assert_eq!(r["collection_rate_pct"], rate, "{at}");
        let avg = if a.weight > Decimal::ZERO {
            format!("{:.1}", (a.day_weight / a.weight).round_dp(1))
        } else {
            String::new()
        };
        assert_eq!(r["avg_days_to_payment"], avg, "{at}");
        assert_eq!(r["window_from"], from.to_string());
        assert_eq!(r["late_fees_charged"], money(a.fees[0]), "{at}");
        assert_eq!(r["late_fees_collected"], money(a.fees[1]), "{at}");
        let (waived, outstanding) = if billed_by {
            (money(a.fees[2]), money(a.fees[3]))
        } else {
            (String::new(), String::new())
        };
        assert_eq!(r["late_fees_waived"], waived, "{at}");
        assert_eq!(r["late_fees_outstanding"], outstanding, "{at}");
    }
    let (mut billed, mut collected) = (Decimal::ZERO, Decimal::ZERO);
    for day in &days {
        let (b, c) = trend.get(day).copied().unwrap_or_default();
        let f = fee_days.get(day).copied().unwrap_or_default();
        billed += b;
        collected += c;
        let r = find(&report, &[("by", "day"), ("group", &day.to_string())]);
        for (i, col) in [
            "late_fees_charged",
            "late_fees_collected",
            "late_fees_waived",
        ]
        .iter()
        .enumerate()
        {
            assert_eq!(r[*col], money(f[i]), "{d} trend {day} {col}");
        }
        assert_eq!(r["billed"], money(b), "{d} trend {day}");
        assert_eq!(r["collected"], money(c), "{d} trend {day}");
        let rate = if billed > Decimal::ZERO {
            pct(collected, billed)
        } else {
            String::new()
        };
        assert_eq!(r["collection_rate_pct"], rate, "{d} trend {day}");
    }
}

/// Key customers and payment behaviour as of `d`: the bills of the 365 days up to it.
fn check_customers(bin: &Bin, data: &Data, d: NaiveDate) {
    let from = d - chrono::Duration::days(364);
    let bills: Vec<&Row> = data
        .bills
        .iter()
        .filter(|b| (from..=d).contains(&date(&b["issued_on"])))
        .collect();
    let amounts: HashMap<&str, Decimal> = bills
        .iter()
        .map(|b| (b["bill_id"].as_str(), dec(&b["amount"])))
        .collect();
    // the day each bill was completed, in booking order
    let mut allocs = data.allocations_by(d);
    allocs.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
    let mut paid: HashMap<String, Decimal> = HashMap::new();
    let mut paid_on: HashMap<String, NaiveDate> = HashMap::new();
    for (bill, booked, amount, _, _) in &allocs {
        let Some(total) = amounts.get(bill.as_str()) else {
            continue;
        };
        let r = paid.entry(bill.clone()).or_default();
        *r += amount;
        if *r >= *total {
            paid_on.entry(bill.clone()).or_insert(*booked);
        } else {
            paid_on.remove(bill);
        }
    }
    // payments reversed by reversals booked in the window, per account
    let mut reversed: HashMap<String, i64> = HashMap::new();
    for p in &data.payments {
        if p["status"] == "reversed" && p["reversal"] == "false" && !p["account_no"].is_empty() {
            let r = data.payment(&p["reversed_by_payment_id"]);
            if !r["booking_date"].is_empty() && (from..=d).contains(&date(&r["booking_date"])) {
                *reversed.entry(p["account_no"].clone()).or_default() += 1;
            }
        }
    }
    #[derive(Default, Clone)]
    struct B {
        billed: Decimal,
        outstanding: Decimal,
        due: i64,
        on_time: i64,
        late: i64,
        days_late: i64,
    }
    let mut by: BTreeMap<String, B> = BTreeMap::new();
    for b in &bills {
        let e = by.entry(b["account_no"].clone()).or_default();
        let amount = dec(&b["amount"]);
        e.billed += amount;
        let owed = amount - paid.get(&b["bill_id"]).copied().unwrap_or_default();
        e.outstanding += owed.max(Decimal::ZERO);
        let due = date(&b["due_on"]);
        let late_by = match paid_on.get(&b["bill_id"]).filter(|_| owed <= Decimal::ZERO) {
            Some(p) => Some((*p - due).num_days()),
            None if owed > Decimal::ZERO && d > due => Some((d - due).num_days()),
            None => None,
        };
        if let Some(days) = late_by {
            e.due += 1;
            if days <= 0 {
                e.on_time += 1;
            } else {
                e.late += 1;
                e.days_late += days;
            }
        }
    }
    let rate = |b: &B| {
        (b.due > 0).then(|| {
            (Decimal::from(b.on_time) * Decimal::from(100) / Decimal::from(b.due)).round_dp(2)
        })
    };
    let avg = |b: &B| {
        (b.late > 0).then(|| (Decimal::from(b.days_late) / Decimal::from(b.late)).round_dp(1))
    };
    let risk = |b: &B, account: &str| {
        let n = reversed.get(account).copied().unwrap_or(0);
        let r = rate(b).unwrap_or(Decimal::from(100));
        let a = avg(b).unwrap_or_default();
        if r < Decimal::from(50) || a > Decimal::from(30) || n >= 2 {
            "high"
        } else if r < Decimal::from(80) || n == 1 {
            "medium"
        } else {
            "low"
        }
    };
    let behaviour = bin.report("payment-behaviour", d);
    assert_eq!(behaviour.len(), by.len(), "behaviour {d}");
    for (account, b) in &by {
        let r = find(&behaviour, &[("account_no", account)]);
        let at = format!("behaviour {d} {account}");
        assert_eq!(r["name"], data.customers[account]["name"], "{at}");
        assert_eq!(r["bills"], b.due.to_string(), "{at}");
        assert_eq!(r["on_time"], b.on_time.to_string(), "{at}");
        assert_eq!(r["late"], b.late.to_string(), "{at}");
        assert_eq!(
            r["on_time_rate_pct"],
            rate(b).map(|v| format!("{v:.2}")).unwrap_or_default(),
            "{at}"
        );
        assert_eq!(
            r["avg_days_late"],
            avg(b).map(|v| format!("{v:.1}")).unwrap_or_default(),
            "{at}"
        );
        assert_eq!(
            r["reversed_payments"],
            reversed.get(account).copied().unwrap_or(0).to_string(),
            "{at}"
        );
        assert_eq!(r["risk"], risk(b, account), "{at}");
    }
    // the key customers: the largest until 80 % of the billing
    let key = bin.report("key-customers", d);
    let total: Decimal = by.values().map(|b| b.billed).sum();
    let mut ranked: Vec<(&String, &B)> = by.iter().collect();
    ranked.sort_by(|a, b| b.1.billed.cmp(&a.1.billed).then(a.0.cmp(b.0)));
    let mut cumulative = Decimal::ZERO;
    let mut n = 0;
    for (rank, (account, b)) in ranked.iter().enumerate() {
        if cumulative * Decimal::from(100) >= total * Decimal::from(80) {
            break;
        }
        cumulative += b.billed;
        n += 1;
        let r = &key[rank];
        let at = format!("key {d} {account}");
        assert_eq!(r["rank"], (rank + 1).to_string(), "{at}");
        assert_eq!(&r["account_no"], *account, "{at}");
        let c = &data.customers[*account];
        assert_eq!(r["name"], c["name"], "{at}");
        assert_eq!(r["class"], c["class"], "{at}");
        assert_eq!(r["manager"], c["manager"], "{at}");
        assert_eq!(r["billed"], money(b.billed), "{at}");
        assert_eq!(r["share_pct"], pct(b.billed, total), "{at}");
        assert_eq!(r["cumulative_pct"], pct(cumulative, total), "{at}");
        assert_eq!(r["outstanding"], money(b.outstanding), "{at}");
        assert_eq!(
            r["on_time_rate_pct"],
            rate(b).map(|v| format!("{v:.2}")).unwrap_or_default(),
            "{at}"
        );
        assert_eq!(r["risk"], risk(b, account), "{at}");
    }
    assert_eq!(key.len(), n, "key customers {d}");
}
