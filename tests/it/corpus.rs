//! Every real bank file of the corpus in `../shared/fixtures/real/` (the test files of
//! WoLpH/mt940, genkgo/camt, moov-io/bai2 and OCA/bank-statement-import) is read by billrecon's
//! parsers and compared with what the file's own project asserts. Nothing is hand-typed:
//! every expected figure is derived from the project's own expected-output file in
//! `expected/` (WoLpH's YAML, genkgo's JSON dumps, moov's JSON) or from the file's row in
//! `SOURCES.md`, and each case names where its expectation comes from.
//!
//! A file its project reads must read here with the same number of transactions, the same
//! signed sum (per currency) and the same balances; failed checks (balances that do not
//! close, control totals) are listed, never fatal. A file its project refuses must be refused
//! here with a reason that names the line. Where another parser refuses a file the project
//! reads (SOURCES.md: "Either reading is defensible"), the test says which reading billrecon
//! takes.

use billrecon::domain::{Direction, EntryStatus};
use billrecon::formats::{self, Format, ParsedFile, Severity};
use rust_decimal::Decimal;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;

fn real_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures/real")
}

fn sources_md() -> String {
    std::fs::read_to_string(real_root().join("SOURCES.md")).unwrap()
}

/// The SOURCES.md table row of a corpus file (`| <rel> | ...`).
fn row_of(sources: &str, rel: &str) -> String {
    sources
        .lines()
        .find(|l| l.starts_with(&format!("| {rel} |")))
        .unwrap_or_else(|| panic!("{rel} has no row in SOURCES.md"))
        .to_string()
}

/// Every bank file of the corpus (not `expected/`, not SOURCES.md), relative to its root.
fn corpus_files() -> Vec<String> {
    let root = real_root();
    let mut out = Vec::new();
    for dir in std::fs::read_dir(&root).unwrap().flatten() {
        let p = dir.path();
        if !p.is_dir() || p.file_name().unwrap() == "expected" {
            continue;
        }
        for f in std::fs::read_dir(&p).unwrap().flatten() {
            if f.path().is_file() {
                out.push(
                    f.path()
                        .strip_prefix(&root)
                        .unwrap()
                        .to_string_lossy()
                        .into_owned(),
                );
            }
        }
    }
    out.sort();
    out
}

