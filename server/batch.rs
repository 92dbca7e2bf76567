//! Batches of independent runs for the reports (`simulate --seeds`, `battle matchup`): every
//! job on the cores the process may use, the outcomes back in the jobs' order whichever thread
//! ran them, a job that panics an error rather than a crash; and the rounding that keeps the
//! reports' text the same from run to run.

use std::{
    panic::{AssertUnwindSafe, catch_unwind},
    sync::atomic::{AtomicBool, AtomicUsize, Ordering},
};

/// Threads a batch of `jobs` runs on: one per core the process may use, at most one per job.
pub fn threads(jobs: usize) -> usize {
    std::thread::available_parallelism()
        .map_or(1, usize::from)
        .min(jobs)
        .max(1)
}

/// Runs `job(0)` to `job(count - 1)` on [`threads`] threads and returns their results in
/// index order. `done(index, finished)` is called as each job ends, with how many have ended.
/// A job that panics fails with `stopped: <the panic's message>`. After a failure no new job
/// starts; the error returned is the earliest in index order, with its index (every job before
/// it was started, so none is missed).
pub fn run_all<R: Send>(
    count: usize,
    stopped: &str,
    job: impl Fn(usize) -> Result<R, String> + Sync,
    done: impl Fn(usize, usize) + Sync,
) -> Result<Vec<R>, (usize, String)> {
    let next = AtomicUsize::new(0);
    let finished = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let work = || {
        let mut ended: Vec<(usize, Result<R, String>)> = Vec::new();
        while !failed.load(Ordering::Relaxed) {
            let index = next.fetch_add(1, Ordering::Relaxed);
            if index >= count {
                break;
            }
            let outcome = catch_unwind(AssertUnwindSafe(|| job(index)))
                .unwrap_or_else(|panic| Err(format!("{stopped}: {}", panic_message(&*panic))));
            if outcome.is_err() {
                failed.store(true, Ordering::Relaxed);
            }
            ended.push((index, outcome));
            done(index, finished.fetch_add(1, Ordering::Relaxed) + 1);
        }
        ended
    };
    let mut outcomes: Vec<Option<Result<R, String>>> =
        std::iter::repeat_with(|| None).take(count).collect();
    // Each worker runs its jobs inside a single-thread rayon pool of its own: a battle's
    // physics (rapier's `parallel` feature) then runs its stages inline, where on a pool
    // shared by workers that each step a battle it would wait for a task no thread is free
    // to run.
    let in_own_pool = || match rayon::ThreadPoolBuilder::new().num_threads(1).build() {
        Ok(pool) => pool.install(work),
        Err(_) => work(),
    };
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads(count))
            .map(|_| scope.spawn(in_own_pool))
            .collect();
        for worker in workers {
            // A job's panic is caught with its outcome, so a worker ends by running out of
            // work or after a failure.
            if let Ok(ended) = worker.join() {
                for (index, outcome) in ended {
                    outcomes[index] = Some(outcome);
                }
            }
        }
    });
    let mut results = Vec::with_capacity(count);
    for (index, outcome) in outcomes.into_iter().enumerate() {
        match outcome {
            Some(Ok(result)) => results.push(result),
            Some(Err(message)) => return Err((index, message)),
            None => return Err((index, "the run did not finish".into())),
        }
    }
    Ok(results)
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(text) = payload.downcast_ref::<&str>() {
        (*text).to_string()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "a panic".into()
    }
}

/// `value` rounded to `decimals`, without a sign on 0.
pub fn round(value: f64, decimals: i32) -> f64 {
    let scale = 10f64.powi(decimals);
    let rounded = (value * scale).round() / scale;
    if rounded == 0.0 || !rounded.is_finite() {
        0.0
    } else {
        rounded
    }
}
