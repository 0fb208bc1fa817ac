//! Tests of the camt reader: a real third-party file, hand-written fixtures of each message
//! type and version family, broken files, fuzzing and a generated file too big to hold.

use super::*;
use crate::formats::{open, parse_all, ParsedFile};
use proptest::prelude::*;
use std::io::{BufReader, Read};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/formats/camt");

/// Real third-party file: the camt.053.001.02 test statement of OCA/bank-statement-import
/// (https://github.com/OCA/bank-statement-import, module account_statement_import_camt,
/// test_files/test-camt053), licensed AGPL-3.0. Kept unmodified in /work/shared.
const OCA_CAMT053: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../shared/fixtures/real/camt053/oca-test-camt053.xml"
);

const NTF: &str = "Document/BkToCstmrDbtCdtNtfctn/Ntfctn";

fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{FIXTURES}/{name}");
    std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {path}: {e}"))
}

fn dec(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

fn money(s: &str, ccy: &str) -> Money {
    Money::from_decimal(dec(s), Currency::parse(ccy).unwrap()).unwrap()
}

fn cny(s: &str) -> Money {
    money(s, "CNY")
}

fn date(s: &str) -> Option<NaiveDate> {
    Some(NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap())
}

/// Parses through the public entry point, with the format sniffed.
fn parse_bytes(bytes: &[u8], name: &str) -> ParsedFile {
    match parse_all(None, bytes, name) {
        Ok(p) => p,
        Err(e) => panic!("{name} should parse: {e}"),
    }
}

/// Every item the reader yields, checking it ends after an error.
fn all_items(bytes: &[u8], format: Format) -> Vec<Result<Event, ParseError>> {
    // as a `strict` bank reads it: the first failed check of severity `error` ends it
    let mut r = crate::formats::strict(
        Box::new(CamtReader::new(bytes, "test.xml", format)),
        "test.xml",
    );
    let mut out = Vec::new();
    for item in r.by_ref() {
        out.push(item);
        assert!(out.len() < 1_000_000, "reader does not terminate");
    }
    assert!(r.next().is_none(), "the reader must stay finished");
    if let Some(i) = out.iter().position(|x| x.is_err()) {
        assert_eq!(i, out.len() - 1, "nothing may follow an error");
    }
    out
}

/// The error a broken file produces (it must produce exactly one, last).
fn broken(name: &str) -> ParseError {
    let bytes = fixture(&format!("broken/{name}"));
    let items = all_items(&bytes, Format::Camt054);
    match items.last() {
        Some(Err(e)) => {
            assert_eq!(e.file, "test.xml");
            e.clone()
        }
        other => panic!("{name} should fail, got {other:?}"),
    }
}

/// 1-based line of the first occurrence of `needle`.
fn line_of(bytes: &[u8], needle: &str) -> u64 {
    let text = String::from_utf8_lossy(bytes);
    let at = text
        .find(needle)
        .unwrap_or_else(|| panic!("`{needle}` not in file"));
    text[..at].matches('\n').count() as u64 + 1
}

fn sum_signed(entries: &[&Entry]) -> Decimal {
    entries.iter().map(|e| e.signed().amount()).sum()
}

fn sum_dir(p: &ParsedFile, d: Direction) -> Decimal {
    p.entries()
        .filter(|e| e.direction == d)
        .map(|e| e.amount.amount())
        .sum()
}

// ---------------------------------------------------------------------------------------
// The real file.

#[test]
fn oca_real_camt053_v02() {
    let bytes = std::fs::read(OCA_CAMT053).expect("the shared OCA fixture");
    let p = parse_bytes(&bytes, "oca-test-camt053.xml");
    assert_eq!(p.format, Format::Camt053);
    assert_eq!(p.header.version.as_deref(), Some("camt.053.001.02"));
    assert_eq!(
        p.header.file_id.as_deref(),
        Some("TESTBANK/NL/1420561226673")
    );
    assert_eq!(
        p.header.created_at.as_deref(),
        Some("2013-01-06T16:20:26.673Z")
    );
    assert_eq!(p.statements.len(), 1);
    let st = &p.statements[0];
    assert_eq!(st.statement_id.as_deref(), Some("1234Test/1"));
    assert_eq!(st.account, "NL77ABNA0574908765");
    assert_eq!(st.currency, Some(Currency::EUR));
    assert_eq!(st.opening_balance, Some(dec("15568.27")));
    assert_eq!(st.closing_balance, Some(dec("15121.12")));
    assert_eq!(
        st.declared,
        StatementTotals::default(),
        "the file has no TxsSummry"
    );
    assert_eq!(st.entries.len(), 3);
    assert!(st.entries.iter().all(|e| e.currency == Currency::EUR
        && e.status == EntryStatus::Booked
        && e.tx_count == 1
        && e.booking_date == date("2013-01-05")));
    assert_eq!(
        st.entries.iter().map(|e| e.entry_seq).collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
    assert_eq!(sum_dir(&p, Direction::Credit), dec("1405.31"));
    assert_eq!(sum_dir(&p, Direction::Debit), dec("1348.30"));

    let e = &st.entries[0];
    assert_eq!(e.amount, money("754.25", "EUR"));
    assert_eq!(e.direction, Direction::Debit);
    assert!(!e.reversal);
    assert_eq!(
        e.end_to_end_id.as_deref(),
        Some("435005714488-ABNO33052620")
    );
    assert_eq!(e.bank_tx_code.as_deref(), Some("PMNT/RDDT/ESDD"));
    // A non-reversal debit: the counterparty is the creditor.
    assert_eq!(e.payer_name.as_deref(), Some("INSURANCE COMPANY TESTX"));
    assert_eq!(e.payer_account.as_deref(), Some("NL46ABNA0499998748"));
    assert_eq!(
        e.remittance.as_deref(),
        Some("Insurance policy 857239PERIOD 01.01.2013 - 31.12.2013")
    );
    assert_eq!(e.instructed_amount, None, "TxAmt equals the entry amount");

    let e = &st.entries[1];
    assert_eq!(e.amount, money("594.05", "EUR"));
    assert_eq!(e.direction, Direction::Debit);
    assert!(e.reversal);
    assert_eq!(e.instructed_amount, Some(money("564.05", "EUR")));
    assert_eq!(e.return_reason.as_deref(), Some("AC06"));
    assert_eq!(e.bank_tx_code.as_deref(), Some("PMNT/IDDT/UPDD"));
    // Reversal: the debtor is preferred, missing, so the creditor is used.
    assert_eq!(e.payer_name.as_deref(), Some("Test Customer"));

    let e = &st.entries[2];
    assert_eq!(e.amount, money("1405.31", "EUR"));
    assert_eq!(e.direction, Direction::Credit);
    assert_eq!(e.end_to_end_id.as_deref(), Some("115"));
    assert_eq!(e.payer_name.as_deref(), Some("3rd party Media"));
    assert_eq!(e.payer_account.as_deref(), Some("NL69ABNA0522123643"));
    assert_eq!(e.remittance, None);
    assert_eq!(e.reference, None);
    assert_eq!(
        e.additional_info.as_deref(),
        Some("#RD PARTY MEDIA CUSNO 90782 4210773")
    );

    // Documented fact: the file's balances do not reconcile with its entries, which is why
    // the camt reader does not check opening + entries = closing.
    let net = sum_signed(&st.entries.iter().collect::<Vec<_>>());
    assert_ne!(dec("15568.27") + net, dec("15121.12"));
}

// ---------------------------------------------------------------------------------------
// Hand-written fixtures.

#[test]
fn camt054_v02_cny_batch_reversal_pending() {
    let bytes = fixture("camt054_v02_cny.xml");
    let p = parse_bytes(&bytes, "camt054_v02_cny.xml");
    assert_eq!(p.format, Format::Camt054);
    assert_eq!(p.header.version.as_deref(), Some("camt.054.001.02"));
    assert_eq!(p.header.file_id.as_deref(), Some("ICBCSH20241106-0001"));
    assert_eq!(
        p.header.created_at.as_deref(),
        Some("2024-11-06T08:30:00+08:00")
    );
    assert_eq!(p.statements.len(), 1);
    let st = &p.statements[0];
    assert_eq!(st.statement_id.as_deref(), Some("NTF-20241106-01"));
    assert_eq!(st.account, "1001234509000012345");
    assert_eq!(st.currency, Some(Currency::CNY));
    assert_eq!(st.opening_balance, None);
    assert_eq!(
        st.declared,
        StatementTotals {
            entry_count: Some(4),
            sum: Some(dec("1559.38")),
            net: Some(dec("1319.38")),
            credit_count: Some(3),
            credit_sum: Some(dec("1439.38")),
            debit_count: Some(1),
            debit_sum: Some(dec("120.00")),
        }
    );
    let es = &st.entries;
    assert_eq!(es.len(), 6, "4 entries, one a batch of 3");
    let seqs: Vec<(u32, u32, u32)> = es
        .iter()
        .map(|e| (e.entry_seq, e.tx_seq, e.tx_count))
        .collect();
    assert_eq!(
        seqs,
        vec![
            (1, 1, 1),
            (2, 1, 3),
            (2, 2, 3),
            (2, 3, 3),
            (3, 1, 1),
            (4, 1, 1)
        ]
    );
    let total: Decimal = es.iter().map(|e| e.amount.amount()).sum();
    assert_eq!(total, dec("1559.38"));
    assert_eq!(sum_dir(&p, Direction::Credit), dec("1439.38"));
    assert_eq!(sum_dir(&p, Direction::Debit), dec("120.00"));
    assert!(es.iter().all(|e| e.currency == Currency::CNY));

    let e = &es[0];
    assert_eq!(e.amount, cny("350.00"));
    assert_eq!(e.direction, Direction::Credit);
    assert_eq!(e.status, EntryStatus::Booked);
    assert_eq!(e.end_to_end_id, None, "NOTPROVIDED is dropped");
    assert_eq!(e.tx_id.as_deref(), Some("TX20241105000001"));
    assert_eq!(e.bank_ref.as_deref(), Some("ICBC-T-0001"));
    assert_eq!(e.entry_ref.as_deref(), Some("ICBC-E-0001"));
    assert_eq!(e.payer_name.as_deref(), Some("张伟"));
    assert_eq!(e.payer_account.as_deref(), Some("6222020200012345678"));
    assert_eq!(e.remittance.as_deref(), Some("电费 户号3100000007 11月"));
    assert_eq!(e.bank_tx_code.as_deref(), Some("PMNT/RCDT/DMCT"));
    assert_eq!(e.booking_date, date("2024-11-05"));
    assert_eq!(e.instructed_amount, None);

    // The batch: amounts are the transactions' own, and add up to the entry.
    let batch: Vec<&Entry> = es.iter().filter(|e| e.entry_seq == 2).collect();
    assert_eq!(
        batch.iter().map(|e| e.amount).collect::<Vec<_>>(),
        vec![cny("200.00"), cny("300.25"), cny("500.25")]
    );
    assert_eq!(sum_signed(&batch), dec("1000.50"));
    assert!(batch
        .iter()
        .all(|e| e.entry_ref.as_deref() == Some("ICBC-E-0002")
            && e.additional_info.as_deref() == Some("代收电费批量入账")
            && e.value_date == date("2024-11-06")));
    assert_eq!(batch[0].bank_ref.as_deref(), Some("ICBC-T-0002-1"));
    assert_eq!(batch[0].remittance.as_deref(), Some("电费 户号3100000008"));
    assert_eq!(batch[0].payer_name.as_deref(), Some("李娜"));
    assert_eq!(
        batch[1].payer_name.as_deref(),
        Some("Wang & Sons Trading Co.")
    );
    assert_eq!(
        batch[1].payer_account.as_deref(),
        Some("DE89370400440532013000")
    );
    assert_eq!(batch[1].reference.as_deref(), Some("RF18539007547034"));
    assert_eq!(batch[1].remittance, None);
    assert_eq!(batch[2].payer_name.as_deref(), Some("刘洋"), "trimmed");
    assert_eq!(
        batch[2].remittance.as_deref(),
        Some("电费 <户号3100000009> 10-11月"),
        "CDATA"
    );
    assert_eq!(batch[2].end_to_end_id, None);

    let e = &es[4];
    assert_eq!(e.amount, cny("120.00"));
    assert_eq!(e.direction, Direction::Debit);
    assert!(e.reversal);
    assert_eq!(e.return_reason.as_deref(), Some("AC04"));
    assert_eq!(e.payer_name.as_deref(), Some("赵强"));
    assert_eq!(
        e.bank_ref.as_deref(),
        Some("ICBC-E-0003"),
        "no TxDtls AcctSvcrRef"
    );
    assert_eq!(e.end_to_end_id.as_deref(), Some("E2E-20241101-0042"));

    let e = &es[5];
    assert_eq!(e.amount, cny("88.88"));
    assert_eq!(e.status, EntryStatus::Pending);
    assert_eq!(e.booking_date, None);
    assert_eq!(e.value_date, date("2024-11-07"));
    assert_eq!(e.bank_tx_code.as_deref(), Some("RCV"));
    assert_eq!(e.additional_info.as_deref(), Some("在途款项"));
    assert_eq!(e.payer_name, None);
}

#[test]
fn camt054_v08_cny_new_shapes() {
    let bytes = fixture("camt054_v08_cny.xml");
    let p = parse_bytes(&bytes, "camt054_v08_cny.xml");
    assert_eq!(p.format, Format::Camt054);
    assert_eq!(p.header.version.as_deref(), Some("camt.054.001.08"));
    assert_eq!(p.header.file_id.as_deref(), Some("BOCSH-NTF-20241105-77"));
    let st = &p.statements[0];
    assert_eq!(st.account, "4567890123456789");
    assert_eq!(st.declared.entry_count, Some(4));
    assert_eq!(st.declared.sum, Some(dec("776.80")));
    assert_eq!(st.declared.net, Some(dec("656.80")));
    let es = &st.entries;
    assert_eq!(es.len(), 5);
    assert_eq!(es.iter().map(|e| e.entry_seq).max(), Some(4));
    assert_eq!(sum_dir(&p, Direction::Credit), dec("716.80"));
    assert_eq!(sum_dir(&p, Direction::Debit), dec("60.00"));

    let e = &es[0];
    assert_eq!(e.amount, cny("256.80"));
    assert_eq!(e.status, EntryStatus::Booked, "Sts/Cd");
    assert_eq!(
        e.booking_date,
        date("2024-11-05"),
        "date part of BookgDt/DtTm"
    );
    assert_eq!(e.value_date, date("2024-11-05"));
    assert_eq!(
        e.payer_name.as_deref(),
        Some("李娜"),
        "Dbtr/Pty/Nm, not the Cdtr"
    );
    assert_eq!(e.payer_account.as_deref(), Some("6217000010001234567"));
    assert_eq!(e.remittance.as_deref(), Some("电费 户号3100000007 11月"));
    assert_eq!(e.end_to_end_id.as_deref(), Some("E2E-20241105-0001"));
    assert_eq!(e.tx_id.as_deref(), Some("TX0001"));
    assert_eq!(e.bank_ref.as_deref(), Some("BOC-TX-1"));
    assert_eq!(e.entry_ref.as_deref(), Some("BOC-E-1"));
    assert_eq!(e.additional_info.as_deref(), Some("网银转账"));
    assert_eq!(e.instructed_amount, None);

    assert_eq!((es[1].amount, es[2].amount), (cny("150.00"), cny("300.00")));
    assert_eq!((es[1].tx_count, es[2].tx_seq), (2, 2));
    assert_eq!(es[1].reference.as_deref(), Some("RF712348231"));
    assert_eq!(es[1].payer_name.as_deref(), Some("周杰"));
    assert_eq!(es[2].end_to_end_id, None, "notprovided, any case");
    assert_eq!(
        es[2].remittance.as_deref(),
        Some("电费 户号3100000011 11月 补缴")
    );
    assert_eq!(es[2].payer_account.as_deref(), Some("6212260200011112222"));

    let e = &es[3];
    assert_eq!((e.amount, e.direction), (cny("60.00"), Direction::Debit));
    assert!(e.reversal, "RvslInd 1");
    assert_eq!(
        e.payer_name.as_deref(),
        Some("王芳"),
        "reversal: the debtor"
    );
    assert_eq!(e.return_reason.as_deref(), Some("MS03"));

    assert_eq!(es[4].status, EntryStatus::Info);
    assert_eq!(es[4].amount, cny("10.00"));
}

#[test]
fn camt053_v04_two_statements_with_balances() {
    let bytes = fixture("camt053_v04_cny.xml");
    let p = parse_bytes(&bytes, "camt053_v04_cny.xml");
    assert_eq!(p.format, Format::Camt053);
    assert_eq!(p.header.version.as_deref(), Some("camt.053.001.04"));
    assert_eq!(p.header.file_id.as_deref(), Some("CCB-STMT-20241031"));
    assert_eq!(p.statements.len(), 2);

    let st = &p.statements[0];
    assert_eq!(st.statement_id.as_deref(), Some("STMT-2024-10-31-1"));
    assert_eq!(st.account, "310066726018010012345");
    assert_eq!(st.currency, Some(Currency::CNY));
    assert_eq!(st.opening_balance, Some(dec("10000.00")));
    assert_eq!(st.closing_balance, Some(dec("10999.50")));
    assert_eq!(st.declared.entry_count, Some(3));
    assert_eq!(st.declared.net, Some(dec("999.50")));
    assert_eq!(st.entries.len(), 3);
    // This fixture does reconcile.
    let net = sum_signed(&st.entries.iter().collect::<Vec<_>>());
    assert_eq!(
        st.opening_balance.unwrap() + net,
        st.closing_balance.unwrap()
    );

    let e = &st.entries[0];
    assert_eq!((e.amount, e.direction), (cny("1200.00"), Direction::Credit));
    assert_eq!(e.payer_name.as_deref(), Some("赵强"));
    assert_eq!(e.remittance.as_deref(), Some("电费 户号3100000009 10月"));
    assert_eq!(e.bank_ref.as_deref(), Some("CCB20241031000001"));
    let e = &st.entries[1];
    assert_eq!((e.amount, e.direction), (cny("300.00"), Direction::Debit));
    assert_eq!(
        e.payer_name.as_deref(),
        Some("陈静"),
        "non-reversal debit: the creditor"
    );
    assert_eq!(e.payer_account.as_deref(), Some("6214830212345678"));
    assert_eq!(e.bank_tx_code.as_deref(), Some("PMNT/ICDT/DMCT"));
    let e = &st.entries[2];
    assert_eq!(e.amount, cny("99.50"));
    assert_eq!(e.bank_tx_code.as_deref(), Some("INT"));
    assert_eq!(e.additional_info.as_deref(), Some("利息"));
    assert_eq!((e.tx_count, &e.payer_name), (1, &None));

    let st = &p.statements[1];
    assert_eq!(st.account, "310066726018010099999");
    assert_eq!(st.currency, Some(Currency::CNY), "from the balances");
    assert_eq!(
        st.opening_balance,
        Some(dec("-500.00")),
        "PRCD, debit balance"
    );
    assert_eq!(st.closing_balance, Some(dec("-500.00")));
    assert_eq!(st.declared.entry_count, Some(0));
    assert!(st.entries.is_empty());
}

#[test]
fn camt052_v08_prefixed_elements() {
    let bytes = fixture("camt052_v08_cny.xml");
    let p = parse_bytes(&bytes, "camt052_v08_cny.xml");
    assert_eq!(p.format, Format::Camt052);
    assert_eq!(p.header.version.as_deref(), Some("camt.052.001.08"));
    assert_eq!(p.header.file_id.as_deref(), Some("CMB-RPT-20241106-1400"));
    let st = &p.statements[0];
    assert_eq!(st.statement_id.as_deref(), Some("RPT-20241106-1400"));
    assert_eq!(st.account, "6225880137000123");
    assert_eq!(
        st.opening_balance,
        Some(dec("5000.00")),
        "PRCD when there is no OPBD"
    );
    assert_eq!(st.closing_balance, None, "ITBD is not a closing balance");
    assert_eq!(st.declared.sum, Some(dec("695.00")));
    let es = &st.entries;
    assert_eq!(es.len(), 5);
    assert_eq!(sum_dir(&p, Direction::Credit), dec("675.00"));
    assert_eq!(sum_dir(&p, Direction::Debit), dec("20.00"));

    assert_eq!(es[0].status, EntryStatus::Pending);
    assert_eq!(es[0].payer_name.as_deref(), Some("黄敏"));
    assert_eq!(
        es[0].remittance.as_deref(),
        Some("电费 户号3100000021 11月")
    );
    let batch: Vec<&Entry> = es.iter().filter(|e| e.entry_seq == 2).collect();
    assert_eq!(batch.len(), 3);
    assert_eq!(sum_signed(&batch), dec("600.00"));
    assert!(batch
        .iter()
        .all(|e| e.booking_date == date("2024-11-06") && e.tx_count == 3));
    assert_eq!(batch[0].reference.as_deref(), Some("3100000031"));
    assert_eq!(batch[2].payer_name.as_deref(), Some("马超"));
    assert_eq!(batch[2].bank_ref.as_deref(), Some("CMB-B-600-3"));
    let fee = &es[4];
    assert_eq!(
        (fee.amount, fee.direction),
        (cny("20.00"), Direction::Debit)
    );
    assert_eq!(fee.bank_tx_code.as_deref(), Some("ACMT/MDOP/CHRG"));
    assert_eq!(fee.additional_info.as_deref(), Some("手续费"));
}

#[test]
fn small_base_of_broken_files_is_valid() {
    let bytes = fixture("camt054_v08_small.xml");
    let p = parse_bytes(&bytes, "camt054_v08_small.xml");
    assert_eq!(p.entries().count(), 3);
    let total: Decimal = p.entries().map(|e| e.amount.amount()).sum();
    assert_eq!(total, dec("362.50"));
}

#[test]
fn events_come_in_order_and_statement_header_has_no_entries() {
    let bytes = fixture("camt053_v04_cny.xml");
    let kinds: Vec<String> = all_items(&bytes, Format::Camt053)
        .into_iter()
        .map(|x| match x.unwrap() {
            Event::File(f, _) => format!("F{}", f.as_str()),
            Event::Statement(s) => {
                assert!(s.entries.is_empty());
                "S".into()
            }
            Event::Entry(_) => "E".into(),
            Event::StatementEnd => "/S".into(),
            Event::Finding(_) => "!".into(),
        })
        .collect();
    assert_eq!(kinds, ["Fcamt053", "S", "E", "E", "E", "/S", "S", "/S"]);
}

#[test]
fn configured_format_is_only_a_hint() {
    let bytes = fixture("camt054_v08_cny.xml");
    let items = all_items(&bytes, Format::Camt052);
    assert!(matches!(&items[0], Ok(Event::File(Format::Camt054, _))));
    assert!(items.iter().all(|x| x.is_ok()));
}

#[test]
fn sniff_prefers_the_root_element() {
    assert_eq!(
        sniff(&fixture("camt054_v02_cny.xml")),
        Some(Format::Camt054)
    );
    assert_eq!(
        sniff(&fixture("camt053_v04_cny.xml")),
        Some(Format::Camt053)
    );
    assert_eq!(
        sniff(&fixture("camt052_v08_cny.xml")),
        Some(Format::Camt052)
    );
    assert_eq!(sniff(&fixture("broken/not_camt_pain001.xml")), None);
    assert_eq!(sniff(b""), None);
    // A pain.001 that mentions camt.054 in a comment is still a pain.001.
    let pain = b"<?xml version=\"1.0\"?><!-- answers camt.054 --><Document \
        xmlns=\"urn:iso:std:iso:20022:tech:xsd:pain.001.001.03\"><CstmrCdtTrfInitn/></Document>";
    assert_eq!(
        sniff_text(pain),
        Some(Format::Camt054),
        "what plain text search says"
    );
    assert_eq!(sniff(pain), None);
    // The namespace decides when the head stops before the message element.
    let head = b"<Document xmlns=\"urn:iso:std:iso:20022:tech:xsd:camt.053.001.08\">\n  ";
    assert_eq!(sniff(head), Some(Format::Camt053));
}

#[test]
fn open_with_sniffing_reads_a_prefixed_file() {
    let bytes = fixture("camt052_v08_cny.xml");
    let reader = open(None, &bytes[..], "x.xml").unwrap();
    assert_eq!(
        reader.filter(|x| matches!(x, Ok(Event::Entry(_)))).count(),
        5
    );
}

// ---------------------------------------------------------------------------------------
// Broken files.

#[test]
fn broken_truncated() {
    let bytes = fixture("broken/truncated.xml");
    let items = all_items(&bytes, Format::Camt054);
    // What came before the cut was streamed (the caller quarantines the whole file).
    assert!(matches!(items[0], Ok(Event::File(..))));
    let e = broken("truncated.xml");
    let last_line = bytes.iter().filter(|b| **b == b'\n').count() as u64 + 1;
    assert_eq!(
        e.location,
        format!("line {last_line}, element {NTF}/Ntry/NtryDtls/Btch/TtlAmt")
    );
    assert!(e.reason.contains("truncated"), "{}", e.reason);
}

#[test]
fn broken_wrong_txssummry_sum() {
    let bytes = fixture("broken/wrong_txssummry_sum.xml");
    let e = broken("wrong_txssummry_sum.xml");
    let line = line_of(&bytes, "<Sum>400.00</Sum>");
    assert_eq!(
        e.location,
        format!("line {line}, element {NTF}/TxsSummry/TtlNtries/Sum")
    );
    assert_eq!(
        e.reason,
        "failed check `entries_sum`: TxsSummry/TtlNtries/Sum declares 400.00 but the entries add up to 362.50"
    );
}

/// A batch whose `NbOfTxs` counts more transactions than its `TxDtls` give, while their
/// amounts add up to the entry: each `TxDtls` is a line, and a `batch_count` warning notes the
/// count (banks count their whole batch there); a `strict` bank ingests it.
#[test]
fn a_batch_count_that_differs_is_a_warning_when_the_money_agrees() {
    let bytes = fixture("findings/wrong_batch_nboftxs.xml");
    let line = line_of(&bytes, "<NbOfTxs>3</NbOfTxs>");
    let f = parse_all(Some(Format::Camt054), &bytes[..], "test.xml").unwrap();
    let lines: Vec<&Entry> = f.entries().filter(|e| e.tx_count == 2).collect();
    assert_eq!(lines.len(), 2, "{:?}", f.entries().collect::<Vec<_>>());
    assert_eq!(f.checks.len(), 1, "{:?}", f.checks);
    let c = &f.checks[0];
    assert_eq!(c.check, "batch_count");
    assert_eq!(c.severity, crate::formats::Severity::Warning);
    assert_eq!((c.declared.as_str(), c.computed.as_str()), ("3", "2"));
    assert_eq!(c.line, line);
    assert_eq!(
        c.location,
        format!("line {line}, element {NTF}/Ntry/NtryDtls/Btch/NbOfTxs")
    );
    assert!(
        c.message
            .starts_with("Btch/NbOfTxs declares 3 transactions but the entry gives 2 TxDtls"),
        "{}",
        c.message
    );
    // strict: warnings do not stop it
    assert!(f.strict("test.xml").is_ok());
}

#[test]
fn broken_wrong_batch_ttlamt() {
    let bytes = fixture("broken/wrong_batch_ttlamt.xml");
    let e = broken("wrong_batch_ttlamt.xml");
    let line = line_of(&bytes, "360.00</TtlAmt>");
    assert_eq!(
        e.location,
        format!("line {line}, element {NTF}/Ntry/NtryDtls/Btch/TtlAmt")
    );
    assert_eq!(
        e.reason,
        "failed check `batch_total`: Btch/TtlAmt declares 360.00 CNY but its TxDtls add up to 350.00 CNY CRDT"
    );
}

#[test]
fn broken_bad_date() {
    let bytes = fixture("broken/bad_date.xml");
    let e = broken("bad_date.xml");
    let line = line_of(&bytes, "<Dt>2024-13-45</Dt>");
    assert_eq!(
        e.location,
        format!("line {line}, element {NTF}/Ntry/BookgDt/Dt")
    );
    assert!(
        e.reason.contains("`2024-13-45` is not a date"),
        "{}",
        e.reason
    );
}

#[test]
fn broken_bad_amount() {
    let bytes = fixture("broken/bad_amount.xml");
    let e = broken("bad_amount.xml");
    let line = line_of(&bytes, "<Amt Ccy=\"CNY\">12,50</Amt>");
    assert_eq!(e.location, format!("line {line}, element {NTF}/Ntry/Amt"));
    assert_eq!(e.reason, "amount `12,50` is not a decimal");
}

#[test]
fn broken_missing_ccy() {
    let bytes = fixture("broken/missing_ccy.xml");
    let e = broken("missing_ccy.xml");
    let line = line_of(&bytes, "<Amt>350.00</Amt>");
    assert_eq!(e.location, format!("line {line}, element {NTF}/Ntry/Amt"));
    assert!(e.reason.contains("no Ccy attribute"), "{}", e.reason);
}

#[test]
fn broken_empty() {
    let e = broken("empty.xml");
    assert_eq!(e.location, "line 1, outside any element");
    assert_eq!(e.reason, "the file is empty");
    // Through `open` with sniffing, too.
    assert!(open(None, &b""[..], "empty.xml").is_err());
}

#[test]
fn broken_not_camt() {
    let bytes = fixture("broken/not_camt_pain001.xml");
    let e = broken("not_camt_pain001.xml");
    let line = line_of(&bytes, "<CstmrCdtTrfInitn>");
    assert_eq!(
        e.location,
        format!("line {line}, element Document/CstmrCdtTrfInitn")
    );
    assert!(
        e.reason
            .contains("`CstmrCdtTrfInitn` is not a camt message"),
        "{}",
        e.reason
    );
    assert!(
        e.reason.contains("configured format camt054"),
        "{}",
        e.reason
    );
}

#[test]
fn broken_garbage() {
    let e = broken("garbage.bin");
    assert_eq!(e.location, "line 1, outside any element");
    assert!(e.reason.contains("not an XML document"), "{}", e.reason);
}

// Smaller defects, made in memory from the valid small fixture.

fn small_with(from: &str, to: &str) -> Vec<u8> {
    let text = String::from_utf8(fixture("camt054_v08_small.xml")).unwrap();
    assert!(text.contains(from), "`{from}` not in the fixture");
    text.replacen(from, to, 1).into_bytes()
}

fn error_of(bytes: &[u8]) -> ParseError {
    match all_items(bytes, Format::Camt054).pop() {
        Some(Err(e)) => e,
        other => panic!("expected an error, got {other:?}"),
    }
}

#[test]
fn defects_found_in_memory() {
    let cases: &[(&str, &str, &str, &str)] = &[
        // (from, to, element the error names, words of the reason)
        (
            "<Amt Ccy=\"CNY\">250.00</Amt>",
            "<Amt Ccy=\"CNY\">240.00</Amt>",
            "Ntry/NtryDtls/Btch/TtlAmt",
            "add up to 340.00",
        ),
        (
            "<Amt Ccy=\"CNY\">12.50</Amt>",
            "<Amt Ccy=\"CNY\">-12.50</Amt>",
            "Ntry/Amt",
            "negative",
        ),
        (
            "<Amt Ccy=\"CNY\">12.50</Amt>",
            "<Amt Ccy=\"CNY\">12.505</Amt>",
            "Ntry/Amt",
            "decimal places",
        ),
        (
            "<Amt Ccy=\"CNY\">12.50</Amt>",
            "<Amt Ccy=\"cny\">12.50</Amt>",
            "Ntry/Amt",
            "ISO 4217",
        ),
        (
            "<CdtDbtInd>CRDT</CdtDbtInd>",
            "<CdtDbtInd>CREDIT</CdtDbtInd>",
            "Ntry/CdtDbtInd",
            "neither CRDT nor DBIT",
        ),
        ("<CdtDbtInd>CRDT</CdtDbtInd>", "", "Ntry", "no CdtDbtInd"),
        ("<Amt Ccy=\"CNY\">12.50</Amt>", "", "Ntry", "no Amt"),
        (
            "<Cd>BOOK</Cd>",
            "<Cd>WHAT</Cd>",
            "Ntry/Sts/Cd",
            "unknown entry status",
        ),
        (
            "<NbOfNtries>2</NbOfNtries>",
            "<NbOfNtries>3</NbOfNtries>",
            "TxsSummry/TtlNtries/NbOfNtries",
            "has 2 entries",
        ),
        (
            "2024-11-05T18:00:00+08:00",
            "2024-11-05 18:00",
            "GrpHdr/CreDtTm",
            "not a date-time",
        ),
        (
            "<Nm>张伟</Nm>",
            "<Nm>张伟 & co</Nm>",
            "Pty/Nm",
            "malformed XML",
        ),
        ("</Dbtr>", "</Cdtr>", "Dbtr", "malformed XML"),
        ("<Id>4567890123456789</Id>", "", "Ntfctn/Ntry", "no account"),
        (
            "<Amt Ccy=\"CNY\">12.50</Amt>",
            "<Amt Ccy=\"CNY\"/>",
            "Ntry/Amt",
            "amount is empty",
        ),
        (
            "<Ntfctn>",
            "<Stmt>",
            "Ntfctn/Stmt",
            "does not belong in a camt054 message",
        ),
        (
            "<Ntry>",
            "<Ntry><RvslInd>yes</RvslInd>",
            "Ntry/RvslInd",
            "not a boolean",
        ),
    ];
    for (from, to, element, words) in cases {
        let e = error_of(&small_with(from, to));
        assert!(
            e.location.starts_with("line ") && e.location.contains(element),
            "{from} -> {to}: location {}",
            e.location
        );
        assert!(
            e.reason.contains(words),
            "{from} -> {to}: reason {}",
            e.reason
        );
    }
}

#[test]
fn transactions_must_add_up_to_the_entry() {
    // Without Btch totals, the TxDtls of a batch must still add up to Ntry/Amt.
    let text = String::from_utf8(small_with("<TtlAmt Ccy=\"CNY\">350.00</TtlAmt>", "")).unwrap();
    let bytes = text.replacen(
        "<Amt Ccy=\"CNY\">250.00</Amt>",
        "<Amt Ccy=\"CNY\">240.00</Amt>",
        1,
    );
    let e = error_of(bytes.as_bytes());
    let line = line_of(bytes.as_bytes(), "</Ntry>\n    </Ntfctn>");
    assert_eq!(e.location, format!("line {line}, element {NTF}/Ntry"));
    assert_eq!(
        e.reason,
        "failed check `entry_details`: the 2 TxDtls amounts add up to 340.00 but Ntry/Amt is 350.00 CRDT: the entry is one line of its own amount"
    );
    // read leniently, the entry is one line of its own amount, carrying what the details
    // agree on, with the finding beside it
    let f = parse_all(Some(Format::Camt054), bytes.as_bytes(), "test.xml").unwrap();
    let batch: Vec<&Entry> = f
        .entries()
        .filter(|e| e.amount.amount() == Decimal::new(35000, 2))
        .collect();
    assert_eq!(batch.len(), 1);
    assert_eq!(batch[0].tx_count, 1);
    assert_eq!(f.checks.len(), 1);
    assert_eq!(f.checks[0].check, "entry_details");
    assert_eq!(f.checks[0].declared, "350.00 CNY CRDT");
    assert_eq!(f.checks[0].computed, "340.00 CNY CRDT");
}

#[test]
fn entities_and_crlf_and_bom() {
    let text = String::from_utf8(fixture("camt054_v08_small.xml")).unwrap();
    let text = text
        .replacen(
            "<Nm>张伟</Nm>",
            "<Nm>&#24352;&#x4F1F; &lt;A&amp;B&gt;</Nm>",
            1,
        )
        .replace('\n', "\r\n");
    let mut bytes = b"\xEF\xBB\xBF".to_vec();
    bytes.extend_from_slice(text.as_bytes());
    let p = parse_bytes(&bytes, "bom.xml");
    let first = p.entries().next().unwrap();
    assert_eq!(first.payer_name.as_deref(), Some("张伟 <A&B>"));
    assert_eq!(p.entries().count(), 3);
}

#[test]
fn batch_without_details_is_one_transaction() {
    // A bank that reports only the batch total: Btch/NbOfTxs without TxDtls.
    let text = String::from_utf8(fixture("camt054_v08_small.xml")).unwrap();
    let start = text
        .find("<TxDtls>\n            <Amt Ccy=\"CNY\">100.00")
        .unwrap();
    let end = text.rfind("</TxDtls>").unwrap() + "</TxDtls>".len();
    let bytes = format!("{}{}", &text[..start], &text[end..]);
    let p = parse_bytes(bytes.as_bytes(), "batch-only.xml");
    let last = p.entries().last().unwrap();
    assert_eq!((last.amount, last.tx_count), (cny("350.00"), 1));
}

#[test]
fn unsupported_encoding_is_refused() {
    let text = String::from_utf8(fixture("camt054_v08_small.xml")).unwrap();
    let bytes = text.replacen("encoding=\"UTF-8\"", "encoding=\"GBK\"", 1);
    let e = error_of(bytes.as_bytes());
    assert!(
        e.reason.contains("unsupported encoding `gbk`"),
        "{}",
        e.reason
    );
}

// ---------------------------------------------------------------------------------------
// Fuzzing: never panics, always ends.

fn drain(bytes: &[u8]) {
    let mut r = CamtReader::new(bytes, "fuzz.xml", Format::Camt054);
    let mut n = 0usize;
    let mut errors = 0usize;
    for item in r.by_ref() {
        n += 1;
        if item.is_err() {
            errors += 1;
        }
        assert!(n < 100_000, "the reader does not terminate");
    }
    assert!(errors <= 1);
    assert!(r.next().is_none());
    // `sniff` must not panic either.
    let _ = sniff(bytes);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(crate::formats::fuzz_cases(256)))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        drain(&bytes);
    }

    #[test]
    fn arbitrary_xml_ish_text_never_panics(text in "[<>/a-zA-Z =\"'&;#x0-9.:\n-]{0,400}") {
        drain(text.as_bytes());
        let doc = format!("<Document><BkToCstmrStmt><Stmt>{text}</Stmt></BkToCstmrStmt></Document>");
        drain(doc.as_bytes());
    }

    #[test]
    fn mutated_fixture_never_panics(
        which in 0usize..3,
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..6),
        cut in prop::option::of(any::<prop::sample::Index>()),
    ) {
        let name = ["camt054_v08_cny.xml", "camt054_v02_cny.xml", "camt052_v08_cny.xml"][which];
        let mut bytes = fixture(name);
        for (at, b) in flips {
            let i = at.index(bytes.len());
            bytes[i] = b;
        }
        if let Some(cut) = cut {
            let len = cut.index(bytes.len());
            bytes.truncate(len);
        }
        drain(&bytes);
    }

    /// The real camt files of the corpus and of fixtures/real-extra, with random edits.
    #[test]
    fn mutated_real_files_never_panic(
        which in any::<prop::sample::Index>(),
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..6),
        cut in prop::option::of(any::<prop::sample::Index>()),
    ) {
        let mut seeds = real_seeds();
        let mut bytes = seeds.swap_remove(which.index(seeds.len()));
        for (at, b) in flips {
            let i = at.index(bytes.len());
            bytes[i] = b;
        }
        if let Some(cut) = cut {
            let len = cut.index(bytes.len());
            bytes.truncate(len);
        }
        drain(&bytes);
    }
}

