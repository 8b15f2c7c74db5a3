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

/// Nova's `parameter_types.boolean`: JSON booleans and the strings oslo accepts.
pub(crate) fn boolean(field: &str, v: &serde_json::Value) -> Result<bool> {
    match v {
        serde_json::Value::Bool(b) => Ok(*b),
        serde_json::Value::String(s) => match s.to_ascii_lowercase().as_str() {
            "true" | "1" | "t" | "on" | "y" | "yes" => Ok(true),
            "false" | "0" | "f" | "off" | "n" | "no" => Ok(false),
            _ => Err(invalid_input(
                field,
                v,
                &format!("{} is not of type 'boolean', 'string'", show_value(v)),
            )),
        },
        _ => Err(invalid_input(
            field,
            v,
            &format!("{} is not of type 'boolean', 'string'", show_value(v)),
        )),
    }
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
