"""The one place that checks options and arrays, with one message style.

Messages follow scikit-learn's form: "The 'x' parameter of C must be ...
Got ... instead." so that a researcher can tell at once which option, file or
clip is wrong and what was expected.

Model options are checked from constraints declared once, next to each option's
default, as scikit-learn's ``utils/_param_validation.py`` declares them::

    heads: Annotated[int, Interval(int, 1, None), Divides("d_model")] = 10

:func:`check_options` reads them (``create_model`` calls it before building),
``avbench models show`` prints them, and a test derives invalid values from them.
"""

from __future__ import annotations

import difflib
import math
from abc import ABC, abstractmethod
from typing import Annotated, Any, Iterable, Mapping

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


def did_you_mean(name: Any, choices: Iterable[str]) -> str:
    """`` Did you mean 'a', 'b'?`` for the choices close to a mistyped ``name`` (empty when none is), to
    append to a message that refuses it."""
    close = difflib.get_close_matches(str(name), list(choices), n=3, cutoff=0.5)
    return f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""


def _fail(param: str, owner: str, expected: str, got: Any, kind: str = "parameter") -> None:
    raise ValidationError(f"The {param!r} {kind} of {owner} must be {expected}. Got {got!r} instead.",
                          param=param, owner=owner)


def check_choice(value: Any, param: str, owner: str, choices: Iterable[Any]) -> Any:
    choices = list(choices)
    if value not in choices:
        _fail(param, owner, "one of " + ", ".join(repr(c) for c in choices), value)
    return value


def check_int(value: Any, param: str, owner: str, *, minimum: int | None = None,
              maximum: int | None = None) -> int:
    """An int (not a bool) in ``[minimum, maximum]``, as :class:`Interval` judges it."""
    _check_interval(Interval(int, minimum, maximum), value, param, owner)
    return int(value)


def check_float(value: Any, param: str, owner: str, *, low: float | None = None,
                high: float | None = None, low_open: bool = False, high_open: bool = False) -> float:
    """A finite number (an int will do) between ``low`` and ``high``, as :class:`Interval` judges it."""
    closed = {(False, False): "both", (False, True): "left", (True, False): "right", (True, True): "neither"}
    _check_interval(Interval(float, low, high, closed=closed[low_open, high_open]), value, param, owner)
    return float(value)


def _check_interval(rule: Interval, value: Any, param: str, owner: str) -> None:
    if not rule.accepts(value, {}):
        _fail(param, owner, str(rule), value)


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


# --- constraints on model options ------------------------------------------------------------------
def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _is_number(value: Any) -> bool:
    return (isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))
            and math.isfinite(float(value)))


def _number(x: float) -> str:
    """``0`` for ``0.0``, ``1000000`` for ``10**6``: bounds as a user would type them."""
    return f"{x:g}" if isinstance(x, float) else str(x)


def _is_sequence(value: Any) -> bool:
    """A list or tuple of values (YAML gives lists, Python code tuples); not a string or a mapping."""
    return isinstance(value, (list, tuple))


class Constraint(ABC):
    """A rule an option's value must follow, declared once in the option's annotation.

    Besides judging a value, a constraint names the values just outside it (:meth:`invalid`) and
    on its edges (:meth:`valid`), so that one test probes every declared option of every model
    from the declarations alone, and a new family is covered the day it is registered.

    Attributes:
        reads: Other options (or ``audio_dim``/``visual_dim``) the rule depends on; such rules are
            checked after every option's own, so that the message names the option at fault.
    """

    reads: tuple[str, ...] = ()

    @abstractmethod
    def accepts(self, value: Any, context: Mapping[str, Any]) -> bool:
        """Whether ``value`` follows the rule, given the other options in ``context``."""

    def expected(self, context: Mapping[str, Any]) -> str:
        """What the rule asks for, for a message about this call (with the other options' values)."""
        return str(self)

    @abstractmethod
    def invalid(self, context: Mapping[str, Any]) -> list[Any]:
        """Values the rule refuses: just outside it, and of a wrong type."""

    @abstractmethod
    def valid(self, context: Mapping[str, Any]) -> list[Any]:
        """Values on the rule's edges that it accepts."""


