//! `lade top` and `lade stats`: a container's processes as the host's `ps` lists them,
//! and what running containers use.

use super::{EngineError, Result};
use crate::container::{self, Usage};
use crate::store::Store;

/// `lade top`.
#[derive(Debug, Clone)]
pub struct TopRequest {
    pub container: String,
    /// The options given to `ps` [default: `-ef`].
    pub ps_options: Vec<String>,
}

/// What `ps` printed of the container's processes: its header and their lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Processes {
    pub header: String,
    pub lines: Vec<String>,
}

/// `lade top`: the host's `ps`, as Docker runs it, keeping the container's processes.
pub fn top(store: &Store, request: &TopRequest) -> Result<Processes> {
    let pids = container::processes(store, &request.container)?;
    let options = if request.ps_options.is_empty() {
        vec!["-ef".to_string()]
    } else {
        request.ps_options.clone()
    };
    let output = std::process::Command::new("ps")
        .args(&options)
        .output()
        .map_err(EngineError::PsNotRun)?;
    if !output.status.success() {
        return Err(EngineError::PsFailed {
            options: options.join(" "),
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_string(),
        });
    }
    processes_of(&String::from_utf8_lossy(&output.stdout), &pids)
        .ok_or_else(|| EngineError::PsNoPid(options.join(" ")))
}

/// The header and the lines of `ps` output whose PID is one of `pids`; `None` when
/// there is no PID column.
fn processes_of(text: &str, pids: &[i32]) -> Option<Processes> {
    let mut lines = text.lines();
    let header = lines.next().unwrap_or_default();
    let pid_column = header.split_whitespace().position(|c| c == "PID")?;
    let lines = lines
        .filter(|line| {
            line.split_whitespace()
                .nth(pid_column)
                .and_then(|p| p.parse::<i32>().ok())
                .is_some_and(|p| pids.contains(&p))
        })
        .map(str::to_string)
        .collect();
    Some(Processes {
        header: header.to_string(),
        lines,
    })
}

/// `lade stats`: what the containers named use (every running one when none is).
pub fn stats(store: &Store, containers: &[String]) -> Result<Vec<Usage>> {
    Ok(container::usage(store, containers)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_keeps_the_containers_processes() {
        let text = "UID PID PPID CMD\nroot 1 0 init\nroot 42 1 sh\nroot 43 42 sleep\n";
        let shown = processes_of(text, &[42, 43]).unwrap();
        assert_eq!(shown.header, "UID PID PPID CMD");
        assert_eq!(shown.lines, ["root 42 1 sh", "root 43 42 sleep"]);
        assert_eq!(processes_of("UID CMD\nroot init\n", &[1]), None);
    }
}
