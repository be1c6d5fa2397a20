"""``avbench data``: corpora from raw media or feature files, their label tables, splits and checks."""

from __future__ import annotations

import json
from pathlib import Path

import click


from avbench.cli.common import (_wide_pandas, main, user_errors)


@main.group()
def data() -> None:
    """Create, import and inspect feature stores."""


@data.command("synth")
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="Where to write; default: the cache used by --corpus synthetic.")
@click.option("--seed", default=0, show_default=True, type=click.IntRange(min=0))
@click.option("--speakers", default=91, show_default=True, type=click.IntRange(min=3))
@click.option("--clips-per-speaker", default=24, show_default=True, type=click.IntRange(min=1))
@click.option("--visual-dim", default=64, show_default=True, type=click.IntRange(min=1))
@user_errors
def data_synth(out, seed, speakers, clips_per_speaker, visual_dim):
    """Generate the built-in synthetic corpus (CREMA-D's shape, SYNTHETIC data)."""
    from avbench.data.synthetic import default_synthetic, default_synthetic_path, generate_synthetic

    params = dict(seed=seed, n_speakers=speakers, clips_per_speaker=clips_per_speaker, visual_dim=visual_dim)
    existed = (Path(out) if out else default_synthetic_path(**params)[0]) / "store.json"
    existed = existed.exists()
    store = generate_synthetic(Path(out), **params) if out else default_synthetic(**params)
    click.echo(f"synthetic corpus {'reused (generated before)' if existed else 'generated'}: {store.path} ({len(store)} clips, {len(set(store.speakers))} speakers, "
               f"audio {store.audio_dim}-d @ {store.audio_rate} fps, visual {store.visual_dim}-d @ {store.visual_rate} fps)")


@data.command("import")
@click.argument("manifest", type=click.Path(dir_okay=False))
@click.argument("features", type=click.Path(file_okay=False))
@click.option("--out", required=True, type=click.Path(file_okay=False))
@click.option("--audio-rate", default=62.5, show_default=True, type=click.FloatRange(min=0, min_open=True), help="Audio frames per second.")
@click.option("--visual-rate", default=30.0, show_default=True, type=click.FloatRange(min=0, min_open=True), help="Visual frames per second.")
@click.option("--dtype", default="float16", show_default=True, type=click.Choice(["float16", "float32"]))
@user_errors
def data_import(manifest, features, out, audio_rate, visual_rate, dtype):
    """Build a feature store from MANIFEST (clip_id, speaker, label, ...) and per-clip
    FEATURES/<clip_id>.audio.npy and .visual.npy files."""
    from avbench.data.store import import_arrays

    store = import_arrays(Path(out), Path(manifest), Path(features), audio_rate=audio_rate,
                          visual_rate=visual_rate, dtype=dtype)
    click.echo(f"feature store: {store.path} ({len(store)} clips, labels {', '.join(store.label_names)})")


@data.command("info")
@click.argument("corpus")
@click.option("--verify", is_flag=True, help="Recompute checksums.")
@user_errors
def data_info(corpus, verify):
    """Summary and provenance of a feature store."""
    from avbench.data import open_corpus

    store = open_corpus(corpus)
    if verify:
        store.verify()
        click.echo("verified: every data file matches its sha256 in store.json and every feature value is finite.")
    m = store.manifest
    click.echo(f"{store.name} at {store.path}{'  [SYNTHETIC]' if store.synthetic else ''}\n"
               f"clips {len(store)}, speakers {m['speaker'].nunique()}, checksum {store.checksum}\n"
               f"audio {store.audio_dim}-d @ {store.audio_rate} fps, visual {store.visual_dim}-d @ {store.visual_rate} fps\n"
               f"labels: " + ", ".join(f"{k} {v}" for k, v in m["label"].value_counts().items()))
    click.echo("provenance: " + json.dumps(store.provenance, indent=1, default=str))


