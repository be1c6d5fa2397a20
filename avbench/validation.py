"""The one place that checks options and arrays, with one message style.

Messages follow scikit-learn's form: "The 'x' parameter of C must be ...
Got ... instead." so that a researcher can tell at once which option, file or
clip is wrong and what was expected.
"""

from __future__ import annotations

import math
from typing import Any, Iterable, Sequence

import numpy as np


class ValidationError(ValueError):
    """Bad user input: an option, a file or a clip that is not what was expected.

    Errors about one parameter also carry ``param`` and ``owner`` (the message then starts "The
    'param' parameter of owner"), so that the command line can restate them under the option the
    user typed (``--audio-dim``) instead of the library's parameter name (``audio_dim``).
    """

    def __init__(self, message: str, *, param: str | None = None, owner: str | None = None):
        super().__init__(message)
        self.param, self.owner = param, owner


class DataError(ValidationError):
    """A file's content is not what avbench expects (a corrupt store, record, checkpoint or table).

    Kept apart from bad options so that the command line reports it as an error in the data,
    not as a usage mistake.
    """


def _fail(param: str, owner: str, expected: str, got: Any) -> None:
    raise ValidationError(f"The {param!r} parameter of {owner} must be {expected}. Got {got!r} instead.",
                          param=param, owner=owner)


def check_choice(value: Any, param: str, owner: str, choices: Iterable[Any]) -> Any:
    choices = list(choices)
    if value not in choices:
        _fail(param, owner, "one of " + ", ".join(repr(c) for c in choices), value)
    return value


def check_int(value: Any, param: str, owner: str, *, minimum: int | None = None,
              maximum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        _fail(param, owner, "an integer", value)
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        lo = "-inf" if minimum is None else minimum
        hi = "inf" if maximum is None else maximum
        _fail(param, owner, f"an integer in [{lo}, {hi}]", value)
    return int(value)


def check_float(value: Any, param: str, owner: str, *, low: float | None = None,
                high: float | None = None, low_open: bool = False, high_open: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)) \
            or not math.isfinite(float(value)):
        _fail(param, owner, "a finite number", value)
    v = float(value)
    bad_low = low is not None and (v <= low if low_open else v < low)
    bad_high = high is not None and (v >= high if high_open else v > high)
    if bad_low or bad_high:
        left = "(" if low_open else "["
        right = ")" if high_open else "]"
        _fail(param, owner, f"a number in {left}{low if low is not None else '-inf'}, "
              f"{high if high is not None else 'inf'}{right}", value)
    return v


def check_loss_weights(weights: Sequence[float], param: str = "loss_weights",
                       owner: str = "the model", length: int | None = None) -> tuple[float, ...]:
    """Loss weights (lambda_av, lambda_a, lambda_v) of Eq. 6: non-negative, summing to 1,
    ``length`` of them when given (one per output head)."""
    expected = f"a sequence of {length} numbers" if length else "a sequence of numbers"
    try:
        w = tuple(float(x) for x in weights)
    except (TypeError, ValueError):
        _fail(param, owner, expected, weights)
    if length is not None and len(w) != length:
        _fail(param, owner, expected, weights)
    if any(not math.isfinite(x) or x < 0 for x in w) or not math.isclose(sum(w), 1.0, abs_tol=1e-3):
        _fail(param, owner, "non-negative weights summing to 1", weights)
    return w


def check_path_component(value: Any, param: str, owner: str) -> str:
    """A name that becomes one directory or file name (protocol, variant, clip): it must stay
    inside the directory it is joined to, so no separators, no ``..`` and nothing hidden."""
    text = str(value)
    if not text or text in (".", "..") or text.startswith(".") or "/" in text or "\\" in text or "\0" in text:
        _fail(param, owner, "a non-empty name without '/', '\\' or a leading '.' (it names a directory)",
              value)
    return text


def check_features(arr: Any, *, dim: int, what: str, where: str) -> np.ndarray:
    """Checks one clip's feature matrix: 2-D, ``dim`` columns, at least one frame, finite.

    Args:
        arr: The ``frames x dim`` array.
        dim: The expected feature dimension.
        what: "audio" or "visual".
        where: The clip (and file) the array belongs to, named in the message.
    """
    a = np.asarray(arr)
    if a.ndim != 2:
        raise ValidationError(f"{where}: {what} features must be a 2-D array (frames x {dim}). "
                              f"Got shape {a.shape} instead.")
    if a.shape[1] != dim:
        raise ValidationError(f"{where}: {what} features must have {dim} columns. "
                              f"Got {a.shape[1]} (shape {a.shape}) instead.")
    if a.shape[0] == 0:
        raise ValidationError(f"{where}: {what} features are empty (0 frames); every clip needs "
                              f"at least one frame of each modality.")
    if not np.issubdtype(a.dtype, np.floating) and not np.issubdtype(a.dtype, np.integer):
        raise ValidationError(f"{where}: {what} features must be numeric. Got dtype {a.dtype} instead.")
    finite = np.isfinite(a)
    if not finite.all():
        bad = np.argwhere(~finite)[0]
        raise ValidationError(f"{where}: {what} features contain NaN or inf (first at frame {bad[0]}, "
                              f"column {bad[1]}). Clean or drop the clip.")
    return a
