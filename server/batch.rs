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
    let ended = std::sync::Mutex::new(Vec::new());
    let threads = threads(count);
    // The workers are a rayon pool's threads, so a battle's parallel physics stages (rapier's
    // `parallel` feature) run on the same threads, not handed to another pool's.
    let gather = || {
        let mine = work();
        if let Ok(mut all) = ended.lock() {
            all.extend(mine);
        }
    };
    match rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("batch-{i}"))
        .build()
    {
        Ok(pool) => pool.scope(|scope| {
            for _ in 0..threads {
                scope.spawn(|_| gather());
            }
        }),
        // No threads to be had: the jobs run here, one after another.
        Err(_) => gather(),
    }
    // A job's panic is caught with its outcome, so a worker ends by running out of work or
    // after a failure.
    for (index, outcome) in ended.into_inner().unwrap_or_else(|e| e.into_inner()) {
        outcomes[index] = Some(outcome);
    }
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
