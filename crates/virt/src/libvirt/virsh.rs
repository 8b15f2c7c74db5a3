//! The binding to libvirt: `virsh -c URI ...` run as a child process, one per call,
//! with a timeout (the child is killed when it passes), arguments as a vector
//! (never a shell string) and stderr kept for the error. Secrets never go on its
//! command line: a secret's value is read by virsh from a 0600 file
//! (`secret-set-value --file --plain`), a console password only travels inside a
//! 0600 XML file (`define`, `update-device`). See `docs/adr/0005-libvirt-binding.md`.

use std::ffi::OsString;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

/// A failed `virsh` call: what was run (never a secret), and what virsh said.
#[derive(Debug, thiserror::Error)]
pub enum VirshError {
    #[error("virsh {command}: {source}")]
    Spawn {
        command: String,
        #[source]
        source: std::io::Error,
    },
    #[error("virsh {command} did not finish within {timeout:?}")]
    Timeout { command: String, timeout: Duration },
    #[error("virsh {command} failed: {stderr}")]
    Failed { command: String, stderr: String },
}

impl VirshError {
    /// libvirt does not know the domain (or secret) the call named.
    pub fn is_not_found(&self) -> bool {
        match self {
            VirshError::Failed { stderr, .. } => {
                let s = stderr.to_ascii_lowercase();
                s.contains("domain not found")
                    || s.contains("failed to get domain")
                    || s.contains("no domain with matching")
                    || s.contains("secret not found")
                    || s.contains("no secret with matching")
            }
            _ => false,
        }
    }

    /// The domain is not running (destroy/shutdown of a stopped guest).
    pub fn is_not_running(&self) -> bool {
        match self {
            VirshError::Failed { stderr, .. } => stderr.contains("domain is not running"),
            _ => false,
        }
    }
}

/// One argument for virsh's shell (a command line read from its stdin): in single
/// quotes, where virsh takes everything literally (backslashes too) up to the next
/// quote; a quote inside closes the quoting, is escaped, and opens it again
/// (`'it'\''s'`), as in a POSIX shell. Without it a `'` and a `;` in the argument
/// (an image's `os_admin_user`) would run a virsh command of the caller's choice.
pub fn quote(arg: &str) -> String {
    format!("'{}'", arg.replace('\'', r"'\''"))
}

/// `virsh -c URI`, with one timeout for every call.
#[derive(Debug, Clone)]
pub struct Virsh {
    pub program: OsString,
    pub uri: String,
    pub timeout: Duration,
}

impl Virsh {
    pub fn new(uri: impl Into<String>, timeout: Duration) -> Virsh {
        Virsh {
            program: "virsh".into(),
            uri: uri.into(),
            timeout,
        }
    }

