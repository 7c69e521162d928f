//! Exact quantiles of data that no process holds whole, with NumPy's default
//! ("linear", Hyndman & Fan type 7) interpolation: `np.nanquantile(a, [q])`.
//!
//! Algorithm (whole array, see [`Search`]): every non-NaN value gets a 64-bit
//! *order key* — an unsigned integer whose order is the values' order
//! ([`f64_key`]: IEEE bits with the sign bit flipped for positives and every
//! bit flipped for negatives; integers offset by 2⁶³). The k-th smallest
//! value is found by narrowing a key prefix, one read of the data per pass:
//!
//! 1. pass 1 counts every key's top 16 bits in a 65 536-bucket histogram
//!    (and the number `n` of values); summed over ranks, it gives the ranks
//!    NumPy needs (`(n−1)·q`, floor and floor + 1) and the bucket holding
//!    each;
//! 2. a later pass looks only at the values inside a chosen bucket (a *group*:
//!    a key prefix): if the bucket holds at most [`GATHER_MAX`] values over
//!    all ranks they are collected and sent to rank 0, which sorts them and
//!    reads the answer off; otherwise the next 16 bits are histogrammed.
//!    A group whose smallest and largest key agree (ties) is resolved at once.
//!
//! So at most 4 histogram passes plus one collecting pass, usually 2–3
//! (pass 1 keeps no key range, so all-equal data take 2). All
//! targets (two ranks per quantile) share the passes. Memory per rank: one
//! histogram (512 KiB) per active group and thread, and at most
//! [`GATHER_MAX`] keys — independent of the data size. Histogram counts are
//! integers and the selected values are exact, so the result is
//! bit-identical for every rank count, thread count and block order.
//!
//! Interpolation ([`lerp`]) follows NumPy 2.x `_lerp` exactly: with
//! `v = (n−1)·q` (in f64), `a`/`b` the values at ranks `⌊v⌋` and `⌊v⌋+1`
//! (both the largest value when `v ≥ n−1`), `t = v − ⌊v⌋` and
//! `d = b − a` computed in the data's type (f32 for f32 data, exactly for
//! integers), the result is `b − d·(1−t)` when `t ≥ 0.5`, else `a + d·t`,
//! in f64. This is `np.nanquantile(a, [q])` with `q` an array, which is
//! also what xarray calls (for a scalar `q` NumPy keeps f32 data in f32).
//! Consequences NumPy shares: a neighbour at ±inf gives NaN when `t` is 0
//! (`inf·0`), and `f64::MAX − (−f64::MAX)` overflows to inf. One
//! deliberate difference: NumPy subtracts integers in their own type, so
//! `int8 [-100, 100]` has the median 128 there (wrapped); here the
//! difference is exact (0).

use crate::axis_kernel::cell_strides;
use crate::cf::Decode;
use crate::element::{Dtype, Element};
use crate::error::CwError;

/// Key bits resolved per histogram pass.
pub const HIST_BITS: u32 = 16;
/// Buckets of one histogram.
pub const BUCKETS: usize = 1 << HIST_BITS;
/// A group holding at most this many values (over all ranks) is collected
/// and sorted on rank 0 instead of being histogrammed again (2 MiB of keys).
pub const GATHER_MAX: u64 = 1 << 18;

/// Parse `--quantile 0.05,0.5,0.95`: numbers in `[0, 1]`, de-duplicated
/// (order kept).
pub fn parse_quantiles(s: &str) -> Result<Vec<f64>, CwError> {
    let mut out: Vec<f64> = Vec::new();
    for part in s.split(',') {
        let t = part.trim();
        let q: f64 = t.parse().map_err(|_| {
            CwError::Parse(format!(
                "--quantile '{s}': '{t}' is not a number (expected e.g. 0.05,0.5,0.95)"
            ))
        })?;
        if !(0.0..=1.0).contains(&q) {
            return Err(CwError::Parse(format!(
                "--quantile '{s}': {t} is outside [0, 1] (a quantile, not a percentile: 0.95, not 95)"
            )));
        }
        if !out.contains(&q) {
            out.push(q);
        }
    }
    Ok(out)
}

/// The result name of quantile `q` (`q0.95`), in JSON, tables and as the
/// suffix of output variables.
pub fn quantile_name(q: f64) -> String {
    format!("q{q}")
}

/// How stored values become order keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyKind {
    /// f64 data, or any decoded (CF) values: keys of the f64 value.
    Float,
    /// f32 data (not decoded): keys of the value widened to f64; NumPy
    /// takes neighbour differences in f32.
    Float32,
    /// Signed integers (stored values, no decoding).
    Signed,
    /// Unsigned integers.
    Unsigned,
}

