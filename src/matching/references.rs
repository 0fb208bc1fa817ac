//! Finding the references a payment carries.
//!
//! Sources in priority order: the structured reference (`CdtrRefInf/Ref`), the end-to-end id,
//! the unstructured text (remittance, then the bank's narrative), then the bank's own patterns
//! from the config. From text, every maximal run of ASCII letters and digits, every maximal
//! run of digits, and every run of letters, digits and dashes is a candidate, so
//! `电费 户号3100000007 11月` yields `3100000007`. Everything is normalized (trim, upper-case,
//! spaces and dashes dropped). A valid ISO 11649 `RF` reference also yields the reference it
//! wraps; an `RF` string with wrong check digits yields nothing beyond itself.

use crate::domain::{normalize_key, RfReference};
use regex::Regex;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Source {
    Structured,
    EndToEnd,
    Text,
    Pattern,
}

/// A normalized candidate reference and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub key: String,
    pub source: Source,
}

/// The texts a payment carries, by source.
pub struct PaymentTexts<'a> {
    pub reference: Option<&'a str>,
    pub end_to_end_id: Option<&'a str>,
    pub remittance: Option<&'a str>,
    pub additional_info: Option<&'a str>,
}

fn push(out: &mut Vec<Candidate>, key: String, source: Source) {
    if key.is_empty() || out.iter().any(|c| c.key == key) {
        return;
    }
    if key.starts_with("RF") {
        if let Ok(rf) = RfReference::parse(&key) {
            let body = rf.body().to_string();
            out.push(Candidate { key, source });
            if !out.iter().any(|c| c.key == body) {
                out.push(Candidate { key: body, source });
            }
            return;
        }
    }
    out.push(Candidate { key, source });
}

/// Splits free text into candidate tokens (see the module doc).
pub fn text_tokens(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut add = |s: &str| {
        let k = normalize_key(s);
        if !k.is_empty() && !out.contains(&k) {
            out.push(k);
        }
    };
    let runs = |pred: &dyn Fn(char) -> bool| -> Vec<String> {
        let mut v = Vec::new();
        let mut cur = String::new();
        for c in text.chars() {
            if pred(c) {
                cur.push(c);
            } else if !cur.is_empty() {
                v.push(std::mem::take(&mut cur));
            }
        }
        if !cur.is_empty() {
            v.push(cur);
        }
        v
    };
    for r in runs(&|c: char| c.is_ascii_alphanumeric()) {
        add(&r);
    }
    for r in runs(&|c: char| c.is_ascii_digit()) {
        add(&r);
    }
    for r in runs(&|c: char| c.is_ascii_alphanumeric() || c == '-') {
        let r = r.trim_matches('-');
        if r.contains('-') {
            add(r);
        }
    }
    out
}

/// All candidate references of a payment, in priority order, without repeats.
pub fn candidates(p: &PaymentTexts<'_>, patterns: &[Regex]) -> Vec<Candidate> {
    let mut out = Vec::new();
    if let Some(r) = p.reference {
        push(&mut out, normalize_key(r), Source::Structured);
    }
    if let Some(e) = p.end_to_end_id {
        push(&mut out, normalize_key(e), Source::EndToEnd);
    }
    for text in [p.remittance, p.additional_info].into_iter().flatten() {
        for t in text_tokens(text) {
            push(&mut out, t, Source::Text);
        }
    }
    for re in patterns {
        for text in [p.reference, p.remittance, p.additional_info]
            .into_iter()
            .flatten()
        {
            for caps in re.captures_iter(text) {
                if let Some(m) = caps.get(1).or_else(|| caps.get(0)) {
                    push(&mut out, normalize_key(m.as_str()), Source::Pattern);
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(p: &PaymentTexts<'_>, pats: &[Regex]) -> Vec<String> {
        candidates(p, pats).into_iter().map(|c| c.key).collect()
    }

    #[test]
    fn chinese_remittance_names_the_account() {
        let toks = text_tokens("电费 户号3100000007 11月");
        assert!(toks.contains(&"3100000007".to_string()), "{toks:?}");
        assert!(!toks.iter().any(|t| t.contains("310000000711")));
    }

    #[test]
    fn digit_runs_inside_words_and_dashed_ids() {
        let toks = text_tokens("acct ACC3100000007X bill INV-2026-0001.");
        assert!(toks.contains(&"ACC3100000007X".to_string()));
        assert!(toks.contains(&"3100000007".to_string()));
        assert!(toks.contains(&"INV20260001".to_string()));
    }

    #[test]
    fn structured_first_and_rf_unwrapped() {
        let rf = RfReference::wrap("B2026100001").unwrap();
        let p = PaymentTexts {
            reference: Some(rf.as_str()),
            end_to_end_id: Some("e2e-1"),
            remittance: Some("for 3100000007"),
            additional_info: None,
        };
        let k = keys(&p, &[]);
        assert_eq!(k[0], rf.as_str());
        assert_eq!(k[1], "B2026100001");
        assert_eq!(k[2], "E2E1");
        assert!(k.contains(&"3100000007".to_string()));
    }

    #[test]
    fn rf_with_bad_check_digits_is_not_unwrapped() {
        let p = PaymentTexts {
            reference: Some("RF00B2026100001"),
            end_to_end_id: None,
            remittance: None,
            additional_info: None,
        };
        assert_eq!(keys(&p, &[]), vec!["RF00B2026100001".to_string()]);
    }

    #[test]
    fn bank_patterns_add_candidates() {
        let re = Regex::new(r"CUST/(\d+)/").unwrap();
        let p = PaymentTexts {
            reference: None,
            end_to_end_id: None,
            remittance: Some("PAY CUST/0042/ OK"),
            additional_info: None,
        };
        let c = candidates(&p, &[re]);
        assert!(c.iter().any(|c| c.key == "0042"));
    }
}
