"""A synthetic CREMA-D look-alike: the built-in corpus every protocol can run on.

The corpus is a test bed for robustness, so its structure mirrors what the
AuxFormer protocols probe:

* class evidence is split unevenly between modalities (anger and sadness are
  loud in the voice, disgust and happiness on the face, fear needs both), so
  neither modality alone suffices and fusion pays off;
* evidence is spread over time: each clip follows a smooth latent "expression"
  trajectory and every frame carries a weak, noisy reading of it, so masking
  frames degrades accuracy gradually;
* speakers shift the feature space (speaker-independent splits matter);
* one trajectory is sampled in continuous time and read at each modality's
  frame times, the audio reading it ``lag`` seconds later than the visual
  (lips lead speech by about 120 ms, Bregler & Konig), with per-clip jitter;
* a fraction of the labels is replaced at random (perception noise);
* everything is drawn from ``seed``: the same seed gives byte-identical data.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import logging
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from avbench.data.store import MODALITIES, FeatureStore, StoreWriter
from avbench.paths import data_home
from avbench.validation import ValidationError, check_choice, check_float, check_int

log = logging.getLogger(__name__)

GENERATOR_VERSION = 2  # bump whenever the same parameters would give different data
LABELS = ("anger", "disgust", "fear", "happiness", "sadness", "neutral")
EMOTION_CODES = ("ANG", "DIS", "FEA", "HAP", "SAD", "NEU")
CREMA_D_COUNTS = (1067, 1222, 1180, 1230, 672, 2071)  # audiovisual consensus labels, of 7442
SENTENCES = ("IEO", "TIE", "IOM", "IWW", "TAI", "MTI", "IWL", "ITH", "DFA", "ITS", "TSI", "WSI")
MALE_SHARE = 48 / 91


@dataclass(frozen=True)
class Generative:
    """Fixed knobs of the generative model, recorded in provenance.

    Gains say how visible each class (in ``LABELS`` order) is in each
    modality; neutral is the origin.  Standard deviations are in latent units.
    """

    latent_dim: int = 16
    audio_gain: tuple = (1.0, 0.1, 0.75, 0.1, 1.0, 0.0)
    visual_gain: tuple = (0.1, 1.0, 0.5, 1.0, 0.1, 0.0)
    evidence: float = 4.5          # length of a fully visible class prototype
    intensity: tuple = (0.7, 1.3)  # per-clip expression intensity, uniform
    dynamics_std: float = 1.0      # shared smooth fluctuation (carries the lag)
    lengthscale: float = 0.15      # seconds; time scale of the trajectory
    envelope_std: float = 0.5      # log-amplitude variation of the evidence over time
    n_fourier: int = 48            # random Fourier features per trajectory
    speaker_std: float = 1.0
    gender_shift: float = 0.5      # audio only (voice pitch)
    clip_std: float = 0.4
    audio_noise: float = 3.0       # i.i.d. per frame, in latent units (independent of the width)
    visual_noise: float = 3.0
    duration_median: tuple = (2.1, 2.8)  # per-sentence median duration range, seconds
    duration_spread: float = 0.2   # log-normal sigma around the sentence median
    duration_range: tuple = (1.3, 5.0)


class _World:
    """Everything shared across clips: prototypes, mixing, speakers, clip plan."""

    def __init__(self, p: dict, g: Generative):
        rng = np.random.default_rng([p["seed"], 0])
        k, n_spk, per = g.latent_dim, p["n_speakers"], p["clips_per_speaker"]
        self.p, self.g = p, g
        self.prototypes = np.linalg.qr(rng.standard_normal((k, len(LABELS))))[0].T * g.evidence
        self.mix = {"audio": rng.standard_normal((k, p["audio_dim"])) / np.sqrt(k),
                    "visual": rng.standard_normal((k, p["visual_dim"])) / np.sqrt(k)}
        gender_axis = rng.standard_normal(k)
        n_male = round(n_spk * MALE_SHARE)
        self.gender = np.where(rng.permutation(n_spk) < n_male, "male", "female")
        self.speaker_offset = {m: rng.normal(0, g.speaker_std, (n_spk, k)) for m in MODALITIES}
        self.speaker_offset["audio"] += np.where(self.gender == "male", 1, -1)[:, None] * \
            gender_axis / np.linalg.norm(gender_axis) * g.gender_shift
        self.speaker_ids = [str(1001 + s) for s in range(n_spk)]
        n = n_spk * per
        self.speaker = np.repeat(np.arange(n_spk), per)
        self.intended = rng.permutation(np.repeat(np.arange(len(LABELS)), _largest_remainder(n)))
        self.sentence = np.concatenate([rng.permutation(np.arange(per) % len(SENTENCES))
                                        for _ in range(n_spk)])
        median = rng.uniform(*g.duration_median, len(SENTENCES))[self.sentence]
        self.duration = np.clip(median * np.exp(rng.normal(0, g.duration_spread, n)), *g.duration_range)
        self.label = _add_label_noise(rng, self.intended, p["label_noise"])
        self.lag = p["lag"] + rng.uniform(-p["lag_jitter"], p["lag_jitter"], n)

    def latents(self, i: int) -> dict[str, np.ndarray]:
        """Clip ``i``'s latent trajectory read at each modality's frame times.

        The trajectory is a random-Fourier-feature Gaussian process, so it is
        defined in continuous time: the audio reads it ``lag`` seconds late.
        """
        p, g = self.p, self.g
        rng = np.random.default_rng([p["seed"], 1, i])
        k, f = g.latent_dim, g.n_fourier
        omega = rng.normal(0, 1 / g.lengthscale, f)
        phase = rng.uniform(0, 2 * np.pi, f)
        weights = rng.standard_normal((f, k + 1)) * np.sqrt(2 / f)
        strength = rng.uniform(*g.intensity)
        c = self.intended[i]
        out = {}
        for m, rate, delay in (("audio", p["audio_rate"], self.lag[i]), ("visual", p["visual_rate"], 0.0)):
            t = (np.arange(max(1, round(self.duration[i] * rate))) + 0.5) / rate - delay
            traj = np.cos(np.outer(t, omega) + phase) @ weights
            envelope = np.exp(g.envelope_std * traj[:, -1:] - g.envelope_std ** 2 / 2)
            gain = (g.audio_gain if m == "audio" else g.visual_gain)[c] * strength
            out[m] = (gain * envelope * self.prototypes[c] + g.dynamics_std * traj[:, :k]
                      + self.speaker_offset[m][self.speaker[i]] + rng.normal(0, g.clip_std, k))
        return out


def _largest_remainder(n: int) -> np.ndarray:
    """Class counts for ``n`` clips in CREMA-D's proportions, summing exactly to ``n``."""
    share = np.array(CREMA_D_COUNTS) / sum(CREMA_D_COUNTS) * n
    counts = np.floor(share).astype(int)
    counts[np.argsort(counts - share)[: n - counts.sum()]] += 1
    return counts


