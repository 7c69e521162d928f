//! The architecture rules of the workspace, checked on the sources:
//! no import cycles between the top-level modules of any crate, the core
//! names no MPI/HDF5/clap/libc item, and no command builds another command's
//! command line to parse it back.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The source without its `#[cfg(test)]` tail (tests may import freely).
fn non_test_source(p: &Path) -> String {
    let t = std::fs::read_to_string(p).unwrap();
    match t.find("#[cfg(test)]") {
        Some(i) => t[..i].to_string(),
        None => t,
    }
}

/// Top-level module of `file` under `src` (`a.rs` and `a/b.rs` are `a`).
fn module_of(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).unwrap();
    let first = rel
        .components()
        .next()
        .unwrap()
        .as_os_str()
        .to_string_lossy();
    first.trim_end_matches(".rs").to_string()
}

/// `crate::NAME` references of each top-level module.
fn import_graph(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for f in files {
        let m = module_of(src, &f);
        if m == "lib" || m == "main" {
            continue;
        }
        let text = non_test_source(&f);
        let deps = g.entry(m.clone()).or_default();
        for (i, _) in text.match_indices("crate::") {
            let name: String = text[i + 7..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() && name != m {
                deps.insert(name);
            }
        }
    }
    g
}

/// A cycle in `g`, if there is one (depth-first search with colours).
fn find_cycle(g: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        n: &str,
        g: &BTreeMap<String, BTreeSet<String>>,
        stack: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(i) = stack.iter().position(|s| s == n) {
            let mut c = stack[i..].to_vec();
            c.push(n.to_string());
            return Some(c);
        }
        if done.contains(n) {
            return None;
        }
        stack.push(n.to_string());
        for d in g.get(n).into_iter().flatten() {
            if let Some(c) = visit(d, g, stack, done) {
                return Some(c);
            }
        }
        stack.pop();
        done.insert(n.to_string());
        None
    }
    let mut done = BTreeSet::new();
    for n in g.keys() {
        if let Some(c) = visit(n, g, &mut Vec::new(), &mut done) {
            return Some(c);
        }
    }
    None
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn the_cycle_finder_finds_a_planted_cycle() {
    let mut g = BTreeMap::new();
    g.insert("a".to_string(), BTreeSet::from(["b".to_string()]));
    g.insert("b".to_string(), BTreeSet::from(["c".to_string()]));
    g.insert("c".to_string(), BTreeSet::from(["a".to_string()]));
    g.insert("d".to_string(), BTreeSet::from(["a".to_string()]));
    let c = find_cycle(&g).unwrap();
    assert_eq!(c.first(), c.last());
    assert_eq!(c.len(), 4);
    g.get_mut("c").unwrap().clear();
    assert_eq!(find_cycle(&g), None);
}

#[test]
fn no_import_cycles_between_modules() {
    for src in ["crates/core/src", "crates/io/src", "src"] {
        let g = import_graph(&root().join(src));
        assert!(g.len() > 3, "{src}: modules not found");
        if let Some(c) = find_cycle(&g) {
            panic!("{src}: import cycle {}", c.join(" -> "));
        }
    }
}

#[test]
fn the_core_names_no_mpi_hdf5_clap_or_libc_item() {
    let mut files = Vec::new();
    rust_files(&root().join("crates/core/src"), &mut files);
    assert!(files.len() > 10);
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        for banned in ["mpi::", "hdf5::", "hdf5_sys::", "clap::", "libc::"] {
            assert!(!text.contains(banned), "{} names {banned}", f.display());
        }
    }
    let manifest = std::fs::read_to_string(root().join("crates/core/Cargo.toml")).unwrap();
    let deps = manifest
        .split("[dependencies]")
        .nth(1)
        .unwrap()
        .split("\n[")
        .next()
        .unwrap();
    for banned in ["mpi", "hdf5", "clap", "libc"] {
        assert!(
            !deps.lines().any(|l| l.trim_start().starts_with(banned)),
            "chunkwise-core depends on {banned}"
        );
    }
}

#[test]
fn no_command_parses_a_command_line_it_built() {
    // Only the CLI entry point and the scaling study's analysis of the
    // user's own `reduce` arguments may run clap's parser.
    let mut files = Vec::new();
    rust_files(&root().join("src"), &mut files);
    for f in files {
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        let text = non_test_source(&f);
        if name == "main.rs" || name == "scaling_args.rs" {
            continue;
        }
        for parser in ["try_parse_from", "parse_from(", "Cli::parse"] {
            assert!(
                !text.contains(parser),
                "{} runs the command-line parser ({parser})",
                f.display()
            );
        }
    }
}
