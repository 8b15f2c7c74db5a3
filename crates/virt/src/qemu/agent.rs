//! The QEMU guest agent (`qemu-ga` inside the guest), reached through the
//! virtio-serial channel whose host end is `qga.sock`. Its protocol is QMP-like
//! JSON lines without a greeting; a `guest-sync` with a random id first flushes
//! whatever a previous client left in the pipe. Used for changePassword
//! (`guest-set-user-password`), as Nova's libvirt driver does.

use std::path::Path;
use std::time::Duration;

use base64::Engine;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// Nothing answers in the guest (no agent installed or running).
    #[error("the QEMU guest agent did not answer: {0}")]
    Unresponsive(String),
    #[error("the QEMU guest agent refused: {0}")]
    Failed(String),
}

/// Reads answers until one satisfies `want` (`Some` ends the wait).
async fn read_until<T>(
    lines: &mut tokio::io::Lines<BufReader<tokio::net::unix::OwnedReadHalf>>,
    mut want: impl FnMut(&Value) -> Option<T>,
) -> Result<T, AgentError> {
    loop {
        let l = lines
            .next_line()
            .await
            .map_err(|e| AgentError::Unresponsive(e.to_string()))?
            .ok_or_else(|| AgentError::Unresponsive("the channel closed".into()))?;
        if let Ok(v) = serde_json::from_str::<Value>(&l)
            && let Some(t) = want(&v)
        {
            return Ok(t);
        }
    }
}

async fn send(w: &mut tokio::net::unix::OwnedWriteHalf, v: Value) -> Result<(), AgentError> {
    let mut line = v.to_string();
    line.push('\n');
    w.write_all(line.as_bytes())
        .await
        .map_err(|e| AgentError::Unresponsive(e.to_string()))
}

/// Sets `user`'s password inside the guest.
pub async fn set_user_password(
    sock: &Path,
    user: &str,
    password: &str,
    timeout: Duration,
) -> Result<(), AgentError> {
    let run = async {
        let stream = super::process::connect_unix(sock)
            .await
            .map_err(|e| AgentError::Unresponsive(format!("{}: {e}", sock.display())))?;
        let (r, mut w) = stream.into_split();
        let mut lines = BufReader::new(r).lines();
        let sync_id = u64::from(rand::random::<u32>() & 0x7fff_ffff);
        send(
            &mut w,
            json!({"execute": "guest-sync", "arguments": {"id": sync_id}}),
        )
        .await?;
        read_until(&mut lines, |v| {
            (v["return"].as_u64() == Some(sync_id)).then_some(())
        })
        .await?;
        let b64 = base64::engine::general_purpose::STANDARD.encode(password);
        send(
            &mut w,
            json!({"execute": "guest-set-user-password",
                "arguments": {"username": user, "password": b64, "crypted": false}}),
        )
        .await?;
        read_until(&mut lines, |v| {
            if let Some(e) = v.get("error") {
                Some(Err(AgentError::Failed(
                    e["desc"].as_str().unwrap_or("unknown error").to_string(),
                )))
            } else {
                v.get("return").map(|_| Ok(()))
            }
        })
        .await?
    };
    tokio::time::timeout(timeout, run)
        .await
        .map_err(|_| AgentError::Unresponsive(format!("no answer within {timeout:?}")))?
}
