//! EC2 request signatures, verified the way Keystone's `/v3/ec2tokens` verifies
//! them (python-keystoneclient's `Ec2Signer`): Signature Version 0 and 1
//! (HMAC-SHA1), Version 2 (HMAC-SHA256, or HMAC-SHA1 when the request says
//! `SignatureMethod=HmacSHA1`) and Version 4 (`AWS4-HMAC-SHA256`, from the
//! `Authorization` header or the `X-Amz-*` query parameters).
//!
//! The input is Keystone's `credentials` object (what an EC2 front end forwards);
//! the EC2 Query API builds the same struct from its HTTP request. Where
//! keystoneclient and the AWS specification disagree, the request is accepted if
//! either computation matches: keystoneclient signs presigned (`X-Amz-*`) requests
//! over all parameters, AWS over all but `X-Amz-Signature`; keystoneclient keeps
//! runs of spaces in header values, AWS (and botocore) collapse them.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Deserializer};
use sha1::Sha1;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;

/// The fields of Keystone's ec2tokens `credentials` object.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct SignedRequest {
    #[serde(default, deserialize_with = "lenient_string")]
    pub access: String,
    #[serde(default, deserialize_with = "lenient_string")]
    pub signature: String,
    #[serde(default, deserialize_with = "lenient_string")]
    pub host: String,
    #[serde(default, deserialize_with = "lenient_string")]
    pub verb: String,
    #[serde(default, deserialize_with = "lenient_string")]
    pub path: String,
    #[serde(default, deserialize_with = "lenient_map")]
    pub params: BTreeMap<String, String>,
    #[serde(default, deserialize_with = "lenient_map")]
    pub headers: BTreeMap<String, String>,
    #[serde(default, deserialize_with = "lenient_opt_string")]
    pub body_hash: Option<String>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SignatureError {
    #[error("EC2 signature not supplied.")]
    NotSupplied,
    #[error("Invalid EC2 signature.")]
    Mismatch,
    #[error("Invalid EC2 signature: {0}")]
    Malformed(String),
}

fn scalar_to_string(v: serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::String(s) => Some(s),
        serde_json::Value::Number(n) => Some(n.to_string()),
        serde_json::Value::Bool(b) => Some(if b { "True" } else { "False" }.to_string()),
        _ => None,
    }
}

fn lenient_string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(scalar_to_string(serde_json::Value::deserialize(d)?).unwrap_or_default())
}

fn lenient_opt_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(scalar_to_string(serde_json::Value::deserialize(d)?))
}

fn lenient_map<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, String>, D::Error> {
    match serde_json::Value::deserialize(d)? {
        serde_json::Value::Object(m) => Ok(m
            .into_iter()
            .filter_map(|(k, v)| scalar_to_string(v).map(|s| (k, s)))
            .collect()),
        _ => Ok(BTreeMap::new()),
    }
}

type HmacSha1 = Hmac<Sha1>;
type HmacSha256 = Hmac<Sha256>;

fn hmac_sha1(key: &[u8], msg: &[u8]) -> Vec<u8> {
    let mut m = <HmacSha1 as Mac>::new_from_slice(key).expect("HMAC takes keys of any length");
    m.update(msg);
    m.finalize().into_bytes().to_vec()
}

fn hmac_sha256(key: &[u8], msg: &[u8]) -> Vec<u8> {
    let mut m = <HmacSha256 as Mac>::new_from_slice(key).expect("HMAC takes keys of any length");
    m.update(msg);
    m.finalize().into_bytes().to_vec()
}

