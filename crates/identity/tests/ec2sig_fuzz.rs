//! Property-based fuzzing of the EC2 request signatures (`ec2sig`).
//!
//! * hostile requests: `verify`, `compute_signature` and `request_timestamp` never
//!   panic, and agree with each other;
//! * round trips: requests signed by the reference implementations below (written
//!   from the AWS Signature Version 2 and 4 specifications, not from `ec2sig.rs`)
//!   verify, and stop verifying when one parameter, header, the path or the secret
//!   changes;
//! * a Version 2 request signed over the host without its port verifies when the
//!   request's host carries the port.
//!
//! Each property runs `DEFAULT_CASES` cases unless `PROPTEST_CASES` says otherwise
//! (proptest reads `PROPTEST_*` into `ProptestConfig::default()`; `with_cases`
//! would override it, so the default is only applied when the variable is unset).
//! `PROPTEST_RNG_SEED=<u64>` replays a run; failures are also saved next to this
//! file, in `ec2sig_fuzz.proptest-regressions`, and replayed first by later runs.
//! `scripts/fuzz-ec2sig` loops large runs with fresh seeds for a given time.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use ferrostack_identity::ec2sig::{
    SignatureError, SignedRequest, compute_signature, request_timestamp, verify,
};
use hmac::{Hmac, Mac};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;
use proptest::sample::{Index, select};
use proptest::test_runner::FileFailurePersistence;
use sha1::Sha1;
use sha2::{Digest, Sha256};

/// Cases per property when `PROPTEST_CASES` is unset: the whole file stays well
/// under 20 s in a debug build.
const DEFAULT_CASES: u32 = 512;

fn config() -> ProptestConfig {
    let mut c = ProptestConfig::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        c.cases = DEFAULT_CASES;
    }
    // Integration tests have no lib.rs beside them, so the default
    // (`SourceParallel`) would warn on every run; keep regressions next to this file.
    c.failure_persistence = Some(Box::new(FileFailurePersistence::WithSource(
        "proptest-regressions",
    )));
    c
}

// ---------------------------------------------------------------------------
// Reference implementations (AWS specifications)
// ---------------------------------------------------------------------------

/// RFC 3986: everything but `A-Z a-z 0-9 - _ . ~` is percent-encoded (upper-case hex).
const NOT_UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

fn uri_encode(s: &str) -> String {
    utf8_percent_encode(s, NOT_UNRESERVED).to_string()
}

fn hmac_sha256(key: &[u8], msg: &[u8]) -> Vec<u8> {
    let mut m = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key");
    m.update(msg);
    m.finalize().into_bytes().to_vec()
}

fn hmac_sha1(key: &[u8], msg: &[u8]) -> Vec<u8> {
    let mut m = Hmac::<Sha1>::new_from_slice(key).expect("HMAC takes any key");
    m.update(msg);
    m.finalize().into_bytes().to_vec()
}

/// Signature Version 2: `base64(HMAC(secret, VERB\nhost\npath\n + query))`, the
/// query being every parameter but `Signature`, sorted by name (byte order), names
/// and values RFC 3986-encoded, `name=value` joined with `&`.
fn reference_v2(
    secret: &str,
    verb: &str,
    host: &str,
    path: &str,
    params: &BTreeMap<String, String>,
) -> String {
    let mut names: Vec<&str> = params
        .keys()
        .map(String::as_str)
        .filter(|k| *k != "Signature")
        .collect();
    names.sort_unstable_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    let query = names
        .iter()
        .map(|k| format!("{}={}", uri_encode(k), uri_encode(&params[*k])))
        .collect::<Vec<_>>()
        .join("&");
    let to_sign = format!("{verb}\n{host}\n{path}\n{query}");
    let mac = match params.get("SignatureMethod").map(String::as_str) {
        Some("HmacSHA1") => hmac_sha1(secret.as_bytes(), to_sign.as_bytes()),
        _ => hmac_sha256(secret.as_bytes(), to_sign.as_bytes()),
    };
    B64.encode(mac)
}

/// Signature Version 1: `base64(HMAC-SHA1(secret, name1 value1 name2 value2 ...))`,
/// every parameter but `Signature`, sorted by name ignoring case, concatenated.
fn reference_v1(secret: &str, params: &BTreeMap<String, String>) -> String {
    let mut names: Vec<&String> = params.keys().filter(|k| *k != "Signature").collect();
    names.sort_by_key(|k| k.to_lowercase());
    let msg: String = names.iter().map(|k| format!("{k}{}", params[*k])).collect();
    B64.encode(hmac_sha1(secret.as_bytes(), msg.as_bytes()))
}

/// Signature Version 0: `base64(HMAC-SHA1(secret, Action + Timestamp))`.
fn reference_v0(secret: &str, params: &BTreeMap<String, String>) -> String {
    let msg = format!("{}{}", params["Action"], params["Timestamp"]);
    B64.encode(hmac_sha1(secret.as_bytes(), msg.as_bytes()))
}

/// The AWS (botocore) `Trimall`: trim, and runs of spaces become one space.
fn trimall(v: &str) -> String {
    v.split(' ')
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Everything a Version 4 signature covers.
struct V4Input<'a> {
    secret: &'a str,
    verb: &'a str,
    path: &'a str,
    /// Query parameters; `X-Amz-Signature` is left out of the canonical query.
    params: &'a BTreeMap<String, String>,
    /// All request headers, any case; those named (lower-cased) in `signed` count.
    headers: &'a [(String, String)],
    signed: &'a [String],
    amz_date: &'a str,
    scope_date: &'a str,
    region: &'a str,
    service: &'a str,
    body_hash: &'a str,
}

