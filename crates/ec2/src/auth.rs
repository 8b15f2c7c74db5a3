//! Who is calling: the request's signature (Version 2 with HmacSHA1 or
//! HmacSHA256, or Version 4 by header or presigned query) checked against the
//! access key's secret in Keystone's credential store, in process, and the
//! request's time (±15 minutes, `Expires`, `X-Amz-Expires`). The caller then
//! acts as the credential's user on its project.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

use ferrostack_core::RequestContext;
use ferrostack_identity::credential::Ec2AuthError;
use ferrostack_identity::ec2sig::{self, SignedRequest, parse_time};

use crate::Ec2;
use crate::error::{Error, Result};
use crate::params::Params;

/// How far a request's own time may be from ours, either way (AWS: 15 minutes).
pub const MAX_SKEW_SECS: i64 = 15 * 60;

/// The parts of an HTTP request that signatures cover.
#[derive(Debug, Clone, Default)]
pub struct HttpRequest {
    pub verb: String,
    /// The Host header as sent (with its port, if any).
    pub host: String,
    pub path: String,
    /// The URL's query parameters, decoded.
    pub query: Vec<(String, String)>,
    /// The form body's parameters, decoded (POST).
    pub form: Vec<(String, String)>,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// An authenticated caller.
#[derive(Debug, Clone)]
pub struct Caller {
    pub ctx: RequestContext,
    pub access_key: String,
}

/// The names of the parameters that sign a request, never passed to actions.
const SIGNING: &[&str] = &[
    "AWSAccessKeyId",
    "Signature",
    "SignatureMethod",
    "SignatureVersion",
    "Timestamp",
    "Expires",
    "X-Amz-Algorithm",
    "X-Amz-Credential",
    "X-Amz-Date",
    "X-Amz-Expires",
    "X-Amz-SignedHeaders",
    "X-Amz-Signature",
    "X-Amz-Security-Token",
];

impl HttpRequest {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every parameter, query and form (a form value wins), signing ones included.
    pub fn all_params(&self) -> BTreeMap<String, String> {
        self.query
            .iter()
            .chain(self.form.iter())
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// The action's parameters: all but the signing ones.
    pub fn action_params(&self) -> Params {
        let mut all = self.all_params();
        all.retain(|k, _| !SIGNING.contains(&k.as_str()));
        Params(all)
    }
}

/// The request's time rules: V2 `Timestamp` within ±15 min or `Expires` not
/// passed; V4 `X-Amz-Date` within ±15 min, and a presigned request's
/// `X-Amz-Expires` not passed.
fn check_time(req: &HttpRequest, all: &BTreeMap<String, String>, now: i64) -> Result<()> {
    let unreadable =
        |name: &str, v: &str| Error::invalid_value(name, v, "Not a valid ISO 8601 time.");
    if let Some(exp) = all.get("Expires") {
        let t = parse_time(exp).ok_or_else(|| unreadable("Expires", exp))?;
        if now > t.unix_timestamp() {
            return Err(Error::expired());
        }
        return Ok(());
    }
    let (name, raw) = if let Some(ts) = all.get("Timestamp") {
        ("Timestamp", ts.as_str())
    } else if let Some(d) = req.header("X-Amz-Date") {
        ("X-Amz-Date", d)
    } else if let Some(d) = all.get("X-Amz-Date") {
        ("X-Amz-Date", d.as_str())
    } else if let Some(d) = req.header("Date") {
        ("Date", d)
    } else {
        return Err(Error::missing("Timestamp"));
    };
    let t = match parse_time(raw) {
        Some(t) => t,
        None if name == "Date" => {
            time::OffsetDateTime::parse(raw, &time::format_description::well_known::Rfc2822)
                .map_err(|_| unreadable(name, raw))?
        }
        None => return Err(unreadable(name, raw)),
    };
    let t = t.unix_timestamp();
    if let Some(exp) = all.get("X-Amz-Expires") {
        let secs: i64 = exp
            .parse()
            .map_err(|_| Error::invalid_value("X-Amz-Expires", exp, ""))?;
        if !(1..=604_800).contains(&secs) {
            return Err(Error::invalid_value("X-Amz-Expires", exp, ""));
        }
        if now > t + secs || t > now + MAX_SKEW_SECS {
            return Err(Error::expired());
        }
        return Ok(());
    }
    if (now - t).abs() > MAX_SKEW_SECS {
        return Err(Error::expired());
    }
    Ok(())
}

/// The signature fields of the request, as [`ec2sig`] verifies them.
fn signed_request(req: &HttpRequest, all: &BTreeMap<String, String>) -> Result<SignedRequest> {
    let headers: BTreeMap<String, String> = req
        .headers
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let auth = req.header("Authorization").unwrap_or_default();
    let param = |name: &str| -> Option<String> {
        auth.split_once(&format!("{name}=")).map(|(_, rest)| {
            rest.split(',')
                .next()
                .unwrap_or_default()
                .trim()
                .to_string()
        })
    };
    let body_hash = Some(hex::encode(Sha256::digest(&req.body)));
    if auth.starts_with("AWS4-HMAC-SHA256") {
        let credential = param("Credential").ok_or_else(incomplete)?;
        let signature = param("Signature").ok_or_else(incomplete)?;
        param("SignedHeaders").ok_or_else(incomplete)?;
        // Version 4 signs the URL's query string; a POST's form is the payload.
        return Ok(SignedRequest {
            access: credential.split('/').next().unwrap_or_default().to_string(),
            signature,
            host: req.host.clone(),
            verb: req.verb.clone(),
            path: req.path.clone(),
            params: req.query.iter().cloned().collect(),
            headers,
            body_hash,
        });
    }
    if all.get("X-Amz-Algorithm").map(String::as_str) == Some("AWS4-HMAC-SHA256") {
        let credential = all.get("X-Amz-Credential").ok_or_else(incomplete)?;
        return Ok(SignedRequest {
            access: credential.split('/').next().unwrap_or_default().to_string(),
            signature: all.get("X-Amz-Signature").cloned().ok_or_else(incomplete)?,
            host: req.host.clone(),
            verb: req.verb.clone(),
            path: req.path.clone(),
            params: req.query.iter().cloned().collect(),
            headers,
            body_hash,
        });
    }
    match all.get("SignatureVersion").map(String::as_str) {
        Some("2") => {}
        Some(v) => {
            return Err(Error::invalid_value(
                "SignatureVersion",
                v,
                "Only versions 2 and 4 are accepted.",
            ));
        }
        None => {
            return Err(Error::new(
                401,
                "AuthFailure",
                "AWS was not able to validate the provided access credentials",
            ));
        }
    }
    if let Some(m) = all.get("SignatureMethod")
        && !matches!(m.as_str(), "HmacSHA256" | "HmacSHA1")
    {
        return Err(Error::invalid_value("SignatureMethod", m, ""));
    }
    let mut params = all.clone();
    let signature = params.remove("Signature").ok_or_else(incomplete)?;
    Ok(SignedRequest {
        access: all.get("AWSAccessKeyId").cloned().ok_or_else(incomplete)?,
        signature,
        host: req.host.clone(),
        verb: req.verb.clone(),
        path: req.path.clone(),
        params,
        headers,
        body_hash,
    })
}

fn incomplete() -> Error {
    Error::new(
        400,
        "IncompleteSignature",
        "The request signature does not conform to AWS standards.",
    )
}

impl Ec2 {
    /// Authenticates a request: its signature, then its time.
    pub async fn authenticate(&self, req: &HttpRequest) -> Result<Caller> {
        let all = req.all_params();
        let signed = signed_request(req, &all)?;
        let mut outcome = self.identity.ec2_context(&signed).await;
        // botocore presigns Query operations as POST (the operation's method)
        // while the URL is then fetched with GET: a presigned URL is checked
        // with the other verb too (the signature still covers every parameter).
        if matches!(outcome, Err(Ec2AuthError::BadSignature)) && all.contains_key("X-Amz-Signature")
        {
            let mut other = signed.clone();
            other.verb = if signed.verb == "GET" { "POST" } else { "GET" }.into();
            outcome = self.identity.ec2_context(&other).await;
        }
        let ctx = match outcome {
            Ok(ctx) => ctx,
            Err(Ec2AuthError::Internal(e)) => return Err(Error::internal(e)),
            Err(Ec2AuthError::Malformed(_)) => return Err(incomplete()),
            Err(e) => {
                tracing::info!(access = %signed.access, why = %e, "EC2 request refused");
                return Err(Error::auth_failure());
            }
        };
        check_time(req, &all, ferrostack_core::time::unix_now())?;
        Ok(Caller {
            ctx,
            access_key: signed.access,
        })
    }
}

/// For tests and clients of this crate: SigV2's string to sign is exposed by
/// [`ec2sig`], which this module only calls.
pub use ec2sig::SignatureError;

#[cfg(test)]
mod tests {
    use super::*;
    use time::OffsetDateTime;

