//! Scheduling priority of threads: background work that must never slow
//! the data path to clients runs at a lower priority.

use std::io;

/// The lowest priority (the highest nice value) Linux gives a thread.
pub const LOWEST: i32 = 19;

/// Sets the nice value of the calling thread (not the whole process) to
/// `nice`, clamped to -20..=19; higher is lower priority.
///
/// On Linux, nice values belong to threads: `setpriority(PRIO_PROCESS, tid)`
/// changes only the thread `tid`. Raising priority (a lower value than the
/// current one) needs `CAP_SYS_NICE` and fails with `PermissionDenied`
/// without it.
pub fn set_this_thread_nice(nice: i32) -> io::Result<()> {
    let tid = nix::unistd::gettid().as_raw();
    let nice = nice.clamp(-20, LOWEST);
    // SAFETY: setpriority takes plain integers and touches no memory of ours.
    let rc = unsafe { libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, nice) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The nice value of the calling thread.
pub fn this_thread_nice() -> io::Result<i32> {
    let tid = nix::unistd::gettid().as_raw();
    // -1 is a valid nice value, so errors are told apart through errno.
    nix::errno::Errno::clear();
    // SAFETY: getpriority takes plain integers and touches no memory of ours.
    let n = unsafe { libc::getpriority(libc::PRIO_PROCESS, tid as libc::id_t) };
    if n == -1 && nix::errno::Errno::last_raw() != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lowering_one_thread_leaves_the_others_alone() {
        let before = this_thread_nice().unwrap();
        let inside = std::thread::spawn(|| {
            set_this_thread_nice(LOWEST).unwrap();
            this_thread_nice().unwrap()
        })
        .join()
        .unwrap();
        assert_eq!(inside, LOWEST);
        assert_eq!(this_thread_nice().unwrap(), before);
    }
}
