//! Runs a build's stages, each on a thread of its own. A stage starts as soon as the
//! stage it is built on (if any) has finished, and waits for another stage only at the
//! step that takes files from it: the final stage of a build copies its big context files
//! while the stages it will later `COPY --from` are still running, as BuildKit's does.
//!
//! `jobs` bounds the RUN steps running at once, as `make -j` bounds processes: they are
//! what can use the CPUs without limit. COPY and config steps never wait for a turn (a
//! COPY's compression has its own threads), so a stage whose RUN sleeps or downloads
//! does not hold back another's COPY.
//!
//! The first failure stops the rest: stages waiting give up, `on_failure` stops the
//! ones running, and that first error is the build's.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Condvar, Mutex};

struct Shared {
    /// Turns free to work.
    free: Mutex<usize>,
    freed: Condvar,
    /// Finished stages, and whether they succeeded.
    finished: Mutex<BTreeMap<usize, bool>>,
    changed: Condvar,
    failed: AtomicBool,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    fn acquire(&self) {
        let mut free = lock(&self.free);
        while *free == 0 {
            free = self.freed.wait(free).unwrap_or_else(|e| e.into_inner());
        }
        *free -= 1;
    }

    fn release(&self) {
        *lock(&self.free) += 1;
        self.freed.notify_one();
    }

    /// Waits until `stage` has finished; whether it succeeded (false too when the build
    /// is failing).
    fn wait(&self, stage: usize) -> bool {
        let mut finished = lock(&self.finished);
        loop {
            if let Some(&ok) = finished.get(&stage) {
                return ok;
            }
            if self.failed.load(Ordering::SeqCst) {
                return false;
            }
            finished = self
                .changed
                .wait(finished)
                .unwrap_or_else(|e| e.into_inner());
        }
    }

    fn finish(&self, stage: usize, ok: bool) {
        lock(&self.finished).insert(stage, ok);
        self.changed.notify_all();
    }
}

/// What a running stage can ask of the scheduler.
pub(crate) struct Turn<'a> {
    shared: Option<&'a Shared>,
}

impl Turn<'_> {
    /// A turn for work done outside any scheduler (explaining a build).
    pub(crate) fn unscheduled() -> Turn<'static> {
        Turn { shared: None }
    }

    /// Waits for `stage` to finish. False when it failed or the build is stopping.
    pub(crate) fn wait_for(&self, stage: usize) -> bool {
        match self.shared {
            Some(shared) => shared.wait(stage),
            None => true,
        }
    }

    /// Runs `work` (a RUN step) once one of the `jobs` turns is free.
    pub(crate) fn limited<T>(&self, work: impl FnOnce() -> T) -> T {
        let Some(shared) = self.shared else {
            return work();
        };
        shared.acquire();
        struct Release<'a>(&'a Shared);
        impl Drop for Release<'_> {
            fn drop(&mut self) {
                self.0.release();
            }
        }
        let _release = Release(shared);
        work()
    }
}

