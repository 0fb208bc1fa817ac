//! The daemon's Prometheus metrics (`GET /metrics`), with `prometheus-client`.
//!
//! Counters count what this process did since it started (Prometheus handles restarts);
//! what must survive restarts (open exceptions, last successful pull) is read from the
//! database when scraped.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;
use std::sync::Mutex;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BankLabel {
    pub bank: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RunLabel {
    pub bank: String,
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StatusLabel {
    pub status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BucketLabel {
    pub bucket: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct NoticeLabel {
    pub kind: String,
    pub stage: String,
    pub status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FindingLabel {
    pub bank: String,
    pub check: String,
    pub severity: String,
}

pub struct Metrics {
    registry: Mutex<Registry>,
    pub files: Family<BankLabel, Counter>,
    pub rejected_files: Family<BankLabel, Counter>,
    pub payments_ingested: Family<BankLabel, Counter>,
    pub bytes: Family<BankLabel, Counter>,
    pub runs: Family<RunLabel, Counter>,
    pub pull_failures: Family<BankLabel, Counter>,
    pub pull_seconds: Family<BankLabel, Histogram>,
    pub last_success: Family<BankLabel, Gauge<f64, AtomicU64>>,
    pub bank_healthy: Family<BankLabel, Gauge>,
    pub matched: Family<StatusLabel, Counter>,
    pub matched_amount: Family<BucketLabel, Counter<f64, AtomicU64>>,
    pub exceptions_open: Family<ReasonLabel, Gauge>,
    pub notices: Family<NoticeLabel, Gauge>,
    /// Failed checks stored with ingested files, by bank, check and severity.
    pub findings: Family<FindingLabel, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let m = Metrics {
            registry: Mutex::new(Registry::with_prefix("billrecon")),
            files: Family::default(),
            rejected_files: Family::default(),
            payments_ingested: Family::default(),
            bytes: Family::default(),
            runs: Family::default(),
            pull_failures: Family::default(),
            pull_seconds: Family::new_with_constructor(|| {
                Histogram::new([0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0])
            }),
            last_success: Family::default(),
            bank_healthy: Family::default(),
            matched: Family::default(),
            matched_amount: Family::default(),
            exceptions_open: Family::default(),
            notices: Family::default(),
            findings: Family::default(),
        };
        if let Ok(mut r) = m.registry.lock() {
            r.register("files_ingested", "Bank files ingested", m.files.clone());
            r.register(
                "files_rejected",
                "Bank files rejected and quarantined",
                m.rejected_files.clone(),
            );
            r.register(
                "payments_ingested",
                "Payment lines stored from bank files",
                m.payments_ingested.clone(),
            );
            r.register("pulled_bytes", "Bytes of bank files taken", m.bytes.clone());
            r.register("runs", "Pull runs by outcome", m.runs.clone());
            r.register("pull_failures", "Failed pull runs", m.pull_failures.clone());
            r.register(
                "pull_duration_seconds",
                "Duration of pull runs",
                m.pull_seconds.clone(),
            );
            r.register(
                "last_successful_pull_timestamp_seconds",
                "Unix time of the bank's last successful pull",
                m.last_success.clone(),
            );
            r.register(
                "bank_healthy",
                "1 when the bank's recent pulls succeed",
                m.bank_healthy.clone(),
            );
            r.register(
                "payments_matched",
                "Payments decided by matching, by outcome",
                m.matched.clone(),
            );
            r.register(
                "matched_amount",
                "Money decided by matching (major units): applied, credit, held",
                m.matched_amount.clone(),
            );
            r.register(
                "exceptions_open",
                "Open exceptions by reason",
                m.exceptions_open.clone(),
            );
            r.register(
                "notices",
                "Notices in the outbox by kind, stage and status",
                m.notices.clone(),
            );
            r.register(
                "file_findings",
                "Failed checks of bank files stored at ingest, by bank, check and severity",
                m.findings.clone(),
            );
        }
        m
    }

    pub fn bank(bank: &str) -> BankLabel {
        BankLabel { bank: bank.into() }
    }

    /// Adds a matching run's outcome.
    pub fn record_match(&self, s: &crate::matching::MatchSummary, exponent: u32) {
        for (status, n) in [
            ("applied", s.applied),
            ("partially_applied", s.partially_applied),
            ("credit", s.credit),
            ("exception", s.exception),
            ("reversed", s.reversed),
        ] {
            self.matched
                .get_or_create(&StatusLabel {
                    status: status.into(),
                })
                .inc_by(n);
        }
        let scale = 10f64.powi(exponent as i32);
        for (bucket, minor) in [
            ("applied", s.applied_minor),
            ("credit", s.credit_minor),
            ("held", s.held_minor),
        ] {
            // a counter only goes up: reversals (negative) are not subtracted here
            if minor > 0 {
                self.matched_amount
                    .get_or_create(&BucketLabel {
                        bucket: bucket.into(),
                    })
                    .inc_by(minor as f64 / scale);
            }
        }
    }

    /// Brings the findings counters up to the stored counts (`(bank, check, severity, n)`):
    /// the findings table only grows, so the counters stay monotonic and survive restarts.
    pub fn sync_findings(&self, counts: &[(String, String, String, i64)]) {
        for (bank, check, severity, n) in counts {
            let c = self.findings.get_or_create(&FindingLabel {
                bank: bank.clone(),
                check: check.clone(),
                severity: severity.clone(),
            });
            let have = c.get();
            let want = u64::try_from(*n).unwrap_or(0);
            if want > have {
                c.inc_by(want - have);
            }
        }
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if let Ok(r) = self.registry.lock() {
            if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &r) {
                tracing::warn!(error = %e, "cannot encode metrics");
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_family_is_rendered() {
        let m = Metrics::new();
        m.files.get_or_create(&Metrics::bank("ICBC")).inc();
        m.notices
            .get_or_create(&NoticeLabel {
                kind: "receipt".into(),
                stage: String::new(),
                status: "queued".into(),
            })
            .set(3);
        m.exceptions_open
            .get_or_create(&ReasonLabel {
                reason: "duplicate".into(),
            })
            .set(2);
        m.sync_findings(&[("ICBC".into(), "balance".into(), "error".into(), 2)]);
        m.sync_findings(&[("ICBC".into(), "balance".into(), "error".into(), 3)]);
        let text = m.render();
        assert!(
            text.contains("billrecon_files_ingested_total{bank=\"ICBC\"} 1"),
            "{text}"
        );
        assert!(
            text.contains(
                "billrecon_file_findings_total{bank=\"ICBC\",check=\"balance\",severity=\"error\"} 3"
            ),
            "{text}"
        );
        assert!(
            text.contains("billrecon_notices{kind=\"receipt\",stage=\"\",status=\"queued\"} 3"),
            "{text}"
        );
        assert!(
            text.contains("billrecon_exceptions_open{reason=\"duplicate\"} 2"),
            "{text}"
        );
    }
}
