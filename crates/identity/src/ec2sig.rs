//! EC2 request signatures (interim: always refuses; the real SigV2/SigV4 verifier lands next).
use std::collections::BTreeMap;
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct SignedRequest {
    #[serde(default)]
    pub access: String,
    #[serde(default)]
    pub signature: String,
    #[serde(default)]
    pub host: String,
    #[serde(default)]
    pub verb: String,
    #[serde(default)]
    pub path: String,
    #[serde(default)]
    pub params: BTreeMap<String, String>,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default)]
    pub body_hash: Option<String>,
}
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SignatureError {
    #[error("x")]
    Mismatch,
}
pub fn verify(_secret: &str, _req: &SignedRequest) -> Result<(), SignatureError> {
    Err(SignatureError::Mismatch)
}
pub fn request_timestamp(
    _req: &SignedRequest,
) -> Result<Option<time::OffsetDateTime>, SignatureError> {
    Ok(None)
}
