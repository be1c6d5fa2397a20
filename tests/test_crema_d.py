"""CREMA-D label tables: votes, tie rules, demographics, malformed rows named by line, the CLI."""

import pandas as pd
import pytest
from click.testing import CliRunner

from avbench.cli import main
from avbench.data.crema_d import PAPER_COUNTS, class_counts, crema_d_labels, parse_clip_name
from avbench.validation import ValidationError

ROWS = [  # FileName, VoiceVote, FaceVote, MultiModalVote
    ("1001_DFA_ANG_XX", "A", "A", "A"),
    ("1001_IEO_HAP_HI", "H", "N", "N"),
    ("1002_TIE_SAD_LO", "S", "N", "N:S"),
    ("1002_IOM_FEA_MD", "F", "F", "F:S"),
    ("1002_ITS_DIS_XX", "D", "D", "D:N:A"),
    ("1001_WSI_NEU_XX", "N", "N", "N"),
]


def write_summary(path, rows=ROWS):
    """The real layout: an unnamed index column first, levels as numbers."""
    df = pd.DataFrame([{"FileName": f, "VoiceVote": v, "VoiceLevel": 60, "FaceVote": fa, "FaceLevel": 55.5,
                        "MultiModalVote": m, "MultiModalLevel": 70} for f, v, fa, m in rows])
    df.to_csv(path)
    return path


def write_demographics(path, actors=(("1001", "Male"), ("1002", "Female"))):
    pd.DataFrame([{"ActorID": a, "Age": 30, "Sex": s, "Race": "Caucasian", "Ethnicity": "Not Hispanic"}
                  for a, s in actors]).to_csv(path, index=False)
    return path


def test_file_names_parse_into_actor_sentence_emotion_level():
    assert parse_clip_name("1076_MTI_SAD_XX") == {"speaker": "1076", "sentence": "MTI",
                                                  "intended_label": "sadness", "intensity": "XX"}
    assert parse_clip_name("1076_MTI_SAD") is None and parse_clip_name("1076_MTI_BOR_XX") is None


def test_random_ties_are_seeded_choices_among_the_tied_classes(tmp_path):
    table = write_summary(tmp_path / "summaryTable.csv")
    df = crema_d_labels(table)
    assert len(df) == 6 and list(df["clip_id"]) == sorted(r[0] for r in ROWS)
    label = dict(zip(df["clip_id"], df["label"]))
    assert label["1001_DFA_ANG_XX"] == "anger" and label["1001_IEO_HAP_HI"] == "neutral"
    assert label["1002_TIE_SAD_LO"] in ("neutral", "sadness")
    assert label["1002_IOM_FEA_MD"] in ("fear", "sadness")
    assert label["1002_ITS_DIS_XX"] in ("disgust", "neutral", "anger")
    assert crema_d_labels(table)["label"].tolist() == df["label"].tolist()  # same seed, same labels
    # Row order does not matter: clips are visited sorted.
    shuffled = write_summary(tmp_path / "shuffled.csv", ROWS[::-1])
    assert crema_d_labels(shuffled)["label"].tolist() == df["label"].tolist()
    # Over many seeds every tied class is drawn, and only tied classes.
    drawn = {crema_d_labels(table, seed=s).set_index("clip_id")["label"]["1002_ITS_DIS_XX"] for s in range(40)}
    assert drawn == {"disgust", "neutral", "anger"}


def test_other_tie_rules_and_label_sources(tmp_path):
    table = write_summary(tmp_path / "summaryTable.csv")
    dropped = crema_d_labels(table, ties="drop")
    assert len(dropped) == 3 and "1002_TIE_SAD_LO" not in set(dropped["clip_id"])
    first = crema_d_labels(table, ties="first").set_index("clip_id")["label"]
    assert first["1002_TIE_SAD_LO"] == "neutral" and first["1002_ITS_DIS_XX"] == "disgust"
    intended = crema_d_labels(table, ties="intended").set_index("clip_id")["label"]
    assert intended["1002_TIE_SAD_LO"] == "sadness" and intended["1002_ITS_DIS_XX"] == "disgust"
    assert intended["1002_IOM_FEA_MD"] == "fear"
    face = crema_d_labels(table, label_source="face").set_index("clip_id")["label"]
    assert face["1001_IEO_HAP_HI"] == "neutral" and face["1002_TIE_SAD_LO"] == "neutral"
    by_name = crema_d_labels(table, label_source="intended")
    assert (by_name["label"] == by_name["intended_label"]).all()