    /// Runs `virsh -q -c URI ARGS...`; stdout on success.
    pub async fn run<I, S>(&self, args: I) -> Result<String, VirshError>
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.run_with(args, self.timeout).await
    }

    /// [`Virsh::run`] with its own timeout (a managed save of a big guest).
    pub async fn run_with<I, S>(&self, args: I, timeout: Duration) -> Result<String, VirshError>
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
        let command = args
            .iter()
            .map(|a| a.to_string_lossy())
            .collect::<Vec<_>>()
            .join(" ");
        let t0 = Instant::now();
        let mut cmd = tokio::process::Command::new(&self.program);
        cmd.arg("-q")
            .arg("-c")
            .arg(&self.uri)
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .env("LC_ALL", "C")
            .kill_on_drop(true);
        let child = cmd.spawn().map_err(|source| VirshError::Spawn {
            command: command.clone(),
            source,
        })?;
        let out = match tokio::time::timeout(timeout, child.wait_with_output()).await {
            Ok(Ok(o)) => o,
            Ok(Err(source)) => return Err(VirshError::Spawn { command, source }),
            // dropping the future kills the child (kill_on_drop)
            Err(_) => return Err(VirshError::Timeout { command, timeout }),
        };
        tracing::trace!(%command, ms = t0.elapsed().as_millis() as u64, "virsh");
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            let mut stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
            if stderr.is_empty() {
                stderr = out.status.to_string();
            }
            Err(VirshError::Failed { command, stderr })
        }
    }

    /// Runs one virsh command read from stdin (virsh's interactive shell), so
    /// what it carries (a guest agent command with a password) is on no command
    /// line. `line` must be quoted for virsh's own parser ([`quote`]: an unquoted
    /// `;` starts another command) and be one line.
    pub async fn run_stdin(&self, line: &str) -> Result<String, VirshError> {
        use tokio::io::AsyncWriteExt;
        let command = line.split_whitespace().next().unwrap_or("").to_string();
        if line.contains(['\n', '\r']) {
            return Err(VirshError::Failed {
                command,
                stderr: "a command for virsh's shell must be one line".into(),
            });
        }
        let mut child = tokio::process::Command::new(&self.program)
            .arg("-q")
            .arg("-c")
            .arg(&self.uri)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .env("LC_ALL", "C")
            .kill_on_drop(true)
            .spawn()
            .map_err(|source| VirshError::Spawn {
                command: command.clone(),
                source,
            })?;
        let timeout = self.timeout;
        let run = async {
            if let Some(mut stdin) = child.stdin.take() {
                stdin.write_all(line.as_bytes()).await?;
                stdin.write_all(b"\nquit\n").await?;
            }
            child.wait_with_output().await
        };
        let out = match tokio::time::timeout(timeout, run).await {
            Ok(Ok(o)) => o,
            Ok(Err(source)) => return Err(VirshError::Spawn { command, source }),
            Err(_) => return Err(VirshError::Timeout { command, timeout }),
        };
        let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
        // the interactive shell exits 0 even when a command failed
        if out.status.success() && !stderr.contains("error:") {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(VirshError::Failed { command, stderr })
        }
    }

    /// Whether the daemon answers (`virsh version`).
    pub async fn ping(&self) -> Result<String, VirshError> {
        self.run(["version"]).await
    }

    pub async fn define(&self, xml_file: &Path) -> Result<(), VirshError> {
        self.run([OsString::from("define"), xml_file.into()])
            .await
            .map(drop)
    }

    pub async fn start(&self, name: &str) -> Result<(), VirshError> {
        self.run(["start", name]).await.map(drop)
    }

    /// Stops the domain's QEMU at once; a stopped or unknown domain is no error.
    pub async fn destroy(&self, name: &str) -> Result<(), VirshError> {
        match self.run(["destroy", name]).await {
            Err(e) if e.is_not_running() || e.is_not_found() => Ok(()),
            r => r.map(drop),
        }
    }

    /// Removes the domain's definition, its NVRAM and managed-save image;
    /// unknown = done.
    pub async fn undefine(&self, name: &str) -> Result<(), VirshError> {
        match self
            .run(["undefine", name, "--nvram", "--managed-save"])
            .await
        {
            Err(e) if e.is_not_found() => Ok(()),
            r => r.map(drop),
        }
    }

    /// The ACPI power button.
    pub async fn shutdown(&self, name: &str) -> Result<(), VirshError> {
        self.run(["shutdown", name, "--mode", "acpi"])
            .await
            .map(drop)
    }

    /// `virsh list --all --managed-save`: every domain with its state (`running`,
    /// `paused`, `shut off`, `saved`, `crashed`, ...).
    pub async fn list_all(&self) -> Result<Vec<(String, String)>, VirshError> {
        let out = self.run(["list", "--all", "--managed-save"]).await?;
        Ok(super::state::parse_list(&out))
    }

    /// `virsh domstate --reason`: `shut off (crashed)`.
    pub async fn domstate(&self, name: &str) -> Result<String, VirshError> {
        self.run(["domstate", name, "--reason"])
            .await
            .map(|s| s.trim().to_string())
    }

    /// The live (or, when stopped, persistent) XML with passwords (`--security-info`).
    pub async fn dumpxml_secure(&self, name: &str) -> Result<String, VirshError> {
        self.run(["dumpxml", name, "--security-info"]).await
    }

    /// An HMP command through libvirt's monitor (`info usernet`).
    pub async fn hmp(&self, name: &str, command: &str) -> Result<String, VirshError> {
        self.run(["qemu-monitor-command", name, "--hmp", command])
            .await
    }

    /// Defines the secret `uuid` from `xml_file` and sets its value from
    /// `value_file` (the raw passphrase, no newline), both read by virsh.
    pub async fn set_secret(
        &self,
        uuid: &str,
        xml_file: &Path,
        value_file: &Path,
    ) -> Result<(), VirshError> {
        self.run([OsString::from("secret-define"), xml_file.into()])
            .await?;
        self.run([
            OsString::from("secret-set-value"),
            uuid.into(),
            "--file".into(),
            value_file.into(),
            "--plain".into(),
        ])
        .await
        .map(drop)
    }

    /// Unknown = done.
    pub async fn undefine_secret(&self, uuid: &str) -> Result<(), VirshError> {
        match self.run(["secret-undefine", uuid]).await {
            Err(e) if e.is_not_found() => Ok(()),
            r => r.map(drop),
        }
    }

    /// Applies a device element (a `<graphics>` with a new password) from a file:
    /// to the running guest when `live`, and to its persistent definition.
    pub async fn update_device(
        &self,
        name: &str,
        xml_file: &Path,
        live: bool,
    ) -> Result<(), VirshError> {
        let mut a: Vec<OsString> = vec!["update-device".into(), name.into(), xml_file.into()];
        if live {
            a.push("--live".into());
        }
        a.push("--config".into());
        self.run(a).await.map(drop)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn quote_closes_and_reopens() {
        assert_eq!(quote(r#"a'b\c"d"#), r#"'a'\''b\c"d'"#);
        assert_eq!(quote(""), "''");
    }

    /// virsh's own parser gives a quoted argument back unchanged: no second command
    /// from a `;`, backslashes and double quotes kept. `echo` needs no daemon
    /// (libvirt's built-in test driver); skipped where virsh is not installed.
    #[tokio::test]
    async fn virsh_reads_a_quoted_argument_back() {
        let v = Virsh::new("test:///default", Duration::from_secs(30));
        let nasty = r#"{"username":"x'; echo INJECTED; echo '","p":"a\"b\\c 'd'"}"#;
        let out = match v.run_stdin(&format!("echo {}", quote(nasty))).await {
            Err(VirshError::Spawn { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                return;
            }
            r => r.unwrap(),
        };
        // stdout: the prompt, the command read, then what echo printed
        assert!(out.contains(&format!("\n{nasty}")), "{out}");
        assert!(!out.contains("\nINJECTED"), "{out}");
        let two = v.run_stdin("echo a\necho b").await.unwrap_err();
        assert!(two.to_string().contains("one line"), "{two}");
    }
}
