//! The `reduce` arguments a user gives after `scaling run … --`: parsed by
//! clap exactly as `chunkwise reduce` parses them (with or without the input
//! file, with or without `--var`) into a typed [`ReduceCall`].

use crate::cli::{Cli, Command, ReduceArgs};
use crate::error::CwError;
use crate::request::ReduceRequest;
use crate::scaling::ReduceCall;
use clap::Parser;

/// Placeholder file name used to parse `reduce` arguments that have no file.
const NO_FILE: &str = "\u{1}chunkwise-generated";

fn parse_reduce(args: &[String]) -> Result<ReduceArgs, clap::Error> {
    let argv = ["chunkwise", "reduce"]
        .into_iter()
        .map(String::from)
        .chain(args.iter().cloned());
    match Cli::try_parse_from(argv)?.command {
        Command::Reduce(r) => Ok(r),
        _ => unreachable!("parsed as reduce"),
    }
}

/// Analyse the arguments after `--` (a leading `reduce` is optional): they
/// must parse as `chunkwise reduce` arguments, with or without the input file
/// and `--var`; `--threads` (use `scaling run --threads`) and `--output`
/// (every repeat would write it) are refused.
pub fn analyse_reduce_args(args: &[String]) -> Result<ReduceCall, CwError> {
    let args: &[String] = match args.first() {
        Some(a) if a == "reduce" => &args[1..],
        _ => args,
    };
    let first_err = match parse_reduce(args) {
        Ok(r) => return call(&r, true),
        Err(e) => e,
    };
    let mut with_file = vec![NO_FILE.to_string()];
    with_file.extend(args.iter().cloned());
    if let Ok(r) = parse_reduce(&with_file) {
        return call(&r, false);
    }
    let mut with_var = with_file;
    with_var.extend(["--var".to_string(), "a".to_string()]);
    if let Ok(mut r) = parse_reduce(&with_var) {
        r.var = None;
        return call(&r, false);
    }
    let text = first_err.to_string();
    let detail: Vec<&str> = text
        .lines()
        .map(str::trim)
        .take_while(|l| !l.starts_with("Usage:"))
        .filter(|l| !l.is_empty())
        .collect();
    let detail = detail.join(" ").trim_start_matches("error: ").to_string();
    Err(CwError::Parse(format!(
        "the arguments after -- are not valid reduce arguments: {detail}"
    )))
}

fn call(r: &ReduceArgs, has_file: bool) -> Result<ReduceCall, CwError> {
    let request = ReduceRequest::try_from(r)?;
    let file = has_file.then(|| r.files[0].to_string_lossy().into_owned());
    ReduceCall::new(file, request)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    /// The rendered command line parses back to the same request.
    fn round_trips(c: &ReduceCall, file: &str) {
        let argv = c.argv(file);
        let again = analyse_reduce_args(&argv).unwrap();
        assert_eq!(again.file.as_deref(), Some(file));
        let mut want = c.request.clone();
        want.input.path = file.into();
        assert_eq!(again.request, want, "{argv:?}");
    }

    #[test]
    fn reduce_arguments_with_and_without_file() {
        let c = analyse_reduce_args(&s(&["reduce", "d.h5", "--var", "t", "--op", "mean"])).unwrap();
        assert_eq!(c.file.as_deref(), Some("d.h5"));
        assert_eq!(
            c.argv("d.h5"),
            s(&["reduce", "d.h5", "--var", "t", "--op", "mean", "--json"])
        );
        round_trips(&c, "d.h5");
        // The file after options, even when an option's value has the same text.
        let c = analyse_reduce_args(&s(&["--var", "v.h5", "v.h5", "--axis", "-1"])).unwrap();
        assert_eq!(c.file.as_deref(), Some("v.h5"));
        assert_eq!(c.var(), "v.h5");
        round_trips(&c, "v.h5");
        let c = analyse_reduce_args(&s(&["--op", "mean", "--json"])).unwrap();
        assert_eq!((c.file.clone(), c.var()), (None, "a"));
        assert_eq!(
            c.argv("g.h5"),
            s(&["reduce", "g.h5", "--var", "a", "--op", "mean", "--json"])
        );
        round_trips(&c, "g.h5");
        let c = analyse_reduce_args(&s(&[
            "reduce",
            "--var",
            "x",
            "--dim",
            "dim_0",
            "--select",
            "dim_1=2:9:3",
            "--select",
            "dim_0=-1.5..2",
            "--block-bytes",
            "1MiB",
            "--keep-nan",
            "--ddof",
            "1",
        ]))
        .unwrap();
        assert_eq!((c.file.clone(), c.var()), (None, "x"));
        round_trips(&c, "g.h5");
        let e = analyse_reduce_args(&s(&["reduce", "d.h5", "--var", "a", "--threads", "2"]))
            .unwrap_err();
        assert!(e.to_string().contains("scaling run --threads"), "{e}");
        let e =
            analyse_reduce_args(&s(&["reduce", "d.h5", "--var", "a", "-o", "x.nc"])).unwrap_err();
        assert!(e.to_string().contains("--output"), "{e}");
        let e = analyse_reduce_args(&s(&["reduce", "d.h5", "--var", "a", "--bogus"])).unwrap_err();
        assert!(e.to_string().contains("--bogus"), "{e}");
    }
}
