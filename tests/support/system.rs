//! Programs from the system that some tests need (Debian packages), and
//! the rule for when one is missing: the test fails and names the package.
//! It never passes without having run. `.ci/test` installs every one of
//! them; on a machine of your own, install them too (the README lists
//! them).

use std::path::Path;

/// libfaketime, which steps the wall clock of one child process.
pub const LIBFAKETIME: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";

/// Panics, naming the Debian package, unless `path` exists.
pub fn require(path: &str, package: &str, test: &str) {
    assert!(
        Path::new(path).exists(),
        "{test} needs {path}, from Debian's `{package}` package, and was NOT run: \
         install it (`apt-get install {package}`; .ci/test does) and run the tests again"
    );
}

/// Panics, naming the Debian package, unless `program` is on the `PATH`.
pub fn require_program(program: &str, package: &str, test: &str) {
    let found = std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()));
    assert!(
        found,
        "{test} needs `{program}`, from Debian's `{package}` package, and was NOT run: \
         install it (`apt-get install {package}`; .ci/test does) and run the tests again"
    );
}
