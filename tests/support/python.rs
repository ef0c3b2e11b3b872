//! The real Python peers: osprofiler, its OTLP exporter and its Redis client.
//!
//! Interop tests run against osprofiler from PyPI, never against a reading of
//! its code. The packages are pinned in `tests/python/requirements.txt`, and
//! the interpreter is found, in order, at:
//!
//! 1. `$OSPROFILER_PYTHON`;
//! 2. `<target>/osprofiler-venv/bin/python`, which the first test that needs
//!    it creates with `python3 -m venv` and `pip install -r
//!    tests/python/requirements.txt`, so that `cargo test --all-features`
//!    works on a fresh clone by itself. `.ci/test` makes the same venv the same
//!    way before the tests: there is one Python environment.
//!
//! If neither works, the test fails with the reason: interop tests never skip.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

/// The osprofiler version the interop tests pin.
pub const OSPROFILER_VERSION: &str = "4.4.0";

/// A Python interpreter that can `import osprofiler`.
pub fn python() -> &'static Path {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON.get_or_init(|| match find_or_install() {
        Ok(path) => path,
        Err(why) => panic!(
            "the interop tests need Python with osprofiler {OSPROFILER_VERSION}: {why}\n\
             set OSPROFILER_PYTHON to such an interpreter, or let the tests create \
             target/osprofiler-venv (needs python3 with venv and access to PyPI)"
        ),
    })
}

/// The pinned packages, one requirement per line.
const REQUIREMENTS: &str = include_str!("../python/requirements.txt");

/// What the tests import: each pinned package's modules in use.
const IMPORTS: &str = "import osprofiler.web, osprofiler.profiler, osprofiler.drivers.otlp, \
    opentelemetry.sdk.trace, opentelemetry.exporter.otlp.proto.http.trace_exporter, redis";

fn requirements() -> impl Iterator<Item = &'static str> {
    REQUIREMENTS
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
}

fn has_osprofiler(python: &Path) -> bool {
    Command::new(python)
        .args(["-c", IMPORTS])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn find_or_install() -> Result<PathBuf, String> {
    if let Some(path) = std::env::var_os("OSPROFILER_PYTHON") {
        let path = PathBuf::from(path);
        return if has_osprofiler(&path) {
            Ok(path)
        } else {
            Err(format!(
                "OSPROFILER_PYTHON={} cannot `{IMPORTS}`",
                path.display()
            ))
        };
    }
    let target = target_dir()?;
    let venv = target.join("osprofiler-venv");
    let python = venv.join("bin").join("python");
    if has_osprofiler(&python) {
        return Ok(python);
    }
    // Several test binaries may get here at once: the first to create the
    // lock directory installs, the others wait for it.
    std::fs::create_dir_all(&target).map_err(|e| e.to_string())?;
    let lock = target.join("osprofiler-venv.lock");
    for _ in 0..600 {
        match std::fs::create_dir(&lock) {
            Ok(()) => {
                let result = install(&venv, &python);
                let _ = std::fs::remove_dir(&lock);
                return result.map(|()| python);
            }
            Err(_) => {
                std::thread::sleep(Duration::from_millis(500));
                if has_osprofiler(&python) {
                    return Ok(python);
                }
            }
        }
    }
    Err(format!("timed out waiting for {}", lock.display()))
}

/// The cargo target directory this test binary was built in
/// (`<target>/<profile>/deps/<binary>`), so that every package of the
/// workspace shares one venv, wherever `CARGO_TARGET_DIR` points.
fn target_dir() -> Result<PathBuf, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    exe.ancestors()
        .nth(3)
        .map(Path::to_path_buf)
        .ok_or_else(|| format!("{} is not in a cargo target directory", exe.display()))
}

fn install(venv: &Path, python: &Path) -> Result<(), String> {
    if has_osprofiler(python) {
        return Ok(());
    }
    eprintln!(
        "creating {} with osprofiler {OSPROFILER_VERSION}",
        venv.display()
    );
    run(Command::new("python3").arg("-m").arg("venv").arg(venv))?;
    run(Command::new(python)
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
        ])
        .args(requirements()))?;
    if has_osprofiler(python) {
        Ok(())
    } else {
        Err(format!("the packages installed, but `{IMPORTS}` fails"))
    }
}

fn run(command: &mut Command) -> Result<(), String> {
    let output = command.output().map_err(|e| format!("{command:?}: {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{command:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

/// Runs a Python script with the osprofiler interpreter, passing `args`.
/// Panics with the script's stderr if it fails.
pub fn run_python(script: &str, args: &[&str]) -> Output {
    let output = Command::new(python())
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .expect("run python");
    assert!(
        output.status.success(),
        "python failed: {}\n{}",
        String::from_utf8_lossy(&output.stderr),
        String::from_utf8_lossy(&output.stdout)
    );
    output
}

/// A Python WSGI service of the tests (`tests/python/wsgi_service.py`, run
/// by the osprofiler interpreter), killed when dropped, however the test
/// ends.
pub struct PythonService {
    child: std::process::Child,
    /// The loopback port it serves on.
    pub port: u16,
}

impl PythonService {
    /// Starts `tests/python/wsgi_service.py` with `args` and `envs` (see
    /// the script for its options) and waits for the port it prints.
    pub fn wsgi(args: &[&str], envs: &[(&str, &str)]) -> PythonService {
        use std::io::BufRead as _;
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/wsgi_service.py");
        let mut child = Command::new(python())
            .arg(script)
            .args(args)
            .envs(envs.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the Python WSGI service");
        let stdout = child.stdout.take().expect("stdout");
        let mut service = PythonService { child, port: 0 };
        let mut first = String::new();
        std::io::BufReader::new(stdout)
            .read_line(&mut first)
            .expect("the service prints its port");
        service.port = first
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("the Python service did not start: {first:?}"));
        service
    }
}

impl Drop for PythonService {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
