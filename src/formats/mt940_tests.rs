//! Tests of the MT940/MT942 reader: two real third-party files, hand-written fixtures (a
//! Chinese bank's CNY statement for the utility, German `?NN` narrative in Latin-1, an MT942),
//! broken files, sniffing and fuzzing.

use super::*;
use crate::formats::{parse_all, ParsedFile};
use proptest::prelude::*;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/formats/mt940");

/// Real third-party files from OCA/bank-statement-import (AGPL-3.0), kept unmodified in
/// /work/shared: see ../shared/fixtures/real/SOURCES.md.
const OCA_ING: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../shared/fixtures/real/mt940/oca-ing.940"
);
const OCA_RABO: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../shared/fixtures/real/mt940/oca-rabo.swi"
);

fn read(path: &str) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("cannot read {path}: {e}"))
}

fn fixture(name: &str) -> Vec<u8> {
    read(&format!("{FIXTURES}/{name}"))
}

fn parse(bytes: &[u8], format: Format, name: &str) -> ParsedFile {
    parse_all(Some(format), bytes, name).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn parse_err(bytes: &[u8], format: Option<Format>, name: &str) -> ParseError {
    // as a `strict` bank reads it: the first failed check of severity `error` ends it
    let events: Vec<_> = match crate::formats::open(format, bytes, name) {
        Ok(r) => crate::formats::strict(r, name).collect(),
        Err(e) => return e,
    };
    let errs: Vec<_> = events.iter().filter_map(|e| e.as_ref().err()).collect();
    assert_eq!(
        errs.len(),
        1,
        "{name}: exactly one error expected: {events:?}"
    );
    assert!(
        events.last().unwrap().is_err(),
        "{name}: the error ends the stream"
    );
    errs[0].clone()
}

fn dec(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

fn date(s: &str) -> Option<NaiveDate> {
    Some(NaiveDate::from_str(s).unwrap())
}

/// (credit sum, debit sum) of a statement.
fn sums(s: &Statement) -> (Decimal, Decimal) {
    let mut c = Decimal::ZERO;
    let mut d = Decimal::ZERO;
    for e in &s.entries {
        match e.direction {
            Direction::Credit => c += e.amount.amount(),
            Direction::Debit => d += e.amount.amount(),
        }
    }
    (c, d)
}

#[test]
fn real_ing_file() {
    let f = parse(&read(OCA_ING), Format::Mt940, "oca-ing.940");
    assert_eq!(f.format, Format::Mt940);
    assert_eq!(f.statements.len(), 1);
    let s = &f.statements[0];
    assert_eq!(s.statement_id.as_deref(), Some("P140220000000001"));
    assert_eq!(s.account, "NL77INGB0574908765");
    assert_eq!(s.currency, Some(Currency::EUR));
    assert_eq!(s.opening_balance, Some(dec("662.23")));
    assert_eq!(s.closing_balance, Some(dec("564.35")));
    assert_eq!(s.entries.len(), 8);
    // the file's own trailer says so too: :86:/SUM/4/4/134,46/36,58/
    assert_eq!(sums(s), (dec("36.58"), dec("134.46")));
    let seqs: Vec<u32> = s.entries.iter().map(|e| e.entry_seq).collect();
    assert_eq!(seqs, (1..=8).collect::<Vec<_>>());

    let e = &s.entries[0];
    assert_eq!(e.amount.amount(), dec("1.56"));
    assert_eq!(e.direction, Direction::Credit);
    assert_eq!(e.value_date, date("2014-02-20"));
    assert_eq!(e.booking_date, date("2014-02-20"));
    // the bank reference wraps onto the next line: 00000000001 + 005
    assert_eq!(e.bank_ref.as_deref(), Some("00000000001005"));
    assert_eq!(e.tx_id.as_deref(), Some("EREF"));
    assert_eq!(e.bank_tx_code.as_deref(), Some("NTRF"));
    assert_eq!(e.end_to_end_id.as_deref(), Some("EV12341REP1231456T1234"));
    assert_eq!(e.remittance.as_deref(), Some("EV10001REP1000000T1000"));
    assert_eq!(e.payer_name.as_deref(), Some("ING BANK NV INZAKE WEB"));
    assert_eq!(e.payer_account.as_deref(), Some("NL32INGB0000012345"));
    assert!(e
        .additional_info
        .as_deref()
        .unwrap()
        .starts_with("/EREF/EV12341REP1231456T1234//CNTP/"));

    let e = &s.entries[1];
    assert_eq!(e.direction, Direction::Debit);
    assert_eq!(e.remittance.as_deref(), Some("TOTAAL 1 VZ"));
    assert_eq!(e.end_to_end_id, None);

    let e = &s.entries[2];
    assert_eq!(e.return_reason.as_deref(), Some("MS03"));
    assert_eq!(e.bank_tx_code.as_deref(), Some("NRTI"));
    assert_eq!(e.end_to_end_id.as_deref(), Some("20120123456789"));
    assert_eq!(e.payer_name.as_deref(), Some("J.Janssen"));
    assert_eq!(
        e.remittance.as_deref(),
        Some("Factuurnr 123456 Klantnr 00123")
    );

    // :86: wrapped mid-word and across a bare `-` line inside the block
    let e = &s.entries[3];
    assert_eq!(e.end_to_end_id.as_deref(), Some("EV123REP123412T1234"));
    assert_eq!(e.payer_name.as_deref(), Some("ING Bank N.V. inzake WeB"));
    assert_eq!(e.remittance.as_deref(), Some("EV123REP123412T1234"));

    assert_eq!(s.entries[4].remittance.as_deref(), Some("TOTAAL 1 POSTEN"));
    let e = &s.entries[5];
    assert_eq!(e.amount.amount(), dec("12.75"));
    assert_eq!(e.remittance.as_deref(), Some("CONTRIBUTIE FEB 2014"));
    assert_eq!(e.end_to_end_id.as_deref(), Some("20120501P0123478"));

    let e = &s.entries[6];
    assert_eq!(e.amount.amount(), dec("32.00"));
    assert_eq!(e.tx_id.as_deref(), Some("9001123412341234"));
    assert_eq!(e.reference.as_deref(), Some("9001123412341234"));
    assert_eq!(e.remittance.as_deref(), Some("9001123412341234"));
    let e = &s.entries[7];
    assert_eq!(e.amount.amount(), dec("119.00"));
    assert_eq!(e.bank_ref.as_deref(), Some("00000000001012"));
    assert_eq!(e.end_to_end_id.as_deref(), Some("15614016000384600"));
    // the trailing statement-level :86:/SUM/ is not an entry's narrative
    assert!(!e.additional_info.as_deref().unwrap().contains("/SUM/"));
}

#[test]
fn real_rabo_file() {
    let f = parse(&read(OCA_RABO), Format::Mt940, "oca-rabo.swi");
    assert_eq!(f.statements.len(), 4);
    let ids: Vec<_> = f
        .statements
        .iter()
        .map(|s| s.statement_id.clone().unwrap())
        .collect();
    assert_eq!(
        ids,
        ["940S140102", "940S140103", "940S140106", "940S140107"]
    );
    let counts: Vec<_> = f.statements.iter().map(|s| s.entries.len()).collect();
    assert_eq!(counts, [1, 0, 1, 0]);
    let balances: Vec<_> = f
        .statements
        .iter()
        .map(|s| (s.opening_balance.unwrap(), s.closing_balance.unwrap()))
        .collect();
    assert_eq!(
        balances,
        [
            (dec("4433.52"), dec("4833.52")),
            (dec("4833.52"), dec("4833.52")),
            (dec("4833.52"), dec("4798.91")),
            (dec("4798.91"), dec("4798.91")),
        ]
    );
    for s in &f.statements {
        assert_eq!(s.account, "NL34RABO0142623393");
        assert_eq!(s.currency, Some(Currency::EUR));
    }
    assert_eq!(sums(&f.statements[0]), (dec("400.00"), Decimal::ZERO));
    assert_eq!(sums(&f.statements[2]), (Decimal::ZERO, dec("34.61")));

    let e = &f.statements[0].entries[0];
    assert_eq!(e.direction, Direction::Credit);
    assert_eq!(e.value_date, date("2014-01-02"));
    assert_eq!(e.bank_tx_code.as_deref(), Some("N541"));
    assert_eq!(e.tx_id, None, "NONREF is no reference");
    assert_eq!(e.bank_ref, None);
    assert_eq!(e.payer_name.as_deref(), Some("R. SMITH"));
    // the counterparty account is on the :61: continuation line
    assert_eq!(e.payer_account.as_deref(), Some("NL66RABO0160878799"));
    assert_eq!(
        e.remittance.as_deref(),
        Some("Test money paid by other partner:")
    );

    let e = &f.statements[2].entries[0];
    assert_eq!(e.direction, Direction::Debit);
    assert_eq!(e.value_date, date("2014-01-01"));
    assert_eq!(e.payer_name.as_deref(), Some("Kosten"));
    assert_eq!(
        e.remittance.as_deref(),
        Some("Periode 01-10-2013 t/m 31-12-2013")
    );
}

#[test]
fn cny_utility_statement() {
    let f = parse(
        &fixture("cny_utility.940"),
        Format::Mt940,
        "cny_utility.940",
    );
    assert_eq!(f.format, Format::Mt940);
    assert_eq!(f.statements.len(), 2);
    let s = &f.statements[0];
    assert_eq!(s.account, "1001020109000012345");
    assert_eq!(s.currency, Some(Currency::CNY));
    assert_eq!(s.opening_balance, Some(dec("1000000.00")));
    assert_eq!(s.closing_balance, Some(dec("1012350.30")));
    assert_eq!(s.entries.len(), 6);
    assert_eq!(sums(s), (dec("12565.30"), dec("215.00")));
    let e = &s.entries[0];
    assert_eq!(e.amount.amount(), dec("256.80"));
    assert_eq!(e.currency, Currency::CNY);
    assert_eq!(e.tx_id.as_deref(), Some("B202610-0001"));
    assert_eq!(e.bank_ref.as_deref(), Some("CN20261031000001"));
    assert_eq!(
        e.remittance.as_deref(),
        Some("DIANFEI B202610-0001 ZHANG WEI")
    );
    assert_eq!(e.status, EntryStatus::Booked);
    assert_eq!((e.tx_seq, e.tx_count), (1, 1));
    let e = &s.entries[2];
    assert_eq!(e.end_to_end_id.as_deref(), Some("202610310005"));
    assert_eq!(e.payer_name.as_deref(), Some("NORTHERN STEEL WORKS"));
    assert_eq!(e.payer_account.as_deref(), Some("6217000010000000005"));
    assert_eq!(
        e.remittance.as_deref(),
        Some("ELECTRICITY BILL B202610-0005 ACCOUNT 3100000005")
    );
    assert_eq!(
        s.entries[3].remittance.as_deref(),
        Some("DIANFEI HUHAO 3100000007")
    );
    // RC: reversal of a credit, booked as a debit
    let e = &s.entries[5];
    assert_eq!((e.direction, e.reversal), (Direction::Debit, true));
    assert_eq!(e.return_reason.as_deref(), Some("AC04"));
    assert_eq!(e.bank_tx_code.as_deref(), Some("NRTI"));

    let s = &f.statements[1];
    assert_eq!(s.entries.len(), 2);
    assert_eq!(s.entries[0].entry_seq, 1);
    assert_eq!(s.closing_balance, Some(dec("1016616.90")));
    assert_eq!(
        s.entries[0].remittance.as_deref(),
        Some("HARBOUR LOGISTICS LTD B202610-0012")
    );
}

#[test]
fn structured_86_latin1_and_year_rollover() {
    let bytes = fixture("structured_86.940");
    assert!(
        std::str::from_utf8(&bytes).is_err(),
        "the fixture is Latin-1"
    );
    let f = parse(&bytes, Format::Mt940, "structured_86.940");
    assert_eq!(f.statements.len(), 2);
    let s = &f.statements[0];
    assert_eq!(s.account, "10020030/1234567890");
    assert_eq!(s.entries.len(), 2);
    let e = &s.entries[0];
    assert_eq!(e.amount.amount(), dec("95.00"));
    assert_eq!(e.end_to_end_id.as_deref(), Some("E2E-B202609-0006"));
    assert_eq!(e.remittance.as_deref(), Some("Stromrechnung B202609-0006"));
    assert_eq!(e.payer_account.as_deref(), Some("DE89370400440532013000"));
    assert_eq!(e.payer_name.as_deref(), Some("Müller Hans"));
    assert_eq!(e.bank_ref.as_deref(), Some("BANKREF0001"));
    // value date 2027-01-02, entry date 12-31: the year before
    let e = &s.entries[1];
    assert_eq!(e.value_date, date("2027-01-02"));
    assert_eq!(e.booking_date, date("2026-12-31"));
    assert_eq!(e.remittance.as_deref(), Some("Kontofuehrung Dezember"));
    assert_eq!(e.bank_ref, None);
    // :60M:/:62M: intermediate balances, no entries
    let s = &f.statements[1];
    assert!(s.entries.is_empty());
    assert_eq!(s.opening_balance, Some(dec("1584.50")));
}

#[test]
fn mt942_interim_report() {
    let bytes = fixture("interim.942");
    assert_eq!(sniff(&bytes), Some(Format::Mt942));
    let f = parse_all(None, &bytes[..], "interim.942").unwrap();
    assert_eq!(f.format, Format::Mt942);
    let s = &f.statements[0];
    assert_eq!(s.opening_balance, None);
    assert_eq!(s.created_at.as_deref(), Some("2026-10-31T12:00:00+08:00"));
    assert_eq!(s.currency, Some(Currency::CNY));
    assert_eq!(s.declared.debit_count, Some(1));
    assert_eq!(s.declared.debit_sum, Some(dec("12.00")));
    assert_eq!(s.declared.credit_count, Some(2));
    assert_eq!(s.declared.credit_sum, Some(dec("595.00")));
    assert_eq!(s.entries.len(), 3);
    assert_eq!(s.entries[1].remittance.as_deref(), Some("B202610-0006"));
}

#[test]
fn streams_file_then_statement_entries_end() {
    let bytes = fixture("cny_utility.940");
    let r = Mt940Reader::new(&bytes[..], "cny", Format::Mt940);
    let kinds: String = r
        .map(|e| match e.unwrap() {
            Event::File(..) => 'F',
            Event::Statement(_) => 'S',
            Event::Entry(_) => 'e',
            Event::StatementEnd => 'E',
            Event::Finding(_) => '!',
        })
        .collect();
    assert_eq!(kinds, "FSeeeeeeESeeE");
}

#[test]
fn broken_files() {
    let cases: &[(&str, &str, &[&str])] = &[
        (
            "truncated.940",
            "line 8",
            &["truncated file", "closing balance"],
        ),
        (
            "truncated_block.940",
            "line 14",
            &["truncated file", "{4:", "never closed"],
        ),
        (
            "wrong_closing.940",
            "line 20, field :62F:",
            &["opening 1000000.00 + entries 12350.30 != closing 1012530.30"],
        ),
        (
            "bad_date.940",
            "line 14, field :61:",
            &["`261032` is not a valid date"],
        ),
        (
            "bad_amount.940",
            "line 6, field :61:",
            &["not a SWIFT amount"],
        ),
        (
            "too_precise.940",
            "line 6, field :61:",
            &["more decimals than CNY allows"],
        ),
        (
            "empty.940",
            "start of file",
            &["empty", "no statement found"],
        ),
        (
            "wrong_currency.940",
            "line 21, field :64:",
            &["currency USD", "CNY"],
        ),
        (
            "missing_25.940",
            "line 24, field :20:",
            &["missing mandatory field :25:"],
        ),
        (
            "wrong_90d.942",
            "line 13, field :90D:",
            &["declares 1 debit entries of 21.00", "12.00"],
        ),
        ("camt053.xml", "line 1", &["not an MT940/MT942 file"]),
        ("garbage.bin", "line 1", &["not an MT940/MT942 file"]),
    ];
    for (name, loc, reasons) in cases {
        let bytes = fixture(&format!("broken/{name}"));
        let format = if name.ends_with(".942") {
            Format::Mt942
        } else {
            Format::Mt940
        };
        let e = parse_err(&bytes, Some(format), name);
        assert_eq!(e.file, *name);
        assert_eq!(e.location, *loc, "{name}: {e}");
        for r in *reasons {
            assert!(e.reason.contains(r), "{name}: `{}` lacks `{r}`", e.reason);
        }
    }
}

#[test]
fn missing_opening_balance_and_stray_tags() {
    let e = parse_err(
        b":20:X\n:25:A\n:62F:C261031CNY0,\n",
        Some(Format::Mt940),
        "m",
    );
    assert!(e.reason.contains(":60F:"), "{e}");
    let e = parse_err(b":25:A\n:20:X\n", Some(Format::Mt940), "m");
    assert_eq!(e.location, "line 1, field :25:");
    assert!(e.reason.contains("missing mandatory field :20:"));
    let e = parse_err(b"\n\n-\n", Some(Format::Mt940), "m");
    assert!(e.reason.contains("no statement found"), "{e}");
}

/// A statement over two pages (`:62M:` then `:60M:`): each page closes, the second opens where
/// the first closed, and the whole statement closes from its `:60F:` to its `:62F:`.
#[test]
fn intermediate_balances_are_checked_page_by_page_and_as_a_chain() {
    let page = |id: &str, open: &str, entries: &str, close: &str| {
        format!(":20:{id}\n:25:ACC\n:28C:1/{id}\n{open}\n{entries}{close}\n-\n")
    };
    let good = page(
        "1",
        ":60F:C260101CNY100,00",
        ":61:260101C50,00NTRFA\n",
        ":62M:C260101CNY150,00",
    ) + &page(
        "2",
        ":60M:C260101CNY150,00",
        ":61:260101D30,00NTRFB\n",
        ":62F:C260101CNY120,00",
    );
    let f = parse_all(Some(Format::Mt940), good.as_bytes(), "ok").unwrap();
    assert_eq!(f.statements.len(), 2);
    assert!(f.checks.is_empty(), "{:?}", f.checks);
    let kinds: Vec<&str> = f
        .statements
        .iter()
        .flat_map(|s| s.balances.iter().map(|b| b.kind.as_str()))
        .collect();
    assert_eq!(kinds, ["60F", "62M", "60M", "62F"]);
    assert_eq!(f.statements[1].sequence.as_deref(), Some("1/2"));

    // the second page opens at 160.00, not where the first closed; it closes by itself
    let broken = page(
        "1",
        ":60F:C260101CNY100,00",
        ":61:260101C50,00NTRFA\n",
        ":62M:C260101CNY150,00",
    ) + &page(
        "2",
        ":60M:C260101CNY160,00",
        ":61:260101D30,00NTRFB\n",
        ":62F:C260101CNY130,00",
    );
    let f = parse_all(Some(Format::Mt940), broken.as_bytes(), "chain").unwrap();
    let checks: Vec<(&str, u64, &str, &str)> = f
        .checks
        .iter()
        .map(|c| (c.check, c.line, c.declared.as_str(), c.computed.as_str()))
        .collect();
    assert_eq!(
        checks,
        [
            ("balance_chain", 11, "160.00", "150.00"),
            ("statement_balance", 13, "130.00", "120.00"),
        ]
    );
    // strict: the first of them quarantines, naming the page's :60M:
    let e = parse_err(broken.as_bytes(), Some(Format::Mt940), "chain");
    assert_eq!(e.location, "line 11, field :60M:");
    assert!(e.reason.contains("balance_chain"), "{e}");
}

/// Around the fields: a byte-order mark, a bank's control characters and header lines, several
/// messages with or without `-` between them, a tag split after its colon.
#[test]
fn preambles_envelopes_and_control_characters_are_read_around() {
    let text = "\u{feff}\u{1}\nABNANL2A\n940\nABNANL2A\n:20:ONE\n:25:ACC\n:28:1/1\n\
                :60F:C260101EUR10,00\n:61:2601010101D5,N426NONREF\n:\n86:first\n\
                :62F:C260101EUR5,00\n0000 01INGBNL2AXXXX00001\n940 00\n:20:TWO\n:25:ACC\n\
                :60F:C260101EUR5,00\n:62F:C260101EUR5,00\n-\u{3}\n";
    let f = parse_all(Some(Format::Mt940), text.as_bytes(), "pre").unwrap();
    assert_eq!(f.statements.len(), 2, "{f:?}");
    assert!(f.checks.is_empty(), "{:?}", f.checks);
    let e = &f.statements[0].entries[0];
    assert_eq!(e.amount.minor(), 500);
    assert_eq!(e.additional_info.as_deref(), Some("first"));
    assert_eq!(sniff(text.as_bytes()), Some(Format::Mt940));
}

#[test]
fn bounded_lines() {
    let mut big = b":20:X\n:25:".to_vec();
    big.extend(std::iter::repeat_n(b'A', MAX_LINE + 10));
    let e = parse_err(&big, Some(Format::Mt940), "big");
    assert!(e.reason.contains("line longer"), "{e}");
    assert_eq!(e.location, "line 2");
    let mut big = b":20:X\n:25:A\n:86:".to_vec();
    for _ in 0..(MAX_FIELD / 60 + 10) {
        big.extend_from_slice(&[b'B'; 60]);
        big.push(b'\n');
    }
    let e = parse_err(&big, Some(Format::Mt940), "big");
    assert!(e.reason.contains("field longer"), "{e}");
    assert_eq!(e.location, "line 3, field :86:");
}

#[test]
fn sniffing() {
    assert_eq!(sniff(&read(OCA_ING)), Some(Format::Mt940));
    assert_eq!(sniff(&read(OCA_RABO)), Some(Format::Mt940));
    assert_eq!(sniff(&fixture("cny_utility.940")), Some(Format::Mt940));
    assert_eq!(sniff(&fixture("structured_86.940")), Some(Format::Mt940));
    assert_eq!(sniff(&fixture("interim.942")), Some(Format::Mt942));
    assert_eq!(
        sniff(b"\n\n:20:R\n:25:A\n:28C:1\n:34F:EUR0,\n"),
        Some(Format::Mt942)
    );
    assert_eq!(sniff(&fixture("broken/camt053.xml")), None);
    assert_eq!(
        crate::formats::sniff(&fixture("broken/camt053.xml")),
        Some(Format::Camt053)
    );
    assert_eq!(
        sniff(b"01,BANK,UTIL,261031,1200,1,80,,2/\n02,UTIL,BANK,1,261031,,CNY,2/\n"),
        None
    );
    assert_eq!(sniff(b"01,:20:,:25:\n"), None);
    assert_eq!(sniff(&fixture("broken/garbage.bin")), None);
    assert_eq!(sniff(b""), None);
    assert_eq!(sniff(b"{1:F01X}{2:I950XN}{4:\n:20:A\n:25:B\n"), None);
}

#[test]
fn parse_all_sniffs_end_to_end() {
    let f = parse_all(None, &read(OCA_ING)[..], "ing").unwrap();
    assert_eq!(f.format, Format::Mt940);
    assert_eq!(f.entries().count(), 8);
    let f = parse_all(Some(Format::Mt940), &fixture("cny_utility.940")[..], "cny").unwrap();
    assert_eq!(f.entries().count(), 8);
    let total: Decimal = f.entries().map(|e| e.signed().amount()).sum();
    assert_eq!(total, dec("16616.90"));
}

#[test]
fn field_parsers() {
    let c = Currency::CNY;
    assert_eq!(parse_amount("0,", c).unwrap().minor(), 0);
    assert_eq!(parse_amount("12,5", c).unwrap().minor(), 1250);
    assert!(parse_amount(",5", c).is_err());
    // no decimal comma (Knab), a decimal point (legacy Rabobank)
    assert_eq!(parse_amount("12", c).unwrap().minor(), 1200);
    assert_eq!(parse_amount("000000001000.12", c).unwrap().minor(), 100012);
    assert!(parse_amount("1,2,3", c).is_err());
    assert!(parse_amount("1,2.3", c).is_err());
    assert!(parse_amount("1,5", Currency::parse("JPY").unwrap()).is_err());
    assert!(parse_amount("12345678901234567890,00", c).is_err());
    assert_eq!(
        entry_date_near("0101", NaiveDate::from_ymd_opt(2026, 12, 31).unwrap()).unwrap(),
        NaiveDate::from_ymd_opt(2027, 1, 1).unwrap()
    );
    assert!(entry_date_near("1332", NaiveDate::from_ymd_opt(2026, 12, 31).unwrap()).is_err());
    assert_eq!(parse_datetime("2610311200").unwrap(), "2026-10-31T12:00:00");
    assert!(parse_datetime("2610312400+0800").is_err());
    assert!(parse_datetime("26103112é0").is_err());
    assert!(iban_shaped("NL77INGB0574908765"));
    assert!(!iban_shaped("NL77INGB05"));
    assert!(!iban_shaped("1001020109000012345"));
    assert_eq!(
        strip_currency("NL77INGB0574908765EUR", Some(Currency::EUR)),
        "NL77INGB0574908765"
    );
    assert_eq!(strip_currency("12345EUR", Some(Currency::EUR)), "12345EUR");
    let l = parse_61(&["261031RD5,00S202REF1".into()], c).unwrap();
    assert_eq!((l.direction, l.reversal), (Direction::Credit, true));
    assert_eq!(l.customer_ref.as_deref(), Some("REF1"));
    assert!(parse_61(&["261031X5,00NTRF".into()], c).is_err());
    assert!(parse_61(&["261031CR5,00NTRF".into()], Currency::EUR).is_ok());
    // a funds code that is not the currency's last letter is read (the reader notes it)
    let l = parse_61(&["261031CX5,00NTRF".into()], Currency::EUR).unwrap();
    assert_eq!(l.funds_code, Some('X'));
    // any type code of a letter and three letters, digits or spaces
    let l = parse_61(&["261031C5,00XTRF".into()], c).unwrap();
    assert_eq!(l.tx_type.as_deref(), Some("XTRF"));
    assert!(parse_61(&["2610".into()], c).is_err());
    // February 30 is an error, never a guess (as value date or entry date)
    let e = parse_61(&["260230C5,00NTRF".into()], c).unwrap_err();
    assert!(e.contains("`260230` is not a valid date"), "{e}");
    let e = parse_61(&["2603010230C5,00NTRF".into()], c).unwrap_err();
    assert!(e.contains("`0230` is not a valid entry date"), "{e}");
    // the amount on the next line (Sparkassen), funds code `R`, no currency known yet
    let l = parse_61(
        &["1811261126CR".into(), "30,00N062NONREF".into()],
        Currency::XXX,
    )
    .unwrap();
    assert_eq!(
        (l.direction, l.funds_code, l.amount.minor()),
        (Direction::Credit, Some('R'), 3000)
    );
    assert_eq!(l.tx_type.as_deref(), Some("N062"));
    assert_eq!(l.customer_ref, None);
    // no decimal comma, a customer reference with a space (Knab)
    let l = parse_61(
        &["1407290729C500NTRF29-07-2014 10:05//B4G29PGDCK1QFV3E".into()],
        Currency::EUR,
    )
    .unwrap();
    assert_eq!(l.amount.minor(), 50000);
    assert_eq!(l.customer_ref.as_deref(), Some("29-07-2014 10:05"));
    assert_eq!(l.bank_ref.as_deref(), Some("B4G29PGDCK1QFV3E"));
    // funds code F (HUF), type `S` and three spaces (Sberbank)
    let hu = Currency::parse("HUF").unwrap();
    let l = parse_61(&["1710111011DF2402,00S   X".into()], hu).unwrap();
    assert_eq!((l.funds_code, l.tx_type.as_deref()), (Some('F'), Some("S")));
    assert_eq!(l.customer_ref.as_deref(), Some("X"));
    // a non-standard type (`MCI0`) and the supplementary details on the next line
    let l = parse_61(
        &[
            "1610301031D0,42MCI0NONREF//055001022000001".into(),
            "YAY MT942 CHG".into(),
        ],
        Currency::EUR,
    )
    .unwrap();
    assert_eq!(l.tx_type.as_deref(), Some("MCI0"));
    assert_eq!(l.customer_ref, None);
    assert_eq!(l.supplementary.as_deref(), Some("YAY MT942 CHG"));
    // a 16-character customer reference followed by the counterparty (legacy Rabobank)
    let l = parse_61(
        &["110527D000000001213,28N0440121470966      W.P. Jansen                      ".into()],
        Currency::EUR,
    )
    .unwrap();
    assert_eq!(l.amount.minor(), 121328);
    assert_eq!(l.customer_ref.as_deref(), Some("0121470966"));
    assert_eq!(l.supplementary.as_deref(), Some("W.P. Jansen"));
    // no type code at all
    let l = parse_61(&["261031C5,00".into()], c).unwrap();
    assert_eq!(l.tx_type, None);
    // expected (MT942) entries are not booked
    let l = parse_61(&["261031ED5,00NTRF".into()], c).unwrap();
    assert!(l.expected && l.direction == Direction::Debit);
}

/// A reader that counts the bytes taken from it.
struct Counting<'a> {
    data: &'a [u8],
    taken: std::rc::Rc<std::cell::Cell<usize>>,
}

impl std::io::Read for Counting<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = buf.len().min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        self.taken.set(self.taken.get() + n);
        Ok(n)
    }
}