/// What a file's project states about it, and where that is written.
#[derive(Debug, Default)]
struct Expect {
    source: String,
    /// The project refuses the file: ours must be refused, naming the line.
    refused: bool,
    /// Number of transactions (WoLpH, OCA: lines; genkgo: `Ntry` of the last statement;
    /// moov: `16` details).
    transactions: Option<usize>,
    /// Signed sum per currency.
    sums: BTreeMap<String, Decimal>,
    /// Balances by kind (ours: `60F`, `OPBD`, `010`, ...) as a multiset of (amount, currency).
    balances: Vec<(String, Decimal, Option<String>)>,
    /// genkgo: compare the last statement only (its JSON holds only that one's entries).
    last_statement_only: bool,
    statements: Option<usize>,
    /// Statements without entries (OCA Rabobank).
    empty_statements: Option<usize>,
    balance_rule: BalanceRule,
    /// The project's balances are not reachable (genkgo: a statement without entries).
    balances_unknown: bool,
    /// WoLpH signs an amount negative only for mark `D` (mt940/models.py@d3f8b44, `Amount`):
    /// an `RC` (reversal of a credit, a debit under SWIFT and here) counts positive there.
    wolph_signs: bool,
    /// WoLpH stored a currency-less balance with digits as its currency (raphaelm.sta).
    misread_balances: Vec<(String, String)>,
    /// Another parser refuses what the project reads: billrecon refuses it (naming the line).
    refuse_with_other_parser: bool,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum BalanceRule {
    /// The last balance of each kind in the file (what WoLpH keeps in `Transactions.data`).
    #[default]
    LastOfKind,
    /// Every stated balance, as a multiset (moov: every account's summaries).
    Multiset,
    /// The last statement's balances under genkgo's type names.
    Genkgo,
}

const GENKGO_TYPES: [&str; 9] = [
    "opening",
    "opening_available",
    "closing",
    "closing_available",
    "forward_available",
    "information",
    "interim_available",
    "interim",
    "expected_credit",
];

fn dec(s: &str) -> Decimal {
    Decimal::from_str(s.trim().trim_matches('\'')).unwrap_or_else(|e| panic!("`{s}`: {e}"))
}

// ---------------------------------------------------------------------------------------
// WoLpH/mt940: the `mt940_tests/**/*.yml` regression dumps (copied to expected/wolph_mt940/).

/// The value in `... Decimal ['-11.59']`.
fn yaml_decimal(line: &str) -> Option<Decimal> {
    let start = line.find("Decimal ['")? + "Decimal ['".len();
    let end = line[start..].find('\'')? + start;
    Some(dec(&line[start..end]))
}

fn yaml_value(line: &str, key: &str) -> Option<String> {
    let t = line.trim_start();
    let v = t.strip_prefix(key)?.strip_prefix(':')?.trim();
    Some(v.trim_matches('\'').to_string())
}

/// Transactions (amount, currency) and the `data` balances of a WoLpH YAML dump.
fn wolph(yml: &Path) -> Expect {
    let text = std::fs::read_to_string(yml).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let mut e = Expect {
        source: format!(
            "expected/wolph_mt940/{}",
            yml.file_name().unwrap().to_string_lossy()
        ),
        ..Expect::default()
    };
    let mut section = "";
    let mut count = 0;
    let mut i = 0;
    // WoLpH's names for the balances it keeps, and the tags they come from
    let kinds = [
        ("final_opening_balance", "60F"),
        ("intermediate_opening_balance", "60M"),
        ("final_closing_balance", "62F"),
        ("intermediate_closing_balance", "62M"),
        ("available_balance", "64"),
        ("forward_available_balance", "65"),
    ];
    while i < lines.len() {
        let l = lines[i];
        // a top-level key starts a section (blank lines inside quoted scalars do not)
        if l.starts_with(|c: char| c.is_ascii_alphabetic()) {
            section = l.split(':').next().unwrap_or("");
        }
        match section {
            "data" => {
                for (name, tag) in kinds {
                    if l == format!("  {name}: !!python/object:mt940.models.Balance") {
                        let amount = yaml_decimal(lines[i + 2]).unwrap();
                        let ccy = yaml_value(lines[i + 3], "currency");
                        let ccy = ccy.filter(|c| c != "null");
                        if ccy
                            .as_deref()
                            .is_some_and(|c| !c.bytes().all(|b| b.is_ascii_uppercase()))
                        {
                            e.misread_balances
                                .push((tag.to_string(), ccy.clone().unwrap_or_default()));
                        } else {
                            e.balances.push((tag.to_string(), amount, ccy));
                        }
                    }
                }
            }
            "transactions" => {
                if l.starts_with("- ") && l.ends_with("mt940.models.Transaction") {
                    count += 1;
                }
                if l == "    amount: !!python/object:mt940.models.Amount" {
                    let amount = yaml_decimal(lines[i + 1]).unwrap();
                    let ccy = lines
                        .get(i + 2)
                        .and_then(|n| yaml_value(n, "currency"))
                        .filter(|c| c != "null")
                        .unwrap_or_else(|| "none".into());
                    *e.sums.entry(ccy).or_default() += amount;
                }
            }
            _ => {}
        }
        i += 1;
    }
    e.transactions = Some(count);
    e.wolph_signs = true;
    e
}

// ---------------------------------------------------------------------------------------
// genkgo/camt: the RegressionTest dumps (copied to expected/genkgo_camt/).

/// genkgo's balance types and the codes they are made of (genkgo/camt
/// src/Decoder/Record.php@c99e4fe, `addBalances`).
fn genkgo_codes(t: &str) -> &'static [&'static str] {
    match t {
        "opening" => &["OPBD", "PRCD"],
        "opening_available" => &["OPAV"],
        "closing" => &["CLBD"],
        "closing_available" => &["CLAV"],
        "forward_available" => &["FWAV"],
        "information" => &["INFO"],
        "interim_available" => &["ITAV"],
        "interim" => &["ITBD"],
        "expected_credit" => &["XPCD"],
        _ => &[],
    }
}

