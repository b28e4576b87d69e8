//! The messages of TensorFlow's `event.proto`, `summary.proto` and `tensor.proto` that
//! scalars, histograms and plugin summaries need, the hparams plugin's messages
//! (`tensorboard/plugins/hparams/api.proto` and `plugin_data.proto`), the custom-scalars
//! plugin's `layout.proto` and the `google.protobuf.Value` they use, with their original
//! field numbers (the other fields are left out; readers skip what they do not know).

use std::collections::BTreeMap;

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
    /// Which plugin reads the value (set on a plugin's summaries; TensorBoard keeps the
    /// first one it sees per tag).
    #[prost(message, optional, tag = "9")]
    pub metadata: Option<SummaryMetadata>,
    /// The value.
    #[prost(oneof = "Value", tags = "2, 5, 8")]
    pub value: Option<Value>,
}

/// `Summary.Value.value`: a scalar, a histogram or a tensor.
#[derive(Clone, PartialEq, prost::Oneof)]
pub enum Value {
    /// A scalar, shown in TensorBoard's scalars dashboard.
    #[prost(float, tag = "2")]
    SimpleValue(f32),
    /// A histogram, shown in the histograms and distributions dashboards.
    #[prost(message, tag = "5")]
    Histo(HistogramProto),
    /// A tensor, which the plugin named in the value's metadata reads.
    #[prost(message, tag = "8")]
    Tensor(TensorProto),
}

/// `tensorboard.SummaryMetadata`: which plugin a summary is for.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SummaryMetadata {
    /// The plugin and its data.
    #[prost(message, optional, tag = "1")]
    pub plugin_data: Option<PluginData>,
}

/// `SummaryMetadata.PluginData`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct PluginData {
    /// `hparams`, `custom_scalars`, ...
    #[prost(string, tag = "1")]
    pub plugin_name: String,
    /// The plugin's own serialized message (the hparams plugin's `HParamsPluginData`).
    #[prost(bytes = "vec", tag = "2")]
    pub content: Vec<u8>,
}

/// `tensorboard.DataType` values this crate writes (`types.proto`).
pub mod dtype {
    /// `DT_FLOAT`.
    pub const FLOAT: i32 = 1;
    /// `DT_STRING`.
    pub const STRING: i32 = 7;
}

/// `tensorboard.TensorProto`, with the fields of float and string tensors.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TensorProto {
    /// One of [`dtype`].
    #[prost(int32, tag = "1")]
    pub dtype: i32,
    /// The shape; none for a scalar.
    #[prost(message, optional, tag = "2")]
    pub tensor_shape: Option<TensorShapeProto>,
    /// The elements of a float tensor.
    #[prost(float, repeated, tag = "5")]
    pub float_val: Vec<f32>,
    /// The elements of a string tensor.
    #[prost(bytes = "vec", repeated, tag = "8")]
    pub string_val: Vec<Vec<u8>>,
}

/// `tensorboard.TensorShapeProto`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TensorShapeProto {
    /// The dimensions, outermost first.
    #[prost(message, repeated, tag = "2")]
    pub dim: Vec<TensorShapeDim>,
}

/// `TensorShapeProto.Dim`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TensorShapeDim {
    /// The size of the dimension.
    #[prost(int64, tag = "1")]
    pub size: i64,
}

/// `google.protobuf.Value` without its struct case: a hyperparameter's value.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ProtoValue {
    /// The value.
    #[prost(oneof = "Kind", tags = "1, 2, 3, 4, 6")]
    pub kind: Option<Kind>,
}

/// `google.protobuf.Value.kind`.
#[derive(Clone, PartialEq, prost::Oneof)]
pub enum Kind {
    /// `NULL_VALUE` (the only value of `google.protobuf.NullValue`, 0).
    #[prost(int32, tag = "1")]
    NullValue(i32),
    /// A number.
    #[prost(double, tag = "2")]
    NumberValue(f64),
    /// A string.
    #[prost(string, tag = "3")]
    StringValue(String),
    /// A boolean.
    #[prost(bool, tag = "4")]
    BoolValue(bool),
    /// A list.
    #[prost(message, tag = "6")]
    ListValue(ListValue),
}

/// `google.protobuf.ListValue`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ListValue {
    /// The elements.
    #[prost(message, repeated, tag = "1")]
    pub values: Vec<ProtoValue>,
}

/// `tensorboard.hparams.HParamsPluginData`: what an hparams summary holds.
#[derive(Clone, PartialEq, prost::Message)]
pub struct HParamsPluginData {
    /// 0, the only version the plugin reads.
    #[prost(int32, tag = "1")]
    pub version: i32,
    /// The experiment, or a session's start or end.
    #[prost(oneof = "HParamsData", tags = "2, 3, 4")]
    pub data: Option<HParamsData>,
}

/// `HParamsPluginData.data`.
#[derive(Clone, PartialEq, prost::Oneof)]
pub enum HParamsData {
    /// The hyperparameters and metrics of a whole experiment (a sweep).
    #[prost(message, tag = "2")]
    Experiment(Experiment),
    /// A session's (a run's) hyperparameters, at its start.
    #[prost(message, tag = "3")]
    SessionStartInfo(SessionStartInfo),
    /// How a session ended.
    #[prost(message, tag = "4")]
    SessionEndInfo(SessionEndInfo),
}