/// Signature Version 4, as the AWS documentation ("Create a signed AWS API
/// request") and botocore compute it.
fn reference_v4(i: &V4Input<'_>) -> String {
    // Canonical query: names and values encoded, then sorted by encoded name.
    let mut pairs: Vec<(String, String)> = i
        .params
        .iter()
        .filter(|(k, _)| k.as_str() != "X-Amz-Signature")
        .map(|(k, v)| (uri_encode(k), uri_encode(v)))
        .collect();
    pairs.sort();
    let query = pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&");
    // Canonical headers: lower-case names, trimmed values, sorted by name.
    let mut canonical: Vec<(String, String)> = i
        .headers
        .iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), trimall(v)))
        .filter(|(k, _)| i.signed.contains(k))
        .collect();
    canonical.sort();
    let canonical_headers: String = canonical
        .iter()
        .map(|(k, v)| format!("{k}:{v}\n"))
        .collect();
    let mut signed = i.signed.to_vec();
    signed.sort();
    let signed = signed.join(";");
    let canonical_request = format!(
        "{}\n{}\n{query}\n{canonical_headers}\n{signed}\n{}",
        i.verb, i.path, i.body_hash
    );
    let scope = format!("{}/{}/{}/aws4_request", i.scope_date, i.region, i.service);
    let string_to_sign = format!(
        "AWS4-HMAC-SHA256\n{}\n{scope}\n{}",
        i.amz_date,
        hex::encode(Sha256::digest(canonical_request.as_bytes()))
    );
    let mut key = format!("AWS4{}", i.secret).into_bytes();
    for part in [i.scope_date, i.region, i.service, "aws4_request"] {
        key = hmac_sha256(&key, part.as_bytes());
    }
    hex::encode(hmac_sha256(&key, string_to_sign.as_bytes()))
}

// ---------------------------------------------------------------------------
// Strategies
// ---------------------------------------------------------------------------

/// Characters that stress canonicalisation: reserved and unreserved punctuation,
/// spaces, `%`, and 2-, 3- and 4-byte UTF-8.
const SPICY: &[char] = &[
    ' ',
    '~',
    '%',
    '+',
    '/',
    '=',
    '&',
    '?',
    '#',
    ':',
    ';',
    ',',
    '.',
    '-',
    '_',
    '*',
    '!',
    '\'',
    '(',
    ')',
    '[',
    ']',
    '{',
    '}',
    '@',
    '$',
    '"',
    '\\',
    '^',
    '`',
    '|',
    '<',
    '>',
    'é',
    'ß',
    'Ω',
    '日',
    '本',
    '€',
    '\u{a0}',
    '\u{7f}',
    '\u{1F600}',
    '\u{10FFFF}',
];

/// Words that steer `ec2sig.rs` into its branches.
const MAGIC: &[&str] = &[
    "",
    "AWS4-HMAC-SHA256",
    "aws4_request",
    "host",
    "x-amz-date",
    "HmacSHA1",
    "HmacSHA256",
    "0",
    "1",
    "2",
    "4",
    "POST",
    "GET",
    "Boto/2.",
    "Boto/2.9",
    "Boto/2.9.",
    "Boto/2.9.2",
    "Boto/2.99.2",
    "20150830",
    "20150830T123600Z",
    "2026-11-22T13:00:00Z",
    "Credential=",
    "SignedHeaders=",
    "Signature=",
    ",",
    "/",
    ":",
    ";",
    "=",
    " ",
    ".",
    "é",
    "\u{1F600}",
    "\0",
];

fn value_char() -> impl Strategy<Value = char> + Clone {
    prop_oneof![
        4 => prop::char::range(' ', '~'),
        2 => select(SPICY),
        1 => any::<char>(),
    ]
}

/// Printable and non-ASCII text, spaces, `~ % + / =` and the like.
fn text(max: usize) -> impl Strategy<Value = String> + Clone {
    vec(value_char(), 0..max).prop_map(String::from_iter)
}

/// Anything a JSON string can hold, structured enough to reach the branches.
fn hostile() -> BoxedStrategy<String> {
    prop_oneof![
        3 => vec(any::<char>(), 0..12).prop_map(String::from_iter),
        3 => vec(any::<u8>(), 0..12).prop_map(|b| b.into_iter().map(char::from).collect()),
        3 => text(16),
        3 => select(MAGIC).prop_map(str::to_string),
        2 => vec(select(MAGIC), 0..6).prop_map(|w| w.concat()),
        1 => (select(MAGIC), 0usize..2000).prop_map(|(w, n)| w.repeat(n)),
        1 => (any::<char>(), 1000usize..6000).prop_map(|(c, n)| c.to_string().repeat(n)),
    ]
    .boxed()
}

/// `ACCESS/DATE/REGION/SERVICE/aws4_request`, or fewer or more parts, or junk.
fn credential() -> BoxedStrategy<String> {
    prop_oneof![
        vec(hostile(), 0..8).prop_map(|p| p.join("/")),
        hostile(),
        (
            hostile(),
            prop_oneof![Just("20150830".to_string()), hostile()],
            hostile(),
            hostile(),
            prop_oneof![Just("aws4_request".to_string()), hostile()],
        )
            .prop_map(|(a, d, r, s, t)| format!("{a}/{d}/{r}/{s}/{t}")),
    ]
    .boxed()
}

fn signed_headers() -> BoxedStrategy<String> {
    let name = prop_oneof![
        select(vec![
            "host",
            "x-amz-date",
            "content-type",
            "user-agent",
            "authorization",
            "Host",
            "",
            " host",
        ])
        .prop_map(str::to_string),
        hostile(),
    ];
    prop_oneof![vec(name, 0..6).prop_map(|n| n.join(";")), hostile()].boxed()
}