/// Percent-encodes all but the RFC 3986 unreserved characters, upper-case hex
/// (Python's `urllib.parse.quote(s, safe='-_~')`, which is what both sides use).
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Keys sorted byte-wise, `key=value` pairs quoted and joined with `&`.
fn canonical_qs<'a>(params: impl Iterator<Item = (&'a String, &'a String)>) -> String {
    let mut pairs: Vec<(&String, &String)> = params.collect();
    pairs.sort();
    pairs
        .into_iter()
        .map(|(k, v)| format!("{}={}", quote(k), quote(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// AWS's Version 4 order: pairs sorted by their *encoded* names (botocore sorts
/// the quoted pairs), which differs from the raw order for names holding
/// reserved characters.
fn canonical_qs_encoded<'a>(params: impl Iterator<Item = (&'a String, &'a String)>) -> String {
    let mut pairs: Vec<(String, String)> = params.map(|(k, v)| (quote(k), quote(v))).collect();
    pairs.sort();
    pairs
        .into_iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

fn header<'a>(headers: &'a BTreeMap<String, String>, name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

fn is_v4(req: &SignedRequest) -> bool {
    header(&req.headers, "Authorization").is_some_and(|a| a.starts_with("AWS4-HMAC-SHA256"))
        || req.params.get("X-Amz-Algorithm").map(String::as_str) == Some("AWS4-HMAC-SHA256")
}

fn without_signature(
    params: &BTreeMap<String, String>,
) -> impl Iterator<Item = (&String, &String)> {
    params.iter().filter(|(k, _)| k.as_str() != "Signature")
}

fn sig_v0(secret: &str, params: &BTreeMap<String, String>) -> Result<String, SignatureError> {
    let action = params
        .get("Action")
        .ok_or_else(|| SignatureError::Malformed("no Action".into()))?;
    let ts = params
        .get("Timestamp")
        .ok_or_else(|| SignatureError::Malformed("no Timestamp".into()))?;
    Ok(B64.encode(hmac_sha1(
        secret.as_bytes(),
        format!("{action}{ts}").as_bytes(),
    )))
}

fn sig_v1(secret: &str, params: &BTreeMap<String, String>) -> String {
    let mut pairs: Vec<(&String, &String)> = without_signature(params).collect();
    pairs.sort_by_key(|p| p.0.to_lowercase());
    let mut msg = Vec::new();
    for (k, v) in pairs {
        msg.extend_from_slice(k.as_bytes());
        msg.extend_from_slice(v.as_bytes());
    }
    B64.encode(hmac_sha1(secret.as_bytes(), &msg))
}

/// Version 2: `VERB\nhost\npath\n` + canonical query string. keystoneclient signs
/// with HMAC-SHA256 and sets `SignatureMethod=HmacSHA256` in the canonical query
/// whatever the request said; a request that explicitly chose `HmacSHA1` is
/// checked with HMAC-SHA1 (as AWS and the classic Nova EC2 API did).
fn sig_v2(secret: &str, req: &SignedRequest, host: &str) -> String {
    let mut params: BTreeMap<String, String> = without_signature(&req.params)
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let sha1 = params.get("SignatureMethod").map(String::as_str) == Some("HmacSHA1");
    if !sha1 {
        params.insert("SignatureMethod".into(), "HmacSHA256".into());
    }
    let to_sign = format!(
        "{}\n{}\n{}\n{}",
        req.verb,
        host,
        req.path,
        canonical_qs(params.iter())
    );
    let mac = if sha1 {
        hmac_sha1(secret.as_bytes(), to_sign.as_bytes())
    } else {
        hmac_sha256(secret.as_bytes(), to_sign.as_bytes())
    };
    B64.encode(mac)
}

/// Options that distinguish keystoneclient's and AWS's Version 4 computations.
#[derive(Clone, Copy)]
struct V4Flavor {
    /// AWS: leave `X-Amz-Signature` out of the canonical query.
    skip_signature_param: bool,
    /// AWS: collapse runs of spaces inside header values.
    collapse_spaces: bool,
    /// keystoneclient: a POST's parameters travel in the body, so its canonical
    /// query string is empty.
    post_ignores_params: bool,
    /// AWS: the canonical query is sorted by encoded names.
    sort_encoded: bool,
}

const KEYSTONE_V4: V4Flavor = V4Flavor {
    skip_signature_param: false,
    collapse_spaces: false,
    post_ignores_params: true,
    sort_encoded: false,
};
const AWS_V4: V4Flavor = V4Flavor {
    skip_signature_param: true,
    collapse_spaces: true,
    post_ignores_params: false,
    sort_encoded: true,
};

fn sig_v4(
    secret: &str,
    req: &SignedRequest,
    strip_host_port: bool,
    flavor: V4Flavor,
) -> Result<String, SignatureError> {
    let malformed = |m: &str| SignatureError::Malformed(m.to_string());
    let auth_header = header(&req.headers, "Authorization");
    // A parameter of the Authorization header, else the X-Amz-<name> query parameter.
    let auth_param = |name: &str| -> Option<String> {
        match auth_header {
            Some(a) => {
                let (_, rest) = a.split_once(&format!("{name}="))?;
                Some(
                    rest.split(',')
                        .next()
                        .unwrap_or_default()
                        .trim()
                        .to_string(),
                )
            }
            None => req.params.get(&format!("X-Amz-{name}")).cloned(),
        }
    };
    let signed_headers =
        auth_param("SignedHeaders").ok_or_else(|| malformed("no SignedHeaders"))?;
    let credential = auth_param("Credential").ok_or_else(|| malformed("no Credential"))?;
    let date = header(&req.headers, "X-Amz-Date")
        .map(str::to_string)
        .or_else(|| req.params.get("X-Amz-Date").cloned())
        .ok_or_else(|| malformed("no X-Amz-Date"))?;

    let lower: BTreeMap<String, String> = req
        .headers
        .iter()
        .map(|(k, v)| {
            let v = v.trim();
            let v = if flavor.collapse_spaces {
                v.split_whitespace().collect::<Vec<_>>().join(" ")
            } else {
                v.to_string()
            };
            (k.trim().to_lowercase(), v)
        })
        .collect();
    // Boto < 2.9.3 signed `host` without the port (keystoneclient's workaround).
    let old_boto = lower.get("user-agent").is_some_and(|ua| {
        let b = ua.as_bytes();
        ua.starts_with("Boto/2.")
            && b.len() >= 10
            && b[7].is_ascii_digit()
            && b[8] == b'.'
            && (b'0'..=b'2').contains(&b[9])
    });
    let mut canonical_headers = String::new();
    for h in signed_headers.split(';') {
        let Some(v) = lower.get(h) else { continue };
        let v = if h == "host" && (old_boto || strip_host_port) {
            v.split(':').next().unwrap_or_default()
        } else {
            v.as_str()
        };
        canonical_headers.push_str(&format!("{h}:{v}\n"));
    }
    let query = if flavor.post_ignores_params && req.verb.eq_ignore_ascii_case("POST") {
        String::new()
    } else {
        let params = req
            .params
            .iter()
            .filter(|(k, _)| !(flavor.skip_signature_param && k.as_str() == "X-Amz-Signature"));
        if flavor.sort_encoded {
            canonical_qs_encoded(params)
        } else {
            canonical_qs(params)
        }
    };
    let canonical_request = [
        req.verb.to_uppercase(),
        req.path.clone(),
        query,
        canonical_headers,
        signed_headers.clone(),
        req.body_hash.clone().unwrap_or_default(),
    ]
    .join("\n");

    let parts: Vec<&str> = credential.split('/').collect();
    if parts.len() < 5 {
        return Err(malformed(
            "Credential is not ACCESS/DATE/REGION/SERVICE/aws4_request",
        ));
    }
    let (scope_date, region, service) = (parts[1], parts[2], parts[3]);
    if !date.starts_with(scope_date) {
        return Err(malformed(
            "request date does not match the credential scope",
        ));
    }
    let scope = parts[1..].join("/");
    let string_to_sign = format!(
        "AWS4-HMAC-SHA256\n{date}\n{scope}\n{}",
        hex::encode(Sha256::digest(canonical_request.as_bytes()))
    );
    let k_date = hmac_sha256(format!("AWS4{secret}").as_bytes(), scope_date.as_bytes());
    let k_region = hmac_sha256(&k_date, region.as_bytes());
    let k_service = hmac_sha256(&k_region, service.as_bytes());
    let k_signing = hmac_sha256(&k_service, b"aws4_request");
    Ok(hex::encode(hmac_sha256(
        &k_signing,
        string_to_sign.as_bytes(),
    )))
}

/// The signature keystoneclient's `Ec2Signer.generate` computes for this request.
pub fn compute_signature(secret: &str, req: &SignedRequest) -> Result<String, SignatureError> {
    compute(secret, req, &req.host, false, KEYSTONE_V4)
}

fn compute(
    secret: &str,
    req: &SignedRequest,
    host: &str,
    strip_port: bool,
    flavor: V4Flavor,
) -> Result<String, SignatureError> {
    match req.params.get("SignatureVersion").map(String::as_str) {
        Some("0") => sig_v0(secret, &req.params),
        Some("1") => Ok(sig_v1(secret, &req.params)),
        Some("2") => Ok(sig_v2(secret, req, host)),
        _ if is_v4(req) => sig_v4(secret, req, strip_port, flavor),
        Some(v) => Err(SignatureError::Malformed(format!(
            "unknown signature version {v}"
        ))),
        None => Err(SignatureError::Malformed(
            "unexpected signature format".into(),
        )),
    }
}

fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// Checks `req.signature` (constant-time). Like Keystone, a request that does not
/// match is tried once more with the port removed from the host, since some
/// clients sign `host` without it.
pub fn verify(secret: &str, req: &SignedRequest) -> Result<(), SignatureError> {
    if req.signature.is_empty() {
        return Err(SignatureError::NotSupplied);
    }
    let flavors: &[V4Flavor] = if is_v4(req) {
        &[KEYSTONE_V4, AWS_V4]
    } else {
        &[KEYSTONE_V4]
    };
    let hosts: Vec<(String, bool)> = match req.host.split_once(':') {
        Some((h, _)) => vec![(req.host.clone(), false), (h.to_string(), true)],
        None => vec![(req.host.clone(), false)],
    };
    let mut last = SignatureError::Mismatch;
    for (host, strip) in &hosts {
        for flavor in flavors {
            match compute(secret, req, host, *strip, *flavor) {
                Ok(expected) if same(&expected, &req.signature) => return Ok(()),
                Ok(_) => {}
                Err(e) => last = e,
            }
        }
    }
    Err(match last {
        SignatureError::Malformed(m) => SignatureError::Malformed(m),
        _ => SignatureError::Mismatch,
    })
}

/// The request's own time, as Keystone's `_check_timestamp` reads it: the
/// `Timestamp` parameter (versions 0–2), else `X-Amz-Date` from the headers or the
/// parameters (version 4). `None` when the request carries neither.
pub fn request_timestamp(req: &SignedRequest) -> Result<Option<OffsetDateTime>, SignatureError> {
    let raw = req
        .params
        .get("Timestamp")
        .filter(|t| !t.is_empty())
        .map(String::as_str)
        .or_else(|| header(&req.headers, "X-Amz-Date"))
        .or_else(|| req.params.get("X-Amz-Date").map(String::as_str));
    let Some(raw) = raw else { return Ok(None) };
    parse_time(raw)
        .map(Some)
        .ok_or_else(|| SignatureError::Malformed(format!("unreadable timestamp {raw:?}")))
}

/// A signing time: RFC 3339, the basic form (`20261207T120000Z`) or ISO 8601
/// without a zone (UTC).
pub fn parse_time(s: &str) -> Option<OffsetDateTime> {
    let s = s.trim();
    if let Ok(t) = OffsetDateTime::parse(s, &Rfc3339) {
        return Some(t);
    }
    let basic = format_description!("[year][month][day]T[hour][minute][second]Z");
    if let Ok(t) = time::PrimitiveDateTime::parse(s, basic) {
        return Some(t.assume_utc());
    }
    // ISO 8601 without a zone: UTC, as oslo's parse_isotime assumes.
    let no_zone = format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]");
    let main = s.split('.').next().unwrap_or(s);
    time::PrimitiveDateTime::parse(main, no_zone)
        .ok()
        .map(|t| t.assume_utc())
}

#[cfg(test)]
mod tests {
    use super::*;

    const KS_SECRET: &str = "89cdf9e94e2643cab35b8b8ac5a51f83";
    const KS_ACCESS: &str = "966afbde20b84200ae4e62e09acf46b2";
    const AWS_SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
    const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn req(params: &[(&str, &str)]) -> SignedRequest {
        SignedRequest {
            access: KS_ACCESS.into(),
            host: "127.0.0.1".into(),
            verb: "GET".into(),
            path: "/v1/".into(),
            params: map(params),
            ..Default::default()
        }
    }

    // --- keystoneclient's own vectors (tests/unit/test_ec2utils.py) ---

    #[test]
    fn keystoneclient_v0_vector() {
        let r = req(&[
            ("SignatureVersion", "0"),
            ("AWSAccessKeyId", KS_ACCESS),
            ("Timestamp", "2012-11-27T11:47:02Z"),
            ("Action", "Foo"),
        ]);
        assert_eq!(
            compute_signature(KS_SECRET, &r).unwrap(),
            "SmXQEZAUdQw5glv5mX8mmixBtas="
        );
    }

    #[test]
    fn keystoneclient_v1_vector() {
        let r = req(&[("SignatureVersion", "1"), ("AWSAccessKeyId", KS_ACCESS)]);
        assert_eq!(
            compute_signature(KS_SECRET, &r).unwrap(),
            "VRnoQH/EhVTTLhwRLfuL7jmFW9c="
        );
    }

    #[test]
    fn keystoneclient_v2_sha256_vector() {
        let r = req(&[("SignatureVersion", "2"), ("AWSAccessKeyId", KS_ACCESS)]);
        assert_eq!(
            compute_signature(KS_SECRET, &r).unwrap(),
            "odsGmT811GffUO0Eu13Pq+xTzKNIjJ6NhgZU74tYX/w="
        );
        // A request that names HmacSHA256 itself signs the same bytes.
        let r = req(&[
            ("SignatureVersion", "2"),
            ("AWSAccessKeyId", KS_ACCESS),
            ("SignatureMethod", "HmacSHA256"),
        ]);
        assert_eq!(
            compute_signature(KS_SECRET, &r).unwrap(),
            "odsGmT811GffUO0Eu13Pq+xTzKNIjJ6NhgZU74tYX/w="
        );
    }

    #[test]
    fn keystoneclient_v2_sha1_vector() {
        // keystoneclient's SHA1 variant sets SignatureMethod=HmacSHA1 itself.
        let r = req(&[
            ("SignatureVersion", "2"),
            ("AWSAccessKeyId", KS_ACCESS),
            ("SignatureMethod", "HmacSHA1"),
        ]);
        assert_eq!(
            compute_signature(KS_SECRET, &r).unwrap(),
            "ZqCxMI4ZtTXWI175743mJ0hy/Gc="
        );
    }

    fn iam_v4(host: &str, ua: Option<&str>, params: &[(&str, &str)]) -> SignedRequest {
        let mut headers = map(&[
            (
                "Content-type",
                "application/x-www-form-urlencoded; charset=utf-8",
            ),
            ("X-Amz-Date", "20110909T233600Z"),
            ("Host", host),
            (
                "Authorization",
                "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20110909/us-east-1/iam/aws4_request,SignedHeaders=content-type;host;x-amz-date,",
            ),
        ]);
        if let Some(ua) = ua {
            headers.insert("User-Agent".into(), ua.into());
        }
        SignedRequest {
            host: host.into(),
            verb: "POST".into(),
            path: "/".into(),
            params: map(params),
            headers,
            body_hash: Some(
                "b6359072c78d70ebee1e81adcbab4f01bf2c23245fa365ef83fe8f1f955085e2".into(),
            ),
            ..Default::default()
        }
    }

    #[test]
    fn keystoneclient_v4_vectors() {
        let presigned = iam_v4(
            "iam.amazonaws.com",
            None,
            &[
                ("Action", "CreateUser"),
                ("UserName", "NewUser"),
                ("Version", "2010-05-08"),
                ("X-Amz-Algorithm", "AWS4-HMAC-SHA256"),
                (
                    "X-Amz-Credential",
                    "AKIAEXAMPLE/20140611/us-east-1/iam/aws4_request",
                ),
                ("X-Amz-Date", "20140611T231318Z"),
                ("X-Amz-Expires", "30"),
                ("X-Amz-SignedHeaders", "host"),
                (
                    "X-Amz-Signature",
                    "ced6826de92d2bdeed8f846f0bf508e8559e98e4b0199114b84c54174deb456c",
                ),
            ],
        );
        assert_eq!(
            compute_signature(AWS_SECRET, &presigned).unwrap(),
            "ced6826de92d2bdeed8f846f0bf508e8559e98e4b0199114b84c54174deb456c"
        );
        let port = iam_v4("foo:8000", None, &[]);
        assert_eq!(
            compute_signature(AWS_SECRET, &port).unwrap(),
            "26dd92ea79aaa49f533d13b1055acdcd7d7321460d64621f96cc79c4f4d4ab2b"
        );
        let old_boto = iam_v4("foo:8000", Some("Boto/2.9.2 (linux2)"), &[]);
        assert_eq!(
            compute_signature(AWS_SECRET, &old_boto).unwrap(),
            "9a4b2276a5039ada3b90f72ea8ec174514b92b909fb106b22ad910c5d75a54f4"
        );
        let new_boto = iam_v4("foo:8000", Some("Boto/2.9.3 (linux2)"), &[]);
        assert_eq!(
            compute_signature(AWS_SECRET, &new_boto).unwrap(),
            "26dd92ea79aaa49f533d13b1055acdcd7d7321460d64621f96cc79c4f4d4ab2b"
        );
    }

    // --- the AWS Signature Version 4 test suite (aws-sig-v4-test-suite) ---

    fn suite(
        verb: &str,
        params: &[(&str, &str)],
        extra_headers: &[(&str, &str)],
        body: &str,
        signed: &str,
    ) -> SignedRequest {
        let mut headers = map(&[
            ("Host", "example.amazonaws.com"),
            ("X-Amz-Date", "20150830T123600Z"),
        ]);
        for (k, v) in extra_headers {
            headers.insert(k.to_string(), v.to_string());
        }
        headers.insert(
            "Authorization".into(),
            format!(
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders={signed}, Signature=x"
            ),
        );
        SignedRequest {
            access: "AKIDEXAMPLE".into(),
            host: "example.amazonaws.com".into(),
            verb: verb.into(),
            path: "/".into(),
            params: map(params),
            headers,
            body_hash: Some(hex::encode(Sha256::digest(body.as_bytes()))),
            ..Default::default()
        }
    }

    #[test]
    fn aws_suite_get_vanilla() {
        let r = suite("GET", &[], &[], "", "host;x-amz-date");
        assert_eq!(r.body_hash.as_deref(), Some(EMPTY_SHA256));
        assert_eq!(
            compute_signature(AWS_SECRET, &r).unwrap(),
            "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
        );
    }

    #[test]
    fn aws_suite_post_vanilla() {
        let r = suite("POST", &[], &[], "", "host;x-amz-date");
        assert_eq!(
            compute_signature(AWS_SECRET, &r).unwrap(),
            "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"
        );
    }

    #[test]
    fn aws_suite_get_vanilla_query_order_key_case() {
        let r = suite(
            "GET",
            &[("Param2", "value2"), ("Param1", "value1")],
            &[],
            "",
            "host;x-amz-date",
        );
        assert_eq!(
            compute_signature(AWS_SECRET, &r).unwrap(),
            "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"
        );
    }

    #[test]
    fn aws_suite_post_x_www_form_urlencoded() {
        let r = suite(
            "POST",
            &[],
            &[("Content-Type", "application/x-www-form-urlencoded")],
            "Param1=value1",
            "content-type;host;x-amz-date",
        );
        assert_eq!(
            compute_signature(AWS_SECRET, &r).unwrap(),
            "ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a"
        );
    }

    // --- verification behaviour ---

    #[test]
    fn verify_accepts_the_right_secret_only() {
        let mut r = suite("GET", &[], &[], "", "host;x-amz-date");
        r.signature = "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31".into();
        assert_eq!(verify(AWS_SECRET, &r), Ok(()));
        assert_eq!(verify("another-secret", &r), Err(SignatureError::Mismatch));
        let mut tampered = r.clone();
        tampered
            .params
            .insert("Action".into(), "TerminateInstances".into());
        assert_eq!(verify(AWS_SECRET, &tampered), Err(SignatureError::Mismatch));
        let mut missing = r.clone();
        missing.signature.clear();
        assert_eq!(
            verify(AWS_SECRET, &missing),
            Err(SignatureError::NotSupplied)
        );
    }

    #[test]
    fn v2_signed_without_the_port_is_accepted() {
        let mut r = req(&[
            ("SignatureVersion", "2"),
            ("SignatureMethod", "HmacSHA256"),
            ("AWSAccessKeyId", KS_ACCESS),
            ("Action", "DescribeRegions"),
            ("Timestamp", "2026-11-22T13:00:00Z"),
        ]);
        r.host = "cloud.example".into();
        r.signature = compute_signature(KS_SECRET, &r).unwrap();
        r.host = "cloud.example:8773".into();
        assert_eq!(verify(KS_SECRET, &r), Ok(()));
        r.host = "other.example:8773".into();
        assert_eq!(verify(KS_SECRET, &r), Err(SignatureError::Mismatch));
    }

    #[test]
    fn v4_date_must_match_the_credential_scope() {
        let mut r = suite("GET", &[], &[], "", "host;x-amz-date");
        r.headers
            .insert("X-Amz-Date".into(), "20150831T000000Z".into());
        r.signature = "00".into();
        assert!(matches!(
            verify(AWS_SECRET, &r),
            Err(SignatureError::Malformed(_))
        ));
    }

    #[test]
    fn presigned_requests_follow_aws_too() {
        // AWS leaves X-Amz-Signature out of the canonical query.
        let mut r = SignedRequest {
            host: "example.amazonaws.com".into(),
            verb: "GET".into(),
            path: "/".into(),
            params: map(&[
                ("Action", "DescribeRegions"),
                ("X-Amz-Algorithm", "AWS4-HMAC-SHA256"),
                (
                    "X-Amz-Credential",
                    "AKIDEXAMPLE/20150830/us-east-1/ec2/aws4_request",
                ),
                ("X-Amz-Date", "20150830T123600Z"),
                ("X-Amz-SignedHeaders", "host"),
            ]),
            headers: map(&[("Host", "example.amazonaws.com")]),
            body_hash: Some("UNSIGNED-PAYLOAD".into()),
            ..Default::default()
        };
        let sig = compute_signature(AWS_SECRET, &r).unwrap();
        r.params.insert("X-Amz-Signature".into(), sig.clone());
        r.signature = sig;
        assert_eq!(verify(AWS_SECRET, &r), Ok(()));
    }

    #[test]
    fn timestamps_are_read_like_keystone() {
        let r = req(&[("Timestamp", "2026-11-22T13:00:00Z")]);
        assert_eq!(
            request_timestamp(&r).unwrap().unwrap().unix_timestamp(),
            1_795_352_400
        );
        let r = req(&[("Timestamp", "2026-11-22T13:00:00.123Z")]);
        assert_eq!(
            request_timestamp(&r).unwrap().unwrap().unix_timestamp(),
            1_795_352_400
        );
        let r = req(&[("Timestamp", "2026-11-22T13:00:00")]);
        assert_eq!(
            request_timestamp(&r).unwrap().unwrap().unix_timestamp(),
            1_795_352_400
        );
        let mut r = req(&[]);
        r.headers
            .insert("X-Amz-Date".into(), "20261122T130000Z".into());
        assert_eq!(
            request_timestamp(&r).unwrap().unwrap().unix_timestamp(),
            1_795_352_400
        );
        let r = req(&[("X-Amz-Date", "20261122T130000Z")]);
        assert_eq!(
            request_timestamp(&r).unwrap().unwrap().unix_timestamp(),
            1_795_352_400
        );
        assert_eq!(request_timestamp(&req(&[])).unwrap(), None);
        assert!(request_timestamp(&req(&[("Timestamp", "yesterday")])).is_err());
    }

    #[test]
    fn json_from_callers_is_read_leniently() {
        let r: SignedRequest = serde_json::from_value(serde_json::json!({
            "access": "a", "signature": "s", "host": "h", "verb": "GET", "path": "/",
            "params": {"SignatureVersion": 2, "Action": "X"}, "headers": {}
        }))
        .unwrap();
        assert_eq!(r.params["SignatureVersion"], "2");
        assert_eq!(r.body_hash, None);
    }
}
