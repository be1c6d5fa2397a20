"""CREMA-D: its label tables, its file names and its media layout, in one place.

CREMA-D ships perceived labels in ``processedResults/summaryTable.csv``
(``FileName, VoiceVote, VoiceLevel, FaceVote, FaceLevel, MultiModalVote,
MultiModalLevel``; votes are the letters A D F H N S, a tie is written with
colons, e.g. ``N:S``) and actor demographics in ``VideoDemographics.csv``
(``ActorID, Age, Sex, Race, Ethnicity``).  File names are
``ACTOR_SENTENCE_EMOTION_LEVEL`` (``1001_DFA_ANG_XX``): the intended emotion
and intensity are in the name, the perceived label is in the table.

The paper (Sec. 4.1) keeps all 7,442 clips with the audiovisual vote.  420
clips have a tied audiovisual vote and each class gained some of its tied
clips, so ties were broken among the tied classes; no deterministic rule
reproduces the paper's counts exactly, so the default is a seeded random
choice among the tied classes (``ties="random"``).  ``ties="drop"`` keeps the
7,022 untied clips.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd

from avbench.data.synthetic import CREMA_D_COUNTS, EMOTION_CODES, LABELS
from avbench.data.tables import read_text_table
from avbench.validation import DataError, ValidationError, check_choice, check_int

log = logging.getLogger(__name__)

VOTES = {"A": "anger", "D": "disgust", "F": "fear", "H": "happiness", "S": "sadness", "N": "neutral"}
INTENDED = dict(zip(EMOTION_CODES, LABELS))
INTENSITIES = ("LO", "MD", "HI", "XX")
PAPER_COUNTS = dict(zip(LABELS, CREMA_D_COUNTS))  # Sec. 4.1, audiovisual votes, all 7,442 clips
LABEL_SOURCES = {"multimodal": "MultiModalVote", "voice": "VoiceVote", "face": "FaceVote", "intended": None}
TIE_RULES = ("random", "intended", "first", "drop")
NAME_RE = re.compile(r"^(?P<speaker>\d{4})_(?P<sentence>[A-Z]{3})_(?P<emotion>[A-Z]{3})_(?P<intensity>[A-Z]{2})$")
VOTE_RE = re.compile(r"^[ADFHNS](:[ADFHNS])*$")
AUDIO_DIR, VIDEO_DIR = "AudioWAV", "VideoFlash"
SUMMARY_TABLE = Path("processedResults") / "summaryTable.csv"
DEMOGRAPHICS = Path("VideoDemographics.csv")
# Known defects of the distribution (its README): clips without audio, a zero-length clip.
NO_AUDIO = ("1076_MTI_SAD_XX", "1076_MTI_NEU_XX")
ZERO_LENGTH = ("1064_TIE_SAD_XX",)


def _read_csv(path: Path, columns: tuple[str, ...], what: str) -> pd.DataFrame:
    table = read_text_table(path, f"CREMA-D's {what}")
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise DataError(f"{path}: missing columns {', '.join(missing)}; expected CREMA-D's {what} "
                              f"with columns {', '.join(columns)}.")
    return table.apply(lambda s: s.str.strip())


def _line(i: int) -> int:
    """CSV line of data row ``i`` (the header is line 1)."""
    return i + 2


def read_demographics(path: str | os.PathLike) -> dict[str, str]:
    """Maps actor id to gender (``female``/``male``) from ``VideoDemographics.csv``."""
    path = Path(path)
    table = _read_csv(path, ("ActorID", "Sex"), "VideoDemographics.csv")
    out = {}
    for i, (actor, sex) in enumerate(zip(table["ActorID"], table["Sex"])):
        gender = sex.lower()
        if not re.fullmatch(r"\d{4}", actor) or gender not in ("female", "male"):
            raise DataError(f"{path}, line {_line(i)}: expected a 4-digit ActorID and Sex Female or "
                                  f"Male. Got ActorID {actor!r}, Sex {sex!r} instead.")
        if actor in out:
            raise DataError(f"{path}, line {_line(i)}: actor {actor} is listed twice.")
        out[actor] = gender
    return out


def parse_clip_name(name: str) -> dict[str, str] | None:
    """Speaker, sentence, intended emotion and intensity from ``ACTOR_SENTENCE_EMOTION_LEVEL``."""
    m = NAME_RE.match(name)
    if not m or m["emotion"] not in INTENDED or m["intensity"] not in INTENSITIES:
        return None
    return {"speaker": m["speaker"], "sentence": m["sentence"], "intended_label": INTENDED[m["emotion"]],
            "intensity": m["intensity"]}


def crema_d_labels(summary_table: str | os.PathLike, demographics: str | os.PathLike | None = None, *,
                   label_source: str = "multimodal", ties: str = "random", seed: int = 0) -> pd.DataFrame:
    """One row per clip of CREMA-D with its perceived label, as the paper uses them.

    Args:
        summary_table: ``processedResults/summaryTable.csv`` of the distribution.
        demographics: ``VideoDemographics.csv``; adds a ``gender`` column.
        label_source: ``multimodal`` (audiovisual vote, the paper), ``voice``,
            ``face``, or ``intended`` (the emotion the actor was asked for,
            from the file name).
        ties: What a tied vote (``N:S``) becomes: ``random`` (seeded choice
            among the tied classes; keeps every clip, as the paper),
            ``intended`` (the intended emotion when it is among the tied
            classes, else the seeded choice), ``first`` (the first class
            written), ``drop`` (leave the clip out).
        seed: Seed of the ``random`` and ``intended`` tie breaks.  Clips are
            visited in sorted order, so the result does not depend on the
            table's row order.

    Returns:
        ``clip_id, speaker, label, intended_label, sentence, intensity,
        vote`` (the raw vote, ``N:S`` for a tie) and ``gender`` when
        demographics are given, sorted by clip id.

    Raises:
        ValidationError: naming the file and line of the first malformed row.
    """
    owner = "crema_d_labels"
    check_choice(label_source, "label_source", owner, LABEL_SOURCES)
    check_choice(ties, "ties", owner, TIE_RULES)
    seed = check_int(seed, "seed", owner, minimum=0)
    path = Path(summary_table)
    column = LABEL_SOURCES[label_source]
    table = _read_csv(path, ("FileName",) + ((column,) if column else ()), "processedResults/summaryTable.csv")
    rows, seen = [], set()
    for i, name in enumerate(table["FileName"]):
        parts = parse_clip_name(name)
        if parts is None:
            raise DataError(f"{path}, line {_line(i)}: FileName {name!r} is not ACTOR_SENTENCE_EMOTION_LEVEL "
                                  f"(e.g. 1001_DFA_ANG_XX) with EMOTION in {', '.join(INTENDED)} and LEVEL in "
                                  f"{', '.join(INTENSITIES)}.")
        if name in seen:
            raise DataError(f"{path}, line {_line(i)}: clip {name!r} is listed twice.")
        seen.add(name)
        vote = table[column].iloc[i] if column else next(k for k, v in VOTES.items() if v == parts["intended_label"])
        if not VOTE_RE.match(vote):
            raise DataError(f"{path}, line {_line(i)}: clip {name!r} has {column} {vote!r}; expected one of "
                                  f"{', '.join(VOTES)} or a tie such as 'N:S'.")
        rows.append({"clip_id": name, **parts, "vote": vote})
    if not rows:
        raise DataError(f"{path}: has no clips.")
    df = pd.DataFrame(rows).sort_values("clip_id", kind="stable").reset_index(drop=True)
    rng = np.random.default_rng(seed)
    labels = []
    for vote, intended in zip(df["vote"], df["intended_label"]):
        tied = [VOTES[v] for v in vote.split(":")]
        if len(tied) == 1:
            labels.append(tied[0])
        elif ties == "drop":
            labels.append(None)
        elif ties == "first":
            labels.append(tied[0])
        elif ties == "intended" and intended in tied:
            labels.append(intended)
        else:
            labels.append(tied[int(rng.integers(len(tied)))])
    df["label"] = labels
    dropped = int(df["label"].isna().sum())
    if dropped:
        log.warning("%s: dropped %d of %d clips whose %s vote is a tie (ties='drop').", path, dropped, len(df),
                    label_source)
    df = df[df["label"].notna()].reset_index(drop=True)
    if demographics is not None:
        genders = read_demographics(demographics)
        unknown = sorted(set(df["speaker"]) - set(genders))
        if unknown:
            raise DataError(f"{demographics}: actors {', '.join(unknown[:5])} of {path} are not listed; "
                                  "expected every actor of the summary table.")
        df["gender"] = df["speaker"].map(genders)
    front = ["clip_id", "speaker", "label", "intended_label", "sentence", "intensity"]
    return df[front + [c for c in df.columns if c not in front]]


def class_counts(labels: pd.DataFrame) -> pd.DataFrame:
    """Clips per class beside the paper's Sec. 4.1 counts (audiovisual votes, ties kept)."""
    counts = labels["label"].value_counts()
    out = pd.DataFrame({"clips": [int(counts.get(c, 0)) for c in LABELS],
                        "paper": [PAPER_COUNTS[c] for c in LABELS]}, index=pd.Index(LABELS, name="label"))
    out.loc["total"] = out.sum()
    return out