/// Minor units of `currency` as a decimal.
fn from_minor(minor: &str, currency: &str) -> Decimal {
    let exp = billrecon::domain::Currency::parse(currency)
        .unwrap()
        .exponent();
    Decimal::new(minor.parse::<i64>().unwrap(), exp)
}

fn genkgo(json: &Path) -> Expect {
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(json).unwrap()).unwrap();
    let mut e = Expect {
        source: format!(
            "expected/genkgo_camt/{}",
            json.file_name().unwrap().to_string_lossy()
        ),
        last_statement_only: true,
        balance_rule: BalanceRule::Genkgo,
        statements: Some(v["getRecords"].as_array().unwrap().len()),
        ..Expect::default()
    };
    let entries = v["getEntries"].as_array().unwrap();
    e.transactions = Some(entries.len());
    e.balances_unknown = entries.is_empty();
    for en in entries {
        let ccy = en["getAmount"]["getCurrency"]["getCode"].as_str().unwrap();
        let minor = en["getAmount"]["getAmount"].as_str().unwrap();
        *e.sums.entry(ccy.to_string()).or_default() += from_minor(minor, ccy);
    }
    // the record's balances (reachable through an entry's getRecord)
    if let Some(bals) = entries
        .first()
        .and_then(|en| en["getRecord"]["getBalances"].as_array())
    {
        for b in bals {
            let t = b["getType"].as_str().unwrap();
            let ccy = b["getAmount"]["getCurrency"]["getCode"].as_str().unwrap();
            let minor = b["getAmount"]["getAmount"].as_str().unwrap();
            e.balances
                .push((t.to_string(), from_minor(minor, ccy), Some(ccy.to_string())));
        }
    }
    e
}

// ---------------------------------------------------------------------------------------
// moov-io/bai2: the handlers' expected JSON (copied to expected/moov_bai2/).

/// BAI2 type codes: 100-399 credits, 400-699 debits, 700 and up informational (BAI Cash
/// Management Balance Reporting Specifications Version 2, in moov-io/bai2's docs/).
fn bai2_sign(code: u16) -> Decimal {
    match code {
        100..=399 => Decimal::ONE,
        400..=699 => Decimal::NEGATIVE_ONE,
        _ => Decimal::ZERO,
    }
}

fn moov(json: &Path) -> Expect {
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(json).unwrap()).unwrap();
    let mut e = Expect {
        source: format!(
            "expected/moov_bai2/{}",
            json.file_name().unwrap().to_string_lossy()
        ),
        balance_rule: BalanceRule::Multiset,
        ..Expect::default()
    };
    let mut count = 0;
    let mut statements = 0;
    for g in v["Groups"].as_array().unwrap() {
        // the group's currency unless the account names one (USD by default)
        for a in g["Accounts"].as_array().unwrap() {
            statements += 1;
            let ccy = a["currencyCode"]
                .as_str()
                .filter(|c| !c.is_empty())
                .unwrap_or("USD");
            for s in a["summaries"].as_array().unwrap() {
                let code = s["TypeCode"].as_str().unwrap();
                let amount = s["Amount"].as_str().unwrap();
                if let Ok(n) = code.parse::<u16>() {
                    if n < 100 && !amount.is_empty() {
                        e.balances.push((
                            code.to_string(),
                            from_minor(amount, ccy),
                            Some(ccy.to_string()),
                        ));
                    }
                }
            }
            for d in a["Details"].as_array().map(Vec::as_slice).unwrap_or(&[]) {
                count += 1;
                let code: u16 = d["TypeCode"].as_str().unwrap().parse().unwrap();
                let amount = from_minor(d["Amount"].as_str().unwrap(), ccy);
                *e.sums.entry(ccy.to_string()).or_default() += bai2_sign(code) * amount;
            }
        }
    }
    e.transactions = Some(count);
    e.statements = Some(statements);
    e
}

// ---------------------------------------------------------------------------------------
// Rows of SOURCES.md (OCA files, ASNB, refusals, conflicts).