/// Runs `run(stage, turn)` for every stage of `order` (a dependency order), each once the
/// stage `base(stage)` names has succeeded, with `jobs` turns for RUN steps. `is_cancelled` tells the error a stage returns
/// when it gave up because another failed; `thread_error` makes the error for a thread
/// that could not be started.
pub(crate) fn run_stages<E: Send>(
    order: &[usize],
    base: &(dyn Fn(usize) -> Option<usize> + Sync),
    jobs: usize,
    run: &(dyn Fn(usize, &Turn<'_>) -> Result<(), E> + Sync),
    is_cancelled: &dyn Fn(&E) -> bool,
    thread_error: &dyn Fn(std::io::Error) -> E,
    on_failure: &(dyn Fn() + Sync),
) -> Result<(), E> {
    let shared = Shared {
        free: Mutex::new(jobs.max(1)),
        freed: Condvar::new(),
        finished: Mutex::new(BTreeMap::new()),
        changed: Condvar::new(),
        failed: AtomicBool::new(false),
    };
    let mut first_error: Option<E> = None;
    let mut cancelled: Option<E> = None;
    std::thread::scope(|scope| {
        let (done, results) = mpsc::channel::<Result<(), E>>();
        let shared = &shared;
        for &stage in order {
            let done = done.clone();
            let work = move || {
                if !base(stage).is_none_or(|b| shared.wait(b)) {
                    // Its base failed: nothing to report beyond that failure.
                    shared.finish(stage, false);
                    return;
                }
                let turn = Turn {
                    shared: Some(shared),
                };
                let result = run(stage, &turn);
                shared.finish(stage, result.is_ok());
                let _ = done.send(result);
            };
            if let Err(error) = std::thread::Builder::new()
                .name(format!("stage-{stage}"))
                .spawn_scoped(scope, work)
            {
                first_error.get_or_insert(thread_error(error));
                shared.failed.store(true, Ordering::SeqCst);
                shared.changed.notify_all();
                break;
            }
        }
        drop(done);
        for result in results {
            let Err(error) = result else {
                continue;
            };
            if is_cancelled(&error) {
                cancelled.get_or_insert(error);
                continue;
            }
            if first_error.is_none() {
                first_error = Some(error);
                shared.failed.store(true, Ordering::SeqCst);
                shared.changed.notify_all();
                on_failure();
            }
        }
    });
    match (first_error, cancelled) {
        (Some(error), _) | (None, Some(error)) => Err(error),
        (None, None) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::time::Duration;

    #[derive(Debug, PartialEq)]
    enum Error {
        Failed(usize),
        Cancelled,
        Thread,
    }

    fn schedule(
        order: &[usize],
        base: &(dyn Fn(usize) -> Option<usize> + Sync),
        jobs: usize,
        run: &(dyn Fn(usize, &Turn<'_>) -> Result<(), Error> + Sync),
        on_failure: &(dyn Fn() + Sync),
    ) -> Result<(), Error> {
        run_stages(
            order,
            base,
            jobs,
            run,
            &|e| *e == Error::Cancelled,
            &|_| Error::Thread,
            on_failure,
        )
    }

    /// How long a handshake between stages may take before the test fails: far more
    /// than a loaded machine needs, only there so that a broken scheduler fails rather
    /// than hangs.
    const HANDSHAKE: Duration = Duration::from_secs(30);

    /// Waits (bounded) until `count` stages have arrived; whether they all did.
    struct Meeting {
        arrived: Mutex<usize>,
        all_here: std::sync::Condvar,
        count: usize,
    }

    impl Meeting {
        fn new(count: usize) -> Meeting {
            Meeting {
                arrived: Mutex::new(0),
                all_here: std::sync::Condvar::new(),
                count,
            }
        }

        fn arrive(&self) -> bool {
            let mut arrived = self.arrived.lock().unwrap();
            *arrived += 1;
            self.all_here.notify_all();
            let (arrived, _) = self
                .all_here
                .wait_timeout_while(arrived, HANDSHAKE, |n| *n < self.count)
                .unwrap();
            *arrived >= self.count
        }
    }

    #[test]
    fn stages_overlap_and_wait_only_where_they_need_another() {
        // 0 and 1 are independent; 2 starts at once and needs both half-way. All three
        // meet before any ends: they run at the same time.
        let log = Mutex::new(Vec::new());
        let meeting = Meeting::new(3);
        let run = |s: usize, turn: &Turn<'_>| -> Result<(), Error> {
            log.lock().unwrap().push(format!("start {s}"));
            assert!(meeting.arrive(), "stage {s} met the others");
            if s == 2 {
                assert!(turn.wait_for(0) && turn.wait_for(1));
                log.lock().unwrap().push("2 has 0 and 1".into());
            }
            log.lock().unwrap().push(format!("end {s}"));
            Ok(())
        };
        schedule(&[0, 1, 2], &|_| None, 1, &run, &|| {}).unwrap();
        let log = log.lock().unwrap();
        let at = |entry: &str| log.iter().position(|l| l == entry).unwrap();
        assert!(at("start 2") < at("end 0"), "{log:?}");
        assert!(at("start 1") < at("end 0"), "{log:?}");
        assert!(at("2 has 0 and 1") > at("end 0") && at("2 has 0 and 1") > at("end 1"));
    }

    #[test]
    fn a_stage_built_on_another_starts_after_it() {
        // Stage 0 marks its end; stage 1 looks for the mark when it starts.
        let base_ended = std::sync::atomic::AtomicBool::new(false);
        let seen_at_start = Mutex::new(None);
        let run = |s: usize, _: &Turn<'_>| -> Result<(), Error> {
            match s {
                0 => base_ended.store(true, Ordering::SeqCst),
                _ => *seen_at_start.lock().unwrap() = Some(base_ended.load(Ordering::SeqCst)),
            }
            Ok(())
        };
        schedule(&[0, 1], &|s| (s == 1).then_some(0), 2, &run, &|| {}).unwrap();
        assert_eq!(
            *seen_at_start.lock().unwrap(),
            Some(true),
            "stage 1 started after its base ended"
        );
    }

    #[test]
    fn jobs_bound_the_run_steps_at_once() {
        for jobs in [1, 2] {
            let active = Mutex::new((0usize, 0usize));
            let changed = std::sync::Condvar::new();
            let run = |_s: usize, turn: &Turn<'_>| -> Result<(), Error> {
                turn.limited(|| {
                    let mut state = active.lock().unwrap();
                    state.0 += 1;
                    state.1 = state.1.max(state.0);
                    changed.notify_all();
                    // Stay until as many steps as `jobs` allows have been seen at once.
                    let (mut state, _) = changed
                        .wait_timeout_while(state, HANDSHAKE, |(_, peak)| *peak < jobs)
                        .unwrap();
                    state.0 -= 1;
                });
                Ok(())
            };
            schedule(&[0, 1, 2, 3], &|_| None, jobs, &run, &|| {}).unwrap();
            assert_eq!(active.lock().unwrap().1, jobs);
        }
    }

    #[test]
    fn the_first_failure_is_the_builds_and_the_rest_stop() {
        let stopped = AtomicUsize::new(0);
        let ran = Mutex::new(Vec::new());
        let run = |s: usize, turn: &Turn<'_>| -> Result<(), Error> {
            ran.lock().unwrap().push(s);
            match s {
                0 => Err(Error::Failed(0)),
                2 if !turn.wait_for(0) => Err(Error::Cancelled),
                _ => Ok(()),
            }
        };
        let base = |s: usize| (s == 3).then_some(0);
        let error = schedule(&[0, 1, 2, 3], &base, 2, &run, &|| {
            stopped.fetch_add(1, Ordering::SeqCst);
        })
        .unwrap_err();
        assert_eq!(error, Error::Failed(0));
        assert_eq!(stopped.load(Ordering::SeqCst), 1);
        assert!(
            !ran.lock().unwrap().contains(&3),
            "a stage on a failed base never starts"
        );
    }
}
