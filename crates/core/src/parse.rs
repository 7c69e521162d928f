//! Parsers for command-line values: byte sizes, shapes, operation lists and
//! value distributions. Pure functions, no MPI or HDF5.

use crate::error::CwError;
use std::fmt;

/// Parse a byte size such as `64MiB`, `1.5GB`, `4096`, `512k` (k/M/G/T are
/// decimal powers of 1000 with or without `B`; `KiB/MiB/GiB/TiB` are powers of 1024).
pub fn parse_bytes(s: &str) -> Result<u64, CwError> {
    let bad = || {
        CwError::Parse(format!(
            "invalid size '{s}': expected e.g. 4096, 64MiB, 1.5GB"
        ))
    };
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    if num.is_empty() || num.chars().filter(|&c| c == '.').count() > 1 {
        return Err(bad());
    }
    let value: f64 = num.parse().map_err(|_| bad())?;
    let mult: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kb" => 1e3,
        "m" | "mb" => 1e6,
        "g" | "gb" => 1e9,
        "t" | "tb" => 1e12,
        "ki" | "kib" => 1024.0,
        "mi" | "mib" => 1024.0 * 1024.0,
        "gi" | "gib" => 1024.0 * 1024.0 * 1024.0,
        "ti" | "tib" => 1024.0f64.powi(4),
        _ => return Err(bad()),
    };
    let bytes = value * mult;
    if !bytes.is_finite() || bytes >= 1.8e19 {
        return Err(bad());
    }
    Ok(bytes.round() as u64)
}

/// Format a byte count with binary units (`1.50 GiB`) for human output.
pub fn human_bytes(b: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b as f64;
    let mut i = 0;
    while v >= 1024.0 && i + 1 < UNITS.len() {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{b} B")
    } else {
        format!("{v:.2} {}", UNITS[i])
    }
}

/// Parse a comma-separated list of positive extents such as `20000,20000`.
/// `what` names the flag in the error message.
pub fn parse_shape(s: &str, what: &str) -> Result<Vec<usize>, CwError> {
    let bad = |m: &str| CwError::Parse(format!("invalid {what} '{s}': {m}"));
    if s.trim().is_empty() {
        return Err(bad(
            "expected comma-separated positive integers, e.g. 1000,1000",
        ));
    }
    let dims: Vec<usize> = s
        .split(',')
        .map(|p| {
            p.trim()
                .parse::<usize>()
                .map_err(|_| bad("expected comma-separated positive integers, e.g. 1000,1000"))
        })
        .collect::<Result<_, _>>()?;
    if dims.contains(&0) {
        return Err(bad("every extent must be at least 1"));
    }
    if dims.len() > 32 {
        return Err(bad("HDF5 allows at most 32 dimensions"));
    }
    dims.iter()
        .try_fold(1u64, |acc, &d| acc.checked_mul(d as u64))
        .ok_or_else(|| bad("total number of elements overflows"))?;
    Ok(dims)
}

/// A statistic `reduce` can compute.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Op {
    /// Sum of the values.
    Sum,
    /// Arithmetic mean.
    Mean,
    /// Minimum.
    Min,
    /// Maximum.
    Max,
    /// Variance with `ddof` degrees of freedom removed.
    Var,
    /// Standard deviation (square root of `Var`).
    Std,
    /// Number of values counted (non-NaN unless `--keep-nan`).
    Count,
}

impl Op {
    /// Every operation, in display order.
    pub const ALL: [Op; 7] = [
        Op::Sum,
        Op::Mean,
        Op::Min,
        Op::Max,
        Op::Var,
        Op::Std,
        Op::Count,
    ];

    /// The operation's name as used on the command line and in JSON.
    pub fn name(self) -> &'static str {
        match self {
            Op::Sum => "sum",
            Op::Mean => "mean",
            Op::Min => "min",
            Op::Max => "max",
            Op::Var => "var",
            Op::Std => "std",
            Op::Count => "count",
        }
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Parse `sum,mean,std` into a de-duplicated list of operations (order kept).
pub fn parse_ops(s: &str) -> Result<Vec<Op>, CwError> {
    let mut ops = Vec::new();
    for part in s.split(',') {
        let p = part.trim().to_ascii_lowercase();
        let op = Op::ALL
            .iter()
            .copied()
            .find(|o| o.name() == p)
            .ok_or_else(|| {
                CwError::Parse(format!(
                    "unknown --op '{}': choose from sum,mean,min,max,var,std,count",
                    part.trim()
                ))
            })?;
        if !ops.contains(&op) {
            ops.push(op);
        }
    }
    Ok(ops)
}

/// The distribution `generate` draws values from.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Dist {
    /// Normal with mean and standard deviation.
    Normal {
        /// Mean.
        mean: f64,
        /// Standard deviation.
        std: f64,
    },
    /// Uniform on `[lo, hi)`.
    Uniform {
        /// Lower bound.
        lo: f64,
        /// Upper bound.
        hi: f64,
    },
}