fn capture(re: &str, text: &str) -> Option<Vec<String>> {
    regex::Regex::new(re).unwrap().captures(text).map(|c| {
        c.iter()
            .skip(1)
            .map(|m| m.map(|m| m.as_str().to_string()).unwrap_or_default())
            .collect()
    })
}

fn number_word(w: &str) -> usize {
    let words = ["zero", "one", "two", "three", "four", "five", "six"];
    words
        .iter()
        .position(|x| *x == w)
        .or_else(|| w.parse().ok())
        .unwrap_or_else(|| panic!("`{w}` is not a number"))
}

fn signed(mark: &str, amount: &str) -> Decimal {
    if mark == "D" {
        -dec(amount)
    } else {
        dec(amount)
    }
}

/// The files their project refuses: the bullet list under "Files their own project refuses".
fn refused_list(sources: &str) -> Vec<String> {
    let start = sources
        .find("Files their own project refuses")
        .expect("SOURCES.md lists the refused files");
    sources[start..]
        .lines()
        .skip(1)
        .take_while(|l| l.starts_with("- ") || l.trim().is_empty())
        .filter_map(|l| l.strip_prefix("- "))
        .map(|l| l.trim().to_string())
        .collect()
}

fn expectation(sources: &str, rel: &str) -> Expect {
    let root = real_root();
    let name = Path::new(rel)
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    if refused_list(sources).iter().any(|r| r == rel) {
        return Expect {
            source: format!(
                "SOURCES.md: \"Files their own project refuses\" + row ({})",
                {
                    let row = row_of(sources, rel);
                    capture(r"EXPECTED TO FAIL: ([^|]*)", &row)
                        .map(|c| c[0].trim().to_string())
                        .unwrap_or_default()
                }
            ),
            refused: true,
            ..Expect::default()
        };
    }
    if let Some(stem) = name.strip_prefix("wolph_") {
        let row = row_of(sources, rel);
        let yml = root
            .join("expected/wolph_mt940")
            .join(Path::new(stem).with_extension("yml"));
        if yml.exists() {
            let mut e = wolph(&yml);
            // SOURCES.md: the same bytes are EXPECTED TO FAIL in svenstaro/mt940-rs
            if e.transactions == Some(0) && row.contains("EXPECTED TO FAIL") {
                e.refuse_with_other_parser = true;
                e.source
                    .push_str(" + SOURCES.md row (svenstaro/mt940-rs refuses it)");
            }
            return e;
        }
        // ASNB: test_tags.py::test_ASNB_tags, as the row states it
        let n = capture(r"len\(trs\)==(\d+)", &row).expect("ASNB row");
        let open = capture(r"final_opening_balance ([CD]) ([\d.]+) ([A-Z]{3})", &row).unwrap();
        let close = capture(r"final_closing_balance ([CD]) ([\d.]+) ([A-Z]{3})", &row).unwrap();
        return Expect {
            source: format!("SOURCES.md row of {rel} (test_tags.py::test_ASNB_tags)"),
            transactions: Some(n[0].parse().unwrap()),
            balances: vec![
                (
                    "60F".into(),
                    signed(&open[0], &open[1]),
                    Some(open[2].clone()),
                ),
                (
                    "62F".into(),
                    signed(&close[0], &close[1]),
                    Some(close[2].clone()),
                ),
            ],
            ..Expect::default()
        };
    }
    if let Some(stem) = name.strip_prefix("genkgo_") {
        let json = root
            .join("expected/genkgo_camt")
            .join(Path::new(stem).with_extension("json"));
        return genkgo(&json);
    }
    if let Some(stem) = name.strip_prefix("moov_") {
        let sample = stem.split(['-', '.']).next().unwrap();
        let json = root
            .join("expected/moov_bai2")
            .join(format!("{sample}_format_expected.json"));
        if json.exists() {
            return moov(&json);
        }
        // samples 1-3: TestFileWithSampleData asserts Read() and Validate() without error
        let row = row_of(sources, rel);
        assert!(row.contains("must return no error"), "{row}");
        return Expect {
            source: format!("SOURCES.md row of {rel} (Read() and Validate() without error)"),
            ..Expect::default()
        };
    }
    // OCA/bank-statement-import: the first table's rows
    let row = row_of(sources, rel);
    let mut e = Expect {
        source: format!("SOURCES.md row of {rel} (OCA/bank-statement-import)"),
        ..Expect::default()
    };
    if let Some(c) = capture(r"opening ([\d.]+) / closing ([\d.]+), (\d+) entries", &row) {
        e.balances = vec![
            ("OPBD".into(), dec(&c[0]), None),
            ("CLBD".into(), dec(&c[1]), None),
        ];
        e.transactions = Some(c[2].parse().unwrap());
    } else if let Some(c) = capture(
        r"(\w+) statements in one file \((\w+) with no entries\)",
        &row,
    ) {
        e.statements = Some(number_word(&c[0]));
        e.empty_statements = Some(number_word(&c[1]));
    } else if let Some(c) = capture(r"(\d+) entries", &row) {
        e.transactions = Some(c[0].parse().unwrap());
    } else {
        panic!("no expectation in the row of {rel}: {row}");
    }
    e
}

