//! Summaries that TensorBoard's plugins read from their metadata rather than from the
//! value's kind: the hparams plugin's experiment and sessions, and the custom-scalars
//! plugin's layout. Tags, plugin names and the empty tensor are those of TensorBoard's
//! `plugins/hparams/metadata.py` and `plugins/custom_scalar/metadata.py`.

use std::collections::BTreeMap;

use prost::Message;

use crate::proto::{
    Experiment, HParamsData, HParamsPluginData, Kind, Layout, PluginData, ProtoValue,
    SessionEndInfo, SessionStartInfo, SummaryMetadata, SummaryValue, TensorProto, TensorShapeDim,
    TensorShapeProto, Value, data_type, dtype,
};

/// The hparams plugin's name.
pub const HPARAMS_PLUGIN: &str = "hparams";
/// The tag of the experiment summary (one per experiment, in any run; TensorBoard reads
/// the first it finds).
pub const EXPERIMENT_TAG: &str = "_hparams_/experiment";
/// The tag of a session's (a run's) hyperparameters.
pub const SESSION_START_INFO_TAG: &str = "_hparams_/session_start_info";
/// The tag of a session's end.
pub const SESSION_END_INFO_TAG: &str = "_hparams_/session_end_info";
/// The custom-scalars plugin's name.
pub const CUSTOM_SCALARS_PLUGIN: &str = "custom_scalars";
/// The tag of its layout; TensorBoard merges the layouts of every run.
pub const LAYOUT_TAG: &str = "custom_scalars__config__";

impl ProtoValue {
    /// A number.
    pub fn number(x: f64) -> Self {
        Self {
            kind: Some(Kind::NumberValue(x)),
        }
    }

    /// A string.
    pub fn string(s: impl Into<String>) -> Self {
        Self {
            kind: Some(Kind::StringValue(s.into())),
        }
    }

    /// A boolean.
    pub fn bool(b: bool) -> Self {
        Self {
            kind: Some(Kind::BoolValue(b)),
        }
    }

    /// A setting's JSON value as a hyperparameter: numbers, strings and booleans keep
    /// their kind (so the dashboard filters numbers by range), a list or table becomes its
    /// JSON text, and null is no value.
    pub fn from_json(value: &serde_json::Value) -> Option<Self> {
        Some(match value {
            serde_json::Value::Number(n) => Self::number(n.as_f64()?),
            serde_json::Value::String(s) => Self::string(s.clone()),
            serde_json::Value::Bool(b) => Self::bool(*b),
            serde_json::Value::Null => return None,
            other => Self::string(other.to_string()),
        })
    }

    /// The hparams plugin's data type of this value (one of
    /// [`crate::proto::data_type`]), 0 for none.
    pub fn data_type(&self) -> i32 {
        match &self.kind {
            Some(Kind::NumberValue(_)) => data_type::FLOAT64,
            Some(Kind::StringValue(_)) => data_type::STRING,
            Some(Kind::BoolValue(_)) => data_type::BOOL,
            _ => 0,
        }
    }
}

/// A summary value for `plugin` under `tag`, its data in the metadata's content.
fn plugin_value(plugin: &str, tag: &str, content: Vec<u8>, tensor: TensorProto) -> SummaryValue {
    SummaryValue {
        tag: tag.to_string(),
        metadata: Some(SummaryMetadata {
            plugin_data: Some(PluginData {
                plugin_name: plugin.to_string(),
                content,
            }),
        }),
        value: Some(Value::Tensor(tensor)),
    }
}

/// An hparams summary: the data sits in the metadata, the value is the empty float
/// tensor of shape `[0]` that TensorBoard's own writer puts there (`NULL_TENSOR`).
fn hparams_value(tag: &str, data: HParamsData) -> SummaryValue {
    let content = HParamsPluginData {
        version: 0,
        data: Some(data),
    }
    .encode_to_vec();
    let null_tensor = TensorProto {
        dtype: dtype::FLOAT,
        tensor_shape: Some(TensorShapeProto {
            dim: vec![TensorShapeDim { size: 0 }],
        }),
        ..Default::default()
    };
    plugin_value(HPARAMS_PLUGIN, tag, content, null_tensor)
}

/// The summary value of an experiment: the HParams dashboard's columns.
pub fn experiment(experiment: Experiment) -> SummaryValue {
    hparams_value(EXPERIMENT_TAG, HParamsData::Experiment(experiment))
}

/// The summary value that starts a session (a run) with its hyperparameters.
pub fn session_start(hparams: BTreeMap<String, ProtoValue>, start_time_secs: f64) -> SummaryValue {
    hparams_value(
        SESSION_START_INFO_TAG,
        HParamsData::SessionStartInfo(SessionStartInfo {
            hparams,
            group_name: String::new(),
            start_time_secs,
        }),
    )
}

/// The summary value that ends a session with `status` (one of [`crate::proto::status`]).
pub fn session_end(status: i32, end_time_secs: f64) -> SummaryValue {
    hparams_value(
        SESSION_END_INFO_TAG,
        HParamsData::SessionEndInfo(SessionEndInfo {
            status,
            end_time_secs,
        }),
    )
}

/// The hparams plugin's data in `value`, if it is an hparams summary that decodes.
pub fn hparams_data(value: &SummaryValue) -> Option<HParamsData> {
    let plugin = value.metadata.as_ref()?.plugin_data.as_ref()?;
    if plugin.plugin_name != HPARAMS_PLUGIN {
        return None;
    }
    HParamsPluginData::decode(plugin.content.as_slice())
        .ok()?
        .data
}