/// Parse `normal:MEAN,STD` or `uniform:LO,HI`.
pub fn parse_dist(s: &str) -> Result<Dist, CwError> {
    let bad = || {
        CwError::Parse(format!(
            "invalid --dist '{s}': expected normal:MEAN,STD or uniform:LO,HI"
        ))
    };
    let (kind, args) = s.split_once(':').ok_or_else(bad)?;
    let nums: Vec<f64> = args
        .split(',')
        .map(|p| p.trim().parse::<f64>().map_err(|_| bad()))
        .collect::<Result<_, _>>()?;
    if nums.len() != 2 || nums.iter().any(|v| !v.is_finite()) {
        return Err(bad());
    }
    match kind.trim() {
        "normal" if nums[1] >= 0.0 => Ok(Dist::Normal {
            mean: nums[0],
            std: nums[1],
        }),
        "uniform" if nums[0] < nums[1] => Ok(Dist::Uniform {
            lo: nums[0],
            hi: nums[1],
        }),
        _ => Err(bad()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_decimal_and_binary() {
        assert_eq!(parse_bytes("4096").unwrap(), 4096);
        assert_eq!(parse_bytes("64MiB").unwrap(), 64 * 1024 * 1024);
        assert_eq!(parse_bytes("1.5GB").unwrap(), 1_500_000_000);
        assert_eq!(parse_bytes("2k").unwrap(), 2000);
        assert_eq!(parse_bytes("1TiB").unwrap(), 1u64 << 40);
        for bad in ["", "MiB", "1.2.3M", "12XB", "-5", "1e3"] {
            assert!(parse_bytes(bad).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn shapes() {
        assert_eq!(
            parse_shape("20000, 20000", "--shape").unwrap(),
            vec![20000, 20000]
        );
        assert!(parse_shape("10,0", "--shape").is_err());
        assert!(parse_shape("10,,3", "--shape").is_err());
        assert!(parse_shape("a", "--shape").is_err());
        assert!(parse_shape("4294967296,4294967296,16", "--shape").is_err());
    }

    #[test]
    fn ops_dedup_and_errors() {
        assert_eq!(parse_ops("mean,std,mean").unwrap(), vec![Op::Mean, Op::Std]);
        let e = parse_ops("mean,median").unwrap_err().to_string();
        assert!(e.contains("median"), "{e}");
    }

    #[test]
    fn dists() {
        assert_eq!(
            parse_dist("normal:10,2").unwrap(),
            Dist::Normal {
                mean: 10.0,
                std: 2.0
            }
        );
        assert_eq!(
            parse_dist("uniform:-1,1").unwrap(),
            Dist::Uniform { lo: -1.0, hi: 1.0 }
        );
        assert!(parse_dist("uniform:1,1").is_err());
        assert!(parse_dist("gamma:1,1").is_err());
        assert!(parse_dist("normal:1").is_err());
    }
}

/// Parse a duration: `90s`, `15m`, `2h`, `1h30m`, `1d`, or Slurm's
/// `HH:MM:SS` / `D-HH:MM:SS`. Returns seconds.
pub fn parse_duration(s: &str) -> Result<u64, CwError> {
    let bad = || {
        CwError::Parse(format!(
            "invalid duration '{s}': expected e.g. 15m, 2h, 1h30m, 01:30:00 or 2-00:00:00"
        ))
    };
    let t = s.trim();
    if t.is_empty() {
        return Err(bad());
    }
    if t.contains(':') {
        let (days, hms) = match t.split_once('-') {
            Some((d, rest)) => (d.parse::<u64>().map_err(|_| bad())?, rest),
            None => (0, t),
        };
        let parts: Vec<u64> = hms
            .split(':')
            .map(|p| p.parse::<u64>().map_err(|_| bad()))
            .collect::<Result<_, _>>()?;
        let secs = match parts[..] {
            [h, m, s] if m < 60 && s < 60 => h * 3600 + m * 60 + s,
            [m, s] if s < 60 => m * 60 + s,
            _ => return Err(bad()),
        };
        return Ok(days * 86400 + secs);
    }
    let mut total = 0u64;
    let mut num = String::new();
    for c in t.chars() {
        if c.is_ascii_digit() {
            num.push(c);
            continue;
        }
        let n: u64 = num.parse().map_err(|_| bad())?;
        num.clear();
        total += n * match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86400,
            _ => return Err(bad()),
        };
    }
    if !num.is_empty() {
        return Err(bad());
    }
    if total == 0 { Err(bad()) } else { Ok(total) }
}

/// Format seconds as Slurm's `HH:MM:SS` (hours may exceed 24).
pub fn slurm_time(secs: u64) -> String {
    format!("{:02}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60)
}

#[cfg(test)]
mod duration_tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("15m").unwrap(), 900);
        assert_eq!(parse_duration("1h30m").unwrap(), 5400);
        assert_eq!(parse_duration("01:30:00").unwrap(), 5400);
        assert_eq!(parse_duration("2-00:00:00").unwrap(), 172800);
        for bad in ["", "15", "1x", "0m", "1:99:00", "m5"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        assert_eq!(slurm_time(5400), "01:30:00");
        assert_eq!(slurm_time(200 * 3600), "200:00:00");
    }
}
