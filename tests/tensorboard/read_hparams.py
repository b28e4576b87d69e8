"""Reads a log folder with TensorBoard's own HParams plugin backend (the code behind the
HParams dashboard: its experiment and its session groups, as the dashboard requests
them) and its custom-scalars layouts, and prints what it found as JSON, for the Rust
test to check.

Usage: python read_hparams.py LOGDIR
"""
import json
import sys

from google.protobuf import json_format
from tensorboard import context
from tensorboard.backend.event_processing import data_provider
from tensorboard.backend.event_processing import plugin_event_multiplexer
from tensorboard.plugins import base_plugin
from tensorboard.plugins.custom_scalar import layout_pb2
from tensorboard.plugins.custom_scalar import metadata as layout_metadata
from tensorboard.plugins.hparams import api_pb2
from tensorboard.plugins.hparams import backend_context
from tensorboard.plugins.hparams import get_experiment
from tensorboard.plugins.hparams import list_session_groups


def main(logdir):
    multiplexer = plugin_event_multiplexer.EventMultiplexer()
    multiplexer.AddRunsFromDirectory(logdir)
    multiplexer.Reload()
    provider = data_provider.MultiplexerDataProvider(multiplexer, logdir)
    tb_context = base_plugin.TBContext(
        logdir=logdir, multiplexer=multiplexer, data_provider=provider
    )
    backend = backend_context.Context(tb_context)
    request_context = context.RequestContext()
    experiment = get_experiment.Handler(
        request_context,
        backend,
        "",
        api_pb2.GetExperimentRequest(include_metrics=True),
    ).run()
    # As the dashboard asks: every session, each hparam and metric a column.
    columns = [
        api_pb2.ColParams(hparam=h.name, include_in_result=True)
        for h in experiment.hparam_infos
    ] + [
        api_pb2.ColParams(metric=m.name, include_in_result=True)
        for m in experiment.metric_infos
    ]
    groups = list_session_groups.Handler(
        request_context,
        backend,
        "",
        api_pb2.ListSessionGroupsRequest(
            col_params=columns,
            start_index=0,
            slice_size=100000,
            allowed_statuses=[
                api_pb2.STATUS_UNKNOWN,
                api_pb2.STATUS_SUCCESS,
                api_pb2.STATUS_FAILURE,
                api_pb2.STATUS_RUNNING,
            ],
            include_metrics=True,
        ),
    ).run()
    layouts = {}
    for run in multiplexer.Runs():
        accumulator = multiplexer.GetAccumulator(run)
        if layout_metadata.CONFIG_SUMMARY_TAG in accumulator.Tags()["tensors"]:
            event = accumulator.Tensors(layout_metadata.CONFIG_SUMMARY_TAG)[0]
            layout = layout_pb2.Layout()
            layout.ParseFromString(event.tensor_proto.string_val[0])
            layouts[run] = json_format.MessageToDict(layout)
    json.dump(
        {
            "experiment": json_format.MessageToDict(experiment),
            "session_groups": json_format.MessageToDict(groups),
            "layouts": layouts,
        },
        sys.stdout,
    )


if __name__ == "__main__":
    main(sys.argv[1])
