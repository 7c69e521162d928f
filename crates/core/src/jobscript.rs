//! Rendering of complete `sbatch` scripts from a cluster profile. Pure text;
//! the first lines record the exact arguments it was rendered from, so a
//! test can re-render every committed script and compare.

use crate::cluster::{Cluster, NodeType};
use crate::error::CwError;

/// Everything a job script needs.
#[derive(Clone, Debug)]
pub struct JobSpec<'a> {
    /// The cluster profile.
    pub cluster: &'a Cluster,
    /// Node type.
    pub node: &'a NodeType,
    /// Project account (`-A`).
    pub account: String,
    /// Job name (`-J`).
    pub job_name: String,
    /// Nodes (`-N`).
    pub nodes: u32,
    /// Ranks per node.
    pub ntasks_per_node: u32,
    /// Threads per rank.
    pub cpus_per_task: u32,
    /// Wall time, `HH:MM:SS`.
    pub time: String,
    /// Memory per core in MiB, if requested.
    pub mem_per_cpu_mib: Option<u64>,
    /// Copy the input to node-local scratch first.
    pub stage: bool,
    /// Arguments for `chunkwise` (after `--`).
    pub args: Vec<String>,
    /// The `chunkwise jobscript ...` arguments this was rendered from (recorded in the script).
    pub rendered_from: Vec<String>,
}

/// [`shell_quote`], but quoted even where the word needs no quoting: for a
/// value assigned to a variable, where shellcheck would read a bare word.
pub fn shell_quote_always(s: &str) -> String {
    let q = shell_quote(s);
    if q.starts_with(['\'', '"']) {
        q
    } else {
        format!("'{q}'")
    }
}

/// Quote a word for bash, only when needed, so that it stays one word with
/// exactly this text whatever it holds (newlines, quotes, `$(...)`). Single
/// quotes in general; double quotes, with backslash, dollar, double quote
/// and backquote escaped, for words holding `$`, a backquote or a
/// backslash, which shellcheck would otherwise flag as an expansion or an
/// escape that was meant (SC2016, SC1003).
pub fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c))
    {
        s.to_string()
    } else if s.contains(['$', '`', '\\']) {
        let mut q = String::from("\"");
        for c in s.chars() {
            if matches!(c, '\\' | '$' | '"' | '`') {
                q.push('\\');
            }
            q.push(c);
        }
        q.push('"');
        q
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// Check a Slurm account (`-A`) or job name (`-J`) against the characters
/// Slurm accepts there without surprises: 1–128 of ASCII letters, digits
/// and `_ - . +`, not starting with `-`. Slurm stores account names
/// lowercased from such a set (`sacctmgr`), and the job name also becomes
/// the log file name (`-o NAME-%j.out`), where `/`, `%` and blanks would
/// change its meaning; a newline would end the `#SBATCH` comment and make
/// the rest of the value a command of the job. So every value that reaches
/// an `#SBATCH` line is one plain word.
pub fn check_slurm_word(value: &str, flag: &str) -> Result<(), CwError> {
    let ok = !value.is_empty()
        && value.len() <= 128
        && !value.starts_with('-')
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-.+".contains(c));
    if ok {
        Ok(())
    } else {
        Err(CwError::Parse(format!(
            "{flag} {}: Slurm names here may hold only ASCII letters, digits and _ - . + (1 to 128 of them, not starting with -)",
            serde_json::to_string(value).expect("a string")
        )))
    }
}

/// Check the profile's values that are written into the script: text in
/// comments must be one line, `#SBATCH` values one word, the modules name
/// and every launcher word plain (safe unquoted), the scratch variable a
/// shell identifier. A user's own `.toml` profile gets the same checks as
/// the built-in ones, so no profile can add a command to the job.
fn check_profile(c: &Cluster, node: &NodeType) -> Result<(), CwError> {
    let bad = |what: &str, v: &str, rule: &str| {
        Err(CwError::Parse(format!(
            "cluster profile {}: {what} {} {rule}",
            c.name,
            serde_json::to_string(v).expect("a string")
        )))
    };
    for (what, v) in [
        ("name", &c.name),
        ("site", &c.site),
        ("description", &c.description),
    ] {
        if v.chars().any(char::is_control) {
            return bad(what, v, "must be one line without control characters");
        }
    }
    for (what, v) in [
        ("partition", &node.partition),
        ("constraint", &node.constraint),
    ] {
        if let Some(v) = v
            && (v.is_empty() || v.chars().any(|ch| ch.is_control() || ch.is_whitespace()))
        {
            return bad(what, v, "must be one word");
        }
    }
    let plain = |v: &str| !v.is_empty() && shell_quote(v) == v;
    if !plain(&c.modules) || c.modules.contains('/') {
        return bad("modules", &c.modules, "must be a plain file name");
    }
    if !c.launcher.split_whitespace().all(plain) || c.launcher.trim().is_empty() {
        return bad(
            "launcher",
            &c.launcher,
            "must be plain words (letters, digits, - _ . / = : , + @ %)",
        );
    }
    let ident = |v: &str| {
        v.chars()
            .next()
            .is_some_and(|ch| ch.is_ascii_alphabetic() || ch == '_')
            && v.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '_')
    };
    if !c.scratch_var.is_empty() && !ident(&c.scratch_var) {
        return bad(
            "scratch_var",
            &c.scratch_var,
            "must be a shell variable name",
        );
    }
    Ok(())
}

