//! Docker's credential helpers: the `docker-credential-NAME` programs that
//! `credHelpers` and `credsStore` in Docker's `config.json` name, and how Docker
//! Desktop, ECR, GCR and ACR users keep their logins. The protocol is
//! docker/docker-credential-helpers': `get` reads a server URL on stdin and answers
//! `{"ServerURL","Username","Secret"}`; `store` reads that JSON; `erase` reads a server
//! URL. A "credentials not found" answer means none, not a failure.
//!
//! A helper is run directly, never through a shell (its name comes from a file, not
//! from the user's fingers), found on `PATH`, and given [`HELPER_TIMEOUT`]: a helper
//! waiting on a locked keychain must not hold a pull forever. Its answers carry secrets,
//! so none of its standard output reaches an error message except a failure's text.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use nix::sys::signal::{SigSet, Signal};
use serde_json::{json, Value};

use super::auth::Credentials;

/// How long a helper may take to answer.
pub(crate) const HELPER_TIMEOUT: Duration = Duration::from_secs(30);

/// The most of a helper's output lade reads: an answer is a few hundred bytes, and a
/// broken helper's endless output must not fill memory.
const OUTPUT_LIMIT: u64 = 1 << 20;

/// How often a running helper is looked at: helpers answer in milliseconds, and
/// `std` has no wait with a timeout.
const POLL: Duration = Duration::from_millis(5);

#[derive(Debug, thiserror::Error)]
pub enum HelperError {
    #[error("credential helper {helper:?} (named in {config}) is not a program name")]
    BadName { helper: String, config: PathBuf },
    #[error("credential helper docker-credential-{helper} (named in {config}) is not on PATH")]
    NotFound { helper: String, config: PathBuf },
    #[error("credential helper docker-credential-{helper} {action} failed: {reason}")]
    Failed {
        helper: String,
        action: &'static str,
        reason: String,
    },
    #[error("credential helper docker-credential-{helper} {action} did not answer within {} s", timeout.as_secs_f64())]
    TimedOut {
        helper: String,
        action: &'static str,
        timeout: Duration,
    },
    #[error("credential helper docker-credential-{helper} {action}: {source}")]
    Io {
        helper: String,
        action: &'static str,
        source: std::io::Error,
    },
}

/// One helper, as a Docker config names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Helper {
    /// `NAME` of `docker-credential-NAME`.
    pub name: String,
    /// The config that named it, for errors.
    pub config: PathBuf,
}

/// What a helper said: its standard output, or that it has no such credentials.
enum Answer {
    Output(Vec<u8>),
    NotFound,
}

impl Helper {
    pub(crate) fn program(&self) -> String {
        format!("docker-credential-{}", self.name)
    }

    /// The credentials the helper keeps for `server_url`, if it keeps any.
    pub(crate) fn get(&self, server_url: &str) -> Result<Option<Credentials>, HelperError> {
        let Answer::Output(output) = self.run("get", server_url.as_bytes(), HELPER_TIMEOUT)? else {
            return Ok(None);
        };
        // The answer holds the secret: a bad one is described, never quoted.
        let answer: Value = serde_json::from_slice(&output).map_err(|e| HelperError::Failed {
            helper: self.name.clone(),
            action: "get",
            reason: format!(
                "its answer is not JSON ({} at line {})",
                json_category(&e),
                e.line()
            ),
        })?;
        let field = |name: &str| answer.get(name).and_then(Value::as_str).unwrap_or("");
        let (username, secret) = (field("Username"), field("Secret"));
        if secret.is_empty() {
            return Ok(None);
        }
        Ok(Some(Credentials {
            username: username.to_string(),
            password: secret.to_string(),
        }))
    }

    /// Hands `credentials` for `server_url` to the helper.
    pub(crate) fn store(
        &self,
        server_url: &str,
        credentials: &Credentials,
    ) -> Result<(), HelperError> {
        let input = json!({
            "ServerURL": server_url,
            "Username": credentials.username,
            "Secret": credentials.password,
        });
        let input = serde_json::to_vec(&input).map_err(|e| HelperError::Io {
            helper: self.name.clone(),
            action: "store",
            source: std::io::Error::other(e),
        })?;
        match self.run("store", &input, HELPER_TIMEOUT)? {
            Answer::Output(_) => Ok(()),
            Answer::NotFound => Err(HelperError::Failed {
                helper: self.name.clone(),
                action: "store",
                reason: "it answered \"credentials not found\"".into(),
            }),
        }
    }

    /// Has the helper forget `server_url`; whether it held credentials for it.
    pub(crate) fn erase(&self, server_url: &str) -> Result<bool, HelperError> {
        Ok(matches!(
            self.run("erase", server_url.as_bytes(), HELPER_TIMEOUT)?,
            Answer::Output(_)
        ))
    }