/// The format a file's folder says it is.
fn folder_format(rel: &str) -> Format {
    match rel.split('/').next().unwrap() {
        "mt940" => Format::Mt940,
        "mt942" => Format::Mt942,
        "camt052" => Format::Camt052,
        "camt053" => Format::Camt053,
        "camt054" => Format::Camt054,
        "bai2" => Format::Bai2,
        other => panic!("unknown corpus folder {other}"),
    }
}

/// Compares what billrecon read with the expectation; the differences, in words.
fn compare(rel: &str, p: &ParsedFile, e: &Expect) -> Vec<String> {
    let mut diffs = Vec::new();
    let statements: Vec<_> = if e.last_statement_only {
        p.statements.last().into_iter().collect()
    } else {
        p.statements.iter().collect()
    };
    if let Some(n) = e.statements {
        if p.statements.len() != n {
            diffs.push(format!("{} statements, expected {n}", p.statements.len()));
        }
    }
    if let Some(n) = e.empty_statements {
        let empty = p.statements.iter().filter(|s| s.entries.is_empty()).count();
        if empty != n {
            diffs.push(format!("{empty} statements without entries, expected {n}"));
        }
    }
    let lines: Vec<_> = statements.iter().flat_map(|s| s.entries.iter()).collect();
    if let Some(n) = e.transactions {
        // genkgo counts entries (Ntry); a batch entry may be several lines here
        let ours = if e.last_statement_only {
            let mut seqs: Vec<u32> = lines.iter().map(|l| l.entry_seq).collect();
            seqs.dedup();
            seqs.len()
        } else {
            lines.len()
        };
        if ours != n {
            diffs.push(format!("{ours} transactions, expected {n}"));
        }
    }
    if !e.sums.is_empty() || e.transactions == Some(0) {
        let mut ours: BTreeMap<String, Decimal> = BTreeMap::new();
        for l in &lines {
            // informational BAI2 details (700+) carry no money
            if l.status == EntryStatus::Info {
                continue;
            }
            let ccy = if l.currency.as_str() == "XXX" {
                "none".to_string()
            } else {
                l.currency.to_string()
            };
            let a = l.amount.amount();
            *ours.entry(ccy).or_default() += match l.direction {
                Direction::Debit if e.wolph_signs && l.reversal => a,
                Direction::Credit => a,
                Direction::Debit => -a,
            };
        }
        ours.retain(|_, v| !v.is_zero() || e.sums.is_empty());
        let mut expected = e.sums.clone();
        expected.retain(|_, v| !v.is_zero());
        ours.retain(|_, v| !v.is_zero());
        if ours != expected {
            diffs.push(format!("signed sums {ours:?}, expected {expected:?}"));
        }
    }
    // balances: WoLpH (and the OCA rows) name the last of each kind in the file; genkgo the
    // last statement's, by its own type names; moov every account's status summaries
    let all_balances: Vec<_> = statements.iter().flat_map(|s| s.balances.iter()).collect();
    match e.balance_rule {
        BalanceRule::LastOfKind => {
            for (kind, amount, ccy) in &e.balances {
                match all_balances.iter().rev().find(|b| b.kind == *kind) {
                    Some(b) => {
                        let ccy_ok = ccy.as_ref().is_none_or(|c| {
                            b.currency.map(|x| x.to_string()).as_deref() == Some(c.as_str())
                        });
                        if b.amount != *amount || !ccy_ok {
                            diffs.push(format!(
                                "balance {kind} {} {:?}, expected {amount} {ccy:?}",
                                b.amount, b.currency
                            ));
                        }
                    }
                    None => diffs.push(format!("no balance {kind}, expected {amount}")),
                }
            }
        }
        _ if e.balances_unknown => {}
        BalanceRule::Multiset | BalanceRule::Genkgo => {
            let mut ours: Vec<(String, Decimal, Option<String>)> = all_balances
                .iter()
                .filter_map(|b| {
                    let kind = if e.balance_rule == BalanceRule::Genkgo {
                        GENKGO_TYPES
                            .into_iter()
                            .find(|t| genkgo_codes(t).contains(&b.kind.as_str()))?
                            .to_string()
                    } else {
                        b.kind.clone()
                    };
                    Some((kind, b.amount, b.currency.map(|c| c.to_string())))
                })
                .collect();
            let mut exp = e.balances.clone();
            ours.sort();
            exp.sort();
            if ours != exp {
                diffs.push(format!("balances {ours:?}, expected {exp:?}"));
            }
        }
    }
    // WoLpH read a balance without a currency code with its first three digits as the
    // currency: ours must be the whole amount (its digits start with that "currency"), and
    // the statements must close with it
    for (kind, digits) in &e.misread_balances {
        match all_balances.iter().rev().find(|b| b.kind == *kind) {
            Some(b) if b.currency.is_some() && b.amount.to_string().starts_with(digits) => {}
            other => diffs.push(format!(
                "{rel}: balance {kind} {other:?} does not start with WoLpH's \"currency\" {digits}"
            )),
        }
        if p.checks.iter().any(|c| c.check == "balance") {
            diffs.push(format!(
                "{rel}: read without a currency, the balances must close"
            ));
        }
    }
    diffs
}

