//! Nova's default policy for the catalog APIs, reduced to what it decides: admin
//! or not, the caller's own project or user. Refusals carry Nova's message, naming
//! the rule (`os_compute_api:os-flavor-manage:create`).

use ferrostack_core::RequestContext;

use crate::error::{Error, Result};

/// `Policy doesn't allow <rule> to be performed.` (403).
pub(crate) fn denied(rule: &str) -> Error {
    Error::Forbidden(format!("Policy doesn't allow {rule} to be performed."))
}

/// Rules whose default is `rule:context_is_admin`.
pub(crate) fn admin(ctx: &RequestContext, rule: &str) -> Result<()> {
    if ctx.is_admin() {
        Ok(())
    } else {
        Err(denied(rule))
    }
}

/// `PROJECT_READER_OR_ADMIN` with a target project.
pub(crate) fn project_or_admin(ctx: &RequestContext, project_id: &str, rule: &str) -> Result<()> {
    if ctx.is_admin() || ctx.project_id() == Some(project_id) {
        Ok(())
    } else {
        Err(denied(rule))
    }
}

/// `ADMIN_OR_OWNER` on a user (key pairs).
pub(crate) fn user_or_admin(ctx: &RequestContext, user_id: &str, rule: &str) -> Result<()> {
    if ctx.is_admin() || ctx.user_id == user_id {
        Ok(())
    } else {
        Err(denied(rule))
    }
}

pub(crate) use ferrostack_core::time::now_us;

/// `2014-05-07T12:06:13.681238`: how Nova prints database datetimes
/// (oslo's `to_primitive`: ISO 8601, microseconds, no zone).
pub fn nova_time(us: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(us) * 1000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.microsecond()
    )
}

/// A request body (or query) refused the way Nova's JSON-schema validation words it.
pub(crate) fn invalid_input(field: &str, value: &serde_json::Value, why: &str) -> Error {
    Error::BadRequest(format!(
        "Invalid input for field/attribute {field}. Value: {}. {why}",
        show_value(value)
    ))
}

/// A JSON value as Python would print it in a message (`'abc'`, `5`, `None`).
pub(crate) fn show_value(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => "None".into(),
        serde_json::Value::Bool(true) => "True".into(),
        serde_json::Value::Bool(false) => "False".into(),
        other => other.to_string(),
    }
}

/// The object under `key` of a body (`{"flavor": {...}}`), or Nova's 400.
pub(crate) fn envelope<'a>(
    body: &'a serde_json::Value,
    key: &str,
) -> Result<&'a serde_json::Map<String, serde_json::Value>> {
    match body.get(key) {
        Some(serde_json::Value::Object(m)) => Ok(m),
        Some(other) => Err(invalid_input(
            key,
            other,
            &format!("{} is not of type 'object'", show_value(other)),
        )),
        None => Err(invalid_input(
            key,
            body,
            &format!("'{key}' is a required property"),
        )),
    }
}

/// Refuses members of `obj` other than `allowed` (`additionalProperties: false`).
pub(crate) fn only(
    field: &str,
    obj: &serde_json::Map<String, serde_json::Value>,
    allowed: &[&str],
) -> Result<()> {
    let extra: Vec<String> = obj
        .keys()
        .filter(|k| !allowed.contains(&k.as_str()))
        .map(|k| format!("'{k}'"))
        .collect();
    if extra.is_empty() {
        return Ok(());
    }
    let verb = if extra.len() == 1 { "was" } else { "were" };
    Err(invalid_input(
        field,
        &serde_json::Value::Object(obj.clone()),
        &format!(
            "Additional properties are not allowed ({} {verb} unexpected)",
            extra.join(", ")
        ),
    ))
}

/// The strings Nova's `parameter_types.boolean` enumerates (besides JSON booleans).
const BOOLEAN_TRUE: &[&str] = &[
    "True", "TRUE", "true", "1", "ON", "On", "on", "YES", "Yes", "yes",
];
const BOOLEAN_FALSE: &[&str] = &[
    "False", "FALSE", "false", "0", "OFF", "Off", "off", "NO", "No", "no",
];

