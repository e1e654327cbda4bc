"""Sending an attempt to another process: the item is pickled without its function, which the
other side loads from the pipeline's file (so task functions need not be picklable)."""

from __future__ import annotations

import pickle
import time
from dataclasses import replace

from lockgate.engine.work import FAILED, Outcome, WorkItem


def shipped(item: WorkItem) -> bytes:
    """`(pipeline_file, item without fn)` pickled; raises (ValueError, pickling errors) when
    the item cannot travel."""
    if item.kind != "shell" and item.pipeline_file is None:
        raise ValueError("the pipeline was not loaded from a file")
    return pickle.dumps((item.pipeline_file, replace(item, fn=None)), pickle.HIGHEST_PROTOCOL)


def unshippable(item: WorkItem, exc: BaseException, executor: str) -> Outcome:
    """The failed outcome of an attempt that `shipped` refused, saying how to fix it."""
    now = time.time()
    return Outcome(
        item.task_id,
        item.attempt,
        FAILED,
        None,
        f"task {item.task_id!r} cannot run in the {executor} executor: {exc}; define the "
        "pipeline at module level in a file and pass picklable arguments (or use --executor "
        "threads)",
        now,
        now,
    )