impl KeyKind {
    /// The kind for a variable of `dtype` with CF decoding `decode`.
    pub fn of(dtype: Dtype, decode: &Decode) -> KeyKind {
        if dtype == Dtype::F32 && decode.is_identity() {
            KeyKind::Float32
        } else if dtype.is_float() || !decode.is_identity() {
            KeyKind::Float
        } else if matches!(dtype, Dtype::U8 | Dtype::U16 | Dtype::U32 | Dtype::U64) {
            KeyKind::Unsigned
        } else {
            KeyKind::Signed
        }
    }
}

const SIGN: u64 = 1 << 63;

/// Order key of a non-NaN f64: `a < b` ⇔ `key(a) < key(b)` (with
/// `-0.0` just below `+0.0`): negatives get every bit flipped, the others
/// the sign bit (branch-free).
#[inline(always)]
pub fn f64_key(v: f64) -> u64 {
    let b = v.to_bits();
    let m = ((b as i64) >> 63) as u64;
    b ^ (m | SIGN)
}

/// Inverse of [`f64_key`].
#[inline(always)]
pub fn key_f64(k: u64) -> f64 {
    f64::from_bits(if k & SIGN != 0 { k & !SIGN } else { !k })
}

/// Order key of a stored element (`None` for NaN / missing values).
#[inline(always)]
pub fn key_of<T: Element>(x: T, kind: KeyKind, decode: &Decode) -> Option<u64> {
    match kind {
        KeyKind::Float | KeyKind::Float32 => {
            let v = if decode.is_identity() {
                x.to_f64()
            } else {
                decode.apply(x.to_f64())
            };
            if v.is_nan() { None } else { Some(f64_key(v)) }
        }
        KeyKind::Signed => Some((x.to_i128() as i64 as u64) ^ SIGN),
        KeyKind::Unsigned => Some(x.to_i128() as u64),
    }
}

/// An exact value behind a key: integers stay integers.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Exact {
    Int(i128),
    Float(f64),
}

fn exact(k: u64, kind: KeyKind) -> Exact {
    match kind {
        KeyKind::Float | KeyKind::Float32 => Exact::Float(key_f64(k)),
        KeyKind::Signed => Exact::Int((k ^ SIGN) as i64 as i128),
        KeyKind::Unsigned => Exact::Int(k as i128),
    }
}

/// NumPy's ranks for quantile `q` of `n ≥ 1` sorted values: the lower and
/// upper neighbour (0-based) and the interpolation weight `t`.
pub fn positions(n: u64, q: f64) -> (u64, u64, f64) {
    let v = (n - 1) as f64 * q;
    let lo = v.floor();
    if v >= (n - 1) as f64 {
        return (n - 1, n - 1, v - lo);
    }
    (lo as u64, lo as u64 + 1, v - lo)
}

/// NumPy's `_lerp(a, b, t)` on the values of keys `a ≤ b` (see the module
/// docs): the difference in the data's type (f32 for [`KeyKind::Float32`],
/// exact for integers), the rest in f64.
pub fn lerp(a: u64, b: u64, t: f64, kind: KeyKind) -> f64 {
    let (fa, fb, d) = match (exact(a, kind), exact(b, kind)) {
        (Exact::Int(x), Exact::Int(y)) => (x as f64, y as f64, (y - x) as f64),
        (Exact::Float(x), Exact::Float(y)) => {
            let d = if kind == KeyKind::Float32 {
                (y as f32 - x as f32) as f64
            } else {
                y - x
            };
            (x, y, d)
        }
        _ => unreachable!("both keys have the same kind"),
    };
    if t >= 0.5 {
        fb - d * (1.0 - t)
    } else {
        fa + d * t
    }
}

/// A set of values: those whose key's top `bits` bits equal `prefix`'s.
/// `gather`: the next pass collects them rather than histogramming.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Group {
    /// Key prefix (low bits zero).
    pub prefix: u64,
    /// Number of leading key bits fixed.
    pub bits: u32,
    /// Collect the values (true) or histogram the next 16 bits (false).
    pub gather: bool,
}

impl Group {
    /// Every value.
    pub const ALL: Group = Group {
        prefix: 0,
        bits: 0,
        gather: false,
    };

    #[inline(always)]
    fn mask(&self) -> u64 {
        if self.bits == 0 {
            0
        } else {
            !0u64 << (64 - self.bits)
        }
    }
}

/// One rank's (or thread's) counts for the groups of one pass.
#[derive(Clone, Debug)]
pub struct Tally {
    /// Non-NaN values seen (all of them, whatever the groups).
    pub n: u64,
    /// NaN (missing) values seen.
    pub nan: u64,
    /// Per group: the histogram (histogram groups) or nothing.
    pub hist: Vec<Vec<u64>>,
    /// Per group: smallest and largest member key (`u64::MAX, 0` when none).
    pub range: Vec<(u64, u64)>,
    /// Per group: the member keys (collecting groups).
    pub keys: Vec<Vec<u64>>,
}

