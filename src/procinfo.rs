//! Facts about this process that reports include: its peak resident memory,
//! and the CPUs of the machine it runs on.

/// Physical memory of this machine in bytes (`sysconf`; 0 if unknown).
pub fn physical_memory() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let (pages, size) = unsafe {
        (
            libc::sysconf(libc::_SC_PHYS_PAGES),
            libc::sysconf(libc::_SC_PAGESIZE),
        )
    };
    if pages < 1 || size < 1 {
        0
    } else {
        (pages as u64).saturating_mul(size as u64)
    }
}

/// CPUs online on this machine (`sysconf(_SC_NPROCESSORS_ONLN)`; at least 1).
/// Unlike `available_parallelism`, not narrowed by the CPU affinity a
/// launcher binds the rank to.
pub fn online_cpus() -> usize {
    // SAFETY: sysconf has no preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    if n < 1 { 1 } else { n as usize }
}

/// Peak resident set size of this process so far, in bytes (`getrusage`;
/// Linux reports it in KiB). 0 if the call fails.
pub fn peak_rss_bytes() -> u64 {
    let mut u = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage fills the struct it is given; RUSAGE_SELF is valid.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, u.as_mut_ptr()) };
    if rc != 0 {
        return 0;
    }
    // SAFETY: initialised by the successful call above.
    let u = unsafe { u.assume_init() };
    u.ru_maxrss.max(0) as u64 * 1024
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peak_rss_grows_with_a_touched_allocation() {
        let before = peak_rss_bytes();
        assert!(before > 0);
        // Touch 64 MiB more than the current peak; the high-water mark must
        // rise by most of it.
        let n = 64 << 20;
        let mut v = vec![0u8; before as usize + n];
        for i in (0..v.len()).step_by(4096) {
            v[i] = 1;
        }
        std::hint::black_box(&v);
        let after = peak_rss_bytes();
        assert!(after >= before + (n as u64) / 2, "{before} -> {after}");
    }
}
