//! Thread priorities (docs/operations.md#connections): the World's thread keeps the process's
//! nice value, and the tokio runtime's threads (HTTP, WebSocket fan-out, Redis, MongoDB) run
//! at [`IO_NICE`], about a third of its weight when both want a core, so that on a machine
//! with few cores a burst of I/O work takes the CPU the World leaves rather than delay its
//! ticks. Without a privilege a thread can only lower its own priority, which is all this
//! does.

/// The nice value of the tokio runtime's threads.
pub(crate) const IO_NICE: i32 = 5;

/// Lowers the calling thread's priority to `nice` if it is higher (a process started nicer
/// keeps its own); threads it starts later inherit it. Whether the thread now runs at `nice`
/// or lower.
#[cfg(target_os = "linux")]
pub(crate) fn lower_this_thread(nice: i32) -> bool {
    // SAFETY: gettid, getpriority and setpriority touch no memory of this process. On Linux,
    // PRIO_PROCESS with a thread id reads or sets that one thread's nice value. getpriority
    // answers -1 both for an error and for nice -1; either way the set below is the answer.
    let tid = unsafe { libc::gettid() } as libc::id_t;
    let current = unsafe { libc::getpriority(libc::PRIO_PROCESS, tid) };
    current >= nice || unsafe { libc::setpriority(libc::PRIO_PROCESS, tid, nice) } == 0
}

/// Elsewhere threads keep their priority.
#[cfg(not(target_os = "linux"))]
pub(crate) fn lower_this_thread(_: i32) -> bool {
    false
}