impl Tally {
    /// Empty counts for `groups`.
    pub fn new(groups: &[Group]) -> Tally {
        Tally {
            n: 0,
            nan: 0,
            hist: groups
                .iter()
                .map(|g| {
                    if g.gather {
                        Vec::new()
                    } else {
                        vec![0; BUCKETS]
                    }
                })
                .collect(),
            range: vec![(u64::MAX, 0); groups.len()],
            keys: vec![Vec::new(); groups.len()],
        }
    }

    /// Count the elements `xs` into the groups.
    pub fn add<T: Element>(&mut self, xs: &[T], groups: &[Group], kind: KeyKind, decode: &Decode) {
        // One monomorphised loop per key kind (the choice is made per call,
        // not per element).
        match kind {
            KeyKind::Float | KeyKind::Float32 if decode.is_identity() => {
                self.add_keys(xs, groups, |x: T| {
                    let v = x.to_f64();
                    (!v.is_nan()).then(|| f64_key(v))
                })
            }
            KeyKind::Float | KeyKind::Float32 => self.add_keys(xs, groups, |x: T| {
                let v = decode.apply(x.to_f64());
                (!v.is_nan()).then(|| f64_key(v))
            }),
            KeyKind::Signed => {
                self.add_keys(xs, groups, |x: T| Some((x.to_i128() as i64 as u64) ^ SIGN))
            }
            KeyKind::Unsigned => self.add_keys(xs, groups, |x: T| Some(x.to_i128() as u64)),
        }
    }

    #[inline(always)]
    fn add_keys<T: Copy>(&mut self, xs: &[T], groups: &[Group], key: impl Fn(T) -> Option<u64>) {
        // Group i holds the keys lo[i] ..= lo[i] + span[i]; its histogram
        // bucket is (key − lo) >> shift[i].
        let lo: Vec<u64> = groups.iter().map(|g| g.prefix).collect();
        let span: Vec<u64> = groups.iter().map(|g| !g.mask()).collect();
        let shift: Vec<u32> = groups.iter().map(|g| 64 - g.bits - HIST_BITS).collect();
        let mut n = 0u64;
        if let [g] = groups
            && *g == Group::ALL
        {
            // Pass 1: every value, the top 16 bits. No range is kept (a
            // group of ties is recognised one pass later).
            let h = &mut self.hist[0][..BUCKETS];
            for &x in xs {
                let Some(k) = key(x) else { continue };
                n += 1;
                h[(k >> (64 - HIST_BITS)) as usize] += 1;
            }
        } else if let [g] = groups {
            // One group: a tight loop.
            let (l, sp, sh) = (lo[0], span[0], shift[0]);
            let (mut mn, mut mx) = self.range[0];
            if g.gather {
                let keys = &mut self.keys[0];
                for &x in xs {
                    let Some(k) = key(x) else { continue };
                    n += 1;
                    if k.wrapping_sub(l) <= sp {
                        mn = mn.min(k);
                        mx = mx.max(k);
                        keys.push(k);
                    }
                }
            } else {
                let h = &mut self.hist[0][..BUCKETS];
                for &x in xs {
                    let Some(k) = key(x) else { continue };
                    n += 1;
                    let d = k.wrapping_sub(l);
                    if d <= sp {
                        mn = mn.min(k);
                        mx = mx.max(k);
                        h[((d >> sh) as usize) & (BUCKETS - 1)] += 1;
                    }
                }
            }
            self.range[0] = (mn, mx);
        } else {
            n = match groups.len() {
                2 => self.add_many::<T, 2>(xs, groups, &key),
                3 => self.add_many::<T, 3>(xs, groups, &key),
                4 => self.add_many::<T, 4>(xs, groups, &key),
                _ => self.add_many::<T, 0>(xs, groups, &key),
            };
        }
        self.n += n;
        self.nan += xs.len() as u64 - n;
    }

    /// Several groups; `G` is their number when known at compile time (the
    /// membership tests unroll), 0 for any number. Returns the valid values.
    #[inline(always)]
    fn add_many<T: Copy, const G: usize>(
        &mut self,
        xs: &[T],
        groups: &[Group],
        key: &impl Fn(T) -> Option<u64>,
    ) -> u64 {
        let g = if G == 0 { groups.len() } else { G };
        let lo: Vec<u64> = groups.iter().map(|g| g.prefix).collect();
        let span: Vec<u64> = groups.iter().map(|g| !g.mask()).collect();
        let (lo, span) = (&lo[..g], &span[..g]);
        let mut n = 0u64;
        for &x in xs {
            let Some(k) = key(x) else { continue };
            n += 1;
            for i in 0..g {
                let d = k.wrapping_sub(lo[i]);
                if d <= span[i] {
                    self.member(groups, i, k, d);
                }
            }
        }
        n
    }