/// Timestamps near the formats `request_timestamp` reads, out-of-range fields
/// included, or junk.
fn timestamp() -> BoxedStrategy<String> {
    let near = (
        (select(vec!["", "-", "+"]), 0u32..=10_001),
        0u8..=13,
        0u8..=32,
        0u8..=25,
        0u8..=61,
        0u8..=61,
        select(vec![
            "",
            ".",
            ".5",
            ".123456789",
            ".1234567890123",
            ".x",
            "..",
        ]),
        select(vec![
            "", "Z", "z", "+00:00", "-23:59", "+24:00", "+05:30", "-00:00", "+0530",
        ]),
        select(vec!["", " ", "\t", "\u{a0}", "\n"]),
        any::<bool>(),
    )
        .prop_map(|((sign, y), mo, d, h, mi, s, frac, zone, pad, basic)| {
            if basic {
                format!("{pad}{sign}{y:04}{mo:02}{d:02}T{h:02}{mi:02}{s:02}{zone}{pad}")
            } else {
                format!("{pad}{sign}{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}{frac}{zone}{pad}")
            }
        });
    prop_oneof![3 => near, 1 => hostile()].boxed()
}

#[derive(Debug, Clone)]
enum Fragment {
    Credential,
    SignedHeaders,
    Other(String, String),
    Garbage(String),
}

fn fragment() -> impl Strategy<Value = Fragment> {
    prop_oneof![
        2 => Just(Fragment::Credential),
        2 => Just(Fragment::SignedHeaders),
        1 => (
            select(vec!["Signature", "Credential", "SignedHeaders", "credential", ""]),
            hostile()
        )
            .prop_map(|(k, v)| Fragment::Other(k.to_string(), v)),
        1 => hostile().prop_map(Fragment::Garbage),
    ]
}

/// How `X-Amz-Date` relates to the credential's date: agreeing with it reaches the
/// HMAC computation, the others its refusals.
fn date_for(mode: u8, credential: &str, junk: &str) -> String {
    let scope_date = credential.split('/').nth(1).unwrap_or_default();
    match mode {
        0 => junk.to_string(),
        1 => scope_date.to_string(),
        _ => format!("{scope_date}{junk}"),
    }
}

/// A request built from hostile parts, shaped enough to reach every branch.
fn hostile_request() -> impl Strategy<Value = (String, SignedRequest)> {
    let v4 = (
        credential(),
        signed_headers(),
        (0u8..3, hostile()),
        prop_oneof![
            3 => Just("AWS4-HMAC-SHA256 "),
            1 => select(vec![
            "AWS4-HMAC-SHA256",
            "AWS4-HMAC-SHA256\t",
            "AWS4-HMAC-SHA256,",
            "aws4-hmac-sha256 ",
            "AWS4-HMAC-SHA2",
            "AWS ",
        ]),
        ],
        prop_oneof![
            // Well-formed order, or any sequence of fragments.
            1 => hostile().prop_map(|sig| vec![
                Fragment::Credential,
                Fragment::SignedHeaders,
                Fragment::Other("Signature".into(), sig),
            ]),
            2 => vec(fragment(), 0..6),
        ],
        select(vec![", ", ",", " ", ",,", ""]),
        (prop::bool::weighted(0.8), any::<bool>(), any::<bool>()),
    );
    let params = (
        prop_oneof![
            4 => Just(None),
            3 => select(vec!["0", "1", "2"]).prop_map(|v| Some(v.to_string())),
            1 => select(vec!["3", "4", "", " 2", "2 ", "02"]).prop_map(|v| Some(v.to_string())),
            1 => hostile().prop_map(Some),
        ],
        option::of(hostile()),
        option::of(timestamp()),
        option::of(prop_oneof![
            select(vec!["HmacSHA1", "HmacSHA256", "hmacsha1"]).prop_map(str::to_string),
            hostile()
        ]),
        option::of(prop_oneof![Just("AWS4-HMAC-SHA256".to_string()), hostile()]),
        (any::<bool>(), any::<bool>()),
        option::of(signed_headers()),
        option::of(hostile()),
        vec((hostile(), hostile()), 0..5),
    );
    let headers = (
        option::of(prop_oneof![
            Just("Boto/2.9.2 (linux2)".to_string()),
            hostile().prop_map(|s| format!("Boto/2.{s}")),
            hostile()
        ]),
        vec(
            (
                prop_oneof![
                    select(vec![
                        "Authorization",
                        "authorization",
                        "AUTHORIZATION",
                        "Host",
                        "host",
                        " Host ",
                        "X-Amz-Date",
                        "x-amz-date",
                        "User-Agent",
                        "user-agent",
                        "Content-Type",
                    ])
                    .prop_map(str::to_string),
                    hostile()
                ],
                hostile(),
            ),
            0..5,
        ),
    );
    let basics = (
        hostile(),
        prop_oneof![
            hostile(),
            (hostile(), hostile()).prop_map(|(h, p)| format!("{h}:{p}")),
        ],
        prop_oneof![
            select(vec!["GET", "POST", "post", "PUT", ""]).prop_map(str::to_string),
            hostile()
        ],
        hostile(),
        option::of(hostile()),
        prop_oneof![1 => Just(String::new()), 5 => hostile().prop_filter("signed", |s| !s.is_empty())],
        hostile(),
    );
    (v4, params, headers, basics).prop_map(|(v4, params, headers, basics)| {
        let (cred, sh, (date_mode, date_junk), prefix, frags, sep, (auth, hdr_date, ua_first)) = v4;
        let (version, action, ts, method, algorithm, (p_cred, p_date), p_sh, p_sig, extra) = params;
        let (user_agent, extra_headers) = headers;
        let (secret, host, verb, path, body_hash, signature, access) = basics;
        let date = date_for(date_mode, &cred, &date_junk);

        let mut h = BTreeMap::new();
        if ua_first {
            // Extra headers may then overwrite these, or add differently-cased twins.
            if let Some(ua) = &user_agent {
                h.insert("User-Agent".to_string(), ua.clone());
            }
        }
        if auth {
            let body = frags
                .iter()
                .map(|f| match f {
                    Fragment::Credential => format!("Credential={cred}"),
                    Fragment::SignedHeaders => format!("SignedHeaders={sh}"),
                    Fragment::Other(k, v) => format!("{k}={v}"),
                    Fragment::Garbage(g) => g.clone(),
                })
                .collect::<Vec<_>>()
                .join(sep);
            h.insert("Authorization".to_string(), format!("{prefix}{body}"));
        }
        if hdr_date {
            h.insert("X-Amz-Date".to_string(), date.clone());
        }
        h.insert("Host".to_string(), host.clone());
        h.extend(extra_headers);
        if !ua_first && let Some(ua) = user_agent {
            h.insert("User-Agent".to_string(), ua);
        }

        let mut p: BTreeMap<String, String> = extra.into_iter().collect();
        let named = [
            ("SignatureVersion", version),
            ("Action", action),
            ("Timestamp", ts),
            ("SignatureMethod", method),
            ("X-Amz-Algorithm", algorithm),
            ("X-Amz-Credential", p_cred.then(|| cred.clone())),
            ("X-Amz-Date", p_date.then(|| date.clone())),
            ("X-Amz-SignedHeaders", p_sh),
            ("X-Amz-Signature", p_sig),
        ];
        for (k, v) in named {
            if let Some(v) = v {
                p.insert(k.to_string(), v);
            }
        }
        let req = SignedRequest {
            access,
            signature,
            host,
            verb,
            path,
            params: p,
            headers: h,
            body_hash,
        };
        (secret, req)
    })
}