def test_demographics_add_gender_and_counts_sit_beside_the_papers(tmp_path):
    df = crema_d_labels(write_summary(tmp_path / "s.csv"), write_demographics(tmp_path / "d.csv"))
    assert dict(zip(df["speaker"], df["gender"])) == {"1001": "male", "1002": "female"}
    counts = class_counts(df)
    assert counts.loc["anger", "paper"] == PAPER_COUNTS["anger"] == 1067
    assert counts.loc["total", "paper"] == 7442 and counts.loc["total", "clips"] == 6
    with pytest.raises(ValidationError, match=r"d2\.csv: actors 1002 .* are not listed"):
        crema_d_labels(tmp_path / "s.csv", write_demographics(tmp_path / "d2.csv", (("1001", "Male"),)))
    with pytest.raises(ValidationError, match=r"d3\.csv, line 3: expected a 4-digit ActorID and Sex"):
        crema_d_labels(tmp_path / "s.csv", write_demographics(tmp_path / "d3.csv", (("1001", "Male"), ("1002", "?"))))


@pytest.mark.parametrize("row, message", [
    (("1003_DFA_ANG", "A", "A", "A"), r"line 8: FileName '1003_DFA_ANG' is not ACTOR_SENTENCE_EMOTION_LEVEL"),
    (("1003_DFA_ANG_XX", "A", "A", "X"), r"line 8: clip '1003_DFA_ANG_XX' has MultiModalVote 'X'"),
    (("1003_DFA_ANG_XX", "A", "A", "A:"), r"line 8: .*MultiModalVote 'A:'"),
    (("1001_DFA_ANG_XX", "A", "A", "A"), r"line 8: clip '1001_DFA_ANG_XX' is listed twice"),
])
def test_malformed_tables_are_refused_naming_the_line(tmp_path, row, message):
    table = write_summary(tmp_path / "summaryTable.csv", ROWS + [row])
    with pytest.raises(ValidationError, match=r"summaryTable\.csv, " + message):
        crema_d_labels(table)


def test_missing_columns_and_files_are_named(tmp_path):
    pd.DataFrame({"FileName": ["1001_DFA_ANG_XX"]}).to_csv(tmp_path / "t.csv", index=False)
    with pytest.raises(ValidationError, match=r"t\.csv: missing columns MultiModalVote"):
        crema_d_labels(tmp_path / "t.csv")
    with pytest.raises(ValidationError, match=r"nope\.csv: not found"):
        crema_d_labels(tmp_path / "nope.csv")
    with pytest.raises(ValidationError, match=r"'ties' parameter of crema_d_labels must be one of"):
        crema_d_labels(tmp_path / "t.csv", ties="coin")


def test_cli_manifest_writes_rows_and_prints_counts(tmp_path):
    write_summary(tmp_path / "summaryTable.csv")
    write_demographics(tmp_path / "VideoDemographics.csv")
    args = ["data", "crema-d", "manifest", "--summary-table", str(tmp_path / "summaryTable.csv"),
            "--demographics", str(tmp_path / "VideoDemographics.csv"), "--out", str(tmp_path / "m.csv")]
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 0, r.output
    assert "6 clips, 2 actors" in r.output and "1067" in r.output and "7442" in r.output
    assert "female 3 clips / 1 speakers" in r.output
    m = pd.read_csv(tmp_path / "m.csv", dtype=str)
    assert {"clip_id", "speaker", "label", "sentence", "intended_label", "intensity", "gender",
            "audio_path", "video_path"} <= set(m.columns)
    assert m.set_index("clip_id").loc["1001_DFA_ANG_XX", "audio_path"] == "AudioWAV/1001_DFA_ANG_XX.wav"
    r = CliRunner().invoke(main, args[:-2] + ["--ties", "drop", "--out", str(tmp_path / "d.csv")])
    assert r.exit_code == 0 and "3 clips" in r.output
    write_summary(tmp_path / "bad.csv", ROWS + [("x", "A", "A", "A")])
    r = CliRunner().invoke(main, ["data", "crema-d", "manifest", "--summary-table", str(tmp_path / "bad.csv"),
                                  "--out", str(tmp_path / "b.csv")])
    assert r.exit_code == 1 and "bad.csv, line 8" in r.output and "Usage:" not in r.output and not (tmp_path / "b.csv").exists()
