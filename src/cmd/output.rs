//! Safe output files: validated up front, written under a temporary name in
//! the same directory, renamed into place only when complete.
//!
//! Rules (one mechanism for every command that writes a file):
//! * An output is a regular file (a directory with `zarr.json` for a Zarr
//!   store) or absent; anything else — a device, a FIFO, a socket, a
//!   symbolic link — is refused, with or without `--force`. It is never one
//!   of the inputs (same path after resolving links, or the same inode).
//! * The temporary name ([`crate::temp_name`]) is short (it fits whatever
//!   the output's name), unique per run, and created exclusively
//!   (`O_CREAT|O_EXCL`, `mkdir`): a file that already exists is never
//!   opened, truncated or removed as our temporary.
//! * The rename into place re-checks the output and that the temporary is
//!   still the file this run created (device and inode). Without `--force`
//!   it never replaces anything (`renameat2(RENAME_NOREPLACE)`, or
//!   `link` + `unlink` where the file system lacks it): a file that
//!   appeared meanwhile — another run's output — is kept and this run
//!   fails. With `--force` an existing regular file is replaced atomically.
//! * Every error path removes the temporary (on drop, on `MPI_Abort`, on a
//!   signal: see `crate::interrupt`). After a SIGKILL, where nothing can
//!   run, the next run on the same output finds the stale temporary by its
//!   name: one written by a process of this host that no longer exists is
//!   removed (with a warning); one of a live process or of another host is
//!   reported and left alone.

use crate::comm::Comm;
use crate::error::CwError;
use crate::temp_name::{self, TempOwner};
use std::ffi::{CString, OsStr};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

/// What an output is on disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// One regular file.
    File,
    /// A directory tree (a Zarr store).
    Dir,
}

/// What is at `p` now, for messages: `None` when nothing is.
fn file_type_name(m: &std::fs::Metadata) -> &'static str {
    let t = m.file_type();
    if t.is_symlink() {
        "a symbolic link"
    } else if t.is_dir() {
        "a directory"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_fifo() {
        "a FIFO (named pipe)"
    } else if t.is_socket() {
        "a socket"
    } else {
        "a regular file"
    }
}

fn check_lengths(out: &Path) -> Result<(), CwError> {
    let name = out.file_name().map_or(0, |n| n.len());
    temp_name::check_lengths(
        &out.display().to_string(),
        name,
        out.as_os_str().as_bytes().len(),
    )
}

fn check_parent(out: &Path) -> Result<(), CwError> {
    let dir = parent_dir(out);
    if !dir.is_dir() {
        return Err(CwError::Output(format!(
            "output directory '{}' of '{}' does not exist",
            dir.display(),
            out.display()
        )));
    }
    if out.file_name().is_none() {
        return Err(CwError::Output(format!(
            "output '{}' does not name a file",
            out.display()
        )));
    }
    Ok(())
}

/// Check that `out` can be written: its directory exists, its name fits,
/// it is a regular file or absent, it is not one of the `inputs`, and it
/// does not exist unless `force`.
pub fn check_output(out: &Path, force: bool, inputs: &[&Path]) -> Result<(), CwError> {
    let shown = out.display();
    check_lengths(out)?;
    check_parent(out)?;
    let existing = std::fs::symlink_metadata(out).ok();
    if let Some(m) = &existing
        && !m.file_type().is_file()
    {
        return Err(CwError::Output(format!(
            "output '{shown}' exists and is {}; outputs must be regular files or absent (not replaced, with or without --force)",
            file_type_name(m)
        )));
    }
    for input in inputs {
        if same_file(out, input) {
            return Err(CwError::Output(format!(
                "output '{shown}' is the same file as input '{}'",
                input.display()
            )));
        }
    }
    if existing.is_some() && !force {
        return Err(CwError::Output(format!(
            "output '{shown}' exists; pass --force to replace it"
        )));
    }
    Ok(())
}

/// Check that the Zarr store (a directory) `out` can be written: its parent
/// exists, no input lies inside it, and it does not exist unless `force` —
/// and then only a Zarr store (with `zarr.json`) is ever replaced.
pub fn check_output_store(out: &Path, force: bool, inputs: &[&Path]) -> Result<(), CwError> {
    let shown = out.display();
    check_lengths(out)?;
    check_parent(out)?;
    for input in inputs {
        if let (Ok(o), Ok(i)) = (std::fs::canonicalize(out), std::fs::canonicalize(input))
            && i.starts_with(&o)
        {
            return Err(CwError::Output(format!(
                "output '{shown}' contains the input '{}'",
                input.display()
            )));
        }
    }
    if let Ok(m) = std::fs::symlink_metadata(out) {
        if !force {
            return Err(CwError::Output(format!(
                "output '{shown}' exists; pass --force to replace it"
            )));
        }
        if !m.is_dir() || !out.join("zarr.json").is_file() {
            return Err(CwError::Output(format!(
                "output '{shown}' exists and is not a Zarr store (no zarr.json); not replacing it"
            )));
        }
    }
    Ok(())
}