    fn req(
        pairs: &[(&str, &str)],
        headers: &[(&str, &str)],
    ) -> (HttpRequest, BTreeMap<String, String>) {
        let r = HttpRequest {
            verb: "POST".into(),
            host: "h:1".into(),
            path: "/".into(),
            form: pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..Default::default()
        };
        let all = r.all_params();
        (r, all)
    }

    #[test]
    fn time_rules() {
        let now = 1_800_000_000;
        let iso = |t: i64| {
            OffsetDateTime::from_unix_timestamp(t)
                .unwrap()
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap()
        };
        let (r, a) = req(&[("Timestamp", &iso(now - 14 * 60))], &[]);
        assert!(check_time(&r, &a, now).is_ok());
        let (r, a) = req(&[("Timestamp", &iso(now - 16 * 60))], &[]);
        assert_eq!(check_time(&r, &a, now).unwrap_err().code, "RequestExpired");
        let (r, a) = req(&[("Timestamp", &iso(now + 16 * 60))], &[]);
        assert_eq!(check_time(&r, &a, now).unwrap_err().code, "RequestExpired");
        let (r, a) = req(&[("Expires", &iso(now - 1))], &[]);
        assert_eq!(check_time(&r, &a, now).unwrap_err().code, "RequestExpired");
        let (r, a) = req(&[("Expires", &iso(now + 3600))], &[]);
        assert!(check_time(&r, &a, now).is_ok());
        let basic = |t: i64| {
            let d = OffsetDateTime::from_unix_timestamp(t).unwrap();
            format!(
                "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
                d.year(),
                d.month() as u8,
                d.day(),
                d.hour(),
                d.minute(),
                d.second()
            )
        };
        let (r, a) = req(&[], &[("X-Amz-Date", &basic(now - 20 * 60))]);
        assert_eq!(check_time(&r, &a, now).unwrap_err().code, "RequestExpired");
        let (r, a) = req(
            &[
                ("X-Amz-Date", &basic(now - 20 * 60)),
                ("X-Amz-Expires", "3600"),
            ],
            &[],
        );
        assert!(check_time(&r, &a, now).is_ok());
        let (r, a) = req(
            &[
                ("X-Amz-Date", &basic(now - 20 * 60)),
                ("X-Amz-Expires", "300"),
            ],
            &[],
        );
        assert_eq!(check_time(&r, &a, now).unwrap_err().code, "RequestExpired");
        let (r, a) = req(&[], &[]);
        assert_eq!(
            check_time(&r, &a, now).unwrap_err().code,
            "MissingParameter"
        );
    }

    #[test]
    fn signing_parameters_never_reach_actions() {
        let (r, _) = req(
            &[
                ("Action", "DescribeRegions"),
                ("Signature", "x"),
                ("AWSAccessKeyId", "a"),
                ("SignatureVersion", "2"),
            ],
            &[],
        );
        let p = r.action_params();
        assert_eq!(p.0.len(), 1);
        let (r, a) = req(
            &[
                ("Action", "DescribeRegions"),
                ("SignatureVersion", "2"),
                ("AWSAccessKeyId", "a"),
            ],
            &[],
        );
        assert_eq!(
            signed_request(&r, &a).unwrap_err().code,
            "IncompleteSignature"
        );
        let (r, a) = req(&[("Action", "DescribeRegions")], &[]);
        assert_eq!(signed_request(&r, &a).unwrap_err().code, "AuthFailure");
    }
}