@data.group("crema-d")
def crema_d() -> None:
    """CREMA-D from its distribution: label tables and feature extraction."""


@crema_d.command("manifest")
@click.option("--summary-table", required=True, type=click.Path(dir_okay=False),
              help="processedResults/summaryTable.csv of the distribution.")
@click.option("--demographics", type=click.Path(dir_okay=False), default=None,
              help="VideoDemographics.csv (adds a gender column).")
@click.option("--label-source", default="multimodal", show_default=True,
              type=click.Choice(["multimodal", "voice", "face", "intended"]),
              help="Which vote is the label; the paper uses the audiovisual (multimodal) one.")
@click.option("--ties", default="random", show_default=True, type=click.Choice(["random", "intended", "first", "drop"]),
              help="What a tied vote (N:S) becomes; random (seeded, among the tied classes) keeps all 7,442 clips.")
@click.option("--seed", default=0, show_default=True, type=int, help="Seed of the tie break.")
@click.option("--root", type=click.Path(file_okay=False), default=".", show_default=True,
              help="Corpus root the media paths (AudioWAV/, VideoFlash/) are relative to.")
@click.option("--out", required=True, type=click.Path(dir_okay=False))
@user_errors
def crema_d_manifest_cmd(summary_table, demographics, label_source, ties, seed, root, out):
    """Write one row per clip: id, actor, sentence, intended emotion and level, gender, label, media paths."""
    from avbench.atomic import atomic_path
    from avbench.data.crema_d import class_counts, crema_d_manifest

    df = crema_d_manifest(root, summary_table=summary_table, demographics=demographics, label_source=label_source,
                          ties=ties, seed=seed)
    with atomic_path(Path(out)) as tmp:
        df.to_csv(tmp, index=False)
    _print_counts(df, class_counts(df), f"{out}: {len(df)} clips, {df['speaker'].nunique()} actors "
                  f"(labels: {label_source} votes, ties: {ties})")


@data.group("msp-improv")
def msp_improv() -> None:
    """MSP-IMPROV from its distribution: label tables and feature extraction."""


@msp_improv.command("manifest")
@click.option("--labels", required=True, type=click.Path(dir_okay=False),
              help="CSV: clip_id,label (one row per clip) or clip_id,rater,label (one row per rating).")
@click.option("--root", type=click.Path(file_okay=False), default=None,
              help="Corpus root, searched for <clip_id>.wav and .avi; omit to write labels only.")
@click.option("--clip-column", default="clip_id", show_default=True)
@click.option("--label-column", default="label", show_default=True)
@click.option("--rater-column", default="rater", show_default=True,
              help="When the CSV has this column, labels are the plurality of its ratings.")
@click.option("--name-regex", default=None, help="File-name pattern with named groups speaker, session "
              "(and gender).  [default: MSP-IMPROV-S01A-F01-P-FM01 -> speaker F01, session 01, gender female]")
@click.option("--out", required=True, type=click.Path(dir_okay=False))
@user_errors
def msp_improv_manifest_cmd(labels, root, clip_column, label_column, rater_column, name_regex, out):
    """Write one row per clip with a plurality label among anger, happiness, sadness, neutral."""
    from avbench.atomic import atomic_path
    from avbench.data.msp_improv import NAME_REGEX, class_counts, msp_improv_manifest

    df, left_out = msp_improv_manifest(labels, root, clip_col=clip_column, label_col=label_column,
                                       rater_col=rater_column, name_regex=name_regex or NAME_REGEX)
    with atomic_path(Path(out)) as tmp:
        df.to_csv(tmp, index=False)
    _print_counts(df, class_counts(df), f"{out}: {len(df)} clips, {df['speaker'].nunique()} speakers, "
                  f"{df['session'].nunique()} sessions; left out: {left_out.get('tie', 0)} tied, "
                  f"{left_out.get('other', 0)} outside the four classes")
    if root is not None:
        for col in ("audio_path", "video_path"):
            n = int((df[col] == "").sum())
            if n:
                click.echo(f"warning: {n} clips have no {col.split('_')[0]} file under {root}")