    /// Count key `k` (offset `d` into its group) into group `i`.
    #[inline(never)]
    fn member(&mut self, groups: &[Group], i: usize, k: u64, d: u64) {
        let r = &mut self.range[i];
        r.0 = r.0.min(k);
        r.1 = r.1.max(k);
        let gr = groups[i];
        if gr.gather {
            self.keys[i].push(k);
        } else {
            let shift = 64 - gr.bits - HIST_BITS;
            self.hist[i][((d >> shift) as usize) & (BUCKETS - 1)] += 1;
        }
    }

    /// Add another tally of the same groups.
    pub fn merge(&mut self, o: &Tally) {
        self.n += o.n;
        self.nan += o.nan;
        for (h, oh) in self.hist.iter_mut().zip(&o.hist) {
            for (a, b) in h.iter_mut().zip(oh) {
                *a += b;
            }
        }
        for (r, or) in self.range.iter_mut().zip(&o.range) {
            *r = (r.0.min(or.0), r.1.max(or.1));
        }
        for (k, ok) in self.keys.iter_mut().zip(&o.keys) {
            k.extend_from_slice(ok);
        }
    }

    /// The counts every rank contributes to the sum over ranks: `n`,
    /// `nan`, then every histogram.
    pub fn sum_words(&self) -> Vec<u64> {
        let mut v = vec![self.n, self.nan];
        for h in &self.hist {
            v.extend_from_slice(h);
        }
        v
    }

    /// The words every rank contributes to a maximum over ranks: per group
    /// `!min, max`.
    pub fn max_words(&self) -> Vec<u64> {
        self.range.iter().flat_map(|&(lo, hi)| [!lo, hi]).collect()
    }

    /// The collected keys in wire form: per collecting group its length,
    /// then its keys.
    pub fn key_words(&self, groups: &[Group]) -> Vec<u64> {
        let mut v = Vec::new();
        for (g, k) in groups.iter().zip(&self.keys) {
            if g.gather {
                v.push(k.len() as u64);
                v.extend_from_slice(k);
            }
        }
        v
    }
}

/// One rank NumPy needs, and how far the search for it is.
#[derive(Clone, Debug)]
struct Target {
    /// 0-based rank among the sorted non-NaN values.
    rank: u64,
    /// The group known to hold it.
    group: Group,
    /// Its rank among the group's members.
    rank_in_group: u64,
    /// Members of the group (over all ranks).
    group_size: u64,
    /// The key, once found (on rank 0 for collected groups).
    key: Option<u64>,
    /// No more passes needed.
    done: bool,
}

/// The whole-array search for the values at NumPy's ranks (module docs).
/// Every rank runs the same steps on the same summed counts, so every
/// rank knows the next pass's groups; values found by collecting are known
/// on rank 0 only.
#[derive(Clone, Debug)]
pub struct Search {
    qs: Vec<f64>,
    /// Non-NaN values in total (after pass 1).
    pub n: Option<u64>,
    /// NaN values in total (after pass 1).
    pub nan: u64,
    targets: Vec<Target>,
    /// Passes made so far.
    pub passes: usize,
}

impl Search {
    /// A search for the quantiles `qs` (each in `[0, 1]`).
    pub fn new(qs: &[f64]) -> Search {
        Search {
            qs: qs.to_vec(),
            n: None,
            nan: 0,
            targets: Vec::new(),
            passes: 0,
        }
    }

    /// The groups the next pass must count (empty when the search is over).
    pub fn groups(&self) -> Vec<Group> {
        if self.n.is_none() {
            return vec![Group::ALL];
        }
        let mut gs: Vec<Group> = Vec::new();
        for t in self.targets.iter().filter(|t| !t.done) {
            if !gs.contains(&t.group) {
                gs.push(t.group);
            }
        }
        gs
    }