fn real_seeds() -> Vec<Vec<u8>> {
    crate::formats::fuzz_seeds(&["camt052", "camt053", "camt054"], 64 * 1024)
}

/// Every real camt seed, cut every 211 bytes: never a panic, and every cut is an error.
#[test]
fn every_cut_of_every_real_seed_is_an_error_without_panic() {
    let seeds = real_seeds();
    assert!(seeds.len() >= 30, "{}", seeds.len());
    for b in &seeds {
        let end = b.len().saturating_sub(20);
        for len in (0..end).step_by(211) {
            drain(&b[..len]);
            let items = all_items(&b[..len], Format::Camt053);
            assert!(matches!(items.last(), Some(Err(_))), "a cut at byte {len}");
        }
    }
}

#[test]
fn every_truncation_of_a_fixture_is_an_error() {
    let bytes = fixture("camt054_v08_small.xml");
    let end = bytes.len() - "</Document>\n".len();
    for len in (0..end).step_by(7) {
        let items = all_items(&bytes[..len], Format::Camt054);
        assert!(
            matches!(items.last(), Some(Err(_))),
            "a file cut at byte {len} must be an error"
        );
    }
}

// ---------------------------------------------------------------------------------------
// Streaming: a generated file far bigger than what the reader may hold.

/// Amount of generated entry `i`, in fen.
fn generated_fen(i: u64) -> i64 {
    (i % 9_999 + 1) as i64
}

