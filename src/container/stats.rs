//! `lade top` and `lade stats`: a running container's processes (those of its cgroup)
//! and what they use (CPU, memory against the limit, PIDs), read from `/proc` and the
//! cgroup, as Docker shows them.

use std::time::{Duration, Instant};

use super::{running_init, Container, ContainerError, Result};
use crate::exec;
use crate::store::Store;

/// The host pids of a running container's processes.
pub fn processes(store: &Store, reference: &str) -> Result<Vec<i32>> {
    let record = store.container(reference)?;
    if running_init(&record).is_none() {
        return Err(ContainerError::NotRunning(record.name.clone()));
    }
    Ok(exec::cgroup_procs(&record.id))
}

/// One container's use of the machine.
#[derive(Debug, Clone)]
pub struct Usage {
    pub id: String,
    pub name: String,
    pub cpu_percent: f64,
    pub memory: u64,
    pub memory_limit: u64,
    pub pids: usize,
}

fn cpu_ticks(pid: i32) -> u64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0;
    };
    let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
        return 0;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime: fields 14 and 15 of stat, 12 and 13 after the name.
    let get = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    get(11) + get(12)
}

fn resident_bytes(pid: i32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

fn host_memory() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

/// What each running container uses: CPU over a short sample, memory, processes.
pub fn usage(store: &Store, references: &[String]) -> Result<Vec<Usage>> {
    let containers = if references.is_empty() {
        Container::all(store)?
            .into_iter()
            .filter(|c| c.current_state().is_up())
            .collect()
    } else {
        references
            .iter()
            .map(|r| Container::load(store, r))
            .collect::<Result<Vec<_>>>()?
    };
    // SAFETY: sysconf takes a constant and touches no memory.
    let ticks_per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    let sample = |pids: &[i32]| pids.iter().map(|p| cpu_ticks(*p)).sum::<u64>();
    let pid_sets: Vec<Vec<i32>> = containers
        .iter()
        .map(|c| exec::cgroup_procs(c.id()))
        .collect();
    let before: Vec<u64> = pid_sets.iter().map(|p| sample(p)).collect();
    let started = Instant::now();
    std::thread::sleep(Duration::from_millis(200));
    let elapsed = started.elapsed().as_secs_f64();
    let host = host_memory();
    Ok(containers
        .iter()
        .zip(pid_sets)
        .zip(before)
        .map(|((container, pids), before)| {
            let ticks = sample(&pids).saturating_sub(before) as f64;
            let limit = container.spec.limits.memory.unwrap_or(host);
            Usage {
                id: container.record.id.clone(),
                name: container.record.name.clone(),
                cpu_percent: ticks / ticks_per_second / elapsed * 100.0,
                memory: pids.iter().map(|p| resident_bytes(*p)).sum(),
                memory_limit: limit,
                pids: pids.len(),
            }
        })
        .collect())
}
