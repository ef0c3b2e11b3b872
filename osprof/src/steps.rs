//! Counting the steps of the algorithms whose cost must stay linear, or
//! n log n, in the number of points of a request (`show`'s tree, its
//! layouts), so that tests check their complexity by counting instead of
//! timing. Only a test build counts; in any other build [`step`] is empty
//! and vanishes.

#[cfg(test)]
thread_local! {
    static STEPS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// Counts `n` steps of work (one comparison, one node visited, one element
/// scanned) on this thread.
#[inline]
#[cfg_attr(not(test), allow(unused_variables))]
pub(crate) fn step(n: usize) {
    #[cfg(test)]
    STEPS.with(|s| s.set(s.get() + n as u64));
}

/// The steps counted on this thread since the last call, and a new count.
#[cfg(test)]
pub(crate) fn take() -> u64 {
    STEPS.with(|s| s.replace(0))
}