def _print_counts(df, counts, title: str) -> None:
    click.echo(title)
    with _wide_pandas():
        click.echo(counts.to_string())
    if "gender" in df.columns:
        per = df.groupby("gender").agg(clips=("clip_id", "size"), speakers=("speaker", "nunique"))
        click.echo("per gender: " + ", ".join(f"{g} {r.clips} clips / {r.speakers} speakers"
                                             for g, r in per.iterrows()))


@data.group("splits")
def splits_group() -> None:
    """Partitions you supply (e.g. the authors' own), used with avbench run --splits NAME."""


@splits_group.command("import")
@click.argument("table", type=click.Path(dir_okay=False))
@click.option("--store", required=True, help="Feature-store path the partitions are for.")
@click.option("--name", required=True, help="Name to register them under (letters, digits, '.', '_', '-').")
@click.option("--clip-column", default="clip_id", show_default=True)
@click.option("--trial-column", default="trial", show_default=True)
@click.option("--partition-column", default="partition", show_default=True, help="Values: train, dev, test.")
@user_errors
def splits_import(table, store, name, clip_column, trial_column, partition_column):
    """Check TABLE (one row per clip and trial) and register it for STORE; it is written to the
    cache ($AVBENCH_HOME/splits), never into the store."""
    from avbench.data import open_corpus
    from avbench.data.published_splits import import_splits

    st = open_corpus(store)
    rec = import_splits(table, st, name, clip_col=clip_column, trial_col=trial_column, partition_col=partition_column)
    click.echo(f"partitions {name!r}: {rec['trials']} trials for {st.path} (hash {rec['hash'][:8]}), written to "
               f"{rec['path']}" + (f"; {rec['unknown_clips']} rows name clips the store lacks (ignored)"
                                   if rec["unknown_clips"] else ""))
    click.echo(f"use them with: avbench run --corpus {st.path} --splits {name} ...")


