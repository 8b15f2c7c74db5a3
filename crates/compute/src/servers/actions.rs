//! `POST /servers/{id}/action`: the body parsed once into one closed set,
//! [`ServerAction`], Nova's schema checks included. The API handler only matches
//! on the result; what each action does is in `ops.rs`.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::error::{Error, Result};
use crate::servers::ops::{Action, Rebuild};
use crate::servers::request::{
    access_ip, check_metadata, check_name, image_id_from_ref, invalid, is_base64, parse_personality,
};
use crate::version::ApiVersion;

/// Every server action Nova's `action` resource takes.
#[derive(Debug, Clone, PartialEq)]
pub enum ServerAction {
    /// A change of the server's state (`Compute::server_action`).
    Change(Action),
    /// `forceDelete`: the same as `DELETE /servers/{id}`.
    ForceDelete,
    /// `os-getConsoleOutput`: the last `lines` lines, all when `None`.
    ConsoleOutput { lines: Option<usize> },
    /// `os-resetState` (admin).
    ResetState { state: String },
    /// `os-getVNCConsole`, `os-getSPICEConsole`, `os-getSerialConsole`,
    /// `os-getRDPConsole` (before 2.6): the console module answers them.
    LegacyConsole { name: String, body: Value },
    /// An action Nova does not have: 400, once the server is known to exist.
    Unknown(String),
}

fn required(action: &str, field: &str) -> Error {
    Error::BadRequest(format!(
        "Invalid input for field/attribute {action}. '{field}' is a required property"
    ))
}

/// Parses an action body (`{"<action>": {...}}`) at microversion `mv`.
pub fn parse_action(body: &Value, mv: ApiVersion) -> Result<ServerAction> {
    let (name, arg) = body
        .as_object()
        .filter(|o| o.len() == 1)
        .and_then(|o| o.iter().next())
        .ok_or_else(|| Error::BadRequest("There is no such action".into()))?;
    let change = |a: Action| Ok(ServerAction::Change(a));
    match name.as_str() {
        "os-stop" => change(Action::Stop),
        "os-start" => change(Action::Start),
        "reboot" => {
            let t = arg
                .get("type")
                .and_then(Value::as_str)
                .ok_or_else(|| required("reboot", "type"))?;
            match t.to_ascii_uppercase().as_str() {
                "SOFT" => change(Action::Reboot { hard: false }),
                "HARD" => change(Action::Reboot { hard: true }),
                _ => Err(Error::BadRequest(format!(
                    "Invalid input for field/attribute type. Value: {t}. '{t}' is not one of ['HARD', 'Hard', 'hard', 'SOFT', 'Soft', 'soft']"
                ))),
            }
        }
        "pause" => change(Action::Pause),
        "unpause" => change(Action::Unpause),
        "suspend" => change(Action::Suspend),
        "resume" => change(Action::Resume),
        "lock" => change(Action::Lock {
            reason: if mv.at_least(2, 73) {
                arg.get("locked_reason")
                    .and_then(Value::as_str)
                    .map(str::to_string)
            } else {
                None
            },
        }),
        "unlock" => change(Action::Unlock),
        "confirmResize" => change(Action::ConfirmResize),
        "revertResize" => change(Action::RevertResize),
        "resize" => {
            let f = arg
                .get("flavorRef")
                .ok_or_else(|| required("resize", "flavorRef"))?;
            let flavor_ref = match f {
                Value::String(x) if !x.is_empty() => x.clone(),
                Value::Number(n) => n.to_string(),
                _ => return Err(invalid("flavorRef", f, "is not valid")),
            };
            change(Action::Resize { flavor_ref })
        }
        "createImage" => {
            let name = arg
                .get("name")
                .ok_or_else(|| required("createImage", "name"))?;
            let name = check_name("name", name)?;
            let metadata = match arg.get("metadata") {
                Some(m) => check_metadata("metadata", m)?,
                None => BTreeMap::new(),
            };
            change(Action::CreateImage { name, metadata })
        }
        "createBackup" => parse_backup(arg).map(ServerAction::Change),
        "changePassword" => {
            let p = arg
                .get("adminPass")
                .and_then(Value::as_str)
                .ok_or_else(|| required("changePassword", "adminPass"))?;
            change(Action::ChangePassword {
                password: p.to_string(),
            })
        }
        "rebuild" => change(Action::Rebuild(Box::new(parse_rebuild(arg, mv)?))),
        "forceDelete" => Ok(ServerAction::ForceDelete),
        "os-getConsoleOutput" => {
            let lines = match arg.get("length") {
                None | Some(Value::Null) => None,
                Some(l) => {
                    let n = match l {
                        Value::Number(n) => n.as_i64(),
                        Value::String(x) => x.parse::<i64>().ok(),
                        _ => None,
                    }
                    .filter(|n| *n >= -1)
                    .ok_or_else(|| {
                        Error::BadRequest("Invalid input for field/attribute length.".into())
                    })?;
                    // -1: everything, as no length
                    usize::try_from(n).ok()
                }
            };
            Ok(ServerAction::ConsoleOutput { lines })
        }
        "os-getVNCConsole" | "os-getSPICEConsole" | "os-getSerialConsole" | "os-getRDPConsole" => {
            Ok(ServerAction::LegacyConsole {
                name: name.clone(),
                body: arg.clone(),
            })
        }
        "os-resetState" => Ok(ServerAction::ResetState {
            state: arg
                .get("state")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
        }),
        other => Ok(ServerAction::Unknown(other.to_string())),
    }
}