/// A JSON value of any shape (what a caller of `/v3/ec2tokens` may send).
fn json() -> impl Strategy<Value = serde_json::Value> {
    use serde_json::Value;
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        hostile().prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 48, 8, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..6).prop_map(Value::Array),
            vec(
                (
                    prop_oneof![
                        select(vec![
                            "SignatureVersion",
                            "Authorization",
                            "X-Amz-Date",
                            "Host"
                        ])
                        .prop_map(str::to_string),
                        hostile()
                    ],
                    inner
                ),
                0..6
            )
            .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

fn credentials_json() -> impl Strategy<Value = serde_json::Value> {
    const FIELDS: &[&str] = &[
        "access",
        "signature",
        "host",
        "verb",
        "path",
        "params",
        "headers",
        "body_hash",
    ];
    vec((select(FIELDS), json()), 0..9).prop_map(|kv| {
        serde_json::Value::Object(kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
    })
}

/// Names a generated parameter must not take: they select the signature version.
fn reserved(key: &str) -> bool {
    matches!(
        key,
        "Signature" | "SignatureVersion" | "SignatureMethod" | "AWSAccessKeyId"
    ) || key.starts_with("X-Amz-")
}

fn params(key: impl Strategy<Value = String>) -> impl Strategy<Value = BTreeMap<String, String>> {
    vec((key, text(16)), 0..8).prop_map(|kv| kv.into_iter().filter(|(k, _)| !reserved(k)).collect())
}

fn hostname() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9][a-zA-Z0-9.-]{0,20}"
}

/// A secret other than `secret` (HMAC pads short keys with zero bytes, so a
/// trailing NUL is the one change that would not count).
fn other_secret(secret: &str, change: &str) -> String {
    let change = if change.is_empty() || change.contains('\0') {
        "x"
    } else {
        change
    };
    format!("{secret}{change}")
}

/// A value other than `old`.
fn changed(old: &str, new: &str) -> String {
    if new == old {
        format!("{old}x")
    } else {
        new.to_string()
    }
}

#[derive(Debug, Clone)]
struct V2Case {
    secret: String,
    sha1: bool,
    verb: String,
    host: String,
    path: String,
    params: BTreeMap<String, String>,
}

fn v2_case() -> impl Strategy<Value = V2Case> {
    (
        text(24),
        any::<bool>(),
        prop_oneof![
            select(vec!["GET", "POST"]).prop_map(str::to_string),
            "[A-Za-z]{1,7}"
        ],
        prop_oneof![
            hostname(),
            (hostname(), 1u16..).prop_map(|(h, p)| format!("{h}:{p}")),
            text(12),
        ],
        text(20).prop_map(|p| format!("/{p}")),
        params(text(12)),
        ("[A-Za-z]{1,20}", "[A-Z0-9]{8,20}", timestamp()),
    )
        .prop_map(
            |(secret, sha1, verb, host, path, mut params, (action, access, ts))| {
                params.insert("SignatureVersion".into(), "2".into());
                let method = if sha1 { "HmacSHA1" } else { "HmacSHA256" };
                params.insert("SignatureMethod".into(), method.into());
                params.insert("AWSAccessKeyId".into(), access);
                params.entry("Action".into()).or_insert(action);
                params.entry("Timestamp".into()).or_insert(ts);
                V2Case {
                    secret,
                    sha1,
                    verb,
                    host,
                    path,
                    params,
                }
            },
        )
}

