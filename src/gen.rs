//! `billrecon gen`: a coherent synthetic data set for benchmarks and soak tests.
//!
//! Writes `customers.csv`, `bills.csv` and camt.054.001.08 files whose payments mix every case
//! the matcher handles: bill references (plain and RF), account numbers in Chinese free text,
//! short payments, overpayments, unknown references, two customers named at once, duplicates
//! of earlier transactions, bank fees (debits), reversals of earlier payments, and batch
//! entries. The same seed always gives the same bytes.

use crate::domain::{money_text, RfReference};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(clap::Args, Debug, Clone)]
pub struct GenArgs {
    /// Number of customers.
    #[arg(long, default_value_t = 1000)]
    pub customers: u64,
    /// Number of open bills.
    #[arg(long, default_value_t = 1000)]
    pub bills: u64,
    /// Number of payment transactions across all files.
    #[arg(long, default_value_t = 1000)]
    pub payments: u64,
    /// Output folder (created).
    #[arg(long)]
    pub out: PathBuf,
    /// Random seed.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Payments per camt.054 file.
    #[arg(long, default_value_t = 100_000)]
    pub per_file: u64,
    /// Booking days the payments spread over, from 2026-11-12 on. With more than one, each
    /// day has its own files (`GEN_YYYYMMDD_NNNN_camt054.xml`, created at 06:00 the next
    /// day, as a bank's file arrives a day late) and the bills are issued on the 60 days
    /// before the first (due 20 days after issue); with one, the data set is as before.
    #[arg(long, default_value_t = 1)]
    pub days: u32,
}

/// The first booking day of a generated data set.
pub const FIRST_DAY: (i32, u32, u32) = (2026, 11, 12);

struct Tx {
    bank_ref: String,
    e2e: Option<String>,
    minor: i64,
    debit: bool,
    reversal: bool,
    payer: String,
    strd: Option<String>,
    ustrd: Option<String>,
}

struct Ntry {
    txs: Vec<Tx>,
}

fn account_no(i: u64) -> String {
    format!("{}", 3_200_000_000u64 + i)
}
fn bill_id(i: u64) -> String {
    format!("G{:09}", i)
}

const SURNAMES: &[&str] = &["王", "李", "张", "刘", "陈", "杨", "黄", "赵", "周", "吴"];
const GIVEN: &[&str] = &["伟", "芳", "娜", "敏", "静", "强", "磊", "洋", "艳", "军"];
const CLASSES: &[&str] = &[
    "residential",
    "residential",
    "residential",
    "commercial",
    "industrial",
    "large_industrial",
    "agricultural",
];