fn parse_backup(arg: &Value) -> Result<Action> {
    let obj = arg.as_object().ok_or_else(|| {
        Error::BadRequest("Invalid input for field/attribute createBackup.".into())
    })?;
    for field in ["name", "backup_type", "rotation"] {
        if !obj.contains_key(field) {
            return Err(required("createBackup", field));
        }
    }
    let mut name = String::new();
    let mut backup_type = String::new();
    let mut rotation = 0;
    let mut metadata = BTreeMap::new();
    for (k, v) in obj {
        match k.as_str() {
            "name" => name = check_name("name", v)?,
            "backup_type" => {
                backup_type = v
                    .as_str()
                    .ok_or_else(|| invalid("backup_type", v, "is not of type 'string'"))?
                    .to_string()
            }
            "rotation" => {
                rotation = match v {
                    Value::Number(n) => n.as_i64(),
                    Value::String(x) if !x.is_empty() && x.bytes().all(|b| b.is_ascii_digit()) => {
                        x.parse().ok()
                    }
                    _ => None,
                }
                .filter(|n| *n >= 0)
                .ok_or_else(|| invalid("rotation", v, "is not a non-negative integer"))?
            }
            "metadata" => metadata = check_metadata("metadata", v)?,
            other => {
                return Err(Error::BadRequest(format!(
                    "Invalid input for field/attribute createBackup. Additional properties are not allowed ('{other}' was unexpected)"
                )));
            }
        }
    }
    Ok(Action::CreateBackup {
        name,
        backup_type,
        rotation,
        metadata,
    })
}

