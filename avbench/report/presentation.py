"""How a report names, orders, colours and casts each model, read from the model's own metadata.

Every model declares its :class:`avbench.models.base.Presentation` (names, role, colour,
marker, order) where it registers, so a plugin model takes any place in every table and figure
by declaring it.  A model of the run that is not installed where the report is built is shown
under its registry name, in a spare palette colour, as an audiovisual baseline.
"""

from __future__ import annotations

from avbench.models.base import Presentation
from avbench.report.style import OKABE_ITO

_SPARE_COLORS = (OKABE_ITO["vermillion"], OKABE_ITO["black"], OKABE_ITO["grey"], OKABE_ITO["sky_blue"])
_SPARE_MARKERS = ("h", "p", "<", ">")
_UNKNOWN = Presentation()


def model_meta(model: str):
    """The model's registered metadata, or None when it is not installed where the report is built."""
    try:
        from avbench.models import get_model_meta

        return get_model_meta(model)
    except Exception:  # not installed here: the report still shows its rows
        return None


def presentation(model: str) -> Presentation:
    meta = model_meta(model)
    return meta.presentation if meta is not None else _UNKNOWN


def modalities(model: str) -> tuple[str, ...]:
    meta = model_meta(model)
    return tuple(meta.modalities) if meta is not None else ("audio", "visual")


def model_label(model: str, short: bool = False) -> str:
    """The model's name in figures (``short``: on crowded axes); its registry name by default."""
    p = presentation(model)
    return (p.short_label or p.label or model) if short else (p.label or model)


def table_label(model: str) -> str:
    """The row name of a model in the tables."""
    p = presentation(model)
    return p.table_label or p.label or model


def model_sort_key(model: str) -> tuple[int, str]:
    return (presentation(model).order, model)


def model_key_sentence(models) -> str:
    """' Baseline 1 = ...; Baseline 2 = ....' for the models among ``models`` that explain their
    names ('' if none)."""
    keys = [presentation(m).key for m in sorted(models, key=model_sort_key)]
    parts = list(dict.fromkeys(k for k in keys if k))
    return f" {'; '.join(parts)}." if parts else ""


def model_color(model: str, others: list[str] | tuple[str, ...] = ()) -> str:
    """The declared colour, else a spare one (distinct among ``others`` without a colour)."""
    if presentation(model).color:
        return presentation(model).color
    spare = sorted(m for m in others if not presentation(m).color)
    return _SPARE_COLORS[spare.index(model) % len(_SPARE_COLORS)] if model in spare else OKABE_ITO["grey"]


def model_marker(model: str) -> str:
    return presentation(model).marker or _SPARE_MARKERS[sum(map(ord, model)) % len(_SPARE_MARKERS)]


def proposed_models(models) -> list[str]:
    """The models of ``models`` whose role is ``proposed``, in table order."""
    return sorted((m for m in models if presentation(m).role == "proposed"), key=model_sort_key)


def multimodal_models(models) -> list[str]:
    """The audiovisual models of Table 1 (upscaled ones go to Fig. 8), in table order."""
    keep = [m for m in models if presentation(m).role != "upscaled" and len(modalities(m)) > 1]
    return sorted(keep, key=model_sort_key)


def unimodal_reference(modality: str) -> str:
    """Baseline 4 of ``modality``: the first installed baseline that reads that modality alone."""
    from avbench.registry import MODELS

    found = sorted((m for m in MODELS.names() if presentation(m).role == "baseline" and modalities(m) == (modality,)),
                   key=model_sort_key)
    return found[0] if found else f"(no unimodal {modality} baseline)"