impl V2Case {
    fn request(&self) -> SignedRequest {
        SignedRequest {
            access: self.params["AWSAccessKeyId"].clone(),
            signature: reference_v2(
                &self.secret,
                &self.verb,
                &self.host,
                &self.path,
                &self.params,
            ),
            host: self.host.clone(),
            verb: self.verb.clone(),
            path: self.path.clone(),
            params: self.params.clone(),
            headers: BTreeMap::new(),
            body_hash: None,
        }
    }
}

/// Parameter names whose order is the same raw and RFC 3986-encoded (unreserved
/// characters, and reserved ones below `-`); see `sigv4_query_is_sorted_by_encoded_name`.
fn v4_key() -> impl Strategy<Value = String> {
    "[A-Za-z0-9._~ !#$%&'()*+,-]{1,12}"
}

#[derive(Debug, Clone)]
struct V4Case {
    secret: String,
    access: String,
    amz_date: String,
    region: String,
    service: String,
    verb: String,
    host: String,
    path: String,
    params: BTreeMap<String, String>,
    /// Extra headers: any-case name, value, signed or not.
    extra: Vec<(String, String, bool)>,
    body_hash: String,
}

fn header_value() -> impl Strategy<Value = String> {
    let c = prop_oneof![
        4 => prop::char::range(' ', '~'),
        2 => Just(' '),
        1 => select(vec!['é', '日', '€', '\u{1F600}', '%', '+', '/', '=']),
    ];
    vec(c, 0..20).prop_map(String::from_iter)
}

fn v4_case(key: impl Strategy<Value = String>) -> impl Strategy<Value = V4Case> {
    // Scope parts: anything but `/`, and (for the Authorization header) not `,`,
    // `=` or white space either.
    let scope_part = vec(
        value_char().prop_filter("scope separator", |c| {
            !matches!(c, '/' | ',' | '=') && !c.is_whitespace()
        }),
        1..12,
    )
    .prop_map(String::from_iter);
    (
        (text(24), "[A-Z0-9]{4,20}"),
        (1970u32..2100, 1u8..=12, 1u8..=28, 0u8..24, 0u8..60, 0u8..60),
        (scope_part.clone(), scope_part),
        select(vec!["GET", "PUT", "DELETE", "HEAD", "POST"]),
        (hostname(), 1u16..),
        vec("[A-Za-z0-9._~-]{0,8}", 0..4).prop_map(|s| format!("/{}", s.join("/"))),
        params(key),
        vec(
            (
                "X-[A-Za-z][A-Za-z0-9-]{0,10}",
                header_value(),
                any::<bool>(),
            ),
            0..5,
        ),
        prop_oneof![
            vec(any::<u8>(), 0..64).prop_map(|b| hex::encode(Sha256::digest(&b))),
            Just("UNSIGNED-PAYLOAD".to_string()),
        ],
    )
        .prop_map(
            |(
                (secret, access),
                (y, mo, d, h, mi, s),
                (region, service),
                verb,
                (host, port),
                path,
                params,
                extra,
                body_hash,
            )| {
                // One header per name, whatever the case.
                let mut seen = std::collections::BTreeSet::new();
                let extra = extra
                    .into_iter()
                    .filter(|(n, _, _)| {
                        let n = n.to_ascii_lowercase();
                        n != "x-amz-date" && seen.insert(n)
                    })
                    .collect();
                V4Case {
                    secret,
                    access,
                    amz_date: format!("{y:04}{mo:02}{d:02}T{h:02}{mi:02}{s:02}Z"),
                    region,
                    service,
                    verb: verb.to_string(),
                    host: format!("{host}:{port}"),
                    path,
                    params,
                    extra,
                    body_hash,
                }
            },
        )
}

impl V4Case {
    fn scope_date(&self) -> &str {
        &self.amz_date[..8]
    }

    fn credential(&self) -> String {
        format!(
            "{}/{}/{}/{}/aws4_request",
            self.access,
            self.scope_date(),
            self.region,
            self.service
        )
    }

    fn signed(&self) -> Vec<String> {
        let mut s: Vec<String> = ["host", "x-amz-date"].map(String::from).to_vec();
        s.extend(
            self.extra
                .iter()
                .filter(|(_, _, signed)| *signed)
                .map(|(n, _, _)| n.to_ascii_lowercase()),
        );
        s.sort();
        s
    }

    fn headers(&self) -> Vec<(String, String)> {
        let mut h = vec![
            ("Host".to_string(), self.host.clone()),
            ("X-Amz-Date".to_string(), self.amz_date.clone()),
        ];
        h.extend(self.extra.iter().map(|(n, v, _)| (n.clone(), v.clone())));
        h
    }

    fn sign(&self, params: &BTreeMap<String, String>, headers: &[(String, String)]) -> String {
        reference_v4(&V4Input {
            secret: &self.secret,
            verb: &self.verb,
            path: &self.path,
            params,
            headers,
            signed: &self.signed(),
            amz_date: &self.amz_date,
            scope_date: self.scope_date(),
            region: &self.region,
            service: &self.service,
            body_hash: &self.body_hash,
        })
    }

    /// Signed with the `Authorization` header.
    fn header_request(&self) -> SignedRequest {
        let headers = self.headers();
        let signature = self.sign(&self.params, &headers);
        let mut headers: BTreeMap<String, String> = headers.into_iter().collect();
        headers.insert(
            "Authorization".into(),
            format!(
                "AWS4-HMAC-SHA256 Credential={}, SignedHeaders={}, Signature={signature}",
                self.credential(),
                self.signed().join(";")
            ),
        );
        self.request(signature, self.params.clone(), headers)
    }

