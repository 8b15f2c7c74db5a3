//! The task that owns one running QEMU: its only QMP connection and, when this
//! process started it, its `Child`. Commands reach it over a channel
//! ([`Monitor::execute`]); it follows QEMU's events (STOP, RESUME, SHUTDOWN) into
//! a [`RunState`] others watch. The end of the process is noticed at once — the
//! monitor socket closes when QEMU dies, whatever killed it — and classified:
//! the guest powered off, the host asked (`quit`, a signal), or it crashed (no
//! SHUTDOWN event: `kill -9`, OOM, a QEMU bug), with the exit status when known.

use std::time::Duration;

use serde_json::Value;
use tokio::process::Child;
use tokio::sync::{mpsc, oneshot, watch};

use super::process;
use super::qmp::{self, Message, QmpError};

/// Why a QEMU process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitReason {
    /// The guest powered itself off (ACPI, `poweroff` inside).
    GuestShutdown,
    /// ferrostack asked (`quit` over QMP).
    HostRequest,
    /// Someone signalled QEMU (SIGTERM, SIGINT, SIGHUP).
    HostSignal,
    /// The guest kernel panicked (pvpanic).
    GuestPanic,
    /// The process died without a SHUTDOWN event: killed, out of memory, crashed.
    Crashed,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exit {
    pub reason: ExitReason,
    /// What happened, for a fault or an instance-action event.
    pub detail: String,
}

/// What a running QEMU is doing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunState {
    /// Started with `-S`, not yet continued.
    Prelaunch,
    Running,
    Paused,
    Exited(Exit),
}

struct Request {
    command: String,
    args: Option<Value>,
    reply: oneshot::Sender<Result<Value, QmpError>>,
}

/// A handle on a guest's monitor task.
#[derive(Clone)]
pub struct Monitor {
    tx: mpsc::Sender<Request>,
    state: watch::Receiver<RunState>,
    pid: u32,
}

impl Monitor {
    /// Starts the task for QEMU `pid` (whose monitor socket is `qmp`), `child` when
    /// this process started it.
    pub async fn attach(
        qmp_path: &std::path::Path,
        pid: u32,
        child: Option<Child>,
    ) -> Result<Monitor, QmpError> {
        let conn = qmp::connect(qmp_path, Duration::from_secs(10)).await?;
        Monitor::start(conn, pid, child).await
    }

    /// Starts the task on a negotiated connection.
    pub async fn start(
        conn: (qmp::Writer, mpsc::UnboundedReceiver<Message>),
        pid: u32,
        child: Option<Child>,
    ) -> Result<Monitor, QmpError> {
        let (mut writer, mut rx) = conn;
        // The state before the task takes over: `query-status`, answered in order.
        writer.send(1, "query-status", None).await?;
        let initial = tokio::time::timeout(Duration::from_secs(10), async {
            while let Some(m) = rx.recv().await {
                match m {
                    Message::Return { id: 1, value } => {
                        return Ok(match value["status"].as_str().unwrap_or_default() {
                            "running" => RunState::Running,
                            "prelaunch" => RunState::Prelaunch,
                            _ => RunState::Paused,
                        });
                    }
                    Message::Error { id: 1, class, desc } => {
                        return Err(QmpError::Command { class, desc });
                    }
                    _ => {}
                }
            }
            Err(QmpError::Closed)
        })
        .await
        .map_err(|_| QmpError::Timeout("query-status".into()))??;
        let (tx, req_rx) = mpsc::channel(16);
        let (state_tx, state) = watch::channel(initial);
        let task = Task {
            writer,
            rx,
            req_rx,
            state: state_tx,
            child,
            pid,
        };
        tokio::spawn(task.run());
        Ok(Monitor { tx, state, pid })
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    pub fn state(&self) -> RunState {
        self.state.borrow().clone()
    }

    pub fn watch(&self) -> watch::Receiver<RunState> {
        self.state.clone()
    }

    /// Runs a QMP command (bounded: a wedged QEMU does not hang the caller).
    pub async fn execute(&self, command: &str, args: Option<Value>) -> Result<Value, QmpError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Request {
                command: command.to_string(),
                args,
                reply,
            })
            .await
            .map_err(|_| QmpError::Closed)?;
        match tokio::time::timeout(Duration::from_secs(60), rx).await {
            Ok(Ok(r)) => r,
            Ok(Err(_)) => Err(QmpError::Closed),
            Err(_) => Err(QmpError::Timeout(command.to_string())),
        }
    }

    /// Waits until the process has ended (or `limit` passed: `None`).
    pub async fn wait_exit(&self, limit: Duration) -> Option<Exit> {
        let mut w = self.state.clone();
        let r = tokio::time::timeout(limit, async {
            loop {
                if let RunState::Exited(e) = &*w.borrow_and_update() {
                    return Some(e.clone());
                }
                if w.changed().await.is_err() {
                    return None;
                }
            }
        })
        .await;
        r.ok().flatten()
    }
}

struct Task {
    writer: qmp::Writer,
    rx: mpsc::UnboundedReceiver<Message>,
    req_rx: mpsc::Receiver<Request>,
    state: watch::Sender<RunState>,
    child: Option<Child>,
    pid: u32,
}