/// Produces a camt.054.001.08 with `n` entries lazily, a few entries per refill.
struct GeneratedCamt054 {
    n: u64,
    next: u64,
    stage: u8,
    chunk: Vec<u8>,
    off: usize,
    produced: Arc<AtomicU64>,
}

impl GeneratedCamt054 {
    fn new(n: u64, produced: Arc<AtomicU64>) -> Self {
        GeneratedCamt054 {
            n,
            next: 0,
            stage: 0,
            chunk: Vec::new(),
            off: 0,
            produced,
        }
    }

    fn refill(&mut self) {
        use std::fmt::Write;
        let mut s = String::new();
        match self.stage {
            0 => {
                let sum: i64 = (0..self.n).map(generated_fen).sum();
                write!(
                    s,
                    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
                     <Document xmlns=\"urn:iso:std:iso:20022:tech:xsd:camt.054.001.08\">\n\
                     <BkToCstmrDbtCdtNtfctn><GrpHdr><MsgId>GEN-1</MsgId>\
                     <CreDtTm>2024-11-05T00:00:00</CreDtTm></GrpHdr>\n<Ntfctn><Id>GEN</Id>\
                     <Acct><Id><Othr><Id>4567890123456789</Id></Othr></Id><Ccy>CNY</Ccy></Acct>\n\
                     <TxsSummry><TtlNtries><NbOfNtries>{}</NbOfNtries><Sum>{}</Sum></TtlNtries>\
                     </TxsSummry>\n",
                    self.n,
                    Decimal::new(sum, 2)
                )
                .unwrap();
                self.stage = 1;
            }
            1 => {
                let stop = (self.next + 64).min(self.n);
                while self.next < stop {
                    let i = self.next;
                    let amt = Decimal::new(generated_fen(i), 2);
                    write!(
                        s,
                        "<Ntry><Amt Ccy=\"CNY\">{amt}</Amt><CdtDbtInd>CRDT</CdtDbtInd>\
                         <Sts><Cd>BOOK</Cd></Sts><BookgDt><Dt>2024-11-05</Dt></BookgDt>\
                         <AcctSvcrRef>R{i}</AcctSvcrRef><NtryDtls><TxDtls>\
                         <Amt Ccy=\"CNY\">{amt}</Amt><RltdPties><Dbtr><Pty><Nm>户{i}</Nm></Pty>\
                         </Dbtr></RltdPties><RmtInf><Ustrd>电费 户号{} 11月</Ustrd></RmtInf>\
                         </TxDtls></NtryDtls></Ntry>",
                        3_100_000_000u64 + i
                    )
                    .unwrap();
                    s.push('\n');
                    self.next += 1;
                }
                if self.next == self.n {
                    self.stage = 2;
                }
            }
            2 => {
                s.push_str("</Ntfctn></BkToCstmrDbtCdtNtfctn></Document>\n");
                self.stage = 3;
            }
            _ => {}
        }
        self.chunk = s.into_bytes();
        self.off = 0;
    }
}

