//! The QEMU Machine Protocol on a unix socket: JSON lines, a greeting, then
//! `qmp_capabilities`, then commands (each tagged with an `id`) whose answers
//! arrive interleaved with asynchronous events. [`connect`] negotiates and splits
//! the socket: a reader task turns lines into [`Message`]s on a channel (so a
//! `select!` on it is cancel-safe) and the caller keeps the [`Writer`]. QMP serves
//! one client at a time; the guest's monitor task is that client.
//!
//! Hand-written (about 150 lines) rather than the `qapi` crates: those generate
//! types from a bundled QEMU 9.1 schema and offer no reconnection story, while
//! the driver needs a dozen commands and their JSON.

use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::unix::OwnedWriteHalf;
use tokio::sync::mpsc;

#[derive(Debug, thiserror::Error)]
pub enum QmpError {
    #[error("QMP socket {path}: {source}")]
    Connect {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("QMP: {0}")]
    Protocol(String),
    #[error("QMP I/O: {0}")]
    Io(#[from] std::io::Error),
    /// QEMU answered the command with an error.
    #[error("{class}: {desc}")]
    Command { class: String, desc: String },
    #[error("QEMU exited")]
    Closed,
    #[error("QMP command {0} timed out")]
    Timeout(String),
}

/// One message from QEMU.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    /// The answer to command `id`.
    Return {
        id: u64,
        value: Value,
    },
    Error {
        id: u64,
        class: String,
        desc: String,
    },
    Event {
        name: String,
        data: Value,
    },
}

fn parse(line: &str) -> Option<Message> {
    let v: Value = serde_json::from_str(line).ok()?;
    if let Some(name) = v.get("event").and_then(Value::as_str) {
        return Some(Message::Event {
            name: name.to_string(),
            data: v.get("data").cloned().unwrap_or(Value::Null),
        });
    }
    let id = v.get("id").and_then(Value::as_u64)?;
    if let Some(e) = v.get("error") {
        return Some(Message::Error {
            id,
            class: e["class"].as_str().unwrap_or("GenericError").to_string(),
            desc: e["desc"].as_str().unwrap_or_default().to_string(),
        });
    }
    Some(Message::Return {
        id,
        value: v.get("return").cloned().unwrap_or(Value::Null),
    })
}

/// The sending half of a negotiated connection.
pub struct Writer {
    w: OwnedWriteHalf,
}

impl Writer {
    pub async fn send(
        &mut self,
        id: u64,
        command: &str,
        args: Option<&Value>,
    ) -> std::io::Result<()> {
        let mut msg = json!({"execute": command, "id": id});
        if let Some(a) = args {
            msg["arguments"] = a.clone();
        }
        let mut line = msg.to_string();
        line.push('\n');
        self.w.write_all(line.as_bytes()).await
    }
}

/// Connects to `path`, reads the greeting and negotiates capabilities. Returns the
/// writer and the channel of everything QEMU says afterwards (closed at EOF).
pub async fn connect(
    path: &Path,
    timeout: Duration,
) -> Result<(Writer, mpsc::UnboundedReceiver<Message>), QmpError> {
    let stream = super::process::connect_unix(path)
        .await
        .map_err(|source| QmpError::Connect {
            path: path.display().to_string(),
            source,
        })?;
    let (r, w) = stream.into_split();
    let mut lines = BufReader::new(r).lines();
    let mut writer = Writer { w };
    let negotiate = async {
        let greeting = lines.next_line().await?.ok_or(QmpError::Closed)?;
        if !greeting.contains("\"QMP\"") {
            return Err(QmpError::Protocol(format!(
                "unexpected greeting {greeting}"
            )));
        }
        writer.send(0, "qmp_capabilities", None).await?;
        loop {
            let line = lines.next_line().await?.ok_or(QmpError::Closed)?;
            match parse(&line) {
                Some(Message::Return { id: 0, .. }) => return Ok(()),
                Some(Message::Error { id: 0, class, desc }) => {
                    return Err(QmpError::Command { class, desc });
                }
                _ => continue,
            }
        }
    };
    // QMP answers one client at a time: a second client gets no greeting until
    // the first goes away, so a bound here tells "busy" from "slow".
    tokio::time::timeout(timeout, negotiate)
        .await
        .map_err(|_| QmpError::Timeout("greeting".into()))??;
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok(Some(line)) = lines.next_line().await {
            match parse(&line) {
                Some(m) => {
                    if tx.send(m).is_err() {
                        break;
                    }
                }
                None => tracing::debug!(line, "QMP: ignored a line"),
            }
        }
    });
    Ok((writer, rx))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_become_messages() {
        assert_eq!(
            parse(r#"{"return": {"status": "running"}, "id": 7}"#),
            Some(Message::Return {
                id: 7,
                value: json!({"status": "running"})
            })
        );
        assert_eq!(
            parse(r#"{"id": 3, "error": {"class": "GenericError", "desc": "no"}}"#),
            Some(Message::Error {
                id: 3,
                class: "GenericError".into(),
                desc: "no".into()
            })
        );
        assert_eq!(
            parse(
                r#"{"timestamp": {"seconds": 1, "microseconds": 2}, "event": "SHUTDOWN", "data": {"guest": true, "reason": "guest-shutdown"}}"#
            ),
            Some(Message::Event {
                name: "SHUTDOWN".into(),
                data: json!({"guest": true, "reason": "guest-shutdown"})
            })
        );
        assert_eq!(parse(r#"{"return": {}}"#), None, "an answer without our id");
        assert_eq!(parse("not json"), None);
    }
}