/// The launcher line prefix for `spec`: the site's launcher, with thread-aware
/// binding for `mpirun` (plain `-bind-to core` would pin a multi-threaded rank to one core).
fn launcher(spec: &JobSpec) -> String {
    let l = spec.cluster.launcher.trim();
    if l.starts_with("mpirun") && spec.cpus_per_task > 1 {
        "mpirun --map-by slot:PE=\"$SLURM_CPUS_PER_TASK\" --bind-to core".into()
    } else {
        l.to_string()
    }
}

/// Render the script.
pub fn render(spec: &JobSpec) -> Result<String, CwError> {
    let c = spec.cluster;
    check_profile(c, spec.node)?;
    check_slurm_word(&spec.account, "--account")?;
    check_slurm_word(&spec.job_name, "--job-name")?;
    if spec.nodes == 0 || spec.ntasks_per_node == 0 || spec.cpus_per_task == 0 {
        return Err(CwError::Parse(
            "--nodes, --ntasks-per-node and --cpus-per-task must be at least 1".into(),
        ));
    }
    if spec.ntasks_per_node * spec.cpus_per_task > spec.node.cores {
        return Err(CwError::Parse(format!(
            "{} ranks x {} threads per node exceed the {} cores of a {} node on {}",
            spec.ntasks_per_node, spec.cpus_per_task, spec.node.cores, spec.node.name, c.name
        )));
    }
    if spec.args.is_empty() {
        return Err(CwError::Parse(
            "give the chunkwise arguments after --, e.g. -- reduce data.h5 --var a".into(),
        ));
    }
    let scaling = spec.args[0] == "scaling";
    if spec.stage && (c.scratch_var.is_empty() || scaling || spec.args.len() < 2) {
        return Err(CwError::Parse(format!(
            "--stage needs a cluster with node-local scratch ({} has {}) and a command whose first argument is the input file",
            c.name,
            if c.scratch_var.is_empty() {
                "none"
            } else {
                "one"
            }
        )));
    }
    let mut s = String::from("#!/bin/bash\n");
    s += &format!(
        "# chunkwise job for {} ({}): {}\n",
        c.name, c.site, c.description
    );
    s += "# Rendered by `chunkwise jobscript`; re-render instead of editing. Arguments:\n";
    s += &format!(
        "# chunkwise-jobscript-args: {}\n",
        serde_json::to_string(&spec.rendered_from).expect("strings")
    );
    s += &format!("#SBATCH -A {}\n", spec.account);
    s += &format!("#SBATCH -J {}\n", spec.job_name);
    if let Some(p) = &spec.node.partition {
        s += &format!("#SBATCH -p {p}\n");
    }
    if let Some(k) = &spec.node.constraint {
        s += &format!("#SBATCH -C {k}\n");
    }
    if spec.node.exclusive {
        s += "#SBATCH --exclusive\n";
    }
    s += &format!(
        "#SBATCH -N {}\n#SBATCH --ntasks-per-node={}\n#SBATCH --cpus-per-task={}\n",
        spec.nodes, spec.ntasks_per_node, spec.cpus_per_task
    );
    if c.threads_per_core_1 {
        s += "#SBATCH --threads-per-core=1\n";
    }
    if let Some(m) = spec.mem_per_cpu_mib {
        s += &format!("#SBATCH --mem-per-cpu={m}M\n");
    }
    s += &format!("#SBATCH -t {}\n", spec.time);
    s += &format!("#SBATCH -o {}-%j.out\n", spec.job_name);
    s += "\nset -euo pipefail\n";
    s += "# The chunkwise checkout (default: where sbatch was run) and its binary.\n";
    s += "CHUNKWISE_HOME=\"${CHUNKWISE_HOME:-$SLURM_SUBMIT_DIR}\"\n";
    s += "# shellcheck source=/dev/null\n";
    s += &format!("source \"$CHUNKWISE_HOME/modules/{}.sh\"\n", c.modules);
    s += "CHUNKWISE=\"${CHUNKWISE:-$CHUNKWISE_HOME/target/release/chunkwise}\"\n";
    s += "# chunkwise takes its thread count from SLURM_CPUS_PER_TASK.\n";
    s += "echo \"job ${SLURM_JOB_ID}: ${SLURM_NNODES} node(s), ${SLURM_NTASKS} rank(s) x ${SLURM_CPUS_PER_TASK} thread(s) on $(hostname)\"\n";
    let mut args: Vec<String> = spec.args.iter().map(|a| shell_quote(a)).collect();
    if spec.stage {
        s += &format!(
            "\n# Stage the input to node-local scratch (${}), one copy per node.\n",
            c.scratch_var
        );
        // Always quoted: shellcheck takes an unquoted `INPUT=ar` for a
        // command's name (SC2209) and `INPUT==` for a comparison (SC1097).
        s += &format!("INPUT={}\n", shell_quote_always(&spec.args[1]));
        s += &format!(
            "srun -N \"$SLURM_NNODES\" --ntasks-per-node=1 cp \"$INPUT\" \"${}/\"\n",
            c.scratch_var
        );
        s += &format!("INPUT=\"${}/$(basename \"$INPUT\")\"\n", c.scratch_var);
        args[1] = "\"$INPUT\"".into();
    }
    s += "\n";
    if scaling {
        s += "# `chunkwise scaling` launches every run itself inside this allocation.\n";
        // `scaling run` picks srun inside an allocation; a site whose MPI is
        // launched with mpirun (OpenMPI on COSMOS) gets `--launcher mpirun`.
        let is_run = spec.args.get(1).is_some_and(|a| a == "run");
        if is_run
            && c.launcher.trim().starts_with("mpirun")
            && !spec.args.iter().any(|a| a.starts_with("--launcher"))
        {
            args.insert(2, "--launcher".into());
            args.insert(3, "mpirun".into());
        }
        s += &format!("\"$CHUNKWISE\" {}\n", args.join(" "));
        if let Some(i) = spec.args.iter().position(|a| a == "--out")
            && is_run
            && i + 1 < spec.args.len()
        {
            s += &format!(
                "\"$CHUNKWISE\" scaling report {}\n",
                shell_quote(&spec.args[i + 1])
            );
        }
    } else {
        s += &format!("{} \"$CHUNKWISE\" {}\n", launcher(spec), args.join(" "));
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec<'a>(c: &'a Cluster, args: &[&str]) -> JobSpec<'a> {
        JobSpec {
            cluster: c,
            node: c.node_or_default(None).unwrap(),
            account: "naiss2026-1-1".into(),
            job_name: "chunkwise".into(),
            nodes: 2,
            ntasks_per_node: 8,
            cpus_per_task: 4,
            time: "00:30:00".into(),
            mem_per_cpu_mib: Some(1024),
            stage: false,
            args: args.iter().map(|s| s.to_string()).collect(),
            rendered_from: vec![],
        }
    }

    #[test]
    fn site_conventions() {
        let t = Cluster::load("tetralith").unwrap();
        let s = render(&spec(&t, &["reduce", "my data.h5", "--var", "a"])).unwrap();
        assert!(
            s.contains("mpprun \"$CHUNKWISE\" reduce 'my data.h5' --var a"),
            "{s}"
        );
        assert!(!s.contains("#SBATCH -p"));
        let k = Cluster::load("kebnekaise").unwrap();
        assert!(
            render(&spec(&k, &["reduce", "x.h5"]))
                .unwrap()
                .contains("#SBATCH -C zen3\n")
        );
        let c = Cluster::load("cosmos").unwrap();
        let cs = render(&spec(&c, &["reduce", "x.h5"])).unwrap();
        assert!(
            cs.contains("#SBATCH -p lu48\n") && cs.contains("mpirun --map-by slot:PE="),
            "{cs}"
        );
        let p = Cluster::load("pelle").unwrap();
        assert!(
            render(&spec(&p, &["reduce", "x.h5"]))
                .unwrap()
                .contains("--threads-per-core=1")
        );
    }

    #[test]
    fn staging_and_checks() {
        let t = Cluster::load("tetralith").unwrap();
        let mut sp = spec(&t, &["reduce", "/proj/x/big.h5", "--var", "a"]);
        sp.stage = true;
        let s = render(&sp).unwrap();
        assert!(
            s.contains("cp \"$INPUT\" \"$SNIC_TMP/\"") && s.contains("reduce \"$INPUT\" --var a"),
            "{s}"
        );
        let k = Cluster::load("kebnekaise").unwrap();
        let mut sk = spec(&k, &["reduce", "x.h5"]);
        sk.stage = true;
        assert!(render(&sk).is_err());
        let mut big = spec(&t, &["reduce", "x.h5"]);
        big.ntasks_per_node = 32;
        assert!(render(&big).unwrap_err().to_string().contains("exceed"));
    }

    #[test]
    fn scaling_jobs_use_the_site_launcher() {
        let args = [
            "scaling", "run", "--mode", "strong", "--ranks", "1,2", "--out", "s", "--", "reduce",
            "x.h5",
        ];
        let c = Cluster::load("cosmos").unwrap();
        let s = render(&spec(&c, &args)).unwrap();
        assert!(
            s.contains("\"$CHUNKWISE\" scaling run --launcher mpirun --mode strong"),
            "{s}"
        );
        assert!(s.contains("\"$CHUNKWISE\" scaling report s\n"), "{s}");
        let k = Cluster::load("kebnekaise").unwrap();
        let s = render(&spec(&k, &args)).unwrap();
        assert!(
            s.contains("\"$CHUNKWISE\" scaling run --mode strong"),
            "{s}"
        );
    }

    #[test]
    fn quoting() {
        assert_eq!(shell_quote("a.h5"), "a.h5");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote(""), "''");
        assert_eq!(shell_quote("$(id) `x` \\ \""), r#""\$(id) \`x\` \\ \"""#);
    }
}