def _extraction_options(fn):
    """The options every prepare command shares: extractors, weights, device, parallelism."""
    opts = [
        click.option("--audio-extractor", default="compare", show_default=True,
                     help="Registered audio extractor (avbench.extractors); compare = 130 ComParE LLDs, 32/16 ms; "
                          "wav2vec2, hubert, wavlm = hidden states of the --audio-model checkpoint (50/s; [ssl] extra)."),
        click.option("--audio-model", type=click.Path(file_okay=False), default=None,
                     help="Local Hugging Face checkpoint folder (config.json, model.safetensors or pytorch_model.bin, "
                          "preprocessor_config.json) for wav2vec2/hubert/wavlm; never downloaded."),
        click.option("--audio-layer", default="last", show_default=True,
                     help="last (last_hidden_state), N (hidden state N; 0 = the transformer's input) or mean (of all)."),
        click.option("--audio-preset", type=click.Choice(["auxformer-release"]), default=None,
                     help="auxformer-release: the released AuxFormer code's audio model (wav2vec2-large-robust, "
                          "encoder layers 12+ deleted, last_hidden_state); implies --audio-extractor wav2vec2."),
        click.option("--audio-weights", type=click.Path(dir_okay=False), default=None,
                     help="With --audio-preset auxformer-release: a state dict of the pruned model (the release's "
                          "final_wav2vec.pt) loaded on top; every key must match."),
        click.option("--max-seconds", default=30.0, show_default=True, type=click.FloatRange(min=0, min_open=True),
                     help="Longer clips run through the speech model in chunks of this length, frames concatenated."),
        click.option("--audio-from", type=click.Choice(["audio", "video"]), default="audio", show_default=True,
                     help="Read the audio from the manifest's audio_path, or from the video's own track (as the "
                          "released AuxFormer pre-processing does for CREMA-D's FLV files)."),
        click.option("--visual-embedder", default="vggface", show_default=True,
                     help="vggface (fc6 of VGG-Face, needs --vggface-weights), clip (CLIP vision encoder from "
                          "--visual-model; [ssl] extra), import (your own per-clip arrays from --visual-features, "
                          "e.g. EMOCA codes), pixels (grey 16x16 face crop, no weights, NOT the paper's feature) or "
                          "a plugin's name."),
        click.option("--visual-model", type=click.Path(file_okay=False), default=None,
                     help="Local CLIP checkpoint folder (config.json, weights, preprocessor_config.json) for "
                          "--visual-embedder clip."),
        click.option("--visual-layer", type=click.IntRange(min=0), default=None,
                     help="CLIP: the class token of hidden state N instead of pooler_output."),
        click.option("--visual-features", type=click.Path(file_okay=False), default=None,
                     help="--visual-embedder import: folder of <clip_id>.visual.npy (frames x dim) arrays."),
        click.option("--visual-rate", default=30.0, show_default=True, type=click.FloatRange(min=0, min_open=True),
                     help="--visual-embedder import: frames per second of those arrays."),
        click.option("--pool", type=click.Choice(["none", "mean"]), default="none", show_default=True,
                     help="mean: one vector per clip (mean over frames) for utterance-level models; frame-level "
                          "conditions (masking, bursts, shifts) are then refused."),
        click.option("--precision", type=click.Choice(["fp32", "fp16", "bf16"]), default="fp32", show_default=True,
                     help="Compute precision of the speech models and CLIP (fp16/bf16 on CUDA only; VGG-Face and "
                          "MTCNN stay fp32); --dtype is the storage type."),
        click.option("--save-crops", default=0, show_default=True, type=click.IntRange(min=0),
                     help="Write the first N face crops of each clip as PNGs under OUT.staging/<key>/crops/ "
                          "(kept after success) to see what the detector found."),
        click.option("--vggface-weights", type=click.Path(dir_okay=False), default=None,
                     help="VGG-Face state dict (vgg_face_dag or torchvision VGG-16 layout); never downloaded."),
        click.option("--vggface-normalisation", type=click.Choice(["vgg_face_dag", "imagenet", "unit"]), default=None,
                     help="Input scaling.  [default: follows the weights' layout: vgg_face_dag -> RGB 0-255 minus "
                          "its mean, torchvision -> imagenet; unit = [-1, 1], the paper's fine-tune]"),
        click.option("--fc6", type=click.Choice(["relu", "linear"]), default="relu", show_default=True,
                     help="Read fc6 after its ReLU or before it."),
        click.option("--face-detector", type=click.Choice(["haar", "mtcnn"]), default="haar", show_default=True,
                     help="haar: OpenCV's cascade, shipped in its wheel (not the paper's); mtcnn: the paper's, "
                          "needs --mtcnn-weights."),
        click.option("--mtcnn-weights", type=click.Path(), default=None,
                     help="The facenet-pytorch wheel file (.whl) or a folder with its pnet.pt, rnet.pt, onet.pt."),
        click.option("--pixels-side", default=16, show_default=True, type=int, help="Side of the pixels embedder's grid."),
        click.option("--extract-device", default="cpu", show_default=True, type=click.Choice(["cpu", "cuda"]),
                     help="Where the detector, embedder and speech models run (batched on cuda)."),
        click.option("--processes", default=1, show_default=True, type=click.IntRange(min=1),
                     help="Clips extracted at once (processes)."),
        # the old names meant something else here than in `avbench run` (units at once; auto device): kept as
        # deprecated aliases that still work
        click.option("--device", "old_device", default=None, hidden=True, type=click.Choice(["cpu", "cuda"])),
        click.option("--jobs", "old_jobs", default=None, hidden=True, type=click.IntRange(min=1)),
        click.option("--dtype", default="float32", show_default=True, type=click.Choice(["float16", "float32"])),
        click.option("--keep-staging", is_flag=True, help="Keep OUT.staging/ (per-clip results) after success."),
        click.option("--quiet", is_flag=True, help="No progress bar."),
    ]
    for opt in reversed(opts):
        fn = opt(fn)
    return fn


