//! What the daemon's tasks and its HTTP handlers share: the application, the metrics and
//! each bank's health. It lives below both (`scheduler` runs the tasks, `api` serves HTTP), so
//! neither imports the other for it.

use super::App;
use crate::metrics::Metrics;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// What the daemon knows of a bank's health, for `/readyz` and `/metrics`.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct BankHealth {
    pub consecutive_failures: i64,
    pub healthy: bool,
    pub last_outcome: Option<String>,
    pub last_error: Option<String>,
    pub last_success_at: Option<String>,
    pub next_run_at: Option<String>,
}

/// Shared between the scheduler's tasks and the HTTP handlers.
pub struct DaemonState {
    pub app: Arc<App>,
    pub metrics: Metrics,
    pub banks: Mutex<BTreeMap<String, BankHealth>>,
}

impl DaemonState {
    pub fn new(app: Arc<App>) -> Arc<DaemonState> {
        Arc::new(DaemonState {
            app,
            metrics: Metrics::new(),
            banks: Mutex::new(BTreeMap::new()),
        })
    }

    /// The banks reported unhealthy.
    pub fn unhealthy(&self) -> Vec<String> {
        self.banks
            .lock()
            .map(|b| {
                b.iter()
                    .filter(|(_, h)| !h.healthy)
                    .map(|(id, _)| id.clone())
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn update(&self, bank: &str, f: impl FnOnce(&mut BankHealth)) {
        if let Ok(mut b) = self.banks.lock() {
            f(b.entry(bank.to_string()).or_default());
        }
    }
}
