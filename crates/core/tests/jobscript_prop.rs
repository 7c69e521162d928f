//! Property test: no argument can break or inject into a rendered job
//! script. For arbitrary strings as job name, account and `chunkwise`
//! arguments (newlines, quotes, `$(...)`, backticks, control characters,
//! non-ASCII), `render` either refuses the value (names Slurm would not
//! take) or gives a script that `bash -n` and `shellcheck` accept, whose
//! `#SBATCH` lines are the ones we wrote, and whose last line runs exactly
//! the arguments given (checked by letting bash parse them back).
//! `shellcheck` is skipped only where it is not installed.

use chunkwise_core::cluster::Cluster;
use chunkwise_core::jobscript::{JobSpec, check_slurm_word, render};
use proptest::prelude::*;
use std::io::Write;
use std::process::{Command, Stdio};

fn spec<'a>(c: &'a Cluster, name: &str, account: &str, args: &[String]) -> JobSpec<'a> {
    JobSpec {
        cluster: c,
        node: c.node_or_default(None).unwrap(),
        account: account.into(),
        job_name: name.into(),
        nodes: 1,
        ntasks_per_node: 1,
        cpus_per_task: 1,
        time: "00:10:00".into(),
        mem_per_cpu_mib: None,
        stage: c.name == "tetralith",
        args: args.to_vec(),
        rendered_from: args.to_vec(),
    }
}

/// Run `prog args` with `stdin`; (success, stdout+stderr).
fn run(prog: &str, args: &[&str], stdin: &str) -> Option<(bool, String)> {
    let mut child = Command::new(prog)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .ok()?;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text += &String::from_utf8_lossy(&out.stderr);
    Some((out.status.success(), text))
}

fn shellcheck_present() -> bool {
    Command::new("shellcheck")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Strings that try hard: shell metacharacters, line breaks, quotes.
fn nasty() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z0-9_.+-]{1,12}",
        ".{0,24}",
        proptest::collection::vec(
            prop_oneof![
                Just("\n".to_string()),
                Just("\r".to_string()),
                Just("'".to_string()),
                Just("\"".to_string()),
                Just("$(touch /tmp/cw-pwned)".to_string()),
                Just("`id`".to_string()),
                Just("; rm -rf /tmp/x".to_string()),
                Just("\\".to_string()),
                Just("#".to_string()),
                Just("%".to_string()),
                Just(" ".to_string()),
                Just("\t".to_string()),
                Just("é".to_string()),
                Just("${HOME}".to_string()),
                "[a-z]{1,4}",
            ],
            0..6
        )
        .prop_map(|v| v.concat()),
    ]
    .prop_filter("no NUL (not representable in argv)", |s| !s.contains('\0'))
}

/// Mostly valid Slurm names (so most cases reach bash), sometimes anything.
fn slurm_word() -> impl Strategy<Value = String> {
    prop_oneof![4 => "[a-z0-9_.+][a-z0-9_.+-]{0,11}", 1 => nasty()]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]
    #[test]
    fn scripts_stay_scripts(
        name in slurm_word(),
        account in slurm_word(),
        args in proptest::collection::vec(nasty(), 1..4),
        site in 0usize..5,
    ) {
        let c = Cluster::load(["local", "cosmos", "tetralith", "pelle", "kebnekaise"][site]).unwrap();
        let mut argv = vec!["reduce".to_string()];
        argv.extend(args);
        let valid = check_slurm_word(&name, "--job-name").is_ok()
            && check_slurm_word(&account, "--account").is_ok();
        let r = render(&spec(&c, &name, &account, &argv));
        prop_assert_eq!(r.is_ok(), valid, "{:?} / {:?}: {:?}", name, account, r);
        let Ok(script) = r else { return Ok(()) };
        let (ok, msg) = run("bash", &["-n"], &script).expect("bash");
        prop_assert!(ok, "bash -n: {}\n{}", msg, script);
        if shellcheck_present() {
            let (ok, msg) = run("shellcheck", &["-s", "bash", "-"], &script).unwrap();
            prop_assert!(ok, "shellcheck: {}\n{}", msg, script);
        }
        // Exactly our #SBATCH lines, and the values are the words given.
        let sbatch: Vec<&str> = script.lines().filter(|l| l.starts_with("#SBATCH")).collect();
        let (want_j, want_a) = (format!("#SBATCH -J {}", name), format!("#SBATCH -A {}", account));
        prop_assert!(sbatch.contains(&want_j.as_str()), "{:?}", sbatch);
        prop_assert!(sbatch.contains(&want_a.as_str()), "{:?}", sbatch);
        // The command line runs the arguments as given: let bash split the
        // words after the last "$CHUNKWISE" and print them NUL-separated.
        // (The command may span lines: a quoted argument can hold newlines.)
        let at = script.rfind("\"$CHUNKWISE\" ").unwrap();
        let words = &script[at + "\"$CHUNKWISE\" ".len()..];
        let probe = format!("INPUT={}\nprintf '%s\\0' {words}\n",
            chunkwise_core::jobscript::shell_quote(&argv[1]));
        let (ok, out) = run("bash", &["--noprofile", "--norc"], &probe).unwrap();
        prop_assert!(ok, "{}", out);
        let got: Vec<&str> = out.split('\0').collect();
        prop_assert_eq!(&got[..got.len() - 1], &argv.iter().map(String::as_str).collect::<Vec<_>>()[..]);
    }
}

/// Cases the property test found: an input argument `=` made the staging
/// line `INPUT==` (shellcheck SC1097), and `ar` made `INPUT=ar`, which
/// shellcheck takes for a command's name (SC2209); bash takes both.
#[test]
fn staged_inputs_are_quoted() {
    use chunkwise_core::jobscript::{shell_quote, shell_quote_always};
    assert_eq!(shell_quote_always("="), "'='");
    assert_eq!(shell_quote_always("ar"), "'ar'");
    assert_eq!(shell_quote_always("it's"), shell_quote("it's"));
    assert_eq!(shell_quote("a=b"), "a=b");
    for input in ["=", "ar", "=x"] {
        let argv: Vec<String> = ["reduce", input].iter().map(|s| s.to_string()).collect();
        for site in ["local", "cosmos", "tetralith", "pelle", "kebnekaise"] {
            let c = Cluster::load(site).unwrap();
            let script = render(&spec(&c, "a", "a", &argv)).unwrap();
            let (ok, msg) = run("bash", &["-n"], &script).expect("bash");
            assert!(ok, "{site}: bash -n: {msg}");
            if shellcheck_present() {
                let (ok, msg) = run("shellcheck", &["-s", "bash", "-"], &script).unwrap();
                assert!(ok, "{site}: shellcheck: {msg}\n{script}");
            }
        }
    }
}