#: data prepare's deprecated option names and the names that replaced them (the old ones meant another
#: thing in `avbench run`: --jobs counts units there, --device defaults to auto there).
PREPARE_ALIASES = {"old_device": ("--device", "extract_device", "--extract-device"),
                   "old_jobs": ("--jobs", "processes", "--processes")}


def _resolve_aliases(opts: dict) -> dict:
    """``opts`` with each deprecated name folded into its new one (a warning says so; both given and
    different is refused)."""
    ctx = click.get_current_context()
    for old, (old_flag, new, new_flag) in PREPARE_ALIASES.items():
        value = opts.pop(old, None)
        if value is None:
            continue
        if ctx.get_parameter_source(new) is not click.core.ParameterSource.DEFAULT and opts[new] != value:
            raise click.UsageError(f"{old_flag} {value} and {new_flag} {opts[new]} disagree; {old_flag} is a "
                                   f"deprecated name of {new_flag}: give {new_flag} alone.")
        click.echo(f"warning: {old_flag} of data prepare is deprecated (it means another thing in avbench run); "
                   f"use {new_flag}.", err=True)
        opts[new] = value
    return opts


def _settings(opts: dict, known_no_audio=()):
    from avbench.data.prepare import ExtractionSettings

    extractor = opts["audio_extractor"]
    source = click.get_current_context().get_parameter_source("audio_extractor")
    if opts["audio_preset"] and source is click.core.ParameterSource.DEFAULT:
        extractor = "wav2vec2"  # the preset is a wav2vec2 setting
    return ExtractionSettings(audio_extractor=extractor, visual_embedder=opts["visual_embedder"],
                              face_detector=opts["face_detector"], vggface_weights=opts["vggface_weights"],
                              vggface_normalisation=opts["vggface_normalisation"], fc6=opts["fc6"],
                              mtcnn_weights=opts["mtcnn_weights"], pixels_side=opts["pixels_side"],
                              device=opts["extract_device"], known_no_audio=tuple(known_no_audio),
                              audio_model=opts["audio_model"], audio_layer=opts["audio_layer"],
                              audio_preset=opts["audio_preset"], audio_weights=opts["audio_weights"],
                              max_seconds=opts["max_seconds"], audio_from=opts["audio_from"],
                              visual_model=opts["visual_model"], visual_layer=opts["visual_layer"],
                              visual_features=opts["visual_features"], visual_rate=opts["visual_rate"],
                              precision=opts["precision"], pool=opts["pool"], save_crops=opts["save_crops"])


def _prepare(manifest, root, out, opts, label_names=None, known_no_audio=(), provenance=None):
    from avbench.data.prepare import prepare, summary_lines

    opts = _resolve_aliases(dict(opts))
    summary = prepare(manifest, root, out, settings=_settings(opts, known_no_audio), label_names=label_names,
                      jobs=opts["processes"], dtype=opts["dtype"], keep_staging=opts["keep_staging"],
                      progress=not opts["quiet"], provenance=provenance)
    store = summary.store
    click.echo(f"feature store: {store.path} ({len(store)} clips, audio {store.audio_dim}-d @ {store.audio_rate:g}/s, "
               f"visual {store.visual_dim}-d @ {store.visual_rate:g}/s; {summary.seconds:.1f} s)")
    for line in summary_lines(summary):
        click.echo(line)
    click.echo(f"per-clip report: {store.path / 'prepare_report.csv'}; failures: {store.path / 'failed.csv'}")
    if opts["save_crops"]:
        click.echo(f"face crops (first {opts['save_crops']} per clip): {out}.staging/*/crops/<clip_id>/")
    if opts["visual_embedder"] == "pixels":
        click.echo("note: the pixels embedder is a pipeline check, NOT the paper's visual feature.")