impl Read for GeneratedCamt054 {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        if self.off == self.chunk.len() {
            if self.stage == 3 {
                return Ok(0);
            }
            self.refill();
        }
        let k = out.len().min(self.chunk.len() - self.off);
        out[..k].copy_from_slice(&self.chunk[self.off..self.off + k]);
        self.off += k;
        self.produced.fetch_add(k as u64, Ordering::Relaxed);
        Ok(k)
    }
}

#[test]
fn streams_a_generated_file_of_200k_entries() {
    const N: u64 = 200_000;
    let produced = Arc::new(AtomicU64::new(0));
    let input = BufReader::new(GeneratedCamt054::new(N, produced.clone()));
    let reader = CamtReader::new(input, "generated.xml", Format::Camt054);
    let mut count = 0u64;
    let mut sum = 0i64;
    let mut produced_at_first_entry = None;
    let mut statement_ends = 0;
    for item in reader {
        match item.expect("the generated file is valid") {
            Event::Entry(e) => {
                if count == 0 {
                    produced_at_first_entry = Some(produced.load(Ordering::Relaxed));
                }
                assert_eq!(u64::from(e.entry_seq), count + 1);
                sum += e.amount.minor();
                count += 1;
            }
            Event::StatementEnd => statement_ends += 1,
            _ => {}
        }
    }
    let expected_sum: i64 = (0..N).map(generated_fen).sum();
    assert_eq!(count, N);
    assert_eq!(sum, expected_sum);
    assert_eq!(statement_ends, 1, "the declared totals were checked");
    let total = produced.load(Ordering::Relaxed);
    assert!(total > 50_000_000, "the file is big: {total} bytes");
    // The first entry came out after reading a few kilobytes, not the file.
    let first = produced_at_first_entry.unwrap();
    assert!(first < 64 * 1024, "first entry after {first} bytes");
}

#[test]
fn broken_unknown_encoding() {
    // a camt file declared and written in GBK: camt is read as UTF-8 only
    let e = broken("unknown_encoding_gbk.xml");
    assert!(e.location.contains("line 1"), "{e}");
    assert!(
        e.reason.contains("encoding") && e.reason.contains("gbk"),
        "{e}"
    );
}