#[test]
fn every_real_file_of_the_corpus_reads_as_its_project_says() {
    let sources = sources_md();
    let files = corpus_files();
    assert!(files.len() >= 56, "{files:?}");
    let mut table = Vec::new();
    let (mut read, mut matching, mut refused_ok, mut with_checks) = (0, 0, 0, 0);
    let mut failures = Vec::new();
    for rel in &files {
        let path = real_root().join(rel);
        let e = expectation(&sources, rel);
        let bytes = std::fs::read(&path).unwrap();
        let parsed = formats::parse_all(None, &bytes[..], rel);
        match (&parsed, e.refused || e.refuse_with_other_parser) {
            (Ok(p), false) => {
                read += 1;
                if p.format != folder_format(rel) {
                    failures.push(format!(
                        "{rel}: read as {}, its folder says {}",
                        p.format.as_str(),
                        folder_format(rel).as_str()
                    ));
                }
                let diffs = compare(rel, p, &e);
                // every failed check names its line and both figures
                for c in &p.checks {
                    if c.line == 0 || c.declared.is_empty() || c.computed.is_empty() {
                        failures.push(format!("{rel}: a finding without line or figures: {c:?}"));
                    }
                }
                if !p.checks.is_empty() {
                    with_checks += 1;
                }
                if diffs.is_empty() {
                    matching += 1;
                } else {
                    failures.push(format!(
                        "{rel} (expected from {}): {}",
                        e.source,
                        diffs.join("; ")
                    ));
                }
                let mut checks: Vec<String> = p
                    .checks
                    .iter()
                    .map(|c| {
                        format!(
                            "{}{}@{}",
                            c.check,
                            if c.severity == Severity::Error {
                                ""
                            } else {
                                "?"
                            },
                            c.line
                        )
                    })
                    .collect();
                checks.dedup();
                table.push(format!(
                    "read      {rel}: {} statements, {} lines; checks: {}; expected from {}",
                    p.statements.len(),
                    p.entries().count(),
                    if checks.is_empty() {
                        "all hold".into()
                    } else {
                        checks.join(" ")
                    },
                    e.source
                ));
            }
            (Err(err), true) => {
                // refused, with a reason naming the line
                if formats::check::line_of(&err.location) == 0 {
                    failures.push(format!("{rel}: refused without naming the line: {err}"));
                } else {
                    refused_ok += 1;
                }
                table.push(format!(
                    "refused   {rel}: {err}; expected from {}",
                    e.source
                ));
            }
            (Ok(p), true) => failures.push(format!(
                "{rel}: read ({} statements) but its project refuses it ({})",
                p.statements.len(),
                e.source
            )),
            (Err(err), false) => failures.push(format!(
                "{rel}: refused ({err}) but its project reads it ({})",
                e.source
            )),
        }
    }
    println!("{}", table.join("\n"));
    println!(
        "corpus: {} files; {read} read, {matching} of them as their project says ({with_checks} with failed checks listed); {refused_ok} refused as expected",
        files.len()
    );
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
    assert_eq!(read + refused_ok, files.len());
}