    /// Take the results of a pass over `groups`: `sum` = [`Tally::sum_words`]
    /// summed over ranks, `max` = [`Tally::max_words`] maximised over ranks,
    /// `keys` = the gathered [`Tally::key_words`] of every rank (on rank 0;
    /// `None` elsewhere).
    pub fn advance(
        &mut self,
        groups: &[Group],
        sum: &[u64],
        max: &[u64],
        keys: Option<&[u64]>,
    ) -> Result<(), CwError> {
        self.passes += 1;
        // Per group: offset of its histogram in `sum`.
        let mut hist_at = Vec::with_capacity(groups.len());
        let mut at = 2;
        for g in groups {
            hist_at.push(at);
            if !g.gather {
                at += BUCKETS;
            }
        }
        if sum.len() != at || max.len() != 2 * groups.len() {
            return Err(CwError::Internal(
                "quantile pass: counts of the wrong length".into(),
            ));
        }
        if self.n.is_none() {
            let n = sum[0];
            self.n = Some(n);
            self.nan = sum[1];
            if n > 0 {
                let mut ranks: Vec<u64> = Vec::new();
                for &q in &self.qs {
                    let (a, b, _) = positions(n, q);
                    ranks.extend([a, b]);
                }
                ranks.sort_unstable();
                ranks.dedup();
                self.targets = ranks
                    .into_iter()
                    .map(|rank| Target {
                        rank,
                        group: Group::ALL,
                        rank_in_group: rank,
                        group_size: n,
                        key: None,
                        done: false,
                    })
                    .collect();
            }
        }
        // Collected keys per collecting group (rank 0).
        let mut collected: Vec<Option<Vec<u64>>> = vec![None; groups.len()];
        if let Some(words) = keys {
            let mut at = 0;
            while at < words.len() {
                for (i, g) in groups.iter().enumerate() {
                    if !g.gather {
                        continue;
                    }
                    let len = *words
                        .get(at)
                        .ok_or_else(|| CwError::Internal("quantile pass: truncated keys".into()))?
                        as usize;
                    let body = words
                        .get(at + 1..at + 1 + len)
                        .ok_or_else(|| CwError::Internal("quantile pass: truncated keys".into()))?;
                    collected[i]
                        .get_or_insert_with(Vec::new)
                        .extend_from_slice(body);
                    at += 1 + len;
                }
            }
            for c in collected.iter_mut().flatten() {
                c.sort_unstable();
            }
        }
        for t in self.targets.iter_mut().filter(|t| !t.done) {
            let Some(i) = groups.iter().position(|g| *g == t.group) else {
                return Err(CwError::Internal(
                    "quantile pass: target without its group".into(),
                ));
            };
            let g = groups[i];
            let (lo, hi) = (!max[2 * i], max[2 * i + 1]);
            if lo == hi && g != Group::ALL && t.group_size > 0 {
                // Every member has the same key (ties).
                t.key = Some(lo);
                t.done = true;
                continue;
            }
            if g.gather {
                t.done = true;
                if let Some(c) = &collected[i] {
                    t.key = c.get(t.rank_in_group as usize).copied();
                    if t.key.is_none() {
                        return Err(CwError::Internal(format!(
                            "quantile pass: {} keys collected, rank {} wanted",
                            c.len(),
                            t.rank_in_group
                        )));
                    }
                }
                continue;
            }
            let h = &sum[hist_at[i]..hist_at[i] + BUCKETS];
            let mut below = 0u64;
            let mut found = None;
            for (b, &c) in h.iter().enumerate() {
                if t.rank_in_group < below + c {
                    found = Some((b, c));
                    break;
                }
                below += c;
            }
            let Some((b, c)) = found else {
                return Err(CwError::Internal(format!(
                    "quantile pass: rank {} not in a group of {below}",
                    t.rank_in_group
                )));
            };
            let bits = g.bits + HIST_BITS;
            let prefix = g.prefix | ((b as u64) << (64 - bits));
            t.rank_in_group -= below;
            t.group_size = c;
            if bits == 64 {
                t.key = Some(prefix);
                t.done = true;
            } else {
                t.group = Group {
                    prefix,
                    bits,
                    gather: c <= GATHER_MAX,
                };
            }
        }
        Ok(())
    }

    /// True when no more passes are needed.
    pub fn finished(&self) -> bool {
        self.n.is_some() && self.targets.iter().all(|t| t.done)
    }

    /// The quantiles (rank 0, after the search finished): NaN when there
    /// are no values, or with `keep_nan` when there is a NaN.
    pub fn values(&self, kind: KeyKind, keep_nan: bool) -> Vec<f64> {
        let n = self.n.unwrap_or(0);
        self.qs
            .iter()
            .map(|&q| {
                if n == 0 || (keep_nan && self.nan > 0) {
                    return f64::NAN;
                }
                let (a, b, t) = positions(n, q);
                let key = |r: u64| {
                    self.targets
                        .iter()
                        .find(|x| x.rank == r)
                        .and_then(|x| x.key)
                };
                match (key(a), key(b)) {
                    (Some(ka), Some(kb)) => lerp(ka, kb, t, kind),
                    _ => f64::NAN,
                }
            })
            .collect()
    }
}

/// Quantiles `qs` of one cell's keys (sorted in place), as [`Search`] would
/// give for the same values: the per-cell kernel of quantiles along
/// dimensions. NaN when `keys` is empty.
pub fn quantiles_of(keys: &mut [u64], qs: &[f64], kind: KeyKind) -> Vec<f64> {
    let n = keys.len() as u64;
    if n == 0 {
        return vec![f64::NAN; qs.len()];
    }
    keys.sort_unstable();
    qs.iter()
        .map(|&q| {
            let (a, b, t) = positions(n, q);
            lerp(keys[a as usize], keys[b as usize], t, kind)
        })
        .collect()
}