def _add_label_noise(rng: np.random.Generator, labels: np.ndarray, rate: float) -> np.ndarray:
    """Replaces ``round(rate * n)`` random labels by another class drawn from the class prior.

    Drawing the replacement from the prior (not uniformly) keeps the label
    proportions close to CREMA-D's.
    """
    prior = np.array(CREMA_D_COUNTS, float)
    noisy = labels.copy()
    for i in rng.choice(len(labels), round(rate * len(labels)), replace=False):
        w = prior.copy()
        w[labels[i]] = 0
        noisy[i] = rng.choice(len(prior), p=w / w.sum())
    return noisy


def _noise_std(world: _World, m: str) -> float:
    """Per-dimension noise giving the configured per-frame noise in latent units.

    A latent axis is spread over ``dim / latent_dim`` units of feature energy,
    so scaling the noise by its square root keeps the task equally hard at
    any feature width (64 or 4096 visual dims).
    """
    g = world.g
    base = g.audio_noise if m == "audio" else g.visual_noise
    return base * np.sqrt(world.mix[m].shape[1] / g.latent_dim)


def _normalisers(world: _World) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Corpus mean and std of each feature dimension, from the latents' moments.

    Features are linear in the latents plus independent noise, so the latent
    mean and covariance give the feature moments exactly (up to the noise's
    sampling error) without a second pass over the full-width features.
    """
    k = world.g.latent_dim
    total = {m: np.zeros(k) for m in MODALITIES}
    outer = {m: np.zeros((k, k)) for m in MODALITIES}
    count = dict.fromkeys(MODALITIES, 0)
    for i in range(len(world.speaker)):
        for m, z in world.latents(i).items():
            total[m] += z.sum(0)
            outer[m] += z.T @ z
            count[m] += len(z)
    out = {}
    for m in MODALITIES:
        mean = total[m] / count[m]
        cov = outer[m] / count[m] - np.outer(mean, mean)
        mix = world.mix[m]
        var = np.einsum("kd,kl,ld->d", mix, cov, mix) + _noise_std(world, m) ** 2
        out[m] = (mean @ mix, np.sqrt(var))
    return out


def generate_synthetic(path: str | os.PathLike, *, seed: int = 0, n_speakers: int = 91,
                       clips_per_speaker: int = 24, audio_dim: int = 130, visual_dim: int = 64,
                       audio_rate: float = 62.5, visual_rate: float = 30.0, dtype: str = "float16",
                       label_noise: float = 0.06, lag: float = 0.12,
                       lag_jitter: float = 0.04) -> FeatureStore:
    """Writes a synthetic CREMA-D-shaped corpus to ``path`` and opens it.

    Args:
        path: Output store directory (must not exist).
        seed: Determines every random draw; the same seed gives identical files.
        n_speakers, clips_per_speaker: Corpus size (CREMA-D: 91 actors).
        audio_dim, visual_dim: Feature widths (paper: 130 and 4096).
        audio_rate, visual_rate: Frames per second (paper: 62.5 and 30).
        dtype: On-disk float type.
        label_noise: Share of clips whose label is replaced by another class.
        lag: Seconds by which the audio trails the visual stream.
        lag_jitter: Per-clip lag varies uniformly within +-``lag_jitter``.

    Besides the required columns, the manifest holds the ground truth a
    protocol may want to check against: ``intended_label`` (the class that
    generated the clip; ``label`` differs from it on the noisy clips),
    ``sentence``, ``gender`` and ``lag_ms`` (the clip's true audio delay).
    Clip ids follow CREMA-D: ``SPEAKER_SENTENCE_EMOTION_NN``.
    """
    params = _check_params(locals())
    start = time.perf_counter()
    g = Generative()
    world = _World(params, g)
    norm = _normalisers(world)
    with StoreWriter(path, name=f"synthetic-seed{seed}", audio_dim=audio_dim, visual_dim=visual_dim,
                     audio_rate=audio_rate, visual_rate=visual_rate, label_names=list(LABELS),
                     dtype=dtype, synthetic=True) as writer:
        for i in range(len(world.speaker)):
            _write_clip(writer, world, norm, i)
        provenance = {"generator": f"avbench.data.synthetic.generate_synthetic v{GENERATOR_VERSION}",
                      "parameters": dict(params),
                      "generative_model": asdict(g),
                      "seconds": round(time.perf_counter() - start, 2)}
        return writer.close(provenance)


def _write_clip(writer: StoreWriter, world: _World, norm: dict, i: int) -> None:
    p = world.p
    z = world.latents(i)
    feats = {}
    for j, m in enumerate(MODALITIES):
        rng = np.random.default_rng([p["seed"], 2 + j, i])
        noise = rng.standard_normal((len(z[m]), world.mix[m].shape[1]), dtype=np.float32)
        x = (z[m] @ world.mix[m]).astype(np.float32) + _noise_std(world, m) * noise
        feats[m] = (x - norm[m][0]) / norm[m][1]
    s, c = world.speaker[i], world.intended[i]
    sentence = SENTENCES[world.sentence[i]]
    n = i % p["clips_per_speaker"]
    writer.add(f"{world.speaker_ids[s]}_{sentence}_{EMOTION_CODES[c]}_{n:02d}", world.speaker_ids[s],
               LABELS[world.label[i]], feats["audio"], feats["visual"], intended_label=LABELS[c],
               sentence=sentence, gender=world.gender[s], lag_ms=round(1000 * world.lag[i], 1))


def _check_params(p: dict) -> dict:
    owner = "generate_synthetic"
    return {"seed": check_int(p["seed"], "seed", owner, minimum=0),
           "n_speakers": check_int(p["n_speakers"], "n_speakers", owner, minimum=1),
           "clips_per_speaker": check_int(p["clips_per_speaker"], "clips_per_speaker", owner, minimum=1),
           "audio_dim": check_int(p["audio_dim"], "audio_dim", owner, minimum=1),
           "visual_dim": check_int(p["visual_dim"], "visual_dim", owner, minimum=1),
           "audio_rate": check_float(p["audio_rate"], "audio_rate", owner, low=0, low_open=True),
           "visual_rate": check_float(p["visual_rate"], "visual_rate", owner, low=0, low_open=True),
           "dtype": check_choice(p["dtype"], "dtype", owner, ("float16", "float32")),
           "label_noise": check_float(p["label_noise"], "label_noise", owner, low=0, high=1, high_open=True),
           "lag": check_float(p["lag"], "lag", owner, low=-1, high=1),
           "lag_jitter": check_float(p["lag_jitter"], "lag_jitter", owner, low=0, high=1)}


DEFAULTS = {k: v.default for k, v in inspect.signature(generate_synthetic).parameters.items() if k != "path"}


def default_synthetic_path(**overrides) -> tuple[Path, dict]:
    """Where :func:`default_synthetic` keeps the corpus of these options, and the checked options."""
    unknown = sorted(set(overrides) - set(DEFAULTS))
    if unknown:
        raise ValidationError(f"default_synthetic got an unknown option {unknown[0]!r}; expected options "
                              f"among {', '.join(DEFAULTS)}.")
    params = _check_params({**DEFAULTS, **overrides})
    key = json.dumps({"generator_version": GENERATOR_VERSION, "generative_model": asdict(Generative()),
                      **params}, sort_keys=True)
    return data_home() / f"synthetic-{hashlib.sha256(key.encode()).hexdigest()[:12]}", params


@dataclass(frozen=True)
class PlannedCorpus:
    """A corpus not generated yet, as far as planning needs it (a dry run writes nothing): its
    name, path, classes and feature widths, from the factory's parameters alone."""

    path: Path
    name: str
    label_names: list[str]
    audio_dim: int
    visual_dim: int
    synthetic: bool = True
    checksum: str = ""


def planned_synthetic(**overrides) -> FeatureStore | PlannedCorpus:
    """The built-in corpus when it exists, else its :class:`PlannedCorpus` (nothing is written)."""
    path, params = default_synthetic_path(**overrides)
    if (path / "store.json").exists():
        return FeatureStore.open(path)
    return PlannedCorpus(path, f"synthetic-seed{params['seed']}", list(LABELS), params["audio_dim"],
                         params["visual_dim"])


def default_synthetic(**overrides) -> FeatureStore:
    """The built-in corpus, generated on first use under :func:`avbench.paths.data_home`.

    The directory name hashes the parameters, the generative model's knobs
    and the generator version, so a changed generator never reuses a stale
    corpus.  Two processes generating
    at once both finish; the writer's atomic rename lets one win and the other
    opens the winner's store.
    """
    path, params = default_synthetic_path(**overrides)
    if (path / "store.json").exists():
        return FeatureStore.open(path)
    log.info("Generating the synthetic corpus at %s (first use; a few seconds).", path)
    try:
        return generate_synthetic(path, **params)
    except ValidationError:
        if (path / "store.json").exists():  # a concurrent process finished first
            return FeatureStore.open(path)
        raise