def media_paths(root: str | os.PathLike, clip_id: str) -> dict[str, str]:
    """Where a clip's media lie in a CREMA-D tree: audio from ``AudioWAV/`` (28 FLV files had no
    audio track before the 2020 fix), video from ``VideoFlash/``."""
    return {"audio_path": f"{AUDIO_DIR}/{clip_id}.wav", "video_path": f"{VIDEO_DIR}/{clip_id}.flv"}


def crema_d_manifest(root: str | os.PathLike | None = None, *, summary_table: str | os.PathLike | None = None,
                     demographics: str | os.PathLike | None = None, **options) -> pd.DataFrame:
    """The label table plus media paths relative to ``root``: the input of :func:`prepare`.

    ``summary_table`` and ``demographics`` default to their places in the
    distribution under ``root``; the demographics file is optional when not
    given explicitly and absent.
    """
    if summary_table is None:
        if root is None:
            raise ValidationError("The 'summary_table' parameter of crema_d_manifest is needed when no corpus "
                                  "root is given.")
        summary_table = Path(root) / SUMMARY_TABLE
    if demographics is None and root is not None and (Path(root) / DEMOGRAPHICS).is_file():
        demographics = Path(root) / DEMOGRAPHICS
    df = crema_d_labels(summary_table, demographics, **options)
    paths = pd.DataFrame([media_paths(root or ".", c) for c in df["clip_id"]])
    return pd.concat([df, paths], axis=1)