class Interval(Constraint):
    """An int or a finite float between ``low`` and ``high`` (``None``: unbounded on that side).

    Args:
        kind: ``int`` or ``float`` (a float option takes ints too: YAML writes ``0`` for ``0.0``).
        low, high: Bounds.
        closed: Which bounds belong to the interval: ``both``, ``left``, ``right`` or ``neither``.
    """

    def __init__(self, kind: type, low: float | None, high: float | None, *, closed: str = "both"):
        if kind not in (int, float) or closed not in ("both", "left", "right", "neither"):
            raise ValueError(f"Interval({kind!r}, closed={closed!r}): kind must be int or float and closed one of "
                             "both, left, right, neither.")
        self.kind, self.low, self.high = kind, low, high
        self.low_closed = low is not None and closed in ("both", "left")
        self.high_closed = high is not None and closed in ("both", "right")

    def __str__(self) -> str:
        if self.low is None and self.high is None:
            return "an int" if self.kind is int else "a finite float"
        left = "[" if self.low_closed else "("
        right = "]" if self.high_closed else ")"
        lo = "-inf" if self.low is None else _number(self.low)
        hi = "inf" if self.high is None else _number(self.high)
        return f"{'an int' if self.kind is int else 'a float'} in {left}{lo}, {hi}{right}"

    def _typed(self, value: Any) -> bool:
        return _is_int(value) if self.kind is int else _is_number(value)

    def accepts(self, value: Any, context: Mapping[str, Any]) -> bool:
        if not self._typed(value):
            return False
        above = self.low is None or (value >= self.low if self.low_closed else value > self.low)
        below = self.high is None or (value <= self.high if self.high_closed else value < self.high)
        return above and below

    def _step(self, bound: float, direction: float) -> float:
        """The next representable value from ``bound`` towards ``direction``."""
        return bound + (1 if direction > 0 else -1) if self.kind is int else math.nextafter(bound, direction)

    def invalid(self, context: Mapping[str, Any]) -> list[Any]:
        out: list[Any] = ["1", True, None, 1.5 if self.kind is int else float("nan")]
        if self.low is not None:
            out.append(self._step(self.low, -math.inf) if self.low_closed else self.low)
        if self.high is not None:
            out.append(self._step(self.high, math.inf) if self.high_closed else self.high)
        return out

    def valid(self, context: Mapping[str, Any]) -> list[Any]:
        out = []
        if self.low is not None:
            out.append(self.low if self.low_closed else self._step(self.low, math.inf))
        if self.high is not None:
            out.append(self.high if self.high_closed else self._step(self.high, -math.inf))
        return out or [0]


class OneOf(Constraint):
    """One of a few values of the same type as the value (so ``1`` is not ``True``)."""

    def __init__(self, *choices: Any):
        self.choices = choices

    def __str__(self) -> str:
        return "one of " + ", ".join(repr(c) for c in self.choices)

    def accepts(self, value: Any, context: Mapping[str, Any]) -> bool:
        return any(type(value) is type(c) and value == c for c in self.choices)

    def invalid(self, context: Mapping[str, Any]) -> list[Any]:
        return [f"not-{self.choices[0]}", None]

    def valid(self, context: Mapping[str, Any]) -> list[Any]:
        return list(self.choices)


class Boolean(Constraint):
    """``True`` or ``False`` (YAML ``true``/``false``), never a number or a string standing for one."""

    def __str__(self) -> str:
        return "a bool (true or false)"

    def accepts(self, value: Any, context: Mapping[str, Any]) -> bool:
        return isinstance(value, (bool, np.bool_))

    def invalid(self, context: Mapping[str, Any]) -> list[Any]:
        return ["true", 1, None]

    def valid(self, context: Mapping[str, Any]) -> list[Any]:
        return [True, False]


class Weights(Constraint):
    """``n`` non-negative numbers summing to 1 (within 1e-3): loss weights, one per output head."""

    def __init__(self, n: int):
        self.n = n

    def __str__(self) -> str:
        return f"a list of {self.n} non-negative numbers summing to 1"

    def accepts(self, value: Any, context: Mapping[str, Any]) -> bool:
        return (_is_sequence(value) and len(value) == self.n and all(_is_number(w) and w >= 0 for w in value)
                and math.isclose(sum(value), 1.0, abs_tol=1e-3))

    def invalid(self, context: Mapping[str, Any]) -> list[Any]:
        n = self.n
        out = ["abc", 1.0, [1 / (n + 1)] * (n + 1), [1.0] * n if n > 1 else [0.5], [math.nan] * n]
        if n > 1:
            out.append([1.5, -0.5] + [0.0] * (n - 2))
        return out

    def valid(self, context: Mapping[str, Any]) -> list[Any]:
        one_hot = [1.0] + [0.0] * (self.n - 1)
        return [one_hot, one_hot[::-1], [1 / self.n] * self.n]


