//! Thread priorities (docs/operations.md#connections): the World's thread keeps the default nice
//! value, and the tokio runtime's threads (HTTP, WebSocket fan-out, Redis, MongoDB) run a few
//! steps nicer, so that on a machine with few cores a burst of I/O work takes the CPU the
//! World leaves rather than delay its ticks. Without a privilege a thread can only lower its
//! own priority, which is all this does.

/// The nice value of the tokio runtime's threads.
pub(crate) const IO_NICE: i32 = 5;

/// Lowers the calling thread's priority to `nice` if it is higher; threads it starts later
/// inherit it. Whether it could.
pub(crate) fn lower_this_thread(nice: i32) -> bool {
    // SAFETY: gettid, getpriority and setpriority touch no memory of this process. On Linux,
    // PRIO_PROCESS with a thread id reads or sets that one thread's nice value.
    let tid = unsafe { libc::gettid() } as libc::id_t;
    let current = unsafe { libc::getpriority(libc::PRIO_PROCESS, tid) };
    current >= nice || unsafe { libc::setpriority(libc::PRIO_PROCESS, tid, nice) } == 0
}
