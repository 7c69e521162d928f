//! Property tests of the pure parsers: generated inputs must round-trip to
//! the values they were built from, and no input — however malformed — may
//! panic (a panic on one rank is a crash the others would wait for).

use chunkwise_core::cluster::Cluster;
use chunkwise_core::parse::{
    Op, parse_bytes, parse_dist, parse_duration, parse_ops, parse_shape, slurm_time,
};
use chunkwise_core::selection::{SelectSpec, parse_select};
use proptest::prelude::*;

/// Units and their multipliers as documented for `parse_bytes`.
const UNITS: [(&str, u64); 17] = [
    ("", 1),
    ("B", 1),
    ("k", 1000),
    ("KB", 1000),
    ("kb", 1000),
    ("M", 1_000_000),
    ("MB", 1_000_000),
    ("G", 1_000_000_000),
    ("GB", 1_000_000_000),
    ("T", 1_000_000_000_000),
    ("TB", 1_000_000_000_000),
    ("KiB", 1 << 10),
    ("MiB", 1 << 20),
    ("mib", 1 << 20),
    ("GiB", 1 << 30),
    ("Gi", 1 << 30),
    ("TiB", 1 << 40),
];

proptest! {
    #[test]
    fn sizes_round_trip(n in 0u64..5_000_000, u in 0usize..UNITS.len(), space in any::<bool>()) {
        let (unit, mult) = UNITS[u];
        let text = format!("{n}{}{unit}", if space { " " } else { "" });
        // n < 5e6 and mult ≤ 2^40 keep n·mult < 2^63, and exact in u128.
        let exact = n as u128 * mult as u128;
        let got = parse_bytes(&text).unwrap();
        if exact < (1u128 << 53) {
            prop_assert_eq!(got as u128, exact, "{}", text);
        } else {
            let rel = (got as f64 - exact as f64).abs() / exact as f64;
            prop_assert!(rel <= f64::EPSILON, "{} -> {}", text, got);
        }
    }

    #[test]
    fn fractional_sizes_scale(whole in 0u64..100_000, tenths in 0u64..10) {
        let got = parse_bytes(&format!("{whole}.{tenths}KiB")).unwrap();
        prop_assert_eq!(got, ((whole * 10 + tenths) * 1024 + 5) / 10);
    }

    #[test]
    fn sizes_never_panic(s in "\\PC{0,12}") {
        let _ = parse_bytes(&s);
    }

    #[test]
    fn shapes_round_trip(dims in prop::collection::vec(1usize..1_000_000_000, 1..8)) {
        let text = dims.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(",");
        let fits = dims.iter().try_fold(1u128, |a, &d| Some(a * d as u128).filter(|&p| p <= u64::MAX as u128));
        match fits {
            Some(_) => prop_assert_eq!(parse_shape(&text, "--shape").unwrap(), dims),
            None => {
                let err = parse_shape(&text, "--shape").unwrap_err().to_string();
                prop_assert!(err.contains("overflows"), "{}", err);
            }
        }
    }

    #[test]
    fn shapes_with_a_zero_are_refused(dims in prop::collection::vec(0usize..4, 1..6)) {
        prop_assume!(dims.contains(&0));
        let text = dims.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(",");
        let err = parse_shape(&text, "--chunks").unwrap_err().to_string();
        prop_assert!(err.contains("--chunks"), "{}", err);
    }

    #[test]
    fn shapes_never_panic(s in "[0-9, x\\-+.]{0,20}|\\PC{0,12}") {
        let _ = parse_shape(&s, "--shape");
    }

    #[test]
    fn op_lists_dedupe_in_order(picks in prop::collection::vec((0usize..Op::ALL.len(), any::<bool>()), 1..12)) {
        let text = picks
            .iter()
            .map(|&(i, upper)| {
                let n = Op::ALL[i].name();
                if upper { n.to_ascii_uppercase() } else { n.to_string() }
            })
            .collect::<Vec<_>>()
            .join(",");
        let mut want: Vec<Op> = Vec::new();
        for &(i, _) in &picks {
            if !want.contains(&Op::ALL[i]) {
                want.push(Op::ALL[i]);
            }
        }
        prop_assert_eq!(parse_ops(&text).unwrap(), want);
    }

    #[test]
    fn op_lists_never_panic(s in "[a-z,]{0,30}|\\PC{0,12}") {
        if let Ok(ops) = parse_ops(&s) {
            prop_assert!(!ops.is_empty());
        }
    }

    #[test]
    fn index_selections_round_trip(
        dim in "[a-z_][a-z0-9_]{0,8}",
        start in prop::option::of(-1000i64..1000),
        stop in prop::option::of(-1000i64..1000),
        step in prop::option::of(1usize..50),
    ) {
        let show = |v: Option<i64>| v.map_or(String::new(), |v| v.to_string());
        let mut text = format!("{dim}={}:{}", show(start), show(stop));
        if let Some(st) = step {
            text.push_str(&format!(":{st}"));
        }
        let want = SelectSpec::Index { dim: dim.clone(), start, stop, step: step.unwrap_or(1) };
        prop_assert_eq!(parse_select(&text).unwrap(), want);
    }

    #[test]
    fn value_selections_round_trip(dim in "[a-z][a-z0-9_]{0,8}", a in -1e300f64..1e300, b in -1e300f64..1e300) {
        let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
        let text = format!("{dim}={lo}..{hi}");
        prop_assert_eq!(parse_select(&text).unwrap(), SelectSpec::Value { dim: dim.clone(), lo, hi });
        // LO > HI parses (a range across a longitude's seam, `350..10`);
        // resolving it against the coordinate decides.
        let swapped = format!("{dim}={hi}..{lo}");
        prop_assert_eq!(parse_select(&swapped).unwrap(), SelectSpec::Value { dim: dim.clone(), lo: hi, hi: lo });
    }

    #[test]
    fn selections_never_panic(s in "[a-z]{0,3}=?[0-9:.\\-e]{0,12}|\\PC{0,16}") {
        if let Ok(spec) = parse_select(&s) {
            prop_assert!(!spec.dim().is_empty());
            if let SelectSpec::Index { step, .. } = spec {
                prop_assert!(step >= 1);
            }
        }
    }

    #[test]
    fn durations_round_trip(h in 0u64..500, m in 0u64..60, s in 0u64..60, d in 0u64..30) {
        let total = d * 86400 + h * 3600 + m * 60 + s;
        prop_assume!(total > 0);
        prop_assert_eq!(parse_duration(&format!("{d}d{h}h{m}m{s}s")).unwrap(), total);
        prop_assert_eq!(parse_duration(&slurm_time(total)).unwrap(), total);
        prop_assert_eq!(parse_duration(&format!("{d}-{h:02}:{m:02}:{s:02}")).unwrap(), total);
    }

    #[test]
    fn durations_never_panic(s in "[0-9dhms:\\-]{0,14}|\\PC{0,12}") {
        let _ = parse_duration(&s);
    }

    #[test]
    fn distributions_never_panic(s in "(normal|uniform|x)?:?[0-9.,\\-e]{0,12}|\\PC{0,12}") {
        let _ = parse_dist(&s);
    }

    #[test]
    fn cluster_profiles_never_panic(s in "([a-z_]{1,8} = (\"[a-z]{0,4}\"|[0-9]{1,4})\n|\\[[a-z.]{1,8}\\]\n){0,8}") {
        let _ = Cluster::from_toml(&s, "generated");
    }
}