/// Quantiles `qs` along the reduced axes of one block that holds whole
/// series (every reduced axis complete): per kept cell (C order over the
/// block's kept extents) the values' keys are sorted and NumPy's ranks read
/// off ([`quantiles_of`]). Returns the quantiles quantile-major
/// (`out[iq * cells + cell]`) and the number of valid values. With
/// `keep_nan` a cell holding a NaN is NaN.
pub fn block_quantiles<T: Element>(
    xs: &[T],
    count: &[usize],
    reduced: &[bool],
    qs: &[f64],
    decode: &Decode,
    keep_nan: bool,
) -> (Vec<f64>, u64) {
    use rayon::prelude::*;
    let n = count.len();
    let kind = KeyKind::of(T::DTYPE, decode);
    let (cstride, n_cells) = cell_strides(count, reduced);
    let series = (xs.len() / n_cells.max(1)).max(1);
    let len = count[n - 1];
    let last_reduced = reduced[n - 1];
    let mut keys = vec![0u64; n_cells * series];
    let mut fill = vec![0usize; n_cells];
    let mut nan = vec![0u64; n_cells];
    let mut idx = vec![0usize; n - 1];
    for r in 0..xs.len() / len.max(1) {
        let base: usize = (0..n - 1).map(|a| idx[a] * cstride[a]).sum();
        for (j, &x) in xs[r * len..(r + 1) * len].iter().enumerate() {
            let c = if last_reduced { base } else { base + j };
            match key_of(x, kind, decode) {
                Some(k) => {
                    keys[c * series + fill[c]] = k;
                    fill[c] += 1;
                }
                None => nan[c] += 1,
            }
        }
        for a in (0..n - 1).rev() {
            idx[a] += 1;
            if idx[a] < count[a] {
                break;
            }
            idx[a] = 0;
        }
    }
    let per_cell: Vec<Vec<f64>> = keys
        .par_chunks_mut(series)
        .enumerate()
        .map(|(c, k)| {
            if keep_nan && nan[c] > 0 {
                vec![f64::NAN; qs.len()]
            } else {
                quantiles_of(&mut k[..fill[c]], qs, kind)
            }
        })
        .collect();
    let mut out = vec![0.0; qs.len() * n_cells];
    for (c, v) in per_cell.iter().enumerate() {
        for (iq, &x) in v.iter().enumerate() {
            out[iq * n_cells + c] = x;
        }
    }
    (out, fill.iter().map(|&f| f as u64).sum())
}

