"""MSP-IMPROV: consensus labels by plurality, speaker/session/gender from file names, media lookup.

The corpus's own label files are licensed and not available to avbench's
authors, so the label input is a documented CSV the user writes from them:

* ``clip_id, label``: one consensus label per clip, or
* ``clip_id, rater, label``: one row per rating; the label is the plurality
  of the ratings (a tie has no plurality and the clip is left out, counted).

Labels may be written as names (``anger``, ``happiness``, ``sadness``,
``neutral``; also ``angry``, ``happy``, ``sad``) or letters (``A H S N``).
The paper keeps those four classes; any other label (``other``, ``O``, ...)
leaves the clip out, counted.  Column names are options.

File names such as ``MSP-IMPROV-S01A-F01-P-FM01`` code the target sentence
(``01``), the emotion of the scenario (``A``), the speaker (``F01``: the
female actor of session 1; each session pairs one female and one male
actor), the recording type (``P``) and the turn.  This reading follows
public tools that parse the corpus (the corpus documentation itself was not
available here); ``name_regex`` overrides it, with named groups ``speaker``,
``session`` and optionally ``gender``.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from pathlib import Path

import pandas as pd

from avbench.data.tables import read_text_table
from avbench.validation import DataError, ValidationError

CLASSES = ("anger", "happiness", "sadness", "neutral")
LABEL_ALIASES = {"anger": "anger", "angry": "anger", "a": "anger", "happiness": "happiness", "happy": "happiness",
                 "h": "happiness", "sadness": "sadness", "sad": "sadness", "s": "sadness", "neutral": "neutral",
                 "n": "neutral"}
NAME_REGEX = (r"^MSP-IMPROV-S(?P<sentence>\d+)(?P<scenario>[A-Z])-(?P<speaker>(?P<gender>[FM])(?P<session>\d+))"
              r"-(?P<recording>[A-Z])-(?P<turn>[A-Z0-9]+)$")
GENDERS = {"F": "female", "M": "male"}
AUDIO_EXTS, VIDEO_EXTS = (".wav",), (".avi", ".mp4", ".flv", ".mkv")


def _line(i: int) -> int:
    return i + 2


def plurality_labels(ratings: pd.DataFrame, *, clip_col: str = "clip_id", label_col: str = "label",
                     rater_col: str | None = "rater") -> tuple[pd.Series, Counter]:
    """The consensus label of each clip: its ratings' plurality among the four classes.

    A rating outside the four classes still counts as a vote (a clip most
    raters call "other" is not one of the four); a tie for the top has no
    plurality.  Returns the labels of the kept clips and the reasons others
    were left out (``tie``, ``other``).
    """
    left_out: Counter = Counter()
    labels = {}
    for clip, group in ratings.groupby(clip_col, sort=True):
        if rater_col and rater_col in group:
            group = group.drop_duplicates(rater_col)
        votes = Counter(LABEL_ALIASES.get(v.lower(), "other") for v in group[label_col])
        (top, n), *rest = votes.most_common()
        if rest and rest[0][1] == n:
            left_out["tie"] += 1
        elif top == "other":
            left_out["other"] += 1
        else:
            labels[clip] = top
    return pd.Series(labels, name="label", dtype=object), left_out


def parse_names(clip_ids: pd.Series, name_regex: str = NAME_REGEX) -> pd.DataFrame:
    """Speaker, session and gender of each clip id from ``name_regex``'s named groups."""
    try:
        pattern = re.compile(name_regex)
    except re.error as exc:
        raise ValidationError(f"The 'name_regex' parameter of msp_improv_manifest must be a regular expression. "
                              f"Got {name_regex!r} instead ({exc}).") from None
    missing = {"speaker", "session"} - set(pattern.groupindex)
    if missing:
        raise ValidationError(f"The 'name_regex' parameter of msp_improv_manifest must have the named groups "
                              f"speaker and session (gender optional). Got {name_regex!r} instead.")
    rows = []
    for clip in clip_ids:
        m = pattern.match(clip)
        if not m:
            raise ValidationError(f"clip {clip!r}: its name does not match the file-name pattern {name_regex!r}; "
                                  "pass --name-regex with named groups speaker and session (gender optional).")
        g = m.groupdict()
        gender = GENDERS.get(g.get("gender") or "", g.get("gender") or "")
        rows.append({"speaker": g["speaker"], "session": g["session"], "gender": gender})
    return pd.DataFrame(rows, index=clip_ids.index)


