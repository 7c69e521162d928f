//! How much each rank reads at a time: the read unit (whole storage chunks,
//! or equal parts of an unfiltered chunk) and the block size chosen when
//! `--block-bytes` is not given. Pure, apart from [`mem_per_rank_from_env`].
//!
//! Why small blocks for unfiltered data: a block is copied from the page
//! cache (or the file system) into a buffer and then reduced. When the two
//! buffers of every rank on a node fit in the last-level cache, the reduce
//! reads what the copy just wrote from cache instead of memory, and the
//! node's memory bandwidth is spent once per byte instead of three times.
//! Filtered (compressed) chunks must be decoded whole, so there the block is
//! whole chunks (of the same 4 MiB budget). The choice depends only on the variable's layout and the
//! memory per rank — never on the number of ranks — so results stay
//! bit-identical for every P (see `tree`).

/// Block size for unfiltered data: 4 MiB, so that two buffers per rank for
/// several ranks fit a typical 16–32 MiB shared L3 (measured in
/// `benches/speed.sh`; see the README's performance section).
pub const UNFILTERED_BLOCK: u64 = 4 << 20;

/// Block size for filtered data (rounded up to whole chunks): 4 MiB as for
/// unfiltered data. Deflate/shuffle chunks are decoded straight into the
/// block buffer by the thread pool (`chunk_direct`), so there is no
/// per-block cost to amortise, and a block that stays in cache is reduced
/// from cache: on the ERA5-like zlib1+shuffle file (1460 maps, 2 ranks) a
/// time mean took 0.83–1.05 s with 4 MiB blocks against 1.19–3.12 s with
/// 32 MiB, a field mean 0.42–1.10 s against 1.05–1.87 s, and peak memory
/// per rank fell from 108 to 41 MiB (benches/climate.sh files).
pub const FILTERED_BLOCK: u64 = 4 << 20;

/// The unit blocks are made of. Chunked and filtered: the chunk. Chunked and
/// unfiltered with chunks larger than `budget`: the chunk halved along its
/// leading axes while the extent stays even, until a part fits — each block
/// then lies inside one chunk or covers whole chunks, never straddling a
/// chunk boundary. Contiguous: `None` (any block shape).
pub fn read_unit(
    chunk: Option<&[usize]>,
    filtered: bool,
    elem_size: usize,
    budget: u64,
) -> Option<Vec<usize>> {
    let mut unit = chunk?.to_vec();
    if filtered {
        return Some(unit);
    }
    let bytes = |u: &[usize]| u.iter().map(|&c| c as u64).product::<u64>() * elem_size as u64;
    for a in 0..unit.len() {
        while bytes(&unit) > budget && unit[a] % 2 == 0 {
            unit[a] /= 2;
        }
        if bytes(&unit) <= budget {
            break;
        }
    }
    Some(unit)
}

/// The block size when `--block-bytes` is not given: [`UNFILTERED_BLOCK`] or
/// [`FILTERED_BLOCK`], at most a quarter of the memory per rank (two buffers
/// plus headroom), at least 1 MiB.
pub fn auto_block_bytes(filtered: bool, mem_per_rank: Option<u64>) -> u64 {
    let want = if filtered {
        FILTERED_BLOCK
    } else {
        UNFILTERED_BLOCK
    };
    let cap = mem_per_rank.map_or(u64::MAX, |m| m / 4);
    want.min(cap).max(1 << 20)
}

/// Memory one rank may use, from Slurm: `SLURM_MEM_PER_CPU` ×
/// `SLURM_CPUS_PER_TASK`, or `SLURM_MEM_PER_NODE` ÷ `SLURM_NTASKS_PER_NODE`.
/// `None` outside Slurm. Only job-wide settings are read, never the node's
/// free memory, so every rank computes the same block size.
pub fn mem_per_rank_from_env() -> Option<u64> {
    let var = |k: &str| std::env::var(k).ok()?.trim().parse::<u64>().ok();
    let mib = 1u64 << 20;
    if let Some(per_cpu) = var("SLURM_MEM_PER_CPU") {
        return Some(per_cpu * mib * var("SLURM_CPUS_PER_TASK").unwrap_or(1).max(1));
    }
    let per_node = var("SLURM_MEM_PER_NODE")?;
    Some(per_node * mib / var("SLURM_NTASKS_PER_NODE").unwrap_or(1).max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filtered_chunks_stay_whole() {
        assert_eq!(
            read_unit(Some(&[512, 16384]), true, 8, 1 << 20),
            Some(vec![512, 16384])
        );
    }

    #[test]
    fn big_unfiltered_chunks_split_into_equal_parts() {
        // 512 × 16384 f64 = 64 MiB; 4 MiB parts are 32 rows: 512 / 32 = 16 parts.
        let u = read_unit(Some(&[512, 16384]), false, 8, 4 << 20).unwrap();
        assert_eq!(u, vec![32, 16384]);
        assert_eq!(512 % u[0], 0);
        // Odd leading extent: move on to the next axis.
        let u = read_unit(Some(&[3, 1 << 20]), false, 8, 4 << 20).unwrap();
        assert_eq!(u, vec![3, 1 << 17]);
        let bytes = |u: &[usize]| u.iter().product::<usize>() * 8;
        assert!(bytes(&u) <= 4 << 20);
        // Leading axis halves to 1, then the next axis halves.
        let u = read_unit(Some(&[4, 4096, 4096]), false, 8, 4 << 20).unwrap();
        assert_eq!(u, vec![1, 128, 4096]);
        // Already small: unchanged. Contiguous: no unit.
        assert_eq!(
            read_unit(Some(&[10, 10]), false, 8, 4 << 20),
            Some(vec![10, 10])
        );
        assert_eq!(read_unit(None, false, 8, 4 << 20), None);
    }

    #[test]
    fn auto_block_is_capped_by_memory_not_by_ranks() {
        assert_eq!(auto_block_bytes(false, None), UNFILTERED_BLOCK);
        assert_eq!(auto_block_bytes(true, Some(64 << 30)), FILTERED_BLOCK);
        assert_eq!(auto_block_bytes(true, Some(8 << 20)), 2 << 20);
        assert_eq!(auto_block_bytes(false, Some(1 << 20)), 1 << 20);
    }
}