/// The summary value of a custom-scalars layout: the serialized `Layout` as a scalar
/// string tensor, as TensorBoard's `custom_scalar.summary.pb` writes it.
pub fn layout(layout: &Layout) -> SummaryValue {
    let tensor = TensorProto {
        dtype: dtype::STRING,
        tensor_shape: Some(TensorShapeProto::default()),
        string_val: vec![layout.encode_to_vec()],
        ..Default::default()
    };
    plugin_value(CUSTOM_SCALARS_PLUGIN, LAYOUT_TAG, Vec::new(), tensor)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::{
        Category, Chart, Domain, HParamInfo, ListValue, MetricInfo, MetricName,
        MultilineChartContent, status,
    };

    /// The plugin data of `value`, decoded.
    fn data(value: &SummaryValue) -> HParamsData {
        let content = &value
            .metadata
            .as_ref()
            .unwrap()
            .plugin_data
            .as_ref()
            .unwrap()
            .content;
        let decoded = HParamsPluginData::decode(content.as_slice()).unwrap();
        assert_eq!(decoded.version, 0);
        decoded.data.unwrap()
    }

    #[test]
    fn sessions_round_trip_and_carry_the_null_tensor() {
        let hparams = BTreeMap::from([
            ("activation".to_string(), ProtoValue::string("relu")),
            ("layers".to_string(), ProtoValue::number(6.0)),
            ("residual".to_string(), ProtoValue::bool(false)),
        ]);
        let start = session_start(hparams.clone(), 12.5);
        assert_eq!(start.tag, SESSION_START_INFO_TAG);
        let plugin = start
            .metadata
            .as_ref()
            .unwrap()
            .plugin_data
            .as_ref()
            .unwrap();
        assert_eq!(plugin.plugin_name, "hparams");
        let Some(Value::Tensor(t)) = &start.value else {
            panic!("not a tensor: {:?}", start.value);
        };
        assert_eq!(
            (t.dtype, t.tensor_shape.as_ref().unwrap().dim[0].size),
            (1, 0)
        );
        let HParamsData::SessionStartInfo(info) = data(&start) else {
            panic!("not a session start");
        };
        assert_eq!((info.hparams, info.start_time_secs), (hparams, 12.5));
        let end = session_end(status::SUCCESS, 13.0);
        assert_eq!(
            data(&end),
            HParamsData::SessionEndInfo(SessionEndInfo {
                status: 1,
                end_time_secs: 13.0
            })
        );
        // The whole value survives encoding.
        let bytes = start.encode_to_vec();
        assert_eq!(SummaryValue::decode(bytes.as_slice()).unwrap(), start);
    }

    #[test]
    fn json_values_keep_their_kind() {
        let cases = [
            (
                serde_json::json!(6),
                Some(ProtoValue::number(6.0)),
                data_type::FLOAT64,
            ),
            (
                serde_json::json!(1e-3),
                Some(ProtoValue::number(1e-3)),
                data_type::FLOAT64,
            ),
            (
                serde_json::json!("relu"),
                Some(ProtoValue::string("relu")),
                data_type::STRING,
            ),
            (
                serde_json::json!(true),
                Some(ProtoValue::bool(true)),
                data_type::BOOL,
            ),
            (
                serde_json::json!([1, 2]),
                Some(ProtoValue::string("[1,2]")),
                data_type::STRING,
            ),
        ];
        for (json, want, kind) in cases {
            let got = ProtoValue::from_json(&json);
            assert_eq!(got, want, "{json}");
            assert_eq!(got.unwrap().data_type(), kind, "{json}");
        }
        assert_eq!(ProtoValue::from_json(&serde_json::Value::Null), None);
    }

    #[test]
    fn experiments_and_layouts_round_trip() {
        let exp = Experiment {
            name: "seed".into(),
            hparam_infos: vec![HParamInfo {
                name: "activation".into(),
                r#type: data_type::STRING,
                domain: Some(Domain::DomainDiscrete(ListValue {
                    values: vec![ProtoValue::string("relu"), ProtoValue::string("sigmoid")],
                })),
                differs: true,
                ..Default::default()
            }],
            metric_infos: vec![MetricInfo {
                name: Some(MetricName {
                    group: String::new(),
                    tag: "decay_ratio".into(),
                }),
                display_name: "decay ratio".into(),
                ..Default::default()
            }],
            ..Default::default()
        };
        assert_eq!(data(&experiment(exp.clone())), HParamsData::Experiment(exp));
        let l = Layout {
            version: 0,
            category: vec![Category {
                title: "per layer".into(),
                chart: vec![Chart {
                    title: "grad".into(),
                    multiline: Some(MultilineChartContent {
                        tag: vec![r"^grad/layer\d+$".into()],
                    }),
                }],
                closed: false,
            }],
        };
        let value = layout(&l);
        assert_eq!(value.tag, LAYOUT_TAG);
        let Some(Value::Tensor(t)) = &value.value else {
            panic!("not a tensor");
        };
        assert_eq!(
            (t.dtype, t.tensor_shape.as_ref().unwrap().dim.len()),
            (7, 0)
        );
        assert_eq!(Layout::decode(t.string_val[0].as_slice()).unwrap(), l);
    }
}
