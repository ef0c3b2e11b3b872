//! How the tabular reports look: the text, Markdown, CSV and JSON
//! renderings of [`rank`](crate::rank) and [`list`](crate::list), and the
//! escaping of text every report's output shares.
//!
//! The reports compute their figures in their own modules; this one only
//! turns finished figures into bytes, so that a change of layout never
//! touches the reading of logs, and the other way round.

pub(crate) mod escape;
mod list;
mod rank;
