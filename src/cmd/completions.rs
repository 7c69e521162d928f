//! `chunkwise completions SHELL` and `chunkwise man [COMMAND]`: shell
//! completion scripts (`clap_complete`) and roff man pages (`clap_mangen`)
//! generated from the same clap definitions the parser uses, so they can
//! never drift from the real options.

use crate::cli::{Cli, CompletionShell, CompletionsArgs, ManArgs};
use clap::CommandFactory;
use std::io::Write;

/// Write the completion script for `a.shell` to standard output.
pub fn completions(a: &CompletionsArgs) -> anyhow::Result<()> {
    let mut cmd = Cli::command();
    let shell = match a.shell {
        CompletionShell::Bash => clap_complete::Shell::Bash,
        CompletionShell::Zsh => clap_complete::Shell::Zsh,
        CompletionShell::Fish => clap_complete::Shell::Fish,
    };
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut cmd, "chunkwise", &mut out);
    std::io::stdout().write_all(&out)?;
    Ok(())
}

/// The page of `chunkwise` (no name) or of one command, as roff.
fn page(name: Option<&str>) -> anyhow::Result<(String, Vec<u8>)> {
    let mut cmd = Cli::command();
    cmd.build();
    let (file, page) = match name {
        None => ("chunkwise".to_string(), cmd),
        Some(name) => {
            let sub = cmd.find_subcommand(name).cloned().ok_or_else(|| {
                crate::error::CwError::Parse(format!(
                    "no command '{name}'; choose one of {}",
                    commands().join(", ")
                ))
            })?;
            let full = format!("chunkwise-{name}");
            // clap keeps names as `&'static str`; this process prints one page.
            let leaked: &'static str = Box::leak(full.clone().into_boxed_str());
            (full, sub.name(leaked))
        }
    };
    let mut out = Vec::new();
    clap_mangen::Man::new(page).render(&mut out)?;
    Ok((file, out))
}

/// Names of the commands (each has its own page).
fn commands() -> Vec<String> {
    Cli::command()
        .get_subcommands()
        .map(|c| c.get_name().to_string())
        .collect()
}

/// Write the man page of chunkwise (or of one command) to standard output,
/// or every page (`chunkwise.1`, `chunkwise-reduce.1`, …) into `--dir`.
pub fn man(a: &ManArgs) -> anyhow::Result<()> {
    if let Some(dir) = &a.dir {
        let mut names = vec![None];
        let cmds = commands();
        names.extend(cmds.iter().map(|c| Some(c.as_str())));
        for n in names {
            let (file, text) = page(n)?;
            let path = dir.join(format!("{file}.1"));
            super::output::write_atomic(&path, &text, true)?;
        }
        return Ok(());
    }
    let (_, text) = page(a.command.as_deref())?;
    std::io::stdout().write_all(&text)?;
    Ok(())
}