    /// Presigned: the authentication travels in `X-Amz-*` query parameters.
    fn presigned_request(&self) -> SignedRequest {
        let mut headers = self.headers();
        headers.retain(|(n, _)| n != "X-Amz-Date");
        let mut params = self.params.clone();
        let mut signed_headers = self.signed();
        signed_headers.retain(|h| h != "x-amz-date");
        for (k, v) in [
            ("X-Amz-Algorithm", "AWS4-HMAC-SHA256".to_string()),
            ("X-Amz-Credential", self.credential()),
            ("X-Amz-Date", self.amz_date.clone()),
            ("X-Amz-SignedHeaders", signed_headers.join(";")),
            ("X-Amz-Expires", "300".to_string()),
        ] {
            params.insert(k.into(), v);
        }
        let signature = reference_v4(&V4Input {
            signed: &signed_headers,
            params: &params,
            headers: &headers,
            secret: &self.secret,
            verb: &self.verb,
            path: &self.path,
            amz_date: &self.amz_date,
            scope_date: self.scope_date(),
            region: &self.region,
            service: &self.service,
            body_hash: &self.body_hash,
        });
        params.insert("X-Amz-Signature".into(), signature.clone());
        self.request(signature, params, headers.into_iter().collect())
    }

    fn request(
        &self,
        signature: String,
        params: BTreeMap<String, String>,
        headers: BTreeMap<String, String>,
    ) -> SignedRequest {
        SignedRequest {
            access: self.access.clone(),
            signature,
            host: self.host.clone(),
            verb: self.verb.clone(),
            path: self.path.clone(),
            params,
            headers,
            body_hash: Some(self.body_hash.clone()),
        }
    }
}

/// `req` with the value of its `pick`-th parameter (of those `allowed`) replaced.
fn tamper_param(
    req: &SignedRequest,
    pick: Index,
    new: &str,
    allowed: impl Fn(&str) -> bool,
) -> Option<(String, SignedRequest)> {
    let names: Vec<&String> = req.params.keys().filter(|k| allowed(k)).collect();
    if names.is_empty() {
        return None;
    }
    let name = names[pick.index(names.len())].clone();
    let mut t = req.clone();
    let old = &req.params[&name];
    t.params.insert(name.clone(), changed(old, new));
    Some((name, t))
}

// ---------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------

