//! Facts about this process that reports include: its peak resident memory.

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