/// Writes the data set; returns the files written.
pub fn generate(a: &GenArgs) -> anyhow::Result<Vec<PathBuf>> {
    anyhow::ensure!(
        a.customers > 0 && a.bills > 0,
        "--customers and --bills must be at least 1"
    );
    anyhow::ensure!(a.per_file > 0, "--per-file must be at least 1");
    anyhow::ensure!(a.days > 0, "--days must be at least 1");
    let first_day = chrono::NaiveDate::from_ymd_opt(FIRST_DAY.0, FIRST_DAY.1, FIRST_DAY.2)
        .expect("a valid date");
    let spread = a.days > 1;
    std::fs::create_dir_all(&a.out)?;
    let mut rng = SmallRng::seed_from_u64(a.seed);
    let mut written = Vec::new();

    let path = a.out.join("customers.csv");
    let mut w = std::io::BufWriter::new(std::fs::File::create(&path)?);
    writeln!(w, "account_no,name,class,key_account,manager,phone,email")?;
    for i in 0..a.customers {
        let name = format!(
            "{}{}",
            SURNAMES[rng.gen_range(0..SURNAMES.len())],
            GIVEN[rng.gen_range(0..GIVEN.len())]
        );
        let key = rng.gen_ratio(1, 50);
        writeln!(
            w,
            "{},{},{},{},{},138{:08},",
            account_no(i),
            name,
            CLASSES[rng.gen_range(0..CLASSES.len())],
            key,
            if key {
                format!("M{:03}", i % 20)
            } else {
                String::new()
            },
            i % 100_000_000
        )?;
    }
    w.flush()?;
    written.push(path);

    let path = a.out.join("bills.csv");
    let mut w = std::io::BufWriter::new(std::fs::File::create(&path)?);
    writeln!(
        w,
        "bill_id,account_no,period,amount,currency,issued_on,due_on"
    )?;
    let mut amounts = Vec::with_capacity(a.bills as usize);
    for i in 0..a.bills {
        let minor = rng.gen_range(5_000i64..500_000);
        amounts.push(minor);
        if spread {
            let issued = first_day - chrono::Duration::days(1 + (i % 60) as i64);
            let due = issued + chrono::Duration::days(20);
            writeln!(
                w,
                "{},{},{},{},CNY,{issued},{due}",
                bill_id(i),
                account_no(i % a.customers),
                issued.format("%Y-%m"),
                money_text(minor, "CNY"),
            )?;
            continue;
        }
        let month = 1 + (i % 10) as u32;
        writeln!(
            w,
            "{},{},2026-{month:02},{},CNY,2026-{month:02}-01,2026-{month:02}-25",
            bill_id(i),
            account_no(i % a.customers),
            money_text(minor, "CNY"),
        )?;
    }
    w.flush()?;
    written.push(path);

    // Payments.
    let mut made: Vec<(String, Option<String>, i64)> = Vec::new(); // earlier credits (ref, e2e, amount)
    let mut entries: Vec<Ntry> = Vec::new();
    let mut n_tx = 0u64;
    let mut file_no = 0u64;
    let mut in_file = 0u64;
    // the booking day of the n-th payment (0-based)
    let day_of = |n: u64| -> u64 { n * u64::from(a.days) / a.payments.max(1) };
    let mut seq = 0u64;
    let next_ref = |seq: &mut u64| {
        *seq += 1;
        format!("GEN{:012}", *seq)
    };
    while n_tx < a.payments {
        let b = rng.gen_range(0..a.bills);
        let acct = account_no(b % a.customers);
        let amount = amounts[b as usize];
        let roll = rng.gen_range(0..100);
        let payer = format!(
            "{}{}",
            SURNAMES[rng.gen_range(0..SURNAMES.len())],
            GIVEN[rng.gen_range(0..GIVEN.len())]
        );
        let mut tx = Tx {
            bank_ref: next_ref(&mut seq),
            e2e: Some(format!("E{seq:012}")),
            minor: amount,
            debit: false,
            reversal: false,
            payer,
            strd: None,
            ustrd: None,
        };
        match roll {
            0..=59 => tx.strd = Some(bill_id(b)),
            60..=67 => tx.strd = Some(RfReference::wrap(&bill_id(b))?.to_string()),
            68..=77 => tx.ustrd = Some(format!("电费 户号{acct} {}月", 1 + b % 10)),
            78..=82 => {
                tx.strd = Some(bill_id(b));
                tx.minor = (amount / 2).max(1);
            }
            83..=87 => {
                tx.ustrd = Some(format!("ELEC ACCT {acct}"));
                tx.minor = amount + rng.gen_range(100..10_000);
            }
            88..=90 => tx.ustrd = Some(format!("payment ref {}", rng.gen_range(0..1_000_000))),
            91 => {
                let other = account_no(rng.gen_range(0..a.customers));
                tx.ustrd = Some(format!("{acct} {other}"));
            }
            92 | 93 if !made.is_empty() => {
                // the same transaction delivered again
                let (r, e, m) = made[rng.gen_range(0..made.len())].clone();
                tx.bank_ref = r;
                tx.e2e = e;
                tx.minor = m;
                tx.strd = Some(bill_id(b));
            }
            94 => {
                tx.debit = true;
                tx.minor = rng.gen_range(100..5_000);
                tx.e2e = None;
                tx.ustrd = Some("手续费 SERVICE FEE".into());
            }
            95 if !made.is_empty() => {
                let (r, e, m) = made[rng.gen_range(0..made.len())].clone();
                tx.debit = true;
                tx.reversal = true;
                tx.e2e = e;
                tx.minor = m;
                tx.ustrd = Some(format!("REVERSAL {r}"));
            }
            _ => tx.strd = Some(bill_id(b)),
        }
        if !tx.debit {
            made.push((tx.bank_ref.clone(), tx.e2e.clone(), tx.minor));
        }
        n_tx += 1;
        in_file += 1;
        // About one entry in twenty-five is a batch of two or three transactions.
        let batch = !tx.debit
            && rng.gen_ratio(1, 25)
            && entries.last().map(|e| e.txs.len() < 3).unwrap_or(false);
        if batch {
            if let Some(last) = entries.last_mut() {
                if !last.txs[0].debit {
                    last.txs.push(tx);
                } else {
                    entries.push(Ntry { txs: vec![tx] });
                }
            }
        } else {
            entries.push(Ntry { txs: vec![tx] });
        }
        let day_ends = spread && (n_tx == a.payments || day_of(n_tx) != day_of(n_tx - 1));
        if in_file >= a.per_file || n_tx == a.payments || day_ends {
            in_file = 0;
            file_no += 1;
            let booked = first_day + chrono::Duration::days(day_of(n_tx - 1) as i64);
            let path = if spread {
                a.out.join(format!(
                    "GEN_{}_{file_no:04}_camt054.xml",
                    booked.format("%Y%m%d")
                ))
            } else {
                a.out.join(format!("GEN_{file_no:04}_camt054.xml"))
            };
            let created = if spread {
                format!("{}T06:00:00+08:00", booked + chrono::Duration::days(1))
            } else {
                "2026-11-12T23:00:00+08:00".to_string()
            };
            write_camt054(
                &path,
                file_no,
                &std::mem::take(&mut entries),
                &booked.to_string(),
                &created,
            )?;
            written.push(path);
        }
    }
    Ok(written)
}

