//! Sweeps: a base configuration of `vgrad train`, axes whose cartesian product is the grid,
//! and a number of seeds, read from `experiments/*.toml`; and where each run of a sweep
//! lives on disk, so an interrupted sweep can resume and a report can find its runs.
//!
//! ```toml
//! description = "The reference experiment, four scenarios"
//! seeds = 10
//!
//! [base]            # any field of `vgrad train`
//! steps = 2500
//!
//! [axes]            # one list per varied field
//! activation = ["sigmoid", "relu"]
//! ```

pub mod definition;
pub mod grid;
pub mod layout;

pub use definition::{FIELDS, SweepDefinition, SweepError};
pub use grid::{GridPoint, Overrides, Shard, Sweep};
pub use layout::{RunState, run_state};