/// Bytes of a file, or of every file under a directory.
pub fn tree_bytes(p: &Path) -> u64 {
    match std::fs::metadata(p) {
        Ok(m) if m.is_dir() => std::fs::read_dir(p)
            .map(|rd| {
                rd.filter_map(Result::ok)
                    .map(|e| tree_bytes(&e.path()))
                    .sum()
            })
            .unwrap_or(0),
        Ok(m) => m.len(),
        Err(_) => 0,
    }
}

fn parent_dir(p: &Path) -> PathBuf {
    match p.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Same path after resolving links, or the same inode (hard links).
fn same_file(a: &Path, b: &Path) -> bool {
    if let (Ok(x), Ok(y)) = (std::fs::metadata(a), std::fs::metadata(b))
        && (x.dev(), x.ino()) == (y.dev(), y.ino())
    {
        return true;
    }
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(x), Ok(y)) => x == y,
        _ => false,
    }
}

/// This host's name (as `gethostname` gives it).
fn host_name() -> Vec<u8> {
    let mut buf = [0u8; 256];
    let ok = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) } == 0;
    if !ok {
        return b"?".to_vec();
    }
    let n = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    buf[..n].to_vec()
}

/// The owner fields of a temporary made by this process now.
fn this_run() -> TempOwner {
    let mut nonce = [0u8; 4];
    let random = std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut nonce))
        .is_ok();
    let nonce = if random {
        u32::from_le_bytes(nonce)
    } else {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        temp_name::fnv1a64(&t.to_le_bytes()) as u32
    };
    TempOwner {
        host: temp_name::fnv1a64(&host_name()) as u32,
        pid: std::process::id(),
        nonce,
    }
}

/// True if process `pid` exists on this host.
fn process_alive(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    if pid <= 0 {
        return false;
    }
    let r = unsafe { libc::kill(pid, 0) };
    r == 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

/// Find temporaries of `out` left by earlier runs: remove those whose
/// process (on this host) no longer exists, report the others. Never
/// touches one of the `inputs`, nor anything but a regular file (`Kind::File`)
/// or a directory (`Kind::Dir`) with the temporary-name pattern.
fn clean_stale(out: &Path, kind: Kind, inputs: &[&Path]) {
    let Some(name) = out.file_name() else { return };
    let dir = parent_dir(out);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return;
    };
    let me = this_run();
    for e in entries.filter_map(Result::ok) {
        let Some(owner) = temp_name::parse(e.file_name().as_bytes(), name.as_bytes()) else {
            continue;
        };
        let p = e.path();
        let Ok(m) = std::fs::symlink_metadata(&p) else {
            continue;
        };
        let right_type = match kind {
            Kind::File => m.file_type().is_file(),
            Kind::Dir => m.is_dir(),
        };
        if !right_type || inputs.iter().any(|i| same_file(&p, i)) {
            continue;
        }
        if owner.host == me.host && !process_alive(owner.pid) {
            let removed = match kind {
                Kind::File => std::fs::remove_file(&p),
                Kind::Dir => std::fs::remove_dir_all(&p),
            };
            if removed.is_ok() {
                crate::error::say(&format!(
                    "chunkwise: warning: removed '{}', the temporary output of an earlier run that was killed (process {} on this host no longer exists)",
                    p.display(),
                    owner.pid
                ));
            }
        } else {
            let whose = if owner.host == me.host {
                format!("process {} on this host, still running", owner.pid)
            } else {
                format!("process {} on another host", owner.pid)
            };
            crate::error::say(&format!(
                "chunkwise: warning: '{}' is the temporary output of another run writing '{}' ({whose}); left alone — remove it once that run has ended",
                p.display(),
                out.display()
            ));
        }
    }
}

/// A failure writing (the temporary file of) `out`: names the output, and
/// the cause when the file system holding it is full — parallel HDF5 often
/// reports a failed MPI-IO write without the system's reason.
pub fn write_failed(out: &Path, e: impl std::fmt::Display) -> CwError {
    let mut msg = format!("writing '{}': {e}", out.display());
    if !msg.contains("No space left on device")
        && let Some(free) = free_bytes(&parent_dir(out))
        && free < 1 << 20
    {
        msg.push_str(&format!(
            " — No space left on device: the file system holding '{}' has {free} bytes free",
            parent_dir(out).display()
        ));
    }
    CwError::Output(msg)
}

