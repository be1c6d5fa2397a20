"""MSP-IMPROV label tables: plurality of ratings, names parsed into speaker/session/gender, media lookup."""

import pandas as pd
import pytest
from click.testing import CliRunner

from avbench.cli import main
from avbench.data.msp_improv import msp_improv_manifest, plurality_labels
from avbench.validation import ValidationError

A = "MSP-IMPROV-S01A-F01-P-FM01"
B = "MSP-IMPROV-S02H-M01-S-MF03"
C = "MSP-IMPROV-S03S-F02-R-FM02"
D = "MSP-IMPROV-S04N-M03-P-MF11"


def ratings(path):
    rows = [(A, "r1", "Angry"), (A, "r2", "A"), (A, "r3", "neutral"),
            (B, "r1", "happy"), (B, "r2", "Happy"), (B, "r2", "Happy"), (B, "r3", "S"), (B, "r4", "S"),  # r2 twice
            (C, "r1", "sad"), (C, "r2", "neutral"),                                                       # tie
            (D, "r1", "other"), (D, "r2", "O"), (D, "r3", "neutral")]                                   # other
    pd.DataFrame(rows, columns=["clip_id", "rater", "label"]).to_csv(path, index=False)
    return path


def test_plurality_counts_each_rater_once_and_leaves_out_ties_and_other(tmp_path):
    df, left_out = msp_improv_manifest(ratings(tmp_path / "r.csv"))
    assert dict(zip(df["clip_id"], df["label"])) == {A: "anger"}
    assert left_out == {"tie": 2, "other": 1}  # B is 2-2 once r2's duplicate rating is dropped
    table = pd.DataFrame({"clip_id": [B] * 3, "rater": ["r1", "r2", "r3"], "label": ["H", "H", "S"]})
    assert plurality_labels(table)[0].to_dict() == {B: "happiness"}


def test_names_give_speaker_session_gender_and_media_are_found(tmp_path):
    pd.DataFrame({"clip_id": [A, B, C], "label": ["A", "happiness", "sad"]}).to_csv(tmp_path / "l.csv", index=False)
    root = tmp_path / "corpus"
    for sub, name, ext in (("session1/S01A/P", A, "wav"), ("session1/S01A/P", A, "avi"), ("session1/S02H/S", B, "wav")):
        (root / sub).mkdir(parents=True, exist_ok=True)
        (root / sub / f"{name}.{ext}").write_bytes(b"x")
    df, left_out = msp_improv_manifest(tmp_path / "l.csv", root)
    row = df.set_index("clip_id")
    assert row.loc[A, ["speaker", "session", "gender", "label"]].tolist() == ["F01", "01", "female", "anger"]
    assert row.loc[B, ["speaker", "gender"]].tolist() == ["M01", "male"]
    assert row.loc[A, "video_path"] == f"session1/S01A/P/{A}.avi" and row.loc[B, "video_path"] == ""
    assert not left_out
    # The parsing is an option: here the speaker is read as the last field.
    custom = msp_improv_manifest(tmp_path / "l.csv", name_regex=r"^.*-(?P<session>S\d+)[A-Z]-.*-(?P<speaker>\w+)$")[0]
    assert custom.set_index("clip_id").loc[A, ["speaker", "session", "gender"]].tolist() == ["FM01", "S01", ""]


def test_bad_tables_and_options_are_named(tmp_path):
    pd.DataFrame({"name": [A], "emotion": ["A"]}).to_csv(tmp_path / "cols.csv", index=False)
    with pytest.raises(ValidationError, match=r"cols\.csv: missing columns clip_id, label.*--clip-column"):
        msp_improv_manifest(tmp_path / "cols.csv")
    assert len(msp_improv_manifest(tmp_path / "cols.csv", clip_col="name", label_col="emotion")[0]) == 1
    pd.DataFrame({"clip_id": [A, A], "label": ["A", "H"]}).to_csv(tmp_path / "dup.csv", index=False)
    with pytest.raises(ValidationError, match=r"dup\.csv, line 3: clip .* is listed twice"):
        msp_improv_manifest(tmp_path / "dup.csv")
    pd.DataFrame({"clip_id": ["S01A-F01"], "label": ["A"]}).to_csv(tmp_path / "n.csv", index=False)
    with pytest.raises(ValidationError, match=r"clip 'S01A-F01': its name does not match"):
        msp_improv_manifest(tmp_path / "n.csv")
    with pytest.raises(ValidationError, match=r"'name_regex' .* named groups speaker and session"):
        msp_improv_manifest(tmp_path / "n.csv", name_regex=r"(?P<speaker>.*)")


def test_cli_manifest(tmp_path):
    r = CliRunner().invoke(main, ["data", "msp-improv", "manifest", "--labels", str(ratings(tmp_path / "r.csv")),
                                  "--root", str(tmp_path), "--out", str(tmp_path / "m.csv")])
    assert r.exit_code == 0, r.output
    assert "1 clips, 1 speakers, 1 sessions; left out: 2 tied, 1 outside the four classes" in r.output
    assert "warning: 1 clips have no audio file" in r.output
    assert pd.read_csv(tmp_path / "m.csv")["label"].tolist() == ["anger"]
