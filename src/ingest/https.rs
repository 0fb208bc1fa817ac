//! Placeholder with the API of the HTTPS pull client (the real one lands from branch
//! helper-https).

use serde::Deserialize;
use std::path::Path;

#[derive(Debug, Clone, Deserialize)]
pub struct Listed {
    pub name: String,
    pub size: u64,
    pub sha256: String,
    pub created_at: String,
}

#[derive(Debug, thiserror::Error)]
pub enum PullError {
    #[error("{0}")]
    Setup(String),
}

impl PullError {
    pub fn is_transient(&self) -> bool {
        false
    }
}

pub struct HttpsClient;

impl HttpsClient {
    pub fn new(_src: &crate::config::HttpsSource) -> Result<HttpsClient, PullError> {
        Err(PullError::Setup("not built yet".into()))
    }
    pub async fn list(&self, _since: Option<&str>) -> Result<Vec<Listed>, PullError> {
        Err(PullError::Setup("not built yet".into()))
    }
    pub async fn download(&self, _file: &Listed, _dest: &Path) -> Result<u64, PullError> {
        Err(PullError::Setup("not built yet".into()))
    }
}