fn write_camt054(
    path: &Path,
    file_no: u64,
    entries: &[Ntry],
    booked: &str,
    created: &str,
) -> std::io::Result<()> {
    let mut w = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
    let (mut sum, mut net, mut cc, mut cs, mut dc, mut ds) = (0i64, 0i64, 0u64, 0i64, 0u64, 0i64);
    for e in entries {
        let m: i64 = e.txs.iter().map(|t| t.minor).sum();
        sum += m;
        if e.txs[0].debit {
            net -= m;
            dc += 1;
            ds += m;
        } else {
            net += m;
            cc += 1;
            cs += m;
        }
    }
    let t = |m: i64| money_text(m, "CNY");
    writeln!(w, r#"<?xml version="1.0" encoding="UTF-8"?>"#)?;
    writeln!(
        w,
        r#"<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.054.001.08"><BkToCstmrDbtCdtNtfctn>"#
    )?;
    writeln!(
        w,
        "<GrpHdr><MsgId>GEN-{file_no:06}</MsgId><CreDtTm>{created}</CreDtTm></GrpHdr>"
    )?;
    writeln!(w, "<Ntfctn><Id>GEN-N-{file_no:06}</Id><Acct><Id><Othr><Id>6222020200001234567</Id></Othr></Id><Ccy>CNY</Ccy></Acct>")?;
    writeln!(
        w,
        "<TxsSummry><TtlNtries><NbOfNtries>{}</NbOfNtries><Sum>{}</Sum><TtlNetNtry><Amt>{}</Amt><CdtDbtInd>{}</CdtDbtInd></TtlNetNtry></TtlNtries>\
         <TtlCdtNtries><NbOfNtries>{cc}</NbOfNtries><Sum>{}</Sum></TtlCdtNtries><TtlDbtNtries><NbOfNtries>{dc}</NbOfNtries><Sum>{}</Sum></TtlDbtNtries></TxsSummry>",
        entries.len(),
        t(sum),
        t(net.abs()),
        if net >= 0 { "CRDT" } else { "DBIT" },
        t(cs),
        t(ds)
    )?;
    for e in entries {
        let m: i64 = e.txs.iter().map(|t| t.minor).sum();
        let first = &e.txs[0];
        let dir = if first.debit { "DBIT" } else { "CRDT" };
        write!(
            w,
            "<Ntry><Amt Ccy=\"CNY\">{}</Amt><CdtDbtInd>{dir}</CdtDbtInd>",
            t(m)
        )?;
        if first.reversal {
            write!(w, "<RvslInd>true</RvslInd>")?;
        }
        write!(
            w,
            "<Sts><Cd>BOOK</Cd></Sts><BookgDt><Dt>{booked}</Dt></BookgDt><ValDt><Dt>{booked}</Dt></ValDt>"
        )?;
        if e.txs.len() == 1 {
            write!(w, "<AcctSvcrRef>{}</AcctSvcrRef>", first.bank_ref)?;
        }
        write!(w, "<NtryDtls>")?;
        if e.txs.len() > 1 {
            write!(
                w,
                "<Btch><NbOfTxs>{}</NbOfTxs><TtlAmt Ccy=\"CNY\">{}</TtlAmt><CdtDbtInd>{dir}</CdtDbtInd></Btch>",
                e.txs.len(),
                t(m)
            )?;
        }
        for tx in &e.txs {
            write!(
                w,
                "<TxDtls><Refs><AcctSvcrRef>{}</AcctSvcrRef>",
                tx.bank_ref
            )?;
            if let Some(e2e) = &tx.e2e {
                write!(w, "<EndToEndId>{e2e}</EndToEndId>")?;
            }
            write!(
                w,
                "</Refs><Amt Ccy=\"CNY\">{}</Amt><CdtDbtInd>{dir}</CdtDbtInd><RltdPties><Dbtr><Pty><Nm>{}</Nm></Pty></Dbtr></RltdPties>",
                t(tx.minor),
                tx.payer
            )?;
            if tx.strd.is_some() || tx.ustrd.is_some() {
                write!(w, "<RmtInf>")?;
                if let Some(u) = &tx.ustrd {
                    write!(w, "<Ustrd>{u}</Ustrd>")?;
                }
                if let Some(s) = &tx.strd {
                    write!(w, "<Strd><CdtrRefInf><Ref>{s}</Ref></CdtrRefInf></Strd>")?;
                }
                write!(w, "</RmtInf>")?;
            }
            write!(w, "</TxDtls>")?;
        }
        writeln!(w, "</NtryDtls></Ntry>")?;
    }
    writeln!(w, "</Ntfctn></BkToCstmrDbtCdtNtfctn></Document>")?;
    w.flush()
}
