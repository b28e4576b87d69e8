//! Which network a run trains (`--model`), as the names users type. Building it is the
//! model crate's job (`vgrad_model::Mlp`, whose layers are dense or 3x3 convolutions, and
//! `vgrad_model::Recurrent`).

use std::fmt;
use std::str::FromStr;

use crate::ParseError;

/// The kind of network: the reference's dense layers, a convolutional network of the
/// same depth whose hidden layers are 3x3 convolutions, or a recurrent network read out
/// from its last hidden state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Architecture {
    /// Dense layers (784 -> width -> ... -> 10).
    Mlp,
    /// A stem convolution (stride 2, 28x28 -> 14x14), then two stages of 3x3
    /// convolutions (width channels at 14x14; the second stage starts with a stride-2
    /// convolution to 7x7 and twice the channels), global average pooling and a dense
    /// output layer: the plain network of He et al. 2016, Fig. 3, at MNIST's size.
    Cnn,
    /// Elman's vanilla RNN, `--activation` tanh or relu (PyTorch's `nn.RNN`); one
    /// recurrent layer of `--width` units and a dense readout.
    Rnn,
    /// Long short-term memory (Hochreiter & Schmidhuber 1997, with Gers et al.'s forget
    /// gate; PyTorch's `nn.LSTM`).
    Lstm,
    /// Gated recurrent unit (Cho et al. 2014; PyTorch's `nn.GRU`).
    Gru,
}

impl Architecture {
    /// Whether the hidden layers are convolutions.
    pub fn is_convolutional(self) -> bool {
        self == Self::Cnn
    }

    /// Whether the network is recurrent: it reads its input as a sequence.
    pub fn is_recurrent(self) -> bool {
        matches!(self, Self::Rnn | Self::Lstm | Self::Gru)
    }
}

impl fmt::Display for Architecture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Mlp => "mlp",
            Self::Cnn => "cnn",
            Self::Rnn => "rnn",
            Self::Lstm => "lstm",
            Self::Gru => "gru",
        })
    }
}

impl FromStr for Architecture {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, ParseError> {
        match s.trim() {
            "mlp" => Ok(Self::Mlp),
            "cnn" => Ok(Self::Cnn),
            "rnn" => Ok(Self::Rnn),
            "lstm" => Ok(Self::Lstm),
            "gru" => Ok(Self::Gru),
            other => Err(ParseError {
                what: "model",
                value: other.to_string(),
                expected: "expected one of mlp, cnn, rnn, lstm, gru".into(),
            }),
        }
    }
}

crate::serde_as_text!(Architecture);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_names_the_allowed_values() {
        for name in ["mlp", "cnn", "rnn", "lstm", "gru"] {
            assert_eq!(name.parse::<Architecture>().unwrap().to_string(), name);
        }
        assert_eq!(
            "transformer"
                .parse::<Architecture>()
                .unwrap_err()
                .to_string(),
            "invalid model `transformer`: expected one of mlp, cnn, rnn, lstm, gru"
        );
    }
}