class PositiveInts(Constraint):
    """A list of positive ints, possibly empty (the widths of hidden layers)."""

    def __str__(self) -> str:
        return "a list of positive ints"

    def accepts(self, value: Any, context: Mapping[str, Any]) -> bool:
        return _is_sequence(value) and all(_is_int(v) and v >= 1 for v in value)

    def invalid(self, context: Mapping[str, Any]) -> list[Any]:
        return [[0], [1.5], "abc", 3]

    def valid(self, context: Mapping[str, Any]) -> list[Any]:
        return [[], [1]]


class NoneOr(Constraint):
    """``None`` (the option's "derive it" value) or what ``inner`` accepts."""

    def __init__(self, inner: Constraint):
        self.inner = inner
        self.reads = inner.reads

    def __str__(self) -> str:
        return f"{self.inner} or None (null)"

    def accepts(self, value: Any, context: Mapping[str, Any]) -> bool:
        return value is None or self.inner.accepts(value, context)

    def expected(self, context: Mapping[str, Any]) -> str:
        return f"{self.inner.expected(context)} or None (null)"

    def invalid(self, context: Mapping[str, Any]) -> list[Any]:
        return [v for v in self.inner.invalid(context) if v is not None]

    def valid(self, context: Mapping[str, Any]) -> list[Any]:
        return [None, *self.inner.valid(context)]


class Divides(Constraint):
    """A positive int dividing another option, e.g. attention heads dividing the width.

    Args:
        option: The option divided (``d_model``).
        fallback: What stands for ``option`` when it is None (AuxFormer's ``d_model=None`` keeps
            the audio width: ``audio_dim``).
    """

    def __init__(self, option: str, fallback: str | None = None):
        self.option, self.fallback = option, fallback
        self.reads = (option,) if fallback is None else (option, fallback)

    def __str__(self) -> str:
        return f"divides {self.option}" + (f" ({self.fallback} when {self.option} is None)" if self.fallback else "")

    def _dividend(self, context: Mapping[str, Any]) -> Any:
        value = context.get(self.option)
        return context.get(self.fallback) if value is None and self.fallback else value

    def accepts(self, value: Any, context: Mapping[str, Any]) -> bool:
        d = self._dividend(context)
        if not (_is_int(d) and d >= 1):  # the width's own constraint speaks for it
            return True
        return _is_int(value) and value >= 1 and d % value == 0

    def expected(self, context: Mapping[str, Any]) -> str:
        if context.get(self.option) is None and self.fallback:
            return (f"an int that divides {self.fallback} ({self._dividend(context)}), which stands for "
                    f"{self.option} when {self.option} is None")
        return f"an int that divides {self.option} ({self._dividend(context)})"

    def invalid(self, context: Mapping[str, Any]) -> list[Any]:
        d = self._dividend(context)
        return [next(k for k in range(2, d + 2) if d % k), "1"]

    def valid(self, context: Mapping[str, Any]) -> list[Any]:
        return [1, self._dividend(context)]


# the option types every family shares
PositiveInt = Annotated[int, Interval(int, 1, None)]
DropoutRate = Annotated[float, Interval(float, 0.0, 1.0, closed="left")]  # 1 would drop everything
Flag = Annotated[bool, Boolean()]


def check_options(values: Mapping[str, Any], constraints: Mapping[str, tuple[Constraint, ...]], owner: str,
                  context: Mapping[str, Any] | None = None) -> None:
    """Checks each option in ``values`` against its declared constraints; the first broken one raises.

    Rules that read other options run last, so that ``d_model=0`` is reported as the width's
    fault, not as heads failing to divide it.

    Args:
        values: Every option's value (the defaults filled in): rules may read any of them.
        constraints: Option name -> its constraints; options without any are accepted as they are.
        owner: Whose options they are, for the message (``model 'auxformer'``).
        context: Further values rules may read (``audio_dim``).

    Raises:
        ValidationError: "The 'heads' option of model 'mult' must be ... Got 4 instead."
    """
    context = {**(context or {}), **values}
    rules = [(name, c) for name, cs in constraints.items() if name in values for c in cs]
    for name, rule in sorted(rules, key=lambda r: bool(r[1].reads)):
        if not rule.accepts(values[name], context):
            _fail(name, owner, rule.expected(context), values[name], kind="option")