fn parse_rebuild(arg: &Value, mv: ApiVersion) -> Result<Rebuild> {
    let obj = arg
        .as_object()
        .ok_or_else(|| Error::BadRequest("Invalid input for field/attribute rebuild.".into()))?;
    let image = obj
        .get("imageRef")
        .and_then(Value::as_str)
        .ok_or_else(|| required("rebuild", "imageRef"))?;
    let image_ref = image_id_from_ref(image)
        .ok_or_else(|| Error::BadRequest("Invalid imageRef provided.".into()))?;
    let mut r = Rebuild {
        image_ref,
        name: None,
        metadata: None,
        admin_pass: None,
        personality: None,
        user_data: None,
        key_name: None,
        description: None,
        access_ipv4: None,
        access_ipv6: None,
    };
    for (k, v) in obj {
        match k.as_str() {
            "imageRef" => {}
            "name" => r.name = Some(check_name("name", v)?),
            "metadata" => r.metadata = Some(check_metadata("metadata", v)?),
            "adminPass" => r.admin_pass = v.as_str().map(str::to_string),
            "personality" if !mv.at_least(2, 57) => r.personality = Some(parse_personality(v)?),
            "user_data" if mv.at_least(2, 57) => {
                r.user_data = Some(match v {
                    Value::Null => None,
                    Value::String(u) if is_base64(u) && u.len() <= 65535 => Some(u.clone()),
                    _ => return Err(invalid("user_data", v, "is not a 'base64'")),
                })
            }
            "key_name" if mv.at_least(2, 54) => {
                r.key_name = Some(v.as_str().map(str::to_string));
            }
            "description" if mv.at_least(2, 19) => {
                r.description = Some(v.as_str().map(str::to_string));
            }
            "accessIPv4" => r.access_ipv4 = Some(access_ip(k, v)?),
            "accessIPv6" => r.access_ipv6 = Some(access_ip(k, v)?),
            "preserve_ephemeral" | "OS-DCF:diskConfig" => {}
            "trusted_image_certificates" if mv.at_least(2, 63) => {}
            "hostname" if mv.at_least(2, 90) => {}
            other => {
                return Err(Error::BadRequest(format!(
                    "Invalid input for field/attribute rebuild. Additional properties are not allowed ('{other}' was unexpected)"
                )));
            }
        }
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn v(minor: u16) -> ApiVersion {
        ApiVersion::new(2, minor)
    }

    #[test]
    fn every_action_parses_into_the_closed_set() {
        let p = |b: Value| parse_action(&b, v(96)).unwrap();
        assert_eq!(
            p(json!({"reboot": {"type": "hard"}})),
            ServerAction::Change(Action::Reboot { hard: true })
        );
        assert_eq!(p(json!({"forceDelete": null})), ServerAction::ForceDelete);
        assert_eq!(
            p(json!({"os-getConsoleOutput": {"length": 5}})),
            ServerAction::ConsoleOutput { lines: Some(5) }
        );
        assert_eq!(
            p(json!({"os-getConsoleOutput": {"length": -1}})),
            ServerAction::ConsoleOutput { lines: None }
        );
        assert_eq!(
            p(json!({"os-getConsoleOutput": {"length": "7"}})),
            ServerAction::ConsoleOutput { lines: Some(7) }
        );
        assert_eq!(
            p(json!({"os-resetState": {"state": "error"}})),
            ServerAction::ResetState {
                state: "error".into()
            }
        );
        assert_eq!(p(json!({"fly": {}})), ServerAction::Unknown("fly".into()));
        assert!(matches!(
            p(json!({"lock": {"locked_reason": "audit"}})),
            ServerAction::Change(Action::Lock { reason: Some(r) }) if r == "audit"
        ));
        assert!(matches!(
            parse_action(&json!({"lock": {"locked_reason": "audit"}}), v(72)).unwrap(),
            ServerAction::Change(Action::Lock { reason: None })
        ));
    }

    #[test]
    fn bad_bodies_are_nova_400s() {
        let e = |b: Value| parse_action(&b, v(96)).unwrap_err().to_string();
        assert!(e(json!({"reboot": {}})).contains("'type' is a required property"));
        assert!(e(json!({"reboot": {"type": "gentle"}})).contains("is not one of"));
        assert!(e(json!({"os-getConsoleOutput": {"length": -2}})).contains("length"));
        assert!(
            e(json!({"createBackup": {"name": "b", "backup_type": "daily"}}))
                .contains("'rotation' is a required property")
        );
        assert!(e(json!({"a": {}, "b": {}})).contains("no such action"));
        assert!(
            e(json!({"rebuild": {"imageRef": "70a599e0-31e7-49b7-b260-868f441e862b", "bogus": 1}}))
                .contains("'bogus' was unexpected")
        );
    }

    #[test]
    fn rebuild_checks_personality_itself_and_only_below_2_57() {
        let body = json!({"rebuild": {"imageRef": "70a599e0-31e7-49b7-b260-868f441e862b",
            "personality": [{"path": "/etc/motd", "contents": "aGVsbG8="}]}});
        let ServerAction::Change(Action::Rebuild(r)) = parse_action(&body, v(56)).unwrap() else {
            panic!("not a rebuild");
        };
        assert_eq!(r.personality.map(|p| p.len()), Some(1));
        assert!(parse_action(&body, v(57)).is_err(), "gone at 2.57");
        let bad = json!({"rebuild": {"imageRef": "70a599e0-31e7-49b7-b260-868f441e862b",
            "personality": [{"path": "/etc/motd", "contents": "not base64!"}]}});
        assert!(
            parse_action(&bad, v(56))
                .unwrap_err()
                .to_string()
                .contains("base64")
        );
    }
}
