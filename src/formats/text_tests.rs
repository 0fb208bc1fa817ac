//! Tests of the text reader: the example bank profiles in config/banks/ with their fixtures,
//! broken files, layout validation, fuzzing.

use super::*;
use crate::config::Config;
use proptest::prelude::*;
use std::io::BufReader;
use std::str::FromStr;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn read(rel: &str) -> Vec<u8> {
    let path = format!("{ROOT}/{rel}");
    std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {path}: {e}"))
}

/// The layout of an example bank profile, loaded through the config as it would be pasted.
fn profile(name: &str) -> TextLayout {
    let path = format!("{ROOT}/config/banks/{name}");
    let text = std::fs::read_to_string(&path).unwrap();
    let cfg = Config::from_toml(&text, &path).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(cfg.banks.len(), 1);
    assert_eq!(cfg.banks[0].format, "text");
    assert_eq!(cfg.banks().len(), 1);
    cfg.banks[0].layout.clone().expect("a layout")
}

fn abc() -> TextLayout {
    profile("abc-gbk-pipe.toml")
}
fn ccb() -> TextLayout {
    profile("ccb-fixed-width.toml")
}

/// Runs the reader to its end (at most `limit` items): the events, and the error if any.
fn run_limited(
    layout: &TextLayout,
    bytes: &[u8],
    limit: usize,
) -> (Vec<Event>, Option<ParseError>) {
    let mut events = Vec::new();
    // as a `strict` bank reads it: the first failed check of severity `error` ends it
    let mut reader = crate::formats::strict(
        Box::new(TextReader::new(bytes, "test.txt", layout)),
        "test.txt",
    );
    for _ in 0..limit {
        match reader.next() {
            None => return (events, None),
            Some(Ok(ev)) => events.push(ev),
            Some(Err(e)) => {
                assert!(reader.next().is_none(), "items after an error");
                return (events, Some(e));
            }
        }
    }
    panic!("the reader did not finish within {limit} items");
}

fn run(layout: &TextLayout, bytes: &[u8]) -> (Vec<Event>, Option<ParseError>) {
    run_limited(layout, bytes, 100_000)
}

fn ok(layout: &TextLayout, bytes: &[u8]) -> (Statement, Vec<Entry>) {
    let (events, err) = run(layout, bytes);
    if let Some(e) = err {
        panic!("{e}");
    }
    assert!(matches!(events.first(), Some(Event::File(Format::Text, _))));
    assert_eq!(events.last(), Some(&Event::StatementEnd));
    let Some(Event::Statement(st)) = events.get(1).cloned() else {
        panic!("{events:?}")
    };
    let entries = events[2..events.len() - 1]
        .iter()
        .map(|e| match e {
            Event::Entry(e) => e.clone(),
            other => panic!("{other:?}"),
        })
        .collect();
    (st, entries)
}

fn failure(layout: &TextLayout, bytes: &[u8]) -> ParseError {
    match run(layout, bytes) {
        (_, Some(e)) => e,
        (events, None) => panic!("no error: {events:?}"),
    }
}