/// Refuse to go on writing (the temporary of) `out` with less than `need`
/// bytes free on its file system. For the serial metadata step after a
/// parallel write: HDF5 cannot recover from a metadata flush that fails for
/// want of space (its half-closed file crashes the process at exit), so it
/// must not start without room.
pub fn ensure_room(out: &Path, need: u64) -> Result<(), CwError> {
    match free_bytes(&parent_dir(out)) {
        Some(free) if free < need => Err(CwError::Output(format!(
            "writing '{}': no room left for its metadata — No space left on device: the file system holding '{}' has {free} bytes free",
            out.display(),
            parent_dir(out).display()
        ))),
        _ => Ok(()),
    }
}

/// Bytes an unprivileged writer may still use on the file system of `dir`.
fn free_bytes(dir: &Path) -> Option<u64> {
    let c = CString::new(dir.as_os_str().as_bytes()).ok()?;
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return None;
    }
    Some(st.f_bavail as u64 * st.f_frsize as u64)
}

/// A temporary output of this run: created exclusively, removed on every
/// error path (here on drop; on `MPI_Abort` and signals through
/// `crate::interrupt`), renamed into place by [`TempOutput::commit`].
pub struct TempOutput {
    path: PathBuf,
    out: PathBuf,
    kind: Kind,
    force: bool,
    /// Device and inode of what this process created (the creating rank).
    made: Option<(u64, u64)>,
    /// The command's own output (not one of `formats`' candidates).
    is_final: bool,
    done: bool,
}

impl TempOutput {
    /// Rank-local: clean stale temporaries of `out`, then create a new one
    /// exclusively (an empty file, or an empty directory for `Kind::Dir`).
    pub fn create(
        out: &Path,
        force: bool,
        kind: Kind,
        inputs: &[&Path],
        is_final: bool,
    ) -> Result<TempOutput, CwError> {
        clean_stale(out, kind, inputs);
        let mut t = Self::named(out, force, kind, this_run(), is_final);
        t.make()?;
        Ok(t)
    }

    /// Collective: rank 0 cleans stale temporaries and creates the
    /// temporary exclusively, every rank learns its name; a failure is
    /// agreed (one message, every rank returns an error).
    pub fn create_collective(
        comm: &Comm,
        out: &Path,
        force: bool,
        kind: Kind,
        inputs: &[&Path],
        is_final: bool,
    ) -> anyhow::Result<TempOutput> {
        let made = if comm.is_root() {
            Self::create(out, force, kind, inputs, is_final).map(Some)
        } else {
            Ok(None)
        };
        let mut mine = comm.agree(made.map_err(Into::into))?;
        let owner = mine.as_ref().map(|t| t.owner_words()).unwrap_or([0; 3]);
        let words = comm.broadcast_words(&owner);
        if let Some(t) = mine.take() {
            return Ok(t);
        }
        let owner = TempOwner {
            host: words[0] as u32,
            pid: words[1] as u32,
            nonce: words[2] as u32,
        };
        let t = Self::named(out, force, kind, owner, is_final);
        crate::interrupt::add_temp(&t.path, kind == Kind::Dir);
        Ok(t)
    }

    fn named(out: &Path, force: bool, kind: Kind, owner: TempOwner, is_final: bool) -> Self {
        let name = out.file_name().unwrap_or(OsStr::new("out"));
        let tmp = temp_name::temp_name(name.as_bytes(), &owner);
        TempOutput {
            path: parent_dir(out).join(tmp),
            out: out.to_path_buf(),
            kind,
            force,
            made: None,
            is_final,
            done: false,
        }
    }

    fn owner_words(&self) -> [u64; 3] {
        let name = self.out.file_name().unwrap_or(OsStr::new("out"));
        let own = self
            .path
            .file_name()
            .and_then(|t| temp_name::parse(t.as_bytes(), name.as_bytes()))
            .expect("a name this module made parses");
        [
            u64::from(own.host),
            u64::from(own.pid),
            u64::from(own.nonce),
        ]
    }

