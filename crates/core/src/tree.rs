//! A fixed binary merge tree over the `n` leaves (blocks) that contribute to
//! one output tile, so that partial results combine in the same order for
//! every rank count.
//!
//! Node `[lo, hi)` with more than one leaf splits at `lo + 2^(k-1)` where
//! `2^k` is the smallest power of two ≥ `hi − lo`: the left child is always a
//! full power-of-two subtree. A rank that owns leaves `[a, b)` computes the
//! canonical cover of `[a, b)` by tree nodes ([`cover`], O(log n) nodes) and
//! folds each node from its leaves ([`fold`], O(log n) partials alive); the
//! root rank rebuilds the tree's value from all ranks' nodes ([`complete`]).
//! The result is the same tree evaluation whatever the cut points are, hence
//! bit-identical for any number of ranks. Pure: no MPI, no HDF5.

/// Where node `[lo, hi)` (with `hi − lo ≥ 2`) splits into two children.
pub fn split(lo: usize, hi: usize) -> usize {
    let len = hi - lo;
    debug_assert!(len >= 2);
    lo + len.next_power_of_two() / 2
}

/// True when `[lo, hi)` is a node of the tree over `n` leaves.
pub fn is_node(n: usize, lo: usize, hi: usize) -> bool {
    let (mut l, mut h) = (0, n);
    loop {
        if (l, h) == (lo, hi) {
            return true;
        }
        if h - l < 2 || lo < l || hi > h {
            return false;
        }
        let m = split(l, h);
        if hi <= m {
            h = m;
        } else if lo >= m {
            l = m;
        } else {
            return false;
        }
    }
}

/// The tree nodes that exactly cover leaves `[a, b)` of a tree over `n`
/// leaves, in leaf order. Empty when `a >= b`.
pub fn cover(n: usize, a: usize, b: usize) -> Vec<(usize, usize)> {
    fn go(lo: usize, hi: usize, a: usize, b: usize, out: &mut Vec<(usize, usize)>) {
        if b <= lo || hi <= a {
            return;
        }
        if a <= lo && hi <= b {
            out.push((lo, hi));
            return;
        }
        let m = split(lo, hi);
        go(lo, m, a, b, out);
        go(m, hi, a, b, out);
    }
    let mut out = Vec::new();
    if a < b && b <= n {
        go(0, n, a, b, &mut out);
    }
    out
}

/// Value of node `[lo, hi)`: leaves are pulled from `leaf` in order
/// `lo, lo+1, …, hi−1` and combined bottom-up with `merge(left, right)`.
pub fn fold<T, E>(
    lo: usize,
    hi: usize,
    leaf: &mut impl FnMut(usize) -> Result<T, E>,
    merge: &impl Fn(T, T) -> T,
) -> Result<T, E> {
    if hi - lo == 1 {
        return leaf(lo);
    }
    let m = split(lo, hi);
    let l = fold(lo, m, leaf, merge)?;
    let r = fold(m, hi, leaf, merge)?;
    Ok(merge(l, r))
}

/// Value of the whole tree over `n` leaves from node values `pieces`
/// (`(lo, hi, value)`, together covering `[0, n)`, each a node of the tree).
/// Returns `None` when the pieces do not form such a cover.
pub fn complete<T>(
    n: usize,
    pieces: Vec<(usize, usize, T)>,
    merge: &impl Fn(T, T) -> T,
) -> Option<T> {
    let mut map: std::collections::BTreeMap<(usize, usize), T> = pieces
        .into_iter()
        .map(|(lo, hi, v)| ((lo, hi), v))
        .collect();
    fn go<T>(
        lo: usize,
        hi: usize,
        map: &mut std::collections::BTreeMap<(usize, usize), T>,
        merge: &impl Fn(T, T) -> T,
    ) -> Option<T> {
        if let Some(v) = map.remove(&(lo, hi)) {
            return Some(v);
        }
        if hi - lo < 2 {
            return None;
        }
        let m = split(lo, hi);
        let l = go(lo, m, map, merge)?;
        let r = go(m, hi, map, merge)?;
        Some(merge(l, r))
    }
    if n == 0 {
        return None;
    }
    let v = go(0, n, &mut map, merge)?;
    map.is_empty().then_some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Merging strings records the tree's shape, so equal strings mean the
    /// same evaluation order.
    fn merge(a: String, b: String) -> String {
        format!("({a} {b})")
    }

    fn whole(n: usize) -> String {
        fold(0, n, &mut |i| Ok::<_, ()>(i.to_string()), &merge).unwrap()
    }

    #[test]
    fn shape_of_small_trees() {
        assert_eq!(whole(1), "0");
        assert_eq!(whole(3), "((0 1) 2)");
        assert_eq!(whole(5), "(((0 1) (2 3)) 4)");
        assert_eq!(whole(6), "(((0 1) (2 3)) (4 5))");
    }

    #[test]
    fn any_cut_into_ranks_gives_the_same_tree() {
        for n in 1..40 {
            let reference = whole(n);
            for p in 1..=7 {
                let mut pieces = Vec::new();
                for r in 0..p {
                    let range = crate::decomp::split_range(n, r, p);
                    for (lo, hi) in cover(n, range.start, range.end) {
                        let v = fold(lo, hi, &mut |i| Ok::<_, ()>(i.to_string()), &merge).unwrap();
                        pieces.push((lo, hi, v));
                    }
                }
                assert!(pieces.len() <= 2 * p * (usize::BITS as usize));
                assert_eq!(
                    complete(n, pieces, &merge).unwrap(),
                    reference,
                    "n={n} p={p}"
                );
            }
        }
    }

    #[test]
    fn is_node_recognises_exactly_the_tree_nodes() {
        fn walk(lo: usize, hi: usize, out: &mut std::collections::BTreeSet<(usize, usize)>) {
            out.insert((lo, hi));
            if hi - lo >= 2 {
                let m = split(lo, hi);
                walk(lo, m, out);
                walk(m, hi, out);
            }
        }
        for n in 1..40 {
            let mut nodes = std::collections::BTreeSet::new();
            walk(0, n, &mut nodes);
            for lo in 0..=n {
                for hi in lo + 1..=n {
                    assert_eq!(
                        is_node(n, lo, hi),
                        nodes.contains(&(lo, hi)),
                        "{n} {lo} {hi}"
                    );
                }
            }
        }
    }

    #[test]
    fn cover_is_logarithmic_and_exact() {
        let c = cover(1000, 3, 997);
        assert!(c.len() <= 2 * 10);
        let mut next = 3;
        for (lo, hi) in &c {
            assert_eq!(*lo, next);
            next = *hi;
        }
        assert_eq!(next, 997);
    }

    #[test]
    fn incomplete_pieces_are_rejected() {
        assert!(complete(4, vec![(0, 2, "a".to_string())], &merge).is_none());
    }
}
