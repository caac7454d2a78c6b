//! The test harness (libtest-mimic) of the test files whose tests need something this machine may not have —
//! root, QEMU, a Docker engine, sshd: a test that finds it cannot run calls [`skipped`] with the reason and
//! returns, and the summary lists it as `ignored, <reason>` instead of `ok`. With `TELLTALE_REQUIRE_ALL_TESTS`
//! set (CI) the skip helpers fail the test instead. Those files set `harness = false` in Cargo.toml and end with
//! [`tests!`]`(name, …)`; the test functions themselves are plain `fn()`s.

use std::cell::RefCell;

use libtest_mimic::{Arguments, Completion, Trial};

thread_local! {
    /// Why the test running on this thread did not run, once it says so.
    static SKIPPED: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Records that the test running on this thread cannot run here, and why; the caller then returns.
pub fn skipped(why: impl Into<String>) {
    let why = why.into();
    SKIPPED.with(|s| *s.borrow_mut() = Some(why));
}

/// Runs `tests` like `cargo test` would (filters, `--list`, `--test-threads`, `RUST_TEST_THREADS`), a test that
/// called [`skipped`] reported as ignored with its reason; exits the process with the usual code.
/// Tests run in name order, as libtest runs them (tests that look at this process's children rely on who runs
/// beside them).
pub fn run(mut tests: Vec<(&'static str, fn())>) -> ! {
    tests.sort_by_key(|(name, _)| *name);
    let mut args = Arguments::from_args();
    if args.test_threads.is_none() {
        args.test_threads = std::env::var("RUST_TEST_THREADS")
            .ok()
            .and_then(|n| n.parse().ok());
    }
    let trials = tests
        .into_iter()
        .map(|(name, test)| {
            Trial::ignorable_test(name, move || {
                SKIPPED.with(|s| s.borrow_mut().take());
                test();
                Ok(match SKIPPED.with(|s| s.borrow_mut().take()) {
                    Some(why) => Completion::ignored_with(why),
                    None => Completion::Completed,
                })
            })
        })
        .collect();
    libtest_mimic::run(&args, trials).exit()
}

/// `fn main` of a test file: `tests!(first_test, second_test)`.
#[macro_export]
macro_rules! tests {
    ($($name:ident),+ $(,)?) => {
        fn main() {
            common::harness::run(vec![$((stringify!($name), $name as fn())),+])
        }
    };
}