    fn make(&mut self) -> Result<(), CwError> {
        use std::os::unix::fs::OpenOptionsExt;
        // Registered first: a signal from here on removes it.
        crate::interrupt::add_temp(&self.path, self.kind == Kind::Dir);
        let made = match self.kind {
            Kind::File => std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o644)
                .open(&self.path)
                .map(drop),
            Kind::Dir => std::fs::create_dir(&self.path),
        };
        if let Err(e) = made {
            crate::interrupt::forget_temp(&self.path);
            self.done = true;
            return Err(CwError::Output(format!(
                "cannot create the temporary output '{}' next to '{}': {e}",
                self.path.display(),
                self.out.display()
            )));
        }
        let m = std::fs::symlink_metadata(&self.path)
            .map_err(|e| CwError::Output(format!("cannot stat '{}': {e}", self.path.display())))?;
        self.made = Some((m.dev(), m.ino()));
        Ok(())
    }

    /// Where the output is written until it is complete.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Mark (on every rank) that the data are complete and only the final
    /// steps remain: a signal now waits for the run to end (see
    /// `crate::interrupt`). Not for `formats`' candidates.
    pub fn finishing(&self) {
        if self.is_final {
            crate::interrupt::set_finishing();
        }
    }

    /// The creating rank: move the complete temporary into place (see the
    /// module docs). On failure the temporary is removed.
    pub fn commit(mut self) -> Result<(), CwError> {
        log::info!(
            "'{}' complete as '{}'; renaming it into place",
            self.out.display(),
            self.path.display()
        );
        if self.is_final {
            crate::testhooks::before_commit();
        }
        let r = self.rename_into_place();
        if r.is_err() {
            self.remove();
        }
        self.done = true;
        if r.is_ok() && self.is_final {
            log::info!("'{}' renamed into place", self.out.display());
            crate::testhooks::after_commit();
        }
        r
    }

    fn rename_into_place(&self) -> Result<(), CwError> {
        let (tmp, out) = (&self.path, &self.out);
        let ours = std::fs::symlink_metadata(tmp)
            .ok()
            .map(|m| (m.dev(), m.ino()));
        if self.made.is_none() || ours != self.made {
            return Err(CwError::Output(format!(
                "the temporary output '{}' is no longer the file this run created; '{}' was not written",
                tmp.display(),
                out.display()
            )));
        }
        let existing = std::fs::symlink_metadata(out).ok();
        match (&existing, self.kind) {
            (Some(m), Kind::File) if !m.file_type().is_file() => {
                return Err(CwError::Output(format!(
                    "output '{}' is now {}; not replaced",
                    out.display(),
                    file_type_name(m)
                )));
            }
            (Some(m), Kind::Dir) if !m.is_dir() || !out.join("zarr.json").is_file() => {
                return Err(CwError::Output(format!(
                    "output '{}' is now {} that is not a Zarr store; not replaced",
                    out.display(),
                    file_type_name(m)
                )));
            }
            _ => {}
        }
        let fail = |e: std::io::Error| {
            CwError::Output(format!(
                "cannot rename '{}' to '{}': {e}",
                tmp.display(),
                out.display()
            ))
        };
        crate::interrupt::commit_with(tmp, out, self.is_final, || {
            if !self.force {
                return rename_noreplace(tmp, out, self.kind).map_err(|e| {
                    if e.kind() == std::io::ErrorKind::AlreadyExists {
                        CwError::Output(format!(
                            "output '{}' appeared while this run was writing it (another run?); it was kept and this run's result discarded — pass --force to replace it",
                            out.display()
                        ))
                    } else {
                        fail(e)
                    }
                });
            }
            if existing.is_some() && self.kind == Kind::Dir {
                // A store is replaced by moving it aside first (a directory
                // cannot be renamed over a non-empty one).
                let aside = tmp.with_extension("chunkwise-old");
                std::fs::rename(out, &aside).map_err(|e| {
                    CwError::Output(format!(
                        "cannot move the old '{}' aside: {e}",
                        out.display()
                    ))
                })?;
                if let Err(e) = std::fs::rename(tmp, out) {
                    let _ = std::fs::rename(&aside, out);
                    return Err(fail(e));
                }
                let _ = std::fs::remove_dir_all(&aside);
                return Ok(());
            }
            std::fs::rename(tmp, out).map_err(fail)
        })
    }

    fn remove(&mut self) {
        if self.made.is_some() && !self.done {
            let _ = match self.kind {
                Kind::File => std::fs::remove_file(&self.path),
                Kind::Dir => std::fs::remove_dir_all(&self.path),
            };
        }
        crate::interrupt::forget_temp(&self.path);
        self.done = true;
    }
}

impl Drop for TempOutput {
    /// An output not committed is removed (by the creating rank).
    fn drop(&mut self) {
        if !self.done {
            self.remove();
        }
    }
}