def find_media(root: str | os.PathLike) -> dict[str, dict[str, str]]:
    """Media files under ``root`` by stem: ``{clip_id: {"audio_path": ..., "video_path": ...}}``.

    Paths are relative to ``root``.  Both the distribution's layout
    (``session1/S01A/P/*.avi``) and flat folders work, since only stems count.
    """
    root = Path(root)
    if not root.is_dir():
        raise ValidationError(f"{root}: no such directory; expected the MSP-IMPROV corpus root.")
    found: dict[str, dict[str, str]] = {}
    for path in sorted(root.rglob("*")):
        ext = path.suffix.lower()
        key = "audio_path" if ext in AUDIO_EXTS else "video_path" if ext in VIDEO_EXTS else None
        if key and path.is_file():
            found.setdefault(path.stem, {})[key] = path.relative_to(root).as_posix()
    return found


def msp_improv_manifest(labels: str | os.PathLike, root: str | os.PathLike | None = None, *,
                        clip_col: str = "clip_id", label_col: str = "label", rater_col: str = "rater",
                        name_regex: str = NAME_REGEX) -> tuple[pd.DataFrame, Counter]:
    """One row per kept clip: ``clip_id, speaker, label, session, gender`` and media paths.

    Args:
        labels: The label CSV (see the module docstring).
        root: Corpus root searched for ``<clip_id>.wav`` and ``<clip_id>.avi``;
            without it the media columns are left out.
        clip_col, label_col, rater_col: Column names of the label CSV.  The
            file is read per rating when ``rater_col`` is one of its columns.
        name_regex: File-name pattern with named groups ``speaker``,
            ``session`` and optionally ``gender``.

    Returns:
        The manifest, and the clips left out by reason (``tie``, ``other``).
    """
    path = Path(labels)
    table = read_text_table(path, "the MSP-IMPROV label CSV")
    missing = [c for c in (clip_col, label_col) if c not in table.columns]
    if missing:
        raise DataError(f"{path}: missing columns {', '.join(missing)}; expected {clip_col}, {label_col} "
                              f"and optionally {rater_col} (one row per rating). Name the columns with "
                              "--clip-column, --label-column, --rater-column.")
    table = table.apply(lambda s: s.str.strip())
    empty = (table[clip_col] == "") | (table[label_col] == "")
    if empty.any():
        i = int(empty.to_numpy().nonzero()[0][0])
        raise DataError(f"{path}, line {_line(i)}: empty {clip_col} or {label_col}.")
    per_rating = rater_col in table.columns
    if not per_rating:
        dup = table[clip_col].duplicated()
        if dup.any():
            i = int(dup.to_numpy().nonzero()[0][0])
            raise DataError(f"{path}, line {_line(i)}: clip {table[clip_col].iloc[i]!r} is listed twice; "
                                  f"one row per clip is expected without a {rater_col!r} column.")
    series, left_out = plurality_labels(table, clip_col=clip_col, label_col=label_col,
                                        rater_col=rater_col if per_rating else None)
    if series.empty:
        raise DataError(f"{path}: no clip has a plurality label among {', '.join(CLASSES)} "
                              f"(left out: {dict(left_out)}).")
    ids = pd.Series(series.index, name="clip_id")
    df = pd.concat([ids, parse_names(ids, name_regex), series.reset_index(drop=True)], axis=1)
    if root is not None:
        media = find_media(root)
        df["audio_path"] = [media.get(c, {}).get("audio_path", "") for c in df["clip_id"]]
        df["video_path"] = [media.get(c, {}).get("video_path", "") for c in df["clip_id"]]
    front = ["clip_id", "speaker", "label", "session", "gender"]
    return df[front + [c for c in df.columns if c not in front]], left_out


def class_counts(df: pd.DataFrame) -> pd.DataFrame:
    """Clips per class (the paper gives no per-class counts for MSP-IMPROV)."""
    counts = df["label"].value_counts()
    out = pd.DataFrame({"clips": [int(counts.get(c, 0)) for c in CLASSES]}, index=pd.Index(CLASSES, name="label"))
    out.loc["total"] = out.sum()
    return out
