//! Reading profile logs back and turning them into reports.
//!
//! This module owns the read side: the [`model`] every report works on
//! (points, requests, trees with self time).

pub mod model;
