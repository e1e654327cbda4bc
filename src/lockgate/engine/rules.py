"""Evaluation of trigger rules from counts of upstream outcomes."""

from __future__ import annotations

from enum import Enum

from lockgate.model.trigger_rules import TriggerRule as TR


class Verdict(Enum):
    WAIT = "wait"
    RUN = "run"
    SKIP = "skipped"
    UPSTREAM_FAILED = "upstream_failed"


def evaluate(rule: TR, total: int, success: int, failed: int, skipped: int) -> Verdict:
    """Decide a task's fate from its upstream counts; decides early where the rule allows.

    `failed` counts failed and upstream_failed upstreams (and cancelled ones).
    """
    done = success + failed + skipped
    complete = done == total
    if rule is TR.ALL_SUCCESS:
        if failed:
            return Verdict.UPSTREAM_FAILED
        if not complete:
            # a skip decides only once no failure can still arrive, or the verdict would
            # depend on which upstream happened to finish first
            return Verdict.WAIT
        return Verdict.SKIP if skipped else Verdict.RUN
    if rule is TR.ALL_DONE:
        return Verdict.RUN if complete else Verdict.WAIT
    if rule is TR.ALL_FAILED:
        if success or skipped:
            return Verdict.SKIP
        return Verdict.RUN if complete else Verdict.WAIT
    if rule is TR.ALL_SKIPPED:
        if success or failed:
            return Verdict.SKIP
        return Verdict.RUN if complete else Verdict.WAIT
    if rule is TR.ONE_SUCCESS:
        if success:
            return Verdict.RUN
        if complete:
            return Verdict.UPSTREAM_FAILED if failed else Verdict.SKIP
        return Verdict.WAIT
    if rule is TR.ONE_FAILED:
        if failed:
            return Verdict.RUN
        return Verdict.SKIP if complete else Verdict.WAIT
    if rule is TR.ONE_DONE:
        if success or failed:
            return Verdict.RUN
        return Verdict.SKIP if complete else Verdict.WAIT
    if rule is TR.NONE_FAILED:
        if failed:
            return Verdict.UPSTREAM_FAILED
        return Verdict.RUN if complete else Verdict.WAIT
    if rule is TR.NONE_FAILED_MIN_ONE_SUCCESS:
        if failed:
            return Verdict.UPSTREAM_FAILED
        if complete:
            return Verdict.RUN if success else Verdict.SKIP
        return Verdict.WAIT
    if rule is TR.NONE_SKIPPED:
        if skipped:
            return Verdict.SKIP
        return Verdict.RUN if complete else Verdict.WAIT
    if rule is TR.ALWAYS:
        return Verdict.RUN
    raise AssertionError(rule)