impl Task {
    async fn run(mut self) {
        let mut pending: std::collections::HashMap<u64, oneshot::Sender<Result<Value, QmpError>>> =
            std::collections::HashMap::new();
        let mut next_id: u64 = 2;
        let mut handles_gone = false;
        let mut shutdown: Option<(bool, String)> = None;
        let mut status: Option<std::process::ExitStatus> = None;
        loop {
            tokio::select! {
                req = self.req_rx.recv(), if !handles_gone => {
                    let Some(req) = req else {
                        // nobody can send commands any more; still follow the process
                        handles_gone = true;
                        continue;
                    };
                    let id = next_id;
                    next_id += 1;
                    match self.writer.send(id, &req.command, req.args.as_ref()).await {
                        Ok(()) => { pending.insert(id, req.reply); }
                        Err(e) => { let _ = req.reply.send(Err(e.into())); }
                    }
                }
                msg = self.rx.recv() => match msg {
                    Some(Message::Return { id, value }) => {
                        if let Some(r) = pending.remove(&id) { let _ = r.send(Ok(value)); }
                    }
                    Some(Message::Error { id, class, desc }) => {
                        if let Some(r) = pending.remove(&id) {
                            let _ = r.send(Err(QmpError::Command { class, desc }));
                        }
                    }
                    Some(Message::Event { name, data }) => {
                        match name.as_str() {
                            "STOP" => { self.set(RunState::Paused); }
                            "RESUME" => { self.set(RunState::Running); }
                            "SHUTDOWN" => {
                                shutdown = Some((
                                    data["guest"].as_bool().unwrap_or(false),
                                    data["reason"].as_str().unwrap_or_default().to_string(),
                                ));
                            }
                            _ => {}
                        }
                        tracing::debug!(pid = self.pid, event = %name, "QMP event");
                    }
                    None => break,
                },
                st = wait_child(&mut self.child), if self.child.is_some() && status.is_none() => {
                    status = st;
                    // the monitor socket closes with the process: EOF follows
                }
            }
        }
        for (_, r) in pending.drain() {
            let _ = r.send(Err(QmpError::Closed));
        }
        // The socket is gone; make sure the process is too, and learn how it ended.
        if status.is_none() {
            if let Some(child) = self.child.as_mut() {
                status = match tokio::time::timeout(Duration::from_secs(10), child.wait()).await {
                    Ok(Ok(s)) => Some(s),
                    _ => {
                        let _ = child.start_kill();
                        child.wait().await.ok()
                    }
                };
            } else if !process::wait_gone(self.pid, Duration::from_secs(10)).await {
                tracing::warn!(
                    pid = self.pid,
                    "QEMU closed its monitor but lives on: killing it"
                );
                process::kill9(self.pid);
                process::wait_gone(self.pid, Duration::from_secs(5)).await;
            }
        }
        let exit = classify(shutdown, status);
        tracing::info!(pid = self.pid, reason = ?exit.reason, detail = %exit.detail, "QEMU exited");
        self.state.send_replace(RunState::Exited(exit));
    }

    fn set(&self, s: RunState) {
        self.state.send_if_modified(|cur| {
            let fresh = !matches!(cur, RunState::Exited(_)) && *cur != s;
            if fresh {
                *cur = s;
            }
            fresh
        });
    }
}

async fn wait_child(child: &mut Option<Child>) -> Option<std::process::ExitStatus> {
    match child {
        Some(c) => c.wait().await.ok(),
        None => std::future::pending().await,
    }
}

/// How the process ended, from the last SHUTDOWN event (guest?, reason) and the
/// exit status when this process was its parent.
pub fn classify(
    shutdown: Option<(bool, String)>,
    status: Option<std::process::ExitStatus>,
) -> Exit {
    use std::os::unix::process::ExitStatusExt;
    let how = match status {
        Some(s) => match (s.code(), s.signal()) {
            (Some(c), _) => format!("exit status {c}"),
            (_, Some(sig)) => format!("killed by signal {sig} ({})", signal_name(sig)),
            _ => "ended".into(),
        },
        None => "ended (not a child of this ferrostack process: exit status unknown)".into(),
    };
    match shutdown {
        Some((true, r)) if r == "guest-panic" => Exit {
            reason: ExitReason::GuestPanic,
            detail: format!("the guest kernel panicked; QEMU {how}"),
        },
        Some((true, _)) => Exit {
            reason: ExitReason::GuestShutdown,
            detail: "the guest powered itself off".into(),
        },
        Some((false, r)) if r == "host-signal" => Exit {
            reason: ExitReason::HostSignal,
            detail: format!("QEMU was stopped by a signal from the host and {how}"),
        },
        Some((false, r)) => Exit {
            reason: ExitReason::HostRequest,
            detail: format!("QEMU quit as asked ({r})"),
        },
        None => Exit {
            reason: ExitReason::Crashed,
            detail: format!("the QEMU process died without shutting down: {how}"),
        },
    }
}

fn signal_name(sig: i32) -> &'static str {
    match sig {
        1 => "SIGHUP",
        2 => "SIGINT",
        6 => "SIGABRT",
        9 => "SIGKILL",
        11 => "SIGSEGV",
        15 => "SIGTERM",
        _ => "a signal",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::ExitStatusExt;

    #[test]
    fn exits_are_classified_by_event_and_status() {
        let killed = std::process::ExitStatus::from_raw(9);
        let e = classify(None, Some(killed));
        assert_eq!(e.reason, ExitReason::Crashed);
        assert!(e.detail.contains("signal 9 (SIGKILL)"), "{}", e.detail);
        assert_eq!(
            classify(Some((true, "guest-shutdown".into())), None).reason,
            ExitReason::GuestShutdown
        );
        assert_eq!(
            classify(Some((false, "host-qmp-quit".into())), None).reason,
            ExitReason::HostRequest
        );
        assert_eq!(
            classify(Some((false, "host-signal".into())), None).reason,
            ExitReason::HostSignal
        );
        assert!(classify(None, None).detail.contains("unknown"));
    }
}