/// `tensorboard.hparams.Experiment`: the columns of the HParams dashboard.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Experiment {
    /// What the experiment is.
    #[prost(string, tag = "1")]
    pub description: String,
    /// When it was created, in seconds since the Unix epoch.
    #[prost(double, tag = "3")]
    pub time_created_secs: f64,
    /// Its hyperparameters.
    #[prost(message, repeated, tag = "4")]
    pub hparam_infos: Vec<HParamInfo>,
    /// Its metrics.
    #[prost(message, repeated, tag = "5")]
    pub metric_infos: Vec<MetricInfo>,
    /// Its name.
    #[prost(string, tag = "6")]
    pub name: String,
}

/// `tensorboard.hparams.HParamInfo`: one hyperparameter and the values it takes.
#[derive(Clone, PartialEq, prost::Message)]
pub struct HParamInfo {
    /// Its key in the sessions' `hparams`.
    #[prost(string, tag = "1")]
    pub name: String,
    /// The column's title, if not the name.
    #[prost(string, tag = "2")]
    pub display_name: String,
    /// What it is.
    #[prost(string, tag = "3")]
    pub description: String,
    /// One of [`data_type`].
    #[prost(int32, tag = "4")]
    pub r#type: i32,
    /// The values it takes.
    #[prost(oneof = "Domain", tags = "5, 6")]
    pub domain: Option<Domain>,
    /// Whether its values differ between sessions.
    #[prost(bool, tag = "7")]
    pub differs: bool,
}

/// `tensorboard.hparams.DataType`.
pub mod data_type {
    /// `DATA_TYPE_STRING`.
    pub const STRING: i32 = 1;
    /// `DATA_TYPE_BOOL`.
    pub const BOOL: i32 = 2;
    /// `DATA_TYPE_FLOAT64`.
    pub const FLOAT64: i32 = 3;
}

/// `HParamInfo.domain`.
#[derive(Clone, PartialEq, prost::Oneof)]
pub enum Domain {
    /// Every value it takes.
    #[prost(message, tag = "5")]
    DomainDiscrete(ListValue),
    /// The range of its values.
    #[prost(message, tag = "6")]
    DomainInterval(Interval),
}

/// `tensorboard.hparams.Interval`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Interval {
    /// Smallest value.
    #[prost(double, tag = "1")]
    pub min_value: f64,
    /// Largest value.
    #[prost(double, tag = "2")]
    pub max_value: f64,
}

/// `tensorboard.hparams.MetricName`: a scalar tag, in the session's run (`group` empty)
/// or in a run below it.
#[derive(Clone, PartialEq, prost::Message)]
pub struct MetricName {
    /// The run below the session's, or empty.
    #[prost(string, tag = "1")]
    pub group: String,
    /// The scalar's tag.
    #[prost(string, tag = "2")]
    pub tag: String,
}

/// `tensorboard.hparams.MetricInfo`: a metric column.
#[derive(Clone, PartialEq, prost::Message)]
pub struct MetricInfo {
    /// Which scalar it reads (its last value).
    #[prost(message, optional, tag = "1")]
    pub name: Option<MetricName>,
    /// The column's title.
    #[prost(string, tag = "3")]
    pub display_name: String,
    /// What it is.
    #[prost(string, tag = "4")]
    pub description: String,
}

/// `tensorboard.hparams.SessionStartInfo`: a run's hyperparameters.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SessionStartInfo {
    /// Each hyperparameter's value, by name (sorted, so the bytes are reproducible).
    #[prost(btree_map = "string, message", tag = "1")]
    pub hparams: BTreeMap<String, ProtoValue>,
    /// Sessions of one group are one row; empty, the run is a row of its own.
    #[prost(string, tag = "4")]
    pub group_name: String,
    /// When it started, in seconds since the Unix epoch.
    #[prost(double, tag = "5")]
    pub start_time_secs: f64,
}

/// `tensorboard.hparams.Status` values.
pub mod status {
    /// `STATUS_SUCCESS`.
    pub const SUCCESS: i32 = 1;
    /// `STATUS_FAILURE`.
    pub const FAILURE: i32 = 2;
}

/// `tensorboard.hparams.SessionEndInfo`: how a run ended.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SessionEndInfo {
    /// One of [`status`].
    #[prost(int32, tag = "1")]
    pub status: i32,
    /// When it ended, in seconds since the Unix epoch.
    #[prost(double, tag = "2")]
    pub end_time_secs: f64,
}

/// `tensorboard.Layout`: the custom-scalars dashboard's categories of charts.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Layout {
    /// 0.
    #[prost(int32, tag = "1")]
    pub version: i32,
    /// The categories, in order.
    #[prost(message, repeated, tag = "2")]
    pub category: Vec<Category>,
}

/// `tensorboard.Category`: a collapsible section of charts.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Category {
    /// Its title.
    #[prost(string, tag = "1")]
    pub title: String,
    /// Its charts.
    #[prost(message, repeated, tag = "2")]
    pub chart: Vec<Chart>,
    /// Whether it starts collapsed.
    #[prost(bool, tag = "3")]
    pub closed: bool,
}

/// `tensorboard.Chart` with its multiline content: one line per tag that matches.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Chart {
    /// Its title.
    #[prost(string, tag = "1")]
    pub title: String,
    /// The lines.
    #[prost(message, optional, tag = "2")]
    pub multiline: Option<MultilineChartContent>,
}

/// `tensorboard.MultilineChartContent`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct MultilineChartContent {
    /// Regular expressions of the tags drawn (Python's `re`, matched from the start).
    #[prost(string, repeated, tag = "1")]
    pub tag: Vec<String>,
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