/// The decomposition for quantiles along dimensions: every block holds
/// whole series (the full selected extent of each reduced axis) and whole
/// storage chunks (`chunk_in_sel`, in selected indices) of the kept axes,
/// growing along the kept axes up to `block_bytes` — so each tile is one
/// block and each cell's series is sorted in one place. A series longer
/// than the budget makes the block one series-by-chunk unit.
pub fn series_decomposition(
    chunk_in_sel: Option<&[usize]>,
    elem_size: usize,
    sel_shape: &[usize],
    reduced: &[bool],
    block_bytes: u64,
) -> crate::decomp::Decomposition {
    let unit: Vec<usize> = (0..sel_shape.len())
        .map(|a| {
            if reduced[a] {
                sel_shape[a]
            } else {
                chunk_in_sel.map_or(1, |c| c[a].clamp(1, sel_shape[a]))
            }
        })
        .collect();
    crate::decomp::Decomposition::new(sel_shape, Some(&unit), elem_size, block_bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Run the search over `parts` (the data split across "ranks"), each
    /// rank tallying its part; returns the quantiles and the passes made.
    fn search<T: Element>(parts: &[Vec<T>], qs: &[f64], decode: &Decode) -> (Vec<f64>, usize) {
        let kind = KeyKind::of(T::DTYPE, decode);
        let mut s = Search::new(qs);
        while !s.finished() {
            let groups = s.groups();
            let tallies: Vec<Tally> = parts
                .iter()
                .map(|p| {
                    let mut t = Tally::new(&groups);
                    // Two halves, merged: as threads do.
                    let (a, b) = p.split_at(p.len() / 2);
                    t.add(a, &groups, kind, decode);
                    let mut u = Tally::new(&groups);
                    u.add(b, &groups, kind, decode);
                    t.merge(&u);
                    t
                })
                .collect();
            let mut sum = tallies[0].sum_words();
            let mut max = tallies[0].max_words();
            let mut keys = Vec::new();
            for t in &tallies[1..] {
                for (a, b) in sum.iter_mut().zip(t.sum_words()) {
                    *a += b;
                }
                for (a, b) in max.iter_mut().zip(t.max_words()) {
                    *a = (*a).max(b);
                }
            }
            for t in &tallies {
                keys.extend(t.key_words(&groups));
            }
            s.advance(&groups, &sum, &max, Some(&keys)).unwrap();
            assert!(s.passes <= 6, "too many passes");
        }
        (s.values(kind, false), s.passes)
    }

    /// NumPy's linear method on a sorted copy, as its source states it.
    fn numpy_like(xs: &[f64], q: f64) -> f64 {
        let mut v: Vec<f64> = xs.iter().copied().filter(|x| !x.is_nan()).collect();
        if v.is_empty() {
            return f64::NAN;
        }
        v.sort_by(|a, b| a.partial_cmp(b).unwrap());
        let (a, b, t) = positions(v.len() as u64, q);
        let (a, b) = (v[a as usize], v[b as usize]);
        let d = b - a;
        if t >= 0.5 {
            b - d * (1.0 - t)
        } else {
            a + d * t
        }
    }

    const QS: [f64; 7] = [0.0, 0.05, 0.25, 0.5, 0.75, 0.95, 1.0];

    #[test]
    fn keys_keep_the_order() {
        let mut vs = vec![
            f64::NEG_INFINITY,
            -f64::MAX,
            -1.5,
            -f64::MIN_POSITIVE,
            -f64::from_bits(1),
            -0.0,
            0.0,
            f64::from_bits(1),
            1.0,
            f64::MAX,
            f64::INFINITY,
        ];
        let keys: Vec<u64> = vs.iter().map(|&v| f64_key(v)).collect();
        assert!(keys.windows(2).all(|w| w[0] < w[1]));
        for (v, k) in vs.drain(..).zip(keys) {
            assert_eq!(key_f64(k).to_bits(), v.to_bits());
        }
        let d = Decode::default();
        let ik: Vec<u64> = [i64::MIN, -1, 0, 1, i64::MAX]
            .iter()
            .map(|&x| key_of(x, KeyKind::Signed, &d).unwrap())
            .collect();
        assert!(ik.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn random_data_across_ranks_matches_sorting() {
        let xs: Vec<f64> = (0..200_003)
            .map(|i| {
                if i % 97 == 3 {
                    f64::NAN
                } else {
                    crate::generate_values::uniform01(11, i) * 200.0 - 100.0
                }
            })
            .collect();
        for p in [1usize, 3] {
            let parts: Vec<Vec<f64>> = (0..p)
                .map(|r| {
                    let rg = crate::decomp::split_range(xs.len(), r, p);
                    xs[rg].to_vec()
                })
                .collect();
            let (got, passes) = search(&parts, &QS, &Decode::default());
            for (q, g) in QS.iter().zip(&got) {
                assert_eq!(g.to_bits(), numpy_like(&xs, *q).to_bits(), "q={q} p={p}");
            }
            assert!(passes <= 3, "{passes} passes");
        }
    }

    #[test]
    fn ties_all_equal_single_and_empty() {
        let d = Decode::default();
        let (got, passes) = search(&[vec![7.25f64; 300_000]], &QS, &d);
        assert!(got.iter().all(|&v| v == 7.25));
        assert_eq!(passes, 2);
        // Many ties around the median, more than one pass can collect.
        let xs: Vec<f64> = (0..600_000)
            .map(|i| if i % 3 == 0 { 1.0 } else { (i % 5) as f64 })
            .collect();
        let (got, _) = search(std::slice::from_ref(&xs), &QS, &d);
        for (q, g) in QS.iter().zip(&got) {
            assert_eq!(*g, numpy_like(&xs, *q), "q={q}");
        }
        let (got, _) = search(&[vec![3.5f64]], &[0.0, 0.3, 1.0], &d);
        assert_eq!(got, vec![3.5; 3]);
        let (got, passes) = search(&[vec![f64::NAN; 10]], &[0.5], &d);
        assert!(got[0].is_nan() && passes == 1);
    }

    #[test]
    fn infinities_and_extremes_as_numpy() {
        let d = Decode::default();
        // np.nanquantile([1, 2, inf], [0.5, 1, 0.75]) -> [nan, nan, nan]
        let (got, _) = search(&[vec![1.0, 2.0, f64::INFINITY]], &[0.5, 1.0, 0.75], &d);
        assert!(got.iter().all(|v| v.is_nan()), "{got:?}");
        // np.nanquantile([-max, max], [0.5, 0.25]) -> [-inf, inf]
        let (got, _) = search(&[vec![-f64::MAX, f64::MAX]], &[0.5, 0.25], &d);
        assert_eq!(got, vec![f64::NEG_INFINITY, f64::INFINITY]);
    }

    #[test]
    fn integers_f32_and_decoded() {
        let d = Decode::default();
        // np.nanquantile(np.array([1, 5], np.int16), [0.3]) -> 2.2
        let (got, _) = search(&[vec![1i16, 5]], &[0.3], &d);
        assert_eq!(got, vec![2.2]);
        // Exact difference (NumPy would wrap int8 and give 128).
        let (got, _) = search(&[vec![-100i8, 100]], &[0.5], &d);
        assert_eq!(got, vec![0.0]);
        // np.nanquantile(np.float32([1, 2, 3, 4]), [0.3]) -> 1.9 (f64 maths)
        let (got, _) = search(&[vec![1.0f32, 2.0, 3.0, f32::NAN, 4.0]], &[0.3], &d);
        assert_eq!(got, vec![1.9]);
        let xs: Vec<u64> = (0..100_000).map(|i| u64::MAX - i * 7919).collect();
        let (got, _) = search(std::slice::from_ref(&xs), &[0.0, 1.0], &d);
        assert_eq!(
            got,
            vec![(u64::MAX - 99_999 * 7919) as f64, u64::MAX as f64]
        );
        // Packed int16 with a fill value: decoded in f64.
        let dec = Decode {
            missing: vec![-32767.0],
            scale: Some(0.01),
            offset: Some(273.15),
        };
        let raw: Vec<i16> = (0..50_000)
            .map(|i| {
                if i % 10 == 0 {
                    -32767
                } else {
                    (i % 2000) as i16 - 1000
                }
            })
            .collect();
        let dec_vals: Vec<f64> = raw.iter().map(|&r| dec.apply(r as f64)).collect();
        let (got, _) = search(&[raw], &QS, &dec);
        for (q, g) in QS.iter().zip(&got) {
            assert_eq!(*g, numpy_like(&dec_vals, *q), "q={q}");
        }
    }

    #[test]
    fn per_cell_kernel_agrees_with_the_search() {
        let xs: Vec<f64> = (0..5000)
            .map(|i| crate::generate_values::uniform01(2, i))
            .collect();
        let mut keys: Vec<u64> = xs.iter().map(|&v| f64_key(v)).collect();
        let a = quantiles_of(&mut keys, &QS, KeyKind::Float);
        let (b, _) = search(&[xs], &QS, &Decode::default());
        assert_eq!(a, b);
    }

    #[test]
    fn block_kernel_per_cell() {
        // (time=7, lat=2, lon=3): quantiles over time, and over lat+lon.
        let count = [7usize, 2, 3];
        let xs: Vec<f32> = (0..42)
            .map(|i| {
                if i % 11 == 4 {
                    f32::NAN
                } else {
                    ((i * 37) % 19) as f32 * 0.5
                }
            })
            .collect();
        let qs = [0.1, 0.5, 0.95];
        let (got, n) = block_quantiles(
            &xs,
            &count,
            &[true, false, false],
            &qs,
            &Decode::default(),
            false,
        );
        assert_eq!(n, xs.iter().filter(|x| !x.is_nan()).count() as u64);
        for cell in 0..6 {
            let series: Vec<f64> = (0..7).map(|t| xs[t * 6 + cell] as f64).collect();
            for (iq, &q) in qs.iter().enumerate() {
                assert_eq!(
                    got[iq * 6 + cell],
                    numpy_like(&series, q),
                    "cell {cell} q {q}"
                );
            }
        }
        let (got, _) = block_quantiles(
            &xs,
            &count,
            &[false, true, true],
            &qs,
            &Decode::default(),
            true,
        );
        for t in 0..7 {
            let field: Vec<f64> = (0..6).map(|c| xs[t * 6 + c] as f64).collect();
            let has_nan = field.iter().any(|x| x.is_nan());
            for (iq, &q) in qs.iter().enumerate() {
                let g = got[iq * 7 + t];
                if has_nan {
                    assert!(g.is_nan());
                } else {
                    assert_eq!(g, numpy_like(&field, q));
                }
            }
        }
        let d = series_decomposition(
            Some(&[2, 1, 3]),
            8,
            &[100, 40, 30],
            &[true, false, false],
            1 << 20,
        );
        assert_eq!(d.grid[0], 1);
        assert!(d.block_shape[0] == 100 && d.block_shape[2].is_multiple_of(3));
    }

    #[test]
    fn quantile_lists() {
        assert_eq!(
            parse_quantiles("0.05, 0.5,0.95,0.5").unwrap(),
            vec![0.05, 0.5, 0.95]
        );
        for bad in ["", "0.5,", "95", "-0.1", "a", "nan", "0.5;0.9"] {
            assert!(parse_quantiles(bad).is_err(), "{bad}");
        }
        assert_eq!(quantile_name(0.95), "q0.95");
        assert_eq!(quantile_name(1.0), "q1");
    }
}