@data.command("prepare")
@click.option("--manifest", required=True, type=click.Path(dir_okay=False),
              help="CSV: clip_id, speaker, label, audio_path, video_path (relative to --root) and optional columns.")
@click.option("--root", required=True, type=click.Path(file_okay=False), help="Folder the media paths are relative to.")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="The new feature store.")
@click.option("--label-names", default=None, help="Comma-separated class order.  [default: sorted labels]")
@_extraction_options
@user_errors
def data_prepare(manifest, root, out, label_names, **opts):
    """Extract features from raw media into a feature store (resumable: rerun after a kill)."""
    names = [n.strip() for n in label_names.split(",")] if label_names else None
    _prepare(Path(manifest), Path(root), Path(out), opts, label_names=names,
             provenance={"manifest": str(Path(manifest).resolve())})


@crema_d.command("prepare")
@click.option("--root", required=True, type=click.Path(file_okay=False),
              help="CREMA-D root: AudioWAV/, VideoFlash/, processedResults/summaryTable.csv, VideoDemographics.csv.")
@click.option("--out", required=True, type=click.Path(file_okay=False))
@click.option("--label-source", default="multimodal", show_default=True,
              type=click.Choice(["multimodal", "voice", "face", "intended"]))
@click.option("--ties", default="random", show_default=True, type=click.Choice(["random", "intended", "first", "drop"]))
@click.option("--seed", default=0, show_default=True, type=int, help="Seed of the tie break.")
@_extraction_options
@user_errors
def crema_d_prepare(root, out, label_source, ties, seed, **opts):
    """Labels from the summary table, audio from AudioWAV/, video from VideoFlash/, into one store."""
    from avbench.data.crema_d import LABELS, NO_AUDIO, class_counts, crema_d_manifest

    df = crema_d_manifest(root, label_source=label_source, ties=ties, seed=seed)
    _print_counts(df, class_counts(df), f"CREMA-D: {len(df)} clips, {df['speaker'].nunique()} actors "
                  f"(labels: {label_source} votes, ties: {ties}, seed {seed})")
    _prepare(df, Path(root), Path(out), opts, label_names=list(LABELS), known_no_audio=NO_AUDIO,
             provenance={"corpus": "CREMA-D", "labels": {"source": label_source, "ties": ties, "seed": seed}})


@msp_improv.command("prepare")
@click.option("--labels", required=True, type=click.Path(dir_okay=False),
              help="CSV: clip_id,label or clip_id,rater,label (see avbench data msp-improv manifest).")
@click.option("--root", required=True, type=click.Path(file_okay=False), help="MSP-IMPROV root (searched for media).")
@click.option("--out", required=True, type=click.Path(file_okay=False))
@click.option("--name-regex", default=None, help="File-name pattern with named groups speaker, session (and gender).")
@_extraction_options
@user_errors
def msp_improv_prepare(labels, root, out, name_regex, **opts):
    """Plurality labels, speakers from file names, media found under ROOT, into one store."""
    from avbench.data.msp_improv import CLASSES, NAME_REGEX, class_counts, msp_improv_manifest

    df, left_out = msp_improv_manifest(labels, root, name_regex=name_regex or NAME_REGEX)
    _print_counts(df, class_counts(df), f"MSP-IMPROV: {len(df)} clips, {df['speaker'].nunique()} speakers; left "
                  f"out: {left_out.get('tie', 0)} tied, {left_out.get('other', 0)} outside the four classes")
    _prepare(df, Path(root), Path(out), opts, label_names=list(CLASSES),
             provenance={"corpus": "MSP-IMPROV", "labels": str(Path(labels).resolve())})
