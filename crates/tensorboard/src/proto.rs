//! The messages of TensorFlow's `event.proto` and `summary.proto` that scalars and
//! histograms need, with their original field numbers (the other fields are left out;
//! readers skip what they do not know).

/// `tensorflow.Event`: one record of an event file.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Event {
    /// Seconds since the Unix epoch.
    #[prost(double, tag = "1")]
    pub wall_time: f64,
    /// Training step.
    #[prost(int64, tag = "2")]
    pub step: i64,
    /// What the event holds.
    #[prost(oneof = "What", tags = "3, 5")]
    pub what: Option<What>,
}

/// `Event.what`: the file version (first record) or a summary.
#[derive(Clone, PartialEq, prost::Oneof)]
pub enum What {
    /// `brain.Event:2` in the first record of a file.
    #[prost(string, tag = "3")]
    FileVersion(String),
    /// Values logged at a step.
    #[prost(message, tag = "5")]
    Summary(Summary),
}

/// `tensorflow.Summary`: named values.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Summary {
    /// The values.
    #[prost(message, repeated, tag = "1")]
    pub value: Vec<SummaryValue>,
}

/// `tensorflow.Summary.Value`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SummaryValue {
    /// The series this value belongs to, e.g. `loss` or `grad_hist/layer1`.
    #[prost(string, tag = "1")]
    pub tag: String,
    /// The value.
    #[prost(oneof = "Value", tags = "2, 5")]
    pub value: Option<Value>,
}

/// `Summary.Value.value`: a scalar or a histogram.
#[derive(Clone, PartialEq, prost::Oneof)]
pub enum Value {
    /// A scalar, shown in TensorBoard's scalars dashboard.
    #[prost(float, tag = "2")]
    SimpleValue(f32),
    /// A histogram, shown in the histograms and distributions dashboards.
    #[prost(message, tag = "5")]
    Histo(HistogramProto),
}

/// `tensorflow.HistogramProto`. Bucket `i` counts the values in
/// `(bucket_limit[i-1], bucket_limit[i]]`; the first bucket starts at `min`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct HistogramProto {
    /// Smallest value.
    #[prost(double, tag = "1")]
    pub min: f64,
    /// Largest value.
    #[prost(double, tag = "2")]
    pub max: f64,
    /// Number of values.
    #[prost(double, tag = "3")]
    pub num: f64,
    /// Sum of the values.
    #[prost(double, tag = "4")]
    pub sum: f64,
    /// Sum of their squares.
    #[prost(double, tag = "5")]
    pub sum_squares: f64,
    /// Upper edge of each bucket.
    #[prost(double, repeated, tag = "6")]
    pub bucket_limit: Vec<f64>,
    /// Count of each bucket.
    #[prost(double, repeated, tag = "7")]
    pub bucket: Vec<f64>,
}