/// Rename `tmp` to `out` unless `out` exists (`AlreadyExists` then).
fn rename_noreplace(tmp: &Path, out: &Path, kind: Kind) -> std::io::Result<()> {
    let c = |p: &Path| CString::new(p.as_os_str().as_bytes()).map_err(std::io::Error::other);
    let (a, b) = (c(tmp)?, c(out)?);
    let r = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            a.as_ptr(),
            libc::AT_FDCWD,
            b.as_ptr(),
            libc::RENAME_NOREPLACE,
        )
    };
    if r == 0 {
        return Ok(());
    }
    let e = std::io::Error::last_os_error();
    if !matches!(
        e.raw_os_error(),
        Some(libc::EINVAL | libc::ENOSYS | libc::EOPNOTSUPP)
    ) {
        return Err(e);
    }
    // The file system has no RENAME_NOREPLACE: a hard link never replaces.
    match kind {
        Kind::File => {
            std::fs::hard_link(tmp, out)?;
            std::fs::remove_file(tmp)
        }
        Kind::Dir => {
            if std::fs::symlink_metadata(out).is_ok() {
                return Err(std::io::ErrorKind::AlreadyExists.into());
            }
            std::fs::rename(tmp, out)
        }
    }
}

/// Write `bytes` to `out` through a temporary (serial commands: job
/// scripts, study files); replaces an existing regular file only if `force`.
pub fn write_atomic(out: &Path, bytes: &[u8], force: bool) -> Result<(), CwError> {
    let t = TempOutput::create(out, force, Kind::File, &[], false)?;
    std::fs::write(t.path(), bytes).map_err(|e| {
        CwError::Output(format!(
            "cannot write '{}' (for '{}'): {e}",
            t.path().display(),
            out.display()
        ))
    })?;
    t.commit()
}

/// Replace `out` by the finished file `tmp` (a name the caller chose, for
/// files whose writer needs a particular extension: plots).
pub fn replace(tmp: &Path, out: &Path) -> Result<(), CwError> {
    std::fs::rename(tmp, out).map_err(|e| {
        CwError::Output(format!(
            "cannot rename '{}' to '{}': {e}",
            tmp.display(),
            out.display()
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_missing_dir_existing_same_file_and_non_regular() {
        let dir = std::env::temp_dir().join(format!("cw-out-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("x.h5");
        std::fs::write(&f, b"x").unwrap();
        assert!(
            check_output(&dir.join("nope/y.h5"), false, &[])
                .unwrap_err()
                .to_string()
                .contains("does not exist")
        );
        assert!(
            check_output(&f, false, &[])
                .unwrap_err()
                .to_string()
                .contains("--force")
        );
        assert!(check_output(&f, true, &[]).is_ok());
        assert!(
            check_output(&f, true, &[&f])
                .unwrap_err()
                .to_string()
                .contains("same file")
        );
        for (p, what) in [
            (Path::new("/dev/null"), "character device"),
            (dir.as_path(), "directory"),
        ] {
            let e = check_output(p, true, &[]).unwrap_err().to_string();
            assert!(e.contains(what), "{e}");
        }
        let link = dir.join("l.h5");
        std::os::unix::fs::symlink(&f, &link).unwrap();
        let e = check_output(&link, true, &[]).unwrap_err().to_string();
        assert!(e.contains("symbolic link"), "{e}");
        let e = check_output(&dir.join("n".repeat(256)), true, &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("256 bytes"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn temporaries_are_unique_exclusive_and_never_replace_without_force() {
        let dir = std::env::temp_dir().join(format!("cw-tmp-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let out = dir.join(format!("{}.nc", "o".repeat(250)));
        let a = TempOutput::create(&out, false, Kind::File, &[], false).unwrap();
        let b = TempOutput::create(&out, false, Kind::File, &[], false).unwrap();
        assert_ne!(a.path(), b.path());
        assert!(a.path().file_name().unwrap().len() <= temp_name::MAX_LEN);
        std::fs::write(a.path(), b"first").unwrap();
        std::fs::write(b.path(), b"second").unwrap();
        let (pa, pb) = (a.path().to_path_buf(), b.path().to_path_buf());
        a.commit().unwrap();
        // Without --force the second never replaces the first's output.
        let e = b.commit().unwrap_err().to_string();
        assert!(e.contains("appeared"), "{e}");
        assert_eq!(std::fs::read(&out).unwrap(), b"first");
        assert!(!pa.exists() && !pb.exists());
        // A temporary dropped uncommitted is removed.
        let c = TempOutput::create(&out, true, Kind::File, &[], false).unwrap();
        let pc = c.path().to_path_buf();
        assert!(pc.exists());
        drop(c);
        assert!(!pc.exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