fn dec(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

fn date(s: &str) -> Option<NaiveDate> {
    Some(NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap())
}

#[test]
fn abc_profile_parses_its_gbk_pipe_file() {
    let (st, entries) = ok(&abc(), &read("fixtures/formats/text/abc_20261112.txt"));
    assert_eq!(st.account, "103100000000012345");
    assert_eq!(st.currency, Some(Currency::CNY));
    assert_eq!(st.created_at.as_deref(), Some("2026-11-12"));
    assert_eq!(st.declared.entry_count, Some(3));
    assert_eq!(st.declared.sum, Some(dec("565.30")));
    assert_eq!(entries.len(), 3);
    let e = &entries[0];
    assert_eq!((e.entry_seq, e.tx_seq, e.tx_count), (1, 1, 1));
    assert_eq!(e.amount, Money::from_minor(25680, Currency::CNY));
    assert_eq!(e.direction, Direction::Credit);
    assert_eq!(e.status, EntryStatus::Booked);
    assert_eq!(e.booking_date, date("2026-11-12"));
    assert_eq!(e.bank_ref.as_deref(), Some("ABC20261112000001"));
    assert_eq!(e.reference.as_deref(), Some("3100000001"));
    assert_eq!(e.payer_name.as_deref(), Some("张伟"));
    assert_eq!(e.remittance.as_deref(), Some("电费 B202610-0001"));
    assert_eq!(entries[1].payer_name.as_deref(), Some("李娜"));
    assert_eq!(entries[2].entry_seq, 3);
    assert_eq!(entries[2].amount.amount(), dec("128.50"));
}

#[test]
fn profiles_paste_into_the_example_config() {
    let base = std::fs::read_to_string(format!("{ROOT}/config/billrecon.toml")).unwrap();
    for (file, id) in [
        ("abc-gbk-pipe.toml", "ABC"),
        ("ccb-fixed-width.toml", "CCB"),
    ] {
        let bank = std::fs::read_to_string(format!("{ROOT}/config/banks/{file}")).unwrap();
        let cfg =
            Config::from_toml(&format!("{base}\n{bank}"), file).unwrap_or_else(|e| panic!("{e}"));
        let b = cfg.bank(id).unwrap();
        assert_eq!(b.format, Some(Format::Text));
        assert!(b.layout.is_some());
    }
}

#[test]
fn ccb_profile_parses_its_fixed_width_file_in_fen() {
    let (st, entries) = ok(&ccb(), &read("fixtures/formats/text/ccb_20261112.txt"));
    assert_eq!(st.account, "31050161360000000789");
    // the trailer is checked at the end, after the Statement event
    assert_eq!(st.declared, StatementTotals::default());
    assert_eq!(entries.len(), 4);
    let e = &entries[1];
    assert_eq!(e.amount, Money::from_minor(9500, Currency::CNY));
    assert_eq!(e.direction, Direction::Credit);
    assert_eq!(e.bank_ref.as_deref(), Some("CCB2026111200000002"));
    assert_eq!(e.reference.as_deref(), Some("3100000006"));
    assert_eq!(e.payer_name.as_deref(), Some("赵强"));
    assert_eq!(e.remittance.as_deref(), Some("户号3100000006 10月"));
    assert_eq!(e.booking_date, date("2026-11-12"));
    let total: i64 = entries.iter().map(|e| e.amount.minor()).sum();
    assert_eq!(total, 136160);
}

#[test]
fn fixtures_are_really_in_their_encodings() {
    for (file, enc) in [
        ("abc_20261112.txt", encoding_rs::GBK),
        ("ccb_20261112.txt", encoding_rs::GB18030),
    ] {
        let bytes = read(&format!("fixtures/formats/text/{file}"));
        assert!(
            std::str::from_utf8(&bytes).is_err(),
            "{file} is UTF-8, not {}",
            enc.name()
        );
        let (text, _, had_errors) = enc.decode(&bytes);
        assert!(!had_errors, "{file}");
        assert!(text.contains("20261112"));
        let (back, _, unmappable) = enc.encode(&text);
        assert!(!unmappable);
        assert_eq!(back.as_ref(), &bytes[..], "{file} does not round-trip");
    }
    let abc_bytes = read("fixtures/formats/text/abc_20261112.txt");
    let (text, _, _) = encoding_rs::GBK.decode(&abc_bytes);
    assert!(text.contains("张伟") && text.contains("刘洋"));
}

#[test]
fn broken_files_name_the_line_and_the_reason() {
    type Case = (&'static str, fn() -> TextLayout, &'static str, &'static str);
    let cases: &[Case] = &[
        (
            "abc_count_mismatch.txt",
            abc,
            "line 1 (header), field `count`",
            "the header declares 3 records, the file has 2",
        ),
        (
            "abc_wrong_total.txt",
            abc,
            "line 1 (header), field `total`",
            "declares a total of 565.00, the records add up to 565.30",
        ),
        (
            "abc_bad_date.txt",
            abc,
            "line 3, column `date`",
            "`20261345` is not a date in the format `%Y%m%d`",
        ),
        (
            "abc_bad_amount.txt",
            abc,
            "line 2, column `amount`",
            "`256,8O` is not a decimal amount",
        ),
        (
            "abc_wrong_columns.txt",
            abc,
            "line 3",
            "5 field(s) separated by `|`, the layout's `columns` lists 6",
        ),
        (
            "abc_invalid_gbk.txt",
            abc,
            "line 3",
            "not valid GBK (undecodable bytes at byte 39)",
        ),
        ("empty.txt", abc, "start of file", "the file is empty"),
        ("empty.txt", ccb, "start of file", "the file is empty"),
        (
            "camt054.xml",
            abc,
            "line 1 (header)",
            "the line has 1 field(s) separated by `|`",
        ),
        ("camt054.xml", ccb, "line 1, column `", "too short"),
        (
            "ccb_truncated.txt",
            ccb,
            "line 3 (trailer)",
            "the trailer is missing",
        ),
        (
            "ccb_wrong_total.txt",
            ccb,
            "line 5 (trailer), field `total`",
            "the trailer declares a total of 1361.00, the records add up to 1361.60",
        ),
        (
            "ccb_short_line.txt",
            ccb,
            "line 3, column `amount`",
            "the line is 45 characters long, too short for `amount` (characters 41-52)",
        ),
    ];
    for (file, layout, loc, reason) in cases {
        let e = failure(
            &layout(),
            &read(&format!("fixtures/formats/text/broken/{file}")),
        );
        assert_eq!(e.file, "test.txt");
        assert!(
            e.location.contains(loc),
            "{file}: location `{}`, want `{loc}`",
            e.location
        );
        assert!(
            e.reason.contains(reason),
            "{file}: reason `{}`, want `{reason}`",
            e.reason
        );
    }
}

#[test]
fn open_with_reads_a_text_file_end_to_end() {
    let layout = abc();
    let bytes = read("fixtures/formats/text/abc_20261112.txt");
    let events: Vec<Event> = crate::formats::open_with(
        Some(Format::Text),
        Some(&layout),
        BufReader::new(&bytes[..]),
        "abc_20261112.txt",
    )
    .unwrap()
    .collect::<Result<_, _>>()
    .unwrap();
    assert_eq!(events.len(), 6);
    assert!(
        matches!(&events[0], Event::File(Format::Text, h) if h.created_at.as_deref() == Some("2026-11-12"))
    );
    assert!(matches!(&events[3], Event::Entry(e) if e.reference.as_deref() == Some("3100000002")));
    // without a layout: a clear error, not a panic
    let e = crate::formats::open_with(Some(Format::Text), None, &bytes[..], "x")
        .err()
        .unwrap();
    assert!(e.reason.contains("[bank.layout]"), "{e}");
}

fn layout(toml_text: &str) -> TextLayout {
    toml::from_str(toml_text).unwrap_or_else(|e| panic!("{e}"))
}

const MINIMAL: &str = "kind = 'delimited'\ndelimiter = ','\ncolumns = ['date', 'amount']\ncurrency = 'CNY'\naccount = 'A1'\n";

#[test]
fn bad_layouts_are_rejected_naming_the_key() {
    assert_eq!(layout(MINIMAL).validate(), Ok(()));
    // unknown keys, at the top and inside tables
    let e = toml::from_str::<TextLayout>(&format!("{MINIMAL}delimeter = '|'\n"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("delimeter"), "{e}");
    let e = toml::from_str::<TextLayout>(&format!(
        "{MINIMAL}header = {{ fields = ['count'], line = 1 }}\n"
    ))
    .unwrap_err()
    .to_string();
    assert!(e.contains("line"), "{e}");
    let fixed = "kind = 'fixed_width'\ncurrency = 'CNY'\naccount = 'A1'\n";
    let e = toml::from_str::<TextLayout>(&format!(
        "{fixed}columns = [{{ name = 'amount', start = 1, length = 3 }}]\n"
    ))
    .unwrap_err()
    .to_string();
    assert!(e.contains("length"), "{e}");

    let cases: &[(String, &str)] = &[
        (MINIMAL.replace("delimiter = ','\n", "delimiter = ','\nencoding = 'klingon'\n"), "encoding `klingon`"),
        (MINIMAL.replace("delimiter = ','\n", "delimiter = ','\nencoding = 'utf-16le'\n"), "encoding `utf-16le`"),
        (MINIMAL.replace("','", "'||'"), "delimiter `||` must be one character"),
        (MINIMAL.replace("delimiter = ','\n", ""), "delimiter: required"),
        (MINIMAL.replace("delimiter = ','\n", "delimiter = ','\nquote = ','\n"), "quote"),
        (MINIMAL.replace("'amount'", "'remittance'"), "columns: there is no `amount` column"),
        (MINIMAL.replace("'date'", "'datum'"), "columns[0]: unknown name `datum`"),
        (MINIMAL.replace("'date'", "'amount'"), "columns[1]: `amount` appears twice"),
        (MINIMAL.replace("currency = 'CNY'\n", ""), "currency:"),
        (MINIMAL.replace("account = 'A1'\n", ""), "account:"),
        (format!("{MINIMAL}date_format = '%Q'\n"), "date_format `%Q`"),
        (format!("{MINIMAL}credit_values = ['C']\n"), "credit_values: only with a `direction` column"),
        (format!("{MINIMAL}header = {{ fields = ['count', 'sum'] }}\n"), "header.fields[1]: unknown name `sum`"),
        (format!("{MINIMAL}trailer = {{ fields = [] }}\n"), "trailer.fields is empty"),
        (format!("{MINIMAL}trailer = {{ fields = ['count'], date_format = '%' }}\n"), "trailer.date_format"),
        (MINIMAL.replace("['date', 'amount']", "['date', { name = 'amount', start = 1, len = 2 }]"), "columns[1] (`amount`): kind = \"delimited\""),
        (format!("{fixed}columns = [{{ name = 'amount', start = 1 }}]\n"), "columns[0] (`amount`): a fixed-width column needs `len`"),
        (format!("{fixed}columns = [{{ name = 'amount', len = 4 }}]\n"), "columns[0] (`amount`): a fixed-width column needs `start`"),
        (format!("{fixed}columns = [{{ name = 'amount', start = 0, len = 4 }}]\n"), "`start` is 1-based"),
        (format!("{fixed}columns = ['amount']\n"), "columns[0] (`amount`): kind = \"fixed_width\" needs"),
        (format!("{fixed}delimiter = '|'\ncolumns = [{{ name = 'amount', start = 1, len = 4 }}]\n"), "delimiter: only for kind = \"delimited\""),
        (
            format!("{fixed}columns = [{{ name = 'amount', start = 1, len = 4 }}, {{ name = 'direction', start = 5, len = 1 }}]\ncredit_values = ['1']\ndebit_values = ['1']\n"),
            "credit_values and debit_values both hold `1`",
        ),
    ];
    for (text, want) in cases {
        let e = layout(text).validate().unwrap_err();
        assert!(e.contains(want), "{text}\n=> `{e}`, want `{want}`");
    }
    // through the config: the bank and the key are named
    let e = Config::from_toml(
        "[[bank]]\nid = 'X'\nname = 'x'\nformat = 'text'\n[bank.layout]\nkind = 'delimited'\ndelimiter = '||'\ncolumns = ['amount']\ncurrency = 'CNY'\naccount = 'A'\n",
        "t.toml",
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("bank `X`: layout: delimiter `||`"), "{e}");
    // a reader built on a bad layout fails at once, naming the key
    let bad = layout(&MINIMAL.replace("','", "'||'"));
    let e = failure(&bad, b"20261112,1.00\n");
    assert!(
        e.location == "layout" && e.reason.contains("delimiter"),
        "{e}"
    );
}

#[test]
fn delimited_details_quotes_signs_directions_trailing_delimiters() {
    let mut l = layout(&format!("{MINIMAL}quote = '\"'\n"));
    l.columns = ["date", "amount", "remittance", "payer_name"]
        .iter()
        .map(|s| ColumnSpec::Named(s.to_string()))
        .collect();
    let file =
        "\u{feff}20261112,12.5,\"a, \"\"quoted\"\" text\",张伟\n\n20261113,-3.00,fee,,\n\n\n";
    let (st, e) = ok(&l, file.as_bytes());
    assert_eq!(st.account, "A1");
    assert_eq!(e[0].remittance.as_deref(), Some("a, \"quoted\" text"));
    assert_eq!(
        (e[0].direction, e[0].amount.minor()),
        (Direction::Credit, 1250)
    );
    assert_eq!(
        (e[1].direction, e[1].amount.minor()),
        (Direction::Debit, 300)
    );
    assert_eq!(e[1].payer_name, None);
    assert_eq!(e[1].booking_date, date("2026-11-13"));

    let e = failure(&l, b"20261112,1.00,\"open,x\n");
    assert!(
        e.location == "line 1" && e.reason.contains("quoted field"),
        "{e}"
    );
    let e = failure(&l, b"20261112,0.00,x,y\n");
    assert!(e.reason.contains("zero"), "{e}");
    let e = failure(&l, b"20261112,1.001,x,y\n");
    assert!(
        e.location.contains("`amount`") && e.reason.contains("decimal places"),
        "{e}"
    );

    // a direction column: values decide, signs are refused, unknown values named
    let mut d = layout(&MINIMAL.replace("['date', 'amount']", "['direction', 'amount']"));
    d.credit_values = vec!["贷".into()];
    d.debit_values = vec!["借".into()];
    let (_, e) = ok(&d, "贷,5\n借,7.25\n".as_bytes());
    assert_eq!(
        (e[0].direction, e[1].direction),
        (Direction::Credit, Direction::Debit)
    );
    assert_eq!(e[0].booking_date, None);
    let e = failure(&d, "贷,-5\n".as_bytes());
    assert!(e.reason.contains("negative"), "{e}");
    let e = failure(&d, "X,5\n".as_bytes());
    assert!(
        e.location == "line 1, column `direction`" && e.reason.contains("`X` is neither"),
        "{e}"
    );
}

#[test]
fn header_account_and_date_default_and_credit_totals() {
    let l = layout(
        "kind = 'delimited'\ndelimiter = '|'\ncolumns = ['amount', 'reference']\ncurrency = 'CNY'\nskip_lines = 1\n\
         header = { marker = 'H', fields = ['-', 'account', 'date', 'credit_count', 'credit_total', 'debit_count'], date_format = '%Y-%m-%d' }\n",
    );
    let file = "对账文件 title line\nH|6222000011112222|2026-11-12|2|30.00|1\n10.00|B202610-0001\n20|3100000002\n-1|\n";
    let (st, e) = ok(&l, file.as_bytes());
    assert_eq!(st.account, "6222000011112222");
    assert_eq!(st.declared.credit_count, Some(2));
    assert_eq!(st.declared.credit_sum, Some(dec("30.00")));
    assert_eq!(st.declared.debit_count, Some(1));
    assert_eq!(e[0].booking_date, date("2026-11-12"));
    assert_eq!(e[2].reference, None);
    let e = failure(&l, "title\nX|acct|2026-11-12|2|30.00|1\n".as_bytes());
    assert!(
        e.location == "line 2 (header)" && e.reason.contains("does not start with `H`"),
        "{e}"
    );
    let e = failure(
        &l,
        "title\nH|acct|2026-11-12|1|10.00|1\n10.00|x\n".as_bytes(),
    );
    assert!(
        e.reason
            .contains("the header declares 1 debit records, the file has 0"),
        "{e}"
    );
    let e = failure(&l, b"only a title\n\n");
    assert!(e.reason.contains("nothing after the skipped lines"), "{e}");
}

#[test]
fn overlong_lines_and_missing_trailers_are_errors() {
    let mut long = b"20261112,".to_vec();
    long.resize(MAX_LINE + 10, b'1');
    let e = failure(&layout(MINIMAL), &long);
    assert!(
        e.location == "line 1" && e.reason.contains("longer than 65536 bytes"),
        "{e}"
    );
    let mut l = layout(MINIMAL);
    l.trailer = Some(RecordLine {
        fields: vec![ColumnSpec::Named("count".into())],
        marker: None,
        date_format: None,
    });
    let (_, e) = ok(&l, b"20261112,1\n20261112,2\n2\n");
    assert_eq!(e.len(), 2);
    let e = failure(&l, b"20261112,1\n20261112,2\n");
    assert!(
        e.location == "line 2 (trailer)" && e.reason.contains("is the trailer missing?"),
        "{e}"
    );
    // only blank lines: empty
    let e = failure(&l, b"\n \r\n");
    assert!(e.reason.contains("the file is empty"), "{e}");
}

/// A file generated on the fly: the reader streams it without holding it.
#[test]
fn streams_a_large_generated_file() {
    struct Gen {
        left: u32,
        cur: Vec<u8>,
        pos: usize,
    }
    impl std::io::Read for Gen {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            if self.pos == self.cur.len() {
                if self.left == 0 {
                    return Ok(0);
                }
                self.left -= 1;
                self.cur = format!("20261112,{}.01\n", self.left % 1000 + 1).into_bytes();
                self.pos = 0;
            }
            let n = buf.len().min(self.cur.len() - self.pos);
            buf[..n].copy_from_slice(&self.cur[self.pos..self.pos + n]);
            self.pos += n;
            Ok(n)
        }
    }
    let l = layout(MINIMAL);
    let reader = BufReader::new(Gen {
        left: 200_000,
        cur: vec![],
        pos: 0,
    });
    let mut n = 0u32;
    for ev in TextReader::new(reader, "gen", &l) {
        if let Event::Entry(e) = ev.unwrap() {
            n += 1;
            assert_eq!(e.entry_seq, n);
        }
    }
    assert_eq!(n, 200_000);
}

fn mutate(mut bytes: Vec<u8>, edits: &[(usize, u8)], cut: usize) -> Vec<u8> {
    for &(i, b) in edits {
        if !bytes.is_empty() {
            let i = i % bytes.len();
            bytes[i] = b;
        }
    }
    let cut = cut % (bytes.len() + 1);
    bytes.truncate(bytes.len() - cut.min(bytes.len()) / 4);
    bytes
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(crate::formats::fuzz_cases(300)))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..3000)) {
        for l in [abc(), ccb()] {
            run_limited(&l, &bytes, 10_000);
        }
    }

    #[test]
    fn mutated_fixtures_never_panic(
        edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..8),
        cut in any::<usize>(),
    ) {
        for (l, f) in [(abc(), "abc_20261112.txt"), (ccb(), "ccb_20261112.txt")] {
            let bytes = mutate(read(&format!("fixtures/formats/text/{f}")), &edits, cut);
            run_limited(&l, &bytes, 10_000);
        }
    }

    #[test]
    fn line_soup_never_panics(lines in proptest::collection::vec("[0-9A-Z|贷借. \t\"-]{0,90}", 0..20)) {
        let text = lines.join("\n");
        for l in [abc(), ccb()] {
            run_limited(&l, text.as_bytes(), 10_000);
        }
    }
}