/// The same files through `strict`: a file read with a failed check of severity `error` is
/// what a `strict` bank quarantines, with the finding as its reason (naming the line); the
/// rest is what it ingests.
#[test]
fn strict_refuses_exactly_the_files_with_failed_checks_naming_the_line() {
    let sources = sources_md();
    for rel in corpus_files() {
        let e = expectation(&sources, &rel);
        if e.refused || e.refuse_with_other_parser {
            continue;
        }
        let bytes = std::fs::read(real_root().join(&rel)).unwrap();
        let p = formats::parse_all(None, &bytes[..], &rel).unwrap();
        let first_error = p.errors().next().cloned();
        let strict: Vec<_> =
            formats::strict(formats::open(None, &bytes[..], &rel).unwrap(), &rel).collect();
        match (first_error, strict.last()) {
            (Some(f), Some(Err(err))) => {
                assert_eq!(err.location, f.location, "{rel}");
                assert!(err.reason.contains(f.check), "{rel}: {err}");
                assert!(formats::check::line_of(&err.location) > 0, "{rel}: {err}");
            }
            (None, Some(Ok(_))) => {}
            (f, last) => panic!("{rel}: first error finding {f:?}, strict stream ended {last:?}"),
        }
    }
}

// ---------------------------------------------------------------------------------------
// fixtures/real-extra: more public files (see its SOURCES.md), read as their project says.

fn extra_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/real-extra")
}

/// svenstaro/mt940-rs's signs (src/lib.rs@9cf76ca, `ExtDebitOrCredit`: `RC` is its
/// `ReverseDebit`, a debit; `RD` its `ReverseCredit`, a credit).
fn mt940rs_sign(indicator: &str) -> Decimal {
    match indicator {
        "Credit" | "ReverseCredit" => Decimal::ONE,
        "Debit" | "ReverseDebit" => Decimal::NEGATIVE_ONE,
        other => panic!("unknown indicator {other}"),
    }
}

