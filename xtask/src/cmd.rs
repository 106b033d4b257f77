//! Running other programs: the one place that knows where the workspace is, how to call cargo,
//! how to print what is being run, and how to tee a child's output to the terminal while keeping
//! a copy to parse.
//!
//! Why a module for this: every task here is "run a few tools in order and stop with a clear
//! message at the first failure". Doing that consistently (echo the command, name the step that
//! failed, say what to install when a program is missing) is what makes `cargo xtask test` usable
//! on a fresh machine, so it lives in one place instead of being repeated per task.

use std::ffi::OsStr;
use std::io::{self, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;

use anyhow::{bail, Context, Result};

/// The workspace root (the directory holding the top-level `Cargo.toml`).
pub fn root() -> PathBuf {
    // xtask lives at `<root>/xtask`. `cargo run` tells us where at run time; the compile-time
    // value is the fallback (it goes stale if the checkout moves but target/ is reused).
    let manifest_dir = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .filter(|dir| dir.join("Cargo.toml").is_file())
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    match manifest_dir.parent() {
        Some(parent) => parent.to_path_buf(),
        None => manifest_dir,
    }
}

/// Cargo's target directory: `$CARGO_TARGET_DIR` (relative to the root) or `<root>/target`.
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => root().join(dir),
        _ => root().join("target"),
    }
}

/// The cargo that runs us (cargo sets `$CARGO` for `cargo run`), or `cargo` from `PATH`.
pub fn cargo() -> Command {
    let program = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(program);
    cmd.current_dir(root());
    cmd
}

/// A command run from the workspace root.
pub fn command(program: impl AsRef<OsStr>) -> Command {
    let mut cmd = Command::new(program);
    cmd.current_dir(root());
    cmd
}

/// Makes programs that `cargo install` puts in `$CARGO_HOME/bin` findable by us and by children
/// (cargo itself looks up `wasm-bindgen-test-runner` on `PATH`), even if the shell's `PATH` lacks
/// it. Called once at start-up, before any thread exists.
pub fn put_cargo_bin_on_path() {
    let Some(bin) = cargo_home().map(|home| home.join("bin")) else {
        return;
    };
    let path = std::env::var_os("PATH").unwrap_or_default();
    if std::env::split_paths(&path).any(|p| p == bin) {
        return;
    }
    let joined = std::env::join_paths(std::iter::once(bin).chain(std::env::split_paths(&path)));
    if let Ok(joined) = joined {
        std::env::set_var("PATH", joined);
    }
}

/// `$CARGO_HOME`, or `~/.cargo`.
pub fn cargo_home() -> Option<PathBuf> {
    std::env::var_os("CARGO_HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
}

/// Prints a step header, e.g. `==> cargo fmt --all --check`.
pub fn header(title: &str) {
    let line = format!("==> {title}");
    if io::stderr().is_terminal() {
        eprintln!("\n\x1b[1;36m{line}\x1b[0m");
    } else {
        eprintln!("\n{line}");
    }
}

/// The command as a shell-like line, for echoing and error messages.
pub fn display(cmd: &Command) -> String {
    let mut parts = vec![cmd.get_program().to_string_lossy().into_owned()];
    parts.extend(cmd.get_args().map(|a| {
        let a = a.to_string_lossy();
        if a.is_empty() || a.contains(char::is_whitespace) {
            format!("'{a}'")
        } else {
            a.into_owned()
        }
    }));
    // Show `cargo` rather than the toolchain's absolute path: shorter and copy-pasteable.
    if Path::new(&parts[0]).file_name() == Some(OsStr::new("cargo")) {
        parts[0] = "cargo".into();
    }
    parts.join(" ")
}

/// Runs `cmd` with inherited stdio; fails with the command line if it cannot start or fails.
pub fn run(cmd: &mut Command) -> Result<()> {
    let line = display(cmd);
    eprintln!("$ {line}");
    let status = cmd.status().map_err(|e| spawn_error(&line, e))?;
    if !status.success() {
        bail!("`{line}` failed ({status})");
    }
    Ok(())
}

/// Runs `cmd` quietly and returns its stdout when it succeeds; `None` if it cannot be started or
/// fails (used to probe for tools: `wasm-bindgen --version`, `rustc --print ...`).
pub fn probe(cmd: &mut Command) -> Option<String> {
    let out = cmd
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Runs `cmd`, streaming its stdout and stderr to ours as they arrive, and returns the exit status
/// together with everything it printed, so the caller can parse test counts: all of stdout, then
/// all of stderr (each kept whole, so a line of one is never split by a chunk of the other), ANSI
/// colours stripped.
pub fn run_tee(cmd: &mut Command) -> Result<(ExitStatus, String)> {
    let line = display(cmd);
    eprintln!("$ {line}");
    if io::stderr().is_terminal() && std::env::var_os("CARGO_TERM_COLOR").is_none() {
        // Piped output would lose cargo's colours; keep them for the human, strip them for parsing.
        cmd.env("CARGO_TERM_COLOR", "always");
    }
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| spawn_error(&line, e))?;
    let (out_buf, err_buf) = (
        Arc::new(Mutex::new(Vec::new())),
        Arc::new(Mutex::new(Vec::new())),
    );
    let out = child.stdout.take().map(|s| pump(s, io::stdout(), &out_buf));
    let err = child.stderr.take().map(|s| pump(s, io::stderr(), &err_buf));
    let status = child
        .wait()
        .with_context(|| format!("waiting for `{line}`"))?;
    for handle in [out, err].into_iter().flatten() {
        let _ = handle.join();
    }
    let mut text = String::new();
    for buf in [out_buf, err_buf] {
        let bytes = std::mem::take(&mut *buf.lock().unwrap_or_else(|e| e.into_inner()));
        text.push_str(&strip_ansi(&String::from_utf8_lossy(&bytes)));
        if !text.is_empty() && !text.ends_with('\n') {
            text.push('\n');
        }
    }
    Ok((status, text))
}

/// Whether [`run_tee`] echoes. Not in unit tests: their fake test output (`test result: ...`)
/// would land in the output of the real `cargo test` that `cargo xtask test` parses.
const ECHO: bool = !cfg!(test);

/// Copies a child's stream to ours chunk by chunk, appending each chunk to `captured`.
fn pump(
    mut from: impl Read + Send + 'static,
    mut to: impl Write + Send + 'static,
    captured: &Arc<Mutex<Vec<u8>>>,
) -> thread::JoinHandle<()> {
    let captured = Arc::clone(captured);
    thread::spawn(move || {
        let mut buf = [0u8; 8192];
        loop {
            match from.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    if ECHO {
                        let _ = to.write_all(&buf[..n]);
                        let _ = to.flush();
                    }
                    captured
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .extend_from_slice(&buf[..n]);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => break,
            }
        }
    })
}