    fn run(
        &self,
        action: &'static str,
        input: &[u8],
        timeout: Duration,
    ) -> Result<Answer, HelperError> {
        // A name with a slash would run any program the config points at, not a helper
        // found on PATH.
        if self.name.is_empty() || self.name.contains(['/', '\0']) {
            return Err(HelperError::BadName {
                helper: self.name.clone(),
                config: self.config.clone(),
            });
        }
        let io = |source| HelperError::Io {
            helper: self.name.clone(),
            action,
            source,
        };
        let mut command = Command::new(self.program());
        command.arg(action);
        let (status, stdout, stderr) = match run_bounded(command, input, timeout) {
            Ok(done) => done,
            Err(Run::Spawn(e)) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(HelperError::NotFound {
                    helper: self.name.clone(),
                    config: self.config.clone(),
                })
            }
            Err(Run::Spawn(e) | Run::Io(e)) => return Err(io(e)),
            Err(Run::TimedOut) => {
                return Err(HelperError::TimedOut {
                    helper: self.name.clone(),
                    action,
                    timeout,
                })
            }
        };
        if status.success() {
            return Ok(Answer::Output(stdout));
        }
        // Docker's helpers say "credentials not found in native keychain" on stdout;
        // others on stderr.
        let said = |bytes: &[u8]| String::from_utf8_lossy(bytes).to_lowercase();
        if said(&stdout).contains("credentials not found")
            || said(&stderr).contains("credentials not found")
        {
            return Ok(Answer::NotFound);
        }
        let first_line = |bytes: &[u8]| {
            String::from_utf8_lossy(bytes)
                .lines()
                .map(str::trim)
                .find(|l| !l.is_empty())
                .map(str::to_string)
        };
        // stderr first; a `get` that failed has no credentials on stdout, and Docker's
        // helpers print their errors there.
        let reason = first_line(&stderr)
            .or_else(|| first_line(&stdout))
            .unwrap_or_else(|| status.to_string());
        Err(HelperError::Failed {
            helper: self.name.clone(),
            action,
            reason,
        })
    }
}

/// Why a bounded run did not finish.
enum Run {
    Spawn(std::io::Error),
    Io(std::io::Error),
    TimedOut,
}

/// Runs `command` with `input` on stdin: its status, stdout and stderr, or
/// [`Run::TimedOut`] (the program killed) when it takes longer than `timeout`.
fn run_bounded(
    mut command: Command,
    input: &[u8],
    timeout: Duration,
) -> Result<(ExitStatus, Vec<u8>, Vec<u8>), Run> {
    let deadline = Instant::now() + timeout;
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(Run::Spawn)?;
    // Both outputs are drained while it runs, so that a full pipe never stalls it.
    let (sender, outputs) = mpsc::channel();
    for (which, pipe) in [
        (
            0,
            child
                .stdout
                .take()
                .map(|p| Box::new(p) as Box<dyn Read + Send>),
        ),
        (
            1,
            child
                .stderr
                .take()
                .map(|p| Box::new(p) as Box<dyn Read + Send>),
        ),
    ] {
        let sender = sender.clone();
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            if let Some(pipe) = pipe {
                let _ = pipe.take(OUTPUT_LIMIT).read_to_end(&mut bytes);
            }
            let _ = sender.send((which, bytes));
        });
    }
    drop(sender);
    if let Some(mut stdin) = child.stdin.take() {
        let input = input.to_vec();
        std::thread::spawn(move || {
            // A helper that exits without reading its input is judged by its answer:
            // the write must fail with EPIPE, not raise SIGPIPE, which lade's CLI leaves
            // fatal. SIGPIPE goes to the writing thread, so blocking it here is enough;
            // and a helper that never reads cannot stall the wait below.
            if SigSet::from(Signal::SIGPIPE).thread_block().is_ok() {
                let _ = stdin.write_all(&input);
            }
        });
    }
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) => {}
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(Run::Io(e));
            }
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(Run::TimedOut);
        }
        std::thread::sleep(POLL);
    };
    let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
    for _ in 0..2 {
        // A program it left behind may hold the pipes open: the deadline holds for them.
        let left = deadline.saturating_duration_since(Instant::now());
        match outputs.recv_timeout(left) {
            Ok((0, bytes)) => stdout = bytes,
            Ok((_, bytes)) => stderr = bytes,
            Err(_) => return Err(Run::TimedOut),
        }
    }
    Ok((status, stdout, stderr))
}

/// `serde_json`'s error category, without the input it would quote.
fn json_category(e: &serde_json::Error) -> &'static str {
    match e.classify() {
        serde_json::error::Category::Io => "unreadable",
        serde_json::error::Category::Syntax => "syntax error",
        serde_json::error::Category::Data => "unexpected data",
        serde_json::error::Category::Eof => "cut short",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn script(dir: &std::path::Path, body: &str) -> PathBuf {
        let path = dir.join("helper");
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    #[test]
    fn a_hung_program_is_killed_at_the_deadline() {
        let dir = tempfile::tempdir().unwrap();
        let path = script(dir.path(), "exec sleep 30");
        let started = Instant::now();
        let outcome = run_bounded(Command::new(path), b"", Duration::from_millis(200));
        assert!(matches!(outcome, Err(Run::TimedOut)));
        assert!(started.elapsed() < Duration::from_secs(10));
    }

    #[test]
    fn input_goes_in_and_both_outputs_come_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = script(
            dir.path(),
            "read line; echo \"got $line\"; echo oops >&2; exit 3",
        );
        let Ok((status, stdout, stderr)) =
            run_bounded(Command::new(path), b"hello\n", Duration::from_secs(20))
        else {
            panic!("the program did not run");
        };
        assert_eq!(status.code(), Some(3));
        assert_eq!(stdout, b"got hello\n");
        assert_eq!(stderr, b"oops\n");
    }

    #[test]
    fn a_missing_or_misnamed_helper_is_named() {
        let helper = Helper {
            name: "lade-surely-absent".into(),
            config: "/c/config.json".into(),
        };
        let error = helper.get("example.com").unwrap_err().to_string();
        assert!(
            error.contains("docker-credential-lade-surely-absent") && error.contains("PATH"),
            "{error}"
        );
        let helper = Helper {
            name: "../../bin/sh".into(),
            config: "/c/config.json".into(),
        };
        assert!(matches!(
            helper.get("example.com"),
            Err(HelperError::BadName { .. })
        ));
    }
}
