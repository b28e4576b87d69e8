"""Reads a run folder's TensorBoard event file with TensorBoard's own EventAccumulator and
prints its scalars and histograms as JSON, for the Rust test to compare with metrics.jsonl.

Usage: python read_events.py RUN_DIR
"""
import json
import sys

from tensorboard.backend.event_processing.event_accumulator import (
    HISTOGRAMS,
    SCALARS,
    EventAccumulator,
)


def main(run_dir):
    # 0 keeps every event (the default keeps a single histogram per tag).
    acc = EventAccumulator(run_dir, size_guidance={SCALARS: 0, HISTOGRAMS: 0})
    acc.Reload()
    tags = acc.Tags()
    out = {
        "file_version": acc.file_version,
        "scalars": {
            tag: [[e.step, e.value] for e in acc.Scalars(tag)] for tag in tags[SCALARS]
        },
        "histograms": {
            tag: [
                [
                    e.step,
                    {
                        "min": e.histogram_value.min,
                        "max": e.histogram_value.max,
                        "num": e.histogram_value.num,
                        "sum": e.histogram_value.sum,
                        "sum_squares": e.histogram_value.sum_squares,
                        "bucket_limit": list(e.histogram_value.bucket_limit),
                        "bucket": list(e.histogram_value.bucket),
                    },
                ]
                for e in acc.Histograms(tag)
            ]
            for tag in tags[HISTOGRAMS]
        },
    }
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main(sys.argv[1])
