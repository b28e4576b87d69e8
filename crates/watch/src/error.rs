//! What can go wrong while watching a model.

use std::path::PathBuf;

/// An error of the watch; every variant that concerns one parameter or tap names it.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    /// The `GradStore` of a logged step has no gradient for a watched parameter.
    #[error(
        "the GradStore holds no gradient for parameter `{name}`: the loss passed to \
         backward() does not depend on it (is it used in the forward pass that computed \
         the loss, and not detached?), or the GradStore comes from another model's loss; \
         watch only the parameters that the loss depends on"
    )]
    MissingGradient {
        /// The parameter's name, as in the `VarMap`.
        name: String,
    },
    /// The `GradStore` of a logged step has no gradient for a tap recorded in the forward
    /// pass.
    #[error(
        "the GradStore holds no gradient for tap `{name}`: the loss passed to backward() \
         was not computed from the tensor that `taps.tap(\"{name}\", ..)` returned; use \
         the returned tensor in the rest of the forward pass"
    )]
    MissingTapGradient {
        /// The tap's name.
        name: String,
    },
    /// Nothing to watch.
    #[error(
        "no parameters to watch: create the Watch after the model, whose VarBuilder fills \
         the VarMap as it creates each layer"
    )]
    NoParameters,
    /// Two parameters with one name: their TensorBoard tags would collide.
    #[error("two parameters are named `{0}`: give each watched variable its own name")]
    DuplicateName(String),
    /// A run folder that already holds a watch's files.
    #[error(
        "{}: already holds {file} from an earlier run; pass a new folder (TensorBoard shows \
         each folder under --logdir as a run of its own) or remove this one", dir.display()
    )]
    Occupied {
        /// The folder.
        dir: PathBuf,
        /// The file found in it.
        file: String,
    },
    /// `observe` called twice for one step.
    #[error(
        "observe() was called twice for step {step} without stepped() between: call \
         stepped() after each optimizer step"
    )]
    Sequence {
        /// The step.
        step: u64,
    },
    /// Reading a parameter's tensor failed.
    #[error("parameter `{name}`: {source}")]
    Parameter {
        /// The parameter's name.
        name: String,
        /// candle's error.
        source: candle_core::Error,
    },
    /// Reading a tap's tensors failed.
    #[error("tap `{name}`: {source}")]
    Tap {
        /// The tap's name.
        name: String,
        /// candle's error.
        source: candle_core::Error,
    },
    /// Creating the run folder or writing `metrics.jsonl` failed.
    #[error("{}: {cause}", path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The cause.
        cause: std::io::Error,
    },
    /// Writing the TensorBoard event file failed.
    #[error(transparent)]
    Events(#[from] vgrad_tensorboard::EventError),
    /// An error raised by candle outside any one parameter: backward() or the optimizer's
    /// step.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}

/// So that `?` works on the watch's calls inside functions returning candle's `Result`.
impl From<WatchError> for candle_core::Error {
    fn from(e: WatchError) -> Self {
        candle_core::Error::wrap(e)
    }
}

/// Result type of this crate.
pub type Result<T> = std::result::Result<T, WatchError>;
