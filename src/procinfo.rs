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

/// CPUs the calling thread may run on (its affinity mask; 0 if unknown).
pub fn affinity_cpus() -> usize {
    // SAFETY: a zeroed cpu_set_t is a valid empty set; sched_getaffinity
    // writes at most its size.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            return 0;
        }
        libc::CPU_COUNT(&set).max(0) as usize
    }
}

/// The CPUs the calling thread may run on (its affinity mask), ascending;
/// empty if unknown.
pub fn allowed_cpus() -> Vec<usize> {
    // SAFETY: as in `affinity_cpus`; CPU_ISSET indices are below CPU_SETSIZE.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            return Vec::new();
        }
        (0..libc::CPU_SETSIZE as usize)
            .filter(|&c| libc::CPU_ISSET(c, &set))
            .collect()
    }
}

/// Bind the calling thread to `cpu` alone (ignored if the kernel refuses).
pub fn bind_to_cpu(cpu: usize) {
    if cpu >= libc::CPU_SETSIZE as usize {
        return;
    }
    // SAFETY: as in `widen_affinity`.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

/// Let the calling thread — and every thread it starts afterwards — run on
/// every online CPU the kernel allows this process (the kernel keeps the
/// mask within the process's cpuset). For a rank that a launcher bound to
/// fewer CPUs than it runs threads (`mpirun -n 1` binds its one rank to
/// one core). Returns the CPUs it may run on afterwards.
pub fn widen_affinity() -> usize {
    let n = online_cpus().min(libc::CPU_SETSIZE as usize);
    // SAFETY: as in `affinity_cpus`; CPU_SET indices are below CPU_SETSIZE.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        for c in 0..n {
            libc::CPU_SET(c, &mut set);
        }
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
    affinity_cpus()
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

    /// A thread bound to one CPU (as `mpirun -n 1` binds a rank) may run on
    /// every CPU again after `widen_affinity`, and threads it starts inherit that.
    #[test]
    fn widen_affinity_undoes_a_one_cpu_binding() {
        std::thread::spawn(|| {
            // SAFETY: as in `affinity_cpus`; CPU 0 exists.
            unsafe {
                let mut one: libc::cpu_set_t = std::mem::zeroed();
                libc::CPU_SET(0, &mut one);
                assert_eq!(
                    libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &one),
                    0
                );
            }
            assert_eq!(affinity_cpus(), 1);
            let all = std::thread::available_parallelism().map_or(1, |n| n.get());
            let widened = widen_affinity();
            assert!(widened >= all.min(online_cpus()).min(2), "{widened} CPUs");
            let child = std::thread::spawn(affinity_cpus).join().unwrap();
            assert_eq!(child, widened);
        })
        .join()
        .unwrap();
    }

    /// `cmd::thread_pool` binds its threads one per allowed CPU: each pool
    /// thread may run on exactly one CPU, and no two share one (when the
    /// process may use at least two).
    #[test]
    fn pool_threads_are_bound_to_distinct_cpus() {
        let cpus = allowed_cpus();
        assert_eq!(cpus.len(), affinity_cpus());
        if cpus.len() < 2 {
            eprintln!("skipping: one CPU");
            return;
        }
        let pool = crate::cmd::thread_pool(2).unwrap();
        let mut seen: Vec<Vec<usize>> = pool.broadcast(|_| allowed_cpus());
        assert!(seen.iter().all(|c| c.len() == 1), "{seen:?}");
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), 2, "{seen:?}");
        assert!(seen.iter().all(|c| cpus.contains(&c[0])));
    }

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
