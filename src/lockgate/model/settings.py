"""Task settings (retries, backoff, timeout, trigger rule, pool, resources) and their
validation."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from datetime import timedelta
from typing import Any

from lockgate.errors import DefinitionError, did_you_mean
from lockgate.model.trigger_rules import TriggerRule


@dataclass(frozen=True, slots=True)
class TaskSettings:
    """How one task is run; every field can be set per task or as a pipeline default."""

    retries: int = 0
    retry_delay: float = 0.0
    """Seconds before the first retry."""
    retry_backoff: float = 1.0
    """Multiplier applied to the delay after each failed attempt (2.0 doubles it)."""
    retry_jitter: float = 0.0
    """Fraction (0-1) of each delay that is randomised away, so retries do not stampede."""
    max_retry_delay: float | None = None
    timeout: float | None = None
    """Seconds one attempt may run before it is stopped and failed."""
    trigger_rule: TriggerRule = TriggerRule.ALL_SUCCESS
    pool: str | None = None
    pool_slots: int = 1
    resources: tuple[tuple[str, float], ...] = ()
    """Worker resources one attempt needs (e.g. `{"gpu": 1, "memory": 4e9}`), sorted by name:
    the Dask executor runs it only on a worker that offers them; other executors ignore them."""


SETTING_NAMES = tuple(f.name for f in fields(TaskSettings))


def _seconds(name: str, value: Any, *, allow_none: bool) -> float | None:
    if value is None and allow_none:
        return None
    if isinstance(value, timedelta):
        value = value.total_seconds()
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name} must be a number of seconds or a timedelta, got {value!r}")
    if value < 0:
        raise ValueError(f"{name} must not be negative, got {value!r}")
    return float(value)


def _coerce(name: str, value: Any) -> Any:
    if name == "retries":
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"retries must be a whole number >= 0, got {value!r}")
        return value
    if name in ("retry_delay",):
        return _seconds(name, value, allow_none=False)
    if name in ("max_retry_delay",):
        return _seconds(name, value, allow_none=True)
    if name == "timeout":
        secs = _seconds(name, value, allow_none=True)
        if secs is not None and secs <= 0:
            raise ValueError(f"timeout must be greater than 0 seconds, got {value!r}")
        return secs
    if name == "retry_backoff":
        if value is True:
            return 2.0
        if value is False:
            return 1.0
        if not isinstance(value, int | float) or value < 1:
            raise ValueError(
                f"retry_backoff must be a number >= 1 (2 doubles each delay), got {value!r}"
            )
        return float(value)
    if name == "retry_jitter":
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
            raise ValueError(f"retry_jitter must be a fraction between 0 and 1, got {value!r}")
        return float(value)
    if name == "trigger_rule":
        try:
            return TriggerRule(value)
        except ValueError:
            tip = did_you_mean(value, [r.value for r in TriggerRule])
            raise ValueError(f"unknown trigger_rule {value!r}{tip}") from None
    if name == "pool":
        if value is not None and (not isinstance(value, str) or not value):
            raise ValueError(f"pool must be a pool name, got {value!r}")
        return value
    if name == "pool_slots":
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"pool_slots must be a whole number >= 1, got {value!r}")
        return value
    if name == "resources":
        return _resources(value)
    raise AssertionError(name)


def _resources(value: Any) -> tuple[tuple[str, float], ...]:
    if value is None:
        return ()
    if isinstance(value, tuple):  # already coerced (a pipeline default laid over a task)
        value = dict(value)
    if not isinstance(value, Mapping):
        raise ValueError(
            f"resources must be a mapping of resource names to amounts, e.g. "
            f'{{"gpu": 1, "memory": 4e9}}, got {value!r}'
        )
    found = []
    for key, amount in value.items():
        if isinstance(amount, str):  # YAML reads 4e9 as text
            with contextlib.suppress(ValueError):
                amount = float(amount)
        if not isinstance(key, str) or not key.strip() or any(c.isspace() for c in key):
            raise ValueError(f"resource names are words without spaces, got {key!r}")
        if (
            isinstance(amount, bool)
            or not isinstance(amount, int | float)
            or not math.isfinite(amount)
            or amount <= 0
        ):
            raise ValueError(f"resource {key!r} needs an amount greater than 0, got {amount!r}")
        found.append((key, float(amount)))
    return tuple(sorted(found))


def check_setting_names(options: Mapping[str, Any], what: str) -> None:
    """Raise ValueError naming the first unknown setting, with a suggestion."""
    for key in options:
        if key not in SETTING_NAMES:
            tip = did_you_mean(key, SETTING_NAMES, "known settings:")
            raise ValueError(f"unknown {what} setting {key!r}{tip}")


def make_settings(
    options: Mapping[str, Any],
    base: TaskSettings | None = None,
    *,
    what: str = "task",
    file: str | None = None,
    line: int | None = None,
) -> TaskSettings:
    """Validate `options` and lay them over `base`; errors name the setting and the value."""
    try:
        check_setting_names(options, what)
        values = {k: _coerce(k, v) for k, v in options.items()}
    except ValueError as exc:
        raise DefinitionError(str(exc), file, line) from None
    return replace(base or TaskSettings(), **values)


def retry_delay_for(settings: TaskSettings, failed_attempts: int, rand: float) -> float:
    """Seconds to wait before the next attempt, after `failed_attempts` failures (>= 1).

    Exponential: delay * backoff**(n-1), capped at max_retry_delay, then jittered downwards by up
    to `retry_jitter` of itself (`rand` in [0, 1)), so the cap is never exceeded.
    """
    try:
        delay = settings.retry_delay * settings.retry_backoff ** (failed_attempts - 1)
    except OverflowError:  # float backoff**n beyond ~1e308: the cap (if any) applies
        delay = math.inf if settings.retry_delay > 0 else 0.0
    if settings.max_retry_delay is not None:
        delay = min(delay, settings.max_retry_delay)
    return delay * (1.0 - settings.retry_jitter * rand)