/// Removes the ANSI escape sequences terminals get from cargo and test runners (CSI
/// `ESC [ ... final-byte`, `ESC ( x`, and two-byte `ESC x`).
pub fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\x1b' {
            out.push(c);
            continue;
        }
        match chars.next() {
            // CSI: parameters and intermediates, then one final byte in '@'..='~'.
            Some('[') => {
                for c in chars.by_ref() {
                    if ('@'..='~').contains(&c) {
                        break;
                    }
                }
            }
            // Character set designation (`ESC ( B`): one more byte.
            Some('(' | ')') => {
                chars.next();
            }
            // Any other two-byte sequence.
            _ => {}
        }
    }
    out
}

fn spawn_error(line: &str, e: io::Error) -> anyhow::Error {
    if e.kind() == io::ErrorKind::NotFound {
        let program = line.split_whitespace().next().unwrap_or(line);
        anyhow::anyhow!("cannot run `{line}`: `{program}` is not installed or not on PATH")
    } else {
        anyhow::Error::new(e).context(format!("cannot run `{line}`"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_colour_codes() {
        let coloured = "test result: \x1b[32mok\x1b[0m. 3 passed;\x1b[1m\x1b[K done\x1b(B";
        assert_eq!(strip_ansi(coloured), "test result: ok. 3 passed; done");
        assert_eq!(strip_ansi("plain ✓"), "plain ✓");
        assert_eq!(strip_ansi("trailing \x1b"), "trailing ");
    }

    #[test]
    fn displays_commands_shell_like() {
        let mut cmd = Command::new("/x/bin/cargo");
        cmd.args(["test", "--features", "a b", ""]);
        assert_eq!(display(&cmd), "cargo test --features 'a b' ''");
    }

    #[test]
    fn root_holds_the_workspace_manifest() {
        let manifest = std::fs::read_to_string(root().join("Cargo.toml")).unwrap();
        assert!(manifest.contains("[workspace]"));
    }

    #[test]
    fn tee_captures_both_streams() {
        let mut cmd = Command::new("sh");
        let script = "printf te; printf 'e1\\nE' >&2; sleep 0.1; printf 'st\\n'; exit 3";
        cmd.args(["-c", script]);
        let (status, text) = run_tee(&mut cmd).unwrap();
        assert_eq!(status.code(), Some(3));
        assert_eq!(text, "test\ne1\nE\n");
    }

    #[test]
    fn missing_programs_are_named() {
        let err = run(&mut Command::new("definitely-not-a-program-xtask")).unwrap_err();
        assert!(err.to_string().contains("not installed"), "{err}");
        assert!(probe(&mut Command::new("definitely-not-a-program-xtask")).is_none());
    }
}