proptest! {
    #![proptest_config(config())]

    /// No panic on hostile input, and `verify` agrees with `compute_signature`.
    #[test]
    fn prop_hostile_requests_never_panic((secret, req) in hostile_request()) {
        let _ = request_timestamp(&req);
        let computed = compute_signature(&secret, &req);
        let verdict = verify(&secret, &req);
        if req.signature.is_empty() {
            prop_assert_eq!(verdict, Err(SignatureError::NotSupplied));
        } else {
            match &computed {
                // Errors do not depend on the host or the V4 flavour.
                Err(e) => prop_assert_eq!(verdict.as_ref().err(), Some(e)),
                Ok(s) if *s == req.signature => prop_assert_eq!(&verdict, &Ok(())),
                Ok(_) => prop_assert!(matches!(verdict, Ok(()) | Err(SignatureError::Mismatch))),
            }
        }
        // What compute_signature produces, verify accepts.
        if let Ok(sig) = computed {
            prop_assert!(!sig.is_empty());
            let mut signed = req.clone();
            signed.signature = sig;
            prop_assert_eq!(verify(&secret, &signed), Ok(()));
        }
    }

    /// Whatever JSON a caller sends is either refused by serde or handled.
    #[test]
    fn prop_any_json_credentials_never_panic(v in credentials_json(), secret in hostile()) {
        if let Ok(req) = serde_json::from_value::<SignedRequest>(v) {
            let _ = request_timestamp(&req);
            let _ = compute_signature(&secret, &req);
            let _ = verify(&secret, &req);
        }
    }

    /// Timestamps in each accepted format read back as the instant written.
    #[test]
    fn prop_timestamps_round_trip(
        secs in 0i64..253_402_300_800,
        nanos in 0u32..1_000_000_000,
        form in 0u8..4,
        pad in select(vec!["", " ", "\t"]),
    ) {
        let t = time::OffsetDateTime::from_unix_timestamp(secs)
            .expect("in range")
            .replace_nanosecond(nanos)
            .expect("in range");
        let d = t.date();
        let (h, mi, s) = (t.hour(), t.minute(), t.second());
        let (y, mo, day) = (d.year(), u8::from(d.month()), d.day());
        let raw = match form {
            0 => format!("{y:04}-{mo:02}-{day:02}T{h:02}:{mi:02}:{s:02}.{nanos:09}Z"),
            1 => format!("{y:04}{mo:02}{day:02}T{h:02}{mi:02}{s:02}Z"),
            2 => format!("{y:04}-{mo:02}-{day:02}T{h:02}:{mi:02}:{s:02}.{nanos:09}"),
            _ => format!("{y:04}-{mo:02}-{day:02}T{h:02}:{mi:02}:{s:02}"),
        };
        let raw = format!("{pad}{raw}{pad}");
        let mut req = SignedRequest::default();
        req.params.insert("Timestamp".into(), raw.clone());
        let got = request_timestamp(&req);
        prop_assert!(matches!(got, Ok(Some(_))), "{raw:?} -> {got:?}");
        let got = got.expect("checked").expect("checked");
        prop_assert_eq!(got.unix_timestamp(), secs, "{:?}", raw);
        if form == 0 {
            prop_assert_eq!(got, t);
        }
    }

    /// SigV2 (HmacSHA256 and HmacSHA1) from the reference verifies; one changed
    /// parameter, path or secret does not.
    #[test]
    fn prop_v2_round_trip(
        case in v2_case(),
        pick in any::<Index>(),
        new_value in text(8),
        new_secret in text(4),
    ) {
        let req = case.request();
        prop_assert_eq!(compute_signature(&case.secret, &req), Ok(req.signature.clone()));
        prop_assert_eq!(verify(&case.secret, &req), Ok(()));

        // keystoneclient signs `SignatureMethod=HmacSHA256` whatever the request
        // says, so that one value is only covered when it is HmacSHA1.
        let allowed = |k: &str| k != "SignatureMethod";
        if let Some((name, t)) = tamper_param(&req, pick, &new_value, allowed) {
            prop_assert!(verify(&case.secret, &t).is_err(), "changed {} verified", name);
        }
        let mut t = req.clone();
        t.path.push('/');
        prop_assert_eq!(verify(&case.secret, &t), Err(SignatureError::Mismatch));
        let wrong = other_secret(&case.secret, &new_secret);
        prop_assert_eq!(verify(&wrong, &req), Err(SignatureError::Mismatch));
        let mut t = req.clone();
        let other = if case.sha1 { "HmacSHA256" } else { "HmacSHA1" };
        t.params.insert("SignatureMethod".into(), other.into());
        prop_assert_eq!(verify(&case.secret, &t), Err(SignatureError::Mismatch));
    }

    /// SigV0 and SigV1 (HMAC-SHA1) from the reference verify; a changed signed
    /// parameter or secret does not. Version 0 signs only Action and Timestamp.
    #[test]
    fn prop_v0_v1_round_trip(
        case in v2_case(),
        v1 in any::<bool>(),
        pick in any::<Index>(),
        new_value in text(8),
        new_secret in text(4),
    ) {
        let mut params = case.params.clone();
        params.remove("SignatureMethod");
        // Version 1 sorts ignoring case: keep one name per lower-case form.
        let mut seen = std::collections::BTreeSet::new();
        params.retain(|k, _| seen.insert(k.to_lowercase()));
        params.insert("SignatureVersion".into(), if v1 { "1" } else { "0" }.into());
        let signature = if v1 {
            reference_v1(&case.secret, &params)
        } else {
            reference_v0(&case.secret, &params)
        };
        let req = SignedRequest { signature, params, ..case.request() };
        prop_assert_eq!(compute_signature(&case.secret, &req), Ok(req.signature.clone()));
        prop_assert_eq!(verify(&case.secret, &req), Ok(()));
        let covered = |k: &str| v1 || k == "Action" || k == "Timestamp";
        if let Some((name, t)) = tamper_param(&req, pick, &new_value, covered) {
            prop_assert!(verify(&case.secret, &t).is_err(), "changed {} verified", name);
        }
        let wrong = other_secret(&case.secret, &new_secret);
        prop_assert_eq!(verify(&wrong, &req), Err(SignatureError::Mismatch));
    }

    /// SigV2 signed over the host without its port verifies with the port; a
    /// different host does not, nor a signature over another port.
    #[test]
    fn prop_v2_host_port(
        case in v2_case(),
        host in hostname(),
        other in hostname(),
        port in 1u16..,
        other_port in 1u16..,
    ) {
        let mut case = case;
        case.host = host.clone();
        let mut req = case.request();
        req.host = format!("{host}:{port}");
        prop_assert_eq!(verify(&case.secret, &req), Ok(()));
        if other != host {
            req.host = format!("{other}:{port}");
            prop_assert_eq!(verify(&case.secret, &req), Err(SignatureError::Mismatch));
        }
        // Signed over host:port, sent with another port.
        if other_port != port {
            case.host = format!("{host}:{port}");
            let mut req = case.request();
            req.host = format!("{host}:{other_port}");
            prop_assert_eq!(verify(&case.secret, &req), Err(SignatureError::Mismatch));
        }
    }

    /// SigV4 with the Authorization header (AWS flavour: canonical query over the
    /// parameters, header names lower-cased, values trimmed, runs of spaces
    /// collapsed), any scope, host with a port.
    #[test]
    fn prop_v4_header_round_trip(
        case in v4_case(v4_key()),
        pick in any::<Index>(),
        new_value in text(8),
        new_secret in text(4),
    ) {
        let req = case.header_request();
        prop_assert_eq!(verify(&case.secret, &req), Ok(()));

        if let Some((name, t)) = tamper_param(&req, pick, &new_value, |_| true) {
            prop_assert_eq!(verify(&case.secret, &t), Err(SignatureError::Mismatch), "changed {}", name);
        }
        let wrong = other_secret(&case.secret, &new_secret);
        prop_assert_eq!(verify(&wrong, &req), Err(SignatureError::Mismatch));
        let mut t = req.clone();
        t.path.push('x');
        prop_assert_eq!(verify(&case.secret, &t), Err(SignatureError::Mismatch));
        // A signed header's value changes, the request's scope changes.
        let signed: Vec<&(String, String, bool)> = case.extra.iter().filter(|h| h.2).collect();
        if !signed.is_empty() {
            let (name, value, _) = signed[pick.index(signed.len())];
            let mut t = req.clone();
            t.headers.insert(name.clone(), format!("{value}x"));
            prop_assert_eq!(verify(&case.secret, &t), Err(SignatureError::Mismatch));
        }
        let mut t = req.clone();
        let auth = t.headers["Authorization"].replacen(
            &format!("/{}/", case.region),
            &format!("/{}x/", case.region),
            1,
        );
        t.headers.insert("Authorization".into(), auth);
        prop_assert_eq!(verify(&case.secret, &t), Err(SignatureError::Mismatch));
    }

    /// Presigned SigV4 (`X-Amz-*` parameters, `X-Amz-Signature` left out).
    #[test]
    fn prop_v4_presigned_round_trip(
        case in v4_case(v4_key()),
        pick in any::<Index>(),
        new_value in text(8),
        new_secret in text(4),
    ) {
        let req = case.presigned_request();
        prop_assert_eq!(verify(&case.secret, &req), Ok(()));
        // X-Amz-Signature is outside the canonical query (req.signature is checked).
        let allowed = |k: &str| k != "X-Amz-Signature";
        if let Some((name, t)) = tamper_param(&req, pick, &new_value, allowed) {
            prop_assert!(verify(&case.secret, &t).is_err(), "changed {} verified", name);
        }
        let wrong = other_secret(&case.secret, &new_secret);
        prop_assert_eq!(verify(&wrong, &req), Err(SignatureError::Mismatch));
    }
}