#[test]
fn streams_statement_by_statement() {
    let mut file = String::new();
    let mut balance = 0i64;
    for i in 0..2000 {
        file.push_str(&format!(
            ":20:S{i}\n:25:1001020109000012345\n:60F:C261031CNY{balance},00\n\
             :61:2610311031C7,00NTRFB202610-0001\n:86:DIANFEI HUHAO 3100000001\n\
             :62F:C261031CNY{},00\n-\n",
            balance + 7
        ));
        balance += 7;
    }
    let taken = std::rc::Rc::new(std::cell::Cell::new(0));
    let counting = Counting {
        data: file.as_bytes(),
        taken: taken.clone(),
    };
    let mut r = Mt940Reader::new(
        std::io::BufReader::with_capacity(512, counting),
        "big",
        Format::Mt940,
    );
    let mut statements = 0;
    let mut entries = 0;
    for ev in r.by_ref() {
        match ev.unwrap() {
            Event::Statement(_) => statements += 1,
            Event::Entry(_) => entries += 1,
            Event::StatementEnd if statements == 1 => {
                assert!(
                    taken.get() < 2048,
                    "read {} bytes for one statement",
                    taken.get()
                );
            }
            _ => {}
        }
    }
    assert_eq!((statements, entries), (2000, 2000));
    assert_eq!(taken.get(), file.len());
}