/// Nova's `parameter_types.boolean`: `{'type': ['boolean', 'string'], 'enum': [True,
/// 'True', 'TRUE', 'true', '1', 'ON', 'On', 'on', 'YES', 'Yes', 'yes', False, ...]}`.
pub(crate) fn boolean(field: &str, v: &serde_json::Value) -> Result<bool> {
    match v {
        serde_json::Value::Bool(b) => Ok(*b),
        serde_json::Value::String(s) if BOOLEAN_TRUE.contains(&s.as_str()) => Ok(true),
        serde_json::Value::String(s) if BOOLEAN_FALSE.contains(&s.as_str()) => Ok(false),
        serde_json::Value::String(s) => {
            let quoted = |l: &[&str]| {
                l.iter()
                    .map(|x| format!("'{x}'"))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            Err(invalid_input(
                field,
                v,
                &format!(
                    "'{s}' is not one of [True, {}, False, {}]",
                    quoted(BOOLEAN_TRUE),
                    quoted(BOOLEAN_FALSE)
                ),
            ))
        }
        _ => Err(invalid_input(
            field,
            v,
            &format!("{} is not of type 'boolean', 'string'", show_value(v)),
        )),
    }
}

/// A JSON number as Python's `str()` writes it after `json.loads`: integers in
/// full, floats in their shortest round-trip form (`1.5`, `2.0`, `1e+16`, `1e-05`).
pub(crate) fn python_str(n: &serde_json::Number) -> String {
    if let Some(i) = n.as_i64() {
        return i.to_string();
    }
    if let Some(u) = n.as_u64() {
        return u.to_string();
    }
    let x = n.as_f64().unwrap_or(0.0);
    if x == 0.0 {
        return if x.is_sign_negative() { "-0.0" } else { "0.0" }.to_string();
    }
    // Rust's `{:e}` gives the shortest round-trip digits: "1.5e0", "-1e16"
    let sci = format!("{x:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((sci.as_str(), "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => ("-", m),
        None => ("", mantissa),
    };
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    // where the decimal point falls after the first `decpt` digits (CPython's repr:
    // fixed notation when -4 < decpt <= 16, else exponent notation)
    let decpt = exp + 1;
    let body = if -4 < decpt && decpt <= 16 {
        let len = digits.len() as i32;
        if decpt <= 0 {
            format!("0.{}{digits}", "0".repeat((-decpt) as usize))
        } else if decpt >= len {
            format!("{digits}{}.0", "0".repeat((decpt - len) as usize))
        } else {
            let (a, b) = digits.split_at(decpt as usize);
            format!("{a}.{b}")
        }
    } else {
        let (first, rest) = digits.split_at(1);
        let m = if rest.is_empty() {
            first.to_string()
        } else {
            format!("{first}.{rest}")
        };
        format!(
            "{m}e{}{:02}",
            if exp < 0 { '-' } else { '+' },
            exp.unsigned_abs()
        )
    };
    format!("{sign}{body}")
}

/// `oslo_utils.strutils.bool_from_string(strict=True)` for query parameters.
pub(crate) fn query_bool(s: &str) -> Option<bool> {
    match s.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "t" | "on" | "y" | "yes" => Some(true),
        "false" | "0" | "f" | "off" | "n" | "no" => Some(false),
        _ => None,
    }
}

/// An integer given as a JSON number or a string of digits, within `[min, max]`.
pub(crate) fn integer(field: &str, v: &serde_json::Value, min: i64, max: i64) -> Result<i64> {
    let n = match v {
        serde_json::Value::Number(n) => n.as_i64().filter(|_| !n.is_f64()),
        serde_json::Value::String(s) => {
            let t = s.trim();
            let digits = t.strip_prefix('-').unwrap_or(t);
            if digits.is_empty() || !digits.bytes().all(|c| c.is_ascii_digit()) {
                return Err(invalid_input(
                    field,
                    v,
                    &format!("'{s}' does not match '^-?[0-9]+$'"),
                ));
            }
            t.parse::<i64>().ok()
        }
        _ => None,
    };
    let Some(n) = n else {
        return Err(invalid_input(
            field,
            v,
            &format!("{} is not of type 'integer', 'string'", show_value(v)),
        ));
    };
    if n < min {
        return Err(invalid_input(
            field,
            v,
            &format!("{n} is less than the minimum of {min}"),
        ));
    }
    if n > max {
        return Err(invalid_input(
            field,
            v,
            &format!("{n} is greater than the maximum of {max}"),
        ));
    }
    Ok(n)
}

/// Nova's `format: name`: printable, no leading or trailing whitespace.
pub(crate) fn valid_name(s: &str) -> bool {
    !s.is_empty() && s.trim() == s && s.chars().all(|c| !c.is_control())
}

/// Nova's `common.get_limit_and_marker`.
pub(crate) fn limit_and_marker(
    limit: Option<&str>,
    marker: Option<&str>,
    max_limit: usize,
) -> Result<(usize, Option<String>)> {
    let limit = match limit {
        None => max_limit,
        Some(s) => {
            let n: i64 = s
                .trim()
                .parse()
                .map_err(|_| Error::BadRequest("limit param must be an integer".into()))?;
            if n < 0 {
                return Err(Error::BadRequest("limit param must be positive".into()));
            }
            let n = usize::try_from(n).unwrap_or(usize::MAX);
            if n == 0 { max_limit } else { n.min(max_limit) }
        }
    };
    Ok((limit, marker.map(str::to_string)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nova_times_have_microseconds_and_no_zone() {
        assert_eq!(
            nova_time(1_399_464_373_681_238),
            "2014-05-07T12:06:13.681238"
        );
        assert_eq!(nova_time(0), "1970-01-01T00:00:00.000000");
    }
}