/// What mt940-rs's expected JSON says, compared with what billrecon read.
fn compare_mt940rs(p: &ParsedFile, json: &Path) -> Vec<String> {
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(json).unwrap()).unwrap();
    let messages = v.as_array().unwrap();
    let mut diffs = Vec::new();
    if messages.len() != p.statements.len() {
        diffs.push(format!(
            "{} statements, expected {}",
            p.statements.len(),
            messages.len()
        ));
    }
    let balance = |b: &serde_json::Value| {
        let a = dec(b["amount"].as_str().unwrap());
        if b["debit_credit_indicator"] == "Debit" {
            -a
        } else {
            a
        }
    };
    for (m, s) in messages.iter().zip(&p.statements) {
        let lines = m["statement_lines"].as_array().unwrap();
        if lines.len() != s.entries.len() {
            diffs.push(format!(
                "statement {:?}: {} lines, expected {}",
                s.statement_id,
                s.entries.len(),
                lines.len()
            ));
        }
        let expected: Decimal = lines
            .iter()
            .map(|l| {
                mt940rs_sign(l["ext_debit_credit_indicator"].as_str().unwrap())
                    * dec(l["amount"].as_str().unwrap())
            })
            .sum();
        let ours: Decimal = s.entries.iter().map(|e| e.signed().amount()).sum();
        if ours != expected {
            diffs.push(format!(
                "statement {:?}: sum {ours}, expected {expected}",
                s.statement_id
            ));
        }
        for (key, ours, tag) in [
            ("opening_balance", s.opening_balance, "60"),
            ("closing_balance", s.closing_balance, "62"),
        ] {
            let b = &m[key];
            let kind = format!(
                "{tag}{}",
                if b["is_intermediate"] == true {
                    "M"
                } else {
                    "F"
                }
            );
            let stated = s.balances.iter().find(|x| x.kind.starts_with(tag));
            if ours != Some(balance(b)) || stated.map(|x| x.kind.as_str()) != Some(kind.as_str()) {
                diffs.push(format!(
                    "statement {:?}: {key} {ours:?} ({:?}), expected {} ({kind})",
                    s.statement_id,
                    stated.map(|x| &x.kind),
                    balance(b)
                ));
            }
        }
        if let Some(b) = m["closing_available_balance"].as_object() {
            let want = balance(&serde_json::Value::Object(b.clone()));
            if s.balances.iter().find(|x| x.kind == "64").map(|x| x.amount) != Some(want) {
                diffs.push(format!(
                    "statement {:?}: :64: expected {want}",
                    s.statement_id
                ));
            }
        }
    }
    diffs
}

#[test]
fn every_extra_public_file_reads_as_its_project_says() {
    let root = extra_root();
    let sources = std::fs::read_to_string(root.join("SOURCES.md")).unwrap();
    let mut files = Vec::new();
    for dir in std::fs::read_dir(&root).unwrap().flatten() {
        let p = dir.path();
        if p.is_dir() && p.file_name().unwrap() != "expected" {
            for f in std::fs::read_dir(&p).unwrap().flatten() {
                files.push(
                    f.path()
                        .strip_prefix(&root)
                        .unwrap()
                        .to_string_lossy()
                        .into_owned(),
                );
            }
        }
    }
    files.sort();
    assert!(files.len() >= 38, "{files:?}");
    let (mut read, mut compared, mut refused, mut listed) = (0, 0, 0, 0);
    let mut failures = Vec::new();
    for rel in &files {
        let row = row_of(&sources, rel);
        let asserts = row.trim_end_matches('|').rsplit('|').next().unwrap().trim();
        let bytes = std::fs::read(root.join(rel)).unwrap();
        let parsed = formats::parse_all(None, &bytes[..], rel);
        // every failed check names its line and both figures
        if let Ok(p) = &parsed {
            read += 1;
            for c in &p.checks {
                if c.line == 0 || c.declared.is_empty() || c.computed.is_empty() {
                    failures.push(format!("{rel}: a finding without line or figures: {c:?}"));
                }
            }
            if p.format != folder_format(rel) {
                failures.push(format!("{rel}: read as {}", p.format.as_str()));
            }
        }
        if asserts.starts_with("refuses") {
            // refused naming the line, or read with the failed check listed
            match &parsed {
                Err(e) if formats::check::line_of(&e.location) > 0 => refused += 1,
                Ok(p) if !p.checks.is_empty() => listed += 1,
                other => failures.push(format!(
                    "{rel}: its project refuses it ({asserts}); here {other:?}"
                )),
            }
            continue;
        }
        let p = match &parsed {
            Ok(p) => p,
            Err(e) => {
                failures.push(format!("{rel}: refused ({e}) but {asserts}"));
                continue;
            }
        };
        if let Some(c) = capture(r"copied to (expected/[^ )]+\.json)", asserts) {
            let diffs = compare_mt940rs(p, &root.join(&c[0]));
            if diffs.is_empty() {
                compared += 1;
            } else {
                failures.push(format!(
                    "{rel} (expected from {}): {}",
                    c[0],
                    diffs.join("; ")
                ));
            }
        }
    }
    println!(
        "real-extra: {} files; {read} read ({compared} compared with their project's expected output), {refused} refused and {listed} read with the failure listed where their project refuses them",
        files.len()
    );
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
    assert!(compared >= 9 && refused >= 1 && listed >= 5);
}
