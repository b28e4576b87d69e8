//! Sweeps: a base run configuration, axes whose cartesian product is the grid, and a
//! number of seeds, read from `experiments/*.toml`; and running them as parallel
//! `vgrad train` processes that resume from the run folders on disk.
//!
//! ```toml
//! description = "The reference experiment, four scenarios"
//! seeds = 10
//!
//! [base]            # any field of the run configuration (`vgrad train`'s flags)
//! steps = 2500
//!
//! [axes]            # one list per varied field
//! activation = ["sigmoid", "relu"]
//! ```

pub mod definition;
pub mod grid;
pub mod runner;

pub use definition::{SweepDefinition, SweepError};
pub use grid::{GridPoint, Overrides, Shard, Sweep};
pub use runner::{SweepOptions, SweepOutcome};