/// AWS sorts the canonical query by the *encoded* names (botocore:
/// `sorted((quote(k), quote(v)) ...)`), ec2sig.rs by the raw ones; they differ as
/// soon as a name holds a reserved character above `-` (`/ : ; = ? @ [ { ...`,
/// non-ASCII) where another has an unreserved one: `a{` sorts after `aa` raw but
/// `a%7B` before it encoded.
#[test]
fn sigv4_query_is_sorted_by_encoded_name() {
    let case = V4Case {
        secret: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into(),
        access: "AKIDEXAMPLE".into(),
        amz_date: "20150830T123600Z".into(),
        region: "us-east-1".into(),
        service: "ec2".into(),
        verb: "GET".into(),
        host: "ec2.example:8788".into(),
        path: "/".into(),
        params: [("a{", "1"), ("aa", "2")]
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .into(),
        extra: vec![],
        body_hash: hex::encode(Sha256::digest(b"")),
    };
    assert_eq!(verify(&case.secret, &case.header_request()), Ok(()));
}

/// The reference implementations reproduce published vectors (keystoneclient's
/// test_ec2utils.py and the AWS Signature Version 4 test suite), so the round
/// trips above check ec2sig.rs against the specifications, not against itself.
#[test]
fn reference_implementations_reproduce_published_vectors() {
    let ks: BTreeMap<String, String> = [
        ("SignatureVersion", "2"),
        ("AWSAccessKeyId", "966afbde20b84200ae4e62e09acf46b2"),
        ("SignatureMethod", "HmacSHA256"),
    ]
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .into();
    let ks_secret = "89cdf9e94e2643cab35b8b8ac5a51f83";
    assert_eq!(
        reference_v2(ks_secret, "GET", "127.0.0.1", "/v1/", &ks),
        "odsGmT811GffUO0Eu13Pq+xTzKNIjJ6NhgZU74tYX/w="
    );
    let mut ks_sha1 = ks.clone();
    ks_sha1.insert("SignatureMethod".into(), "HmacSHA1".into());
    assert_eq!(
        reference_v2(ks_secret, "GET", "127.0.0.1", "/v1/", &ks_sha1),
        "ZqCxMI4ZtTXWI175743mJ0hy/Gc="
    );

    let v0: BTreeMap<String, String> = [
        ("SignatureVersion", "0"),
        ("AWSAccessKeyId", "966afbde20b84200ae4e62e09acf46b2"),
        ("Timestamp", "2012-11-27T11:47:02Z"),
        ("Action", "Foo"),
    ]
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .into();
    assert_eq!(reference_v0(ks_secret, &v0), "SmXQEZAUdQw5glv5mX8mmixBtas=");
    let v1: BTreeMap<String, String> = [
        ("SignatureVersion", "1"),
        ("AWSAccessKeyId", "966afbde20b84200ae4e62e09acf46b2"),
    ]
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .into();
    assert_eq!(reference_v1(ks_secret, &v1), "VRnoQH/EhVTTLhwRLfuL7jmFW9c=");

    let aws_secret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
    let empty = hex::encode(Sha256::digest(b""));
    let headers = [
        ("Host", "example.amazonaws.com"),
        ("X-Amz-Date", "20150830T123600Z"),
    ]
    .map(|(k, v)| (k.to_string(), v.to_string()));
    let signed = ["host", "x-amz-date"].map(String::from);
    let suite = |params: &BTreeMap<String, String>| {
        reference_v4(&V4Input {
            secret: aws_secret,
            verb: "GET",
            path: "/",
            params,
            headers: &headers,
            signed: &signed,
            amz_date: "20150830T123600Z",
            scope_date: "20150830",
            region: "us-east-1",
            service: "service",
            body_hash: &empty,
        })
    };
    // get-vanilla, get-vanilla-query-order-key-case
    assert_eq!(
        suite(&BTreeMap::new()),
        "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
    );
    let params = [("Param2", "value2"), ("Param1", "value1")]
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .into();
    assert_eq!(
        suite(&params),
        "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"
    );
    // keystoneclient's IAM vector: a host with a port.
    let headers = [
        (
            "Content-type",
            "application/x-www-form-urlencoded; charset=utf-8",
        ),
        ("X-Amz-Date", "20110909T233600Z"),
        ("Host", "foo:8000"),
    ]
    .map(|(k, v)| (k.to_string(), v.to_string()));
    let signed = ["content-type", "host", "x-amz-date"].map(String::from);
    assert_eq!(
        reference_v4(&V4Input {
            secret: aws_secret,
            verb: "POST",
            path: "/",
            params: &BTreeMap::new(),
            headers: &headers,
            signed: &signed,
            amz_date: "20110909T233600Z",
            scope_date: "20110909",
            region: "us-east-1",
            service: "iam",
            body_hash: "b6359072c78d70ebee1e81adcbab4f01bf2c23245fa365ef83fe8f1f955085e2",
        }),
        "26dd92ea79aaa49f533d13b1055acdcd7d7321460d64621f96cc79c4f4d4ab2b"
    );
}