/// Collects at most `limit` events; the reader must stop by itself well before.
fn drain(bytes: &[u8], format: Format) -> usize {
    let r = Mt940Reader::new(bytes, "fuzz", format);
    let n = r.take(100_000).count();
    assert!(n < 100_000, "the reader did not finish");
    n
}

/// The seeds: this project's fixtures and every real MT940/MT942 file of the corpus and of
/// fixtures/real-extra.
fn real_bytes() -> Vec<Vec<u8>> {
    let mut v = vec![
        read(OCA_ING),
        read(OCA_RABO),
        fixture("cny_utility.940"),
        fixture("structured_86.940"),
        fixture("interim.942"),
    ];
    v.extend(crate::formats::fuzz_seeds(&["mt940", "mt942"], 64 * 1024));
    v
}

/// Every seed, cut every 53 bytes, read in both formats: never a panic, always an end.
#[test]
fn every_cut_of_every_seed_ends_without_panic() {
    let seeds = real_bytes();
    assert!(seeds.len() >= 40, "{}", seeds.len());
    for b in &seeds {
        for len in (0..b.len()).step_by(53) {
            drain(&b[..len], Format::Mt940);
            drain(&b[..len], Format::Mt942);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(crate::formats::fuzz_cases(256)))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        drain(&bytes, Format::Mt940);
        drain(&bytes, Format::Mt942);
        let _ = sniff(&bytes);
    }

    #[test]
    fn swift_like_text_never_panics(s in "([:{}\\-/?0-9A-Z,\n]|:6[012]F?:|:86:|:20:|:25:|RC|//){0,200}") {
        drain(s.as_bytes(), Format::Mt940);
        let _ = sniff(s.as_bytes());
    }

    #[test]
    fn mutated_real_files_never_panic(
        which in any::<prop::sample::Index>(),
        edits in proptest::collection::vec((0usize..4, any::<usize>(), any::<u8>()), 1..8),
    ) {
        let mut seeds = real_bytes();
        let mut b = seeds.swap_remove(which.index(seeds.len()));
        for (kind, at, byte) in edits {
            if b.is_empty() {
                break;
            }
            let i = at % b.len();
            match kind {
                0 => b[i] = byte,
                1 => b.truncate(i),
                2 => b.insert(i, byte),
                _ => { b.remove(i); }
            }
        }
        drain(&b, Format::Mt940);
        let _ = sniff(&b);
    }
}
