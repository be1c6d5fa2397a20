"""MTCNN and VGG-Face re-implementations: weight layouts by key and shape, loaders, and a few frames.

These tests pin the key/shape layout the re-implementations expect (facenet-pytorch's
pnet/rnet/onet.pt; vgg_face_dag and torchvision VGG-16) and check the forward passes' plumbing with
weights made here; where the facenet-pytorch wheel is at hand (.ci/run fetches it), MTCNN also runs
with its real weights on real photographs.
"""

import numpy as np
import pytest
import torch

from avbench.data.mtcnn import MTCNN, ONet, PNet, RNet
from avbench.data.vggface import VGGFace, VGGFaceEmbedder, to_dag_layout
from avbench.validation import ValidationError

# facenet-pytorch 2.6.0's state dicts, key -> shape.
FACENET = {
    "pnet": {"conv1.weight": (10, 3, 3, 3), "prelu1.weight": (10,), "conv2.weight": (16, 10, 3, 3),
             "conv3.weight": (32, 16, 3, 3), "conv4_1.weight": (2, 32, 1, 1), "conv4_2.weight": (4, 32, 1, 1)},
    "rnet": {"conv1.weight": (28, 3, 3, 3), "conv2.weight": (48, 28, 3, 3), "conv3.weight": (64, 48, 2, 2),
             "dense4.weight": (128, 576), "prelu4.weight": (128,), "dense5_1.weight": (2, 128),
             "dense5_2.weight": (4, 128)},
    "onet": {"conv1.weight": (32, 3, 3, 3), "conv4.weight": (128, 64, 2, 2), "dense5.weight": (256, 1152),
             "dense6_1.weight": (2, 256), "dense6_2.weight": (4, 256), "dense6_3.weight": (10, 256)},
}


@pytest.mark.parametrize("net, cls, n_keys", [("pnet", PNet, 13), ("rnet", RNet, 16), ("onet", ONet, 21)])
def test_mtcnn_nets_have_facenet_pytorch_layout(net, cls, n_keys):
    state = cls().state_dict()
    assert len(state) == n_keys
    for key, shape in FACENET[net].items():
        assert tuple(state[key].shape) == shape, key


def _confident_weights(folder):
    """Random MTCNN weights whose classifiers always say "face" and whose box regression is zero."""
    folder.mkdir()
    torch.manual_seed(0)
    for cls, file, cls_layer, reg_layers in ((PNet, "pnet.pt", "conv4_1", ["conv4_2"]),
                                             (RNet, "rnet.pt", "dense5_1", ["dense5_2"]),
                                             (ONet, "onet.pt", "dense6_1", ["dense6_2"])):
        net = cls()
        with torch.no_grad():
            layer = getattr(net, cls_layer)
            layer.weight.zero_()
            layer.bias.copy_(torch.tensor([-10.0, 10.0]))
            for r in reg_layers:
                getattr(net, r).weight.zero_()
                getattr(net, r).bias.zero_()
        torch.save(net.state_dict(), folder / file)
    return folder


def test_mtcnn_loads_weight_folder_and_detects_on_frames(tmp_path):
    model = MTCNN.from_dir(_confident_weights(tmp_path / "w"))
    frames = [np.random.default_rng(i).integers(0, 255, (60, 80, 3), dtype=np.uint8) for i in range(2)]
    boxes = model(frames)
    for b in boxes:
        assert b.shape == (5,) and b[4] > 0.99
        assert b[2] > b[0] and b[3] > b[1]
        assert abs((b[2] - b[0]) - (b[3] - b[1])) <= 1  # squared by the cascade
    assert model.settings()["weights"].endswith("w")


def test_mtcnn_weight_errors_name_the_file(tmp_path):
    folder = _confident_weights(tmp_path / "w")
    (folder / "rnet.pt").unlink()
    with pytest.raises(ValidationError, match=r"rnet\.pt: MTCNN weight file is missing.*facenet-pytorch"):
        MTCNN.from_dir(folder)
    torch.save(PNet().state_dict(), folder / "rnet.pt")
    with pytest.raises(ValidationError, match=r"rnet\.pt: parameter names do not match RNet: missing .*dense4"):
        MTCNN.from_dir(folder)
    bad = RNet().state_dict()
    bad["dense4.weight"] = torch.zeros(128, 575)
    torch.save(bad, folder / "rnet.pt")
    with pytest.raises(ValidationError, match=r"dense4\.weight has shape \(128, 575\); RNet expects \(128, 576\)"):
        MTCNN.from_dir(folder)


def test_full_size_vggface_has_the_dag_layout_on_the_meta_device():
    with torch.device("meta"):
        model = VGGFace()
    state = model.state_dict()
    assert tuple(state["conv1_1.weight"].shape) == (64, 3, 3, 3)
    assert tuple(state["conv5_3.weight"].shape) == (512, 512, 3, 3)
    assert tuple(state["fc6.weight"].shape) == (4096, 25088)
    assert len(state) == 2 * 14
    # torchvision's VGG-16 names map onto the same parameters, shape for shape.
    tv = {}
    idx = [0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28]
    convs = [k[:-7] for k in state if k.startswith("conv") and k.endswith(".weight")]
    for j, name in zip(idx, convs):
        tv[f"features.{j}.weight"] = state[f"{name}.weight"]
        tv[f"features.{j}.bias"] = state[f"{name}.bias"]
    tv.update({"classifier.0.weight": state["fc6.weight"], "classifier.0.bias": state["fc6.bias"],
               "classifier.3.weight": torch.empty(4096, 4096, device="meta"),
               "classifier.6.weight": torch.empty(1000, 4096, device="meta")})
    mapped = to_dag_layout(tv)
    assert set(mapped) == set(state)
    assert all(mapped[k].shape == state[k].shape for k in state)


def _small(tmp_path, layout):
    torch.manual_seed(0)
    model = VGGFace(width=1 / 16, fc6_dim=12)
    state = model.state_dict()
    if layout == "dag":
        state = {**state, "fc7.weight": torch.zeros(3, 12), "fc8.weight": torch.zeros(2, 3)}
    else:
        convs = [k[:-7] for k in state if k.startswith("conv") and k.endswith(".weight")]
        idx = [0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28]
        tv = {f"features.{j}.{p}": state[f"{n}.{p}"] for j, n in zip(idx, convs) for p in ("weight", "bias")}
        tv.update({"classifier.0.weight": state["fc6.weight"], "classifier.0.bias": state["fc6.bias"]})
        state = {"state_dict": tv}  # a checkpoint wrapping the state dict
    path = tmp_path / f"{layout}.pth"
    torch.save(state, path)
    return path


def test_vggface_embeds_crops_the_same_from_either_layout(tmp_path):
    crops = np.random.default_rng(0).integers(0, 255, (3, 224, 224, 3), dtype=np.uint8)
    kw = dict(width=1 / 16, fc6_dim=12, batch_size=2)
    dag = VGGFaceEmbedder(_small(tmp_path, "dag"), **kw)
    tv = VGGFaceEmbedder(_small(tmp_path, "tv"), normalisation="vgg_face_dag", **kw)
    a, b = dag(crops), tv(crops)
    assert a.shape == (3, 12) and (a >= 0).all()
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert dag.settings()["normalisation"] == "vgg_face_dag" and dag.settings()["fc6"] == "after ReLU"
    assert VGGFaceEmbedder(_small(tmp_path, "tv"), **kw).normalisation == "imagenet"  # follows the layout
    linear = VGGFaceEmbedder(_small(tmp_path, "dag"), fc6="linear", **kw)(crops)
    np.testing.assert_allclose(np.maximum(linear, 0), a, rtol=1e-5, atol=1e-6)
    assert (linear < 0).any()
    # Normalisations: 0-255 minus the stored mean; [-1, 1].
    x = np.full((1, 224, 224, 3), 255, np.uint8)
    assert torch.allclose(dag.normalise(x)[0, :, 0, 0], torch.tensor([125.8137, 150.2376, 161.4060]), atol=1e-3)
    unit = VGGFaceEmbedder(_small(tmp_path, "dag"), normalisation="unit", **kw)
    assert float(unit.normalise(x).max()) == 1.0


def test_vggface_needs_a_weights_file_and_names_it(tmp_path):
    with pytest.raises(ValidationError, match="needs --vggface-weights FILE.*never downloads.*pixels"):
        VGGFaceEmbedder(None)
    with pytest.raises(ValidationError, match=r"nope\.pth: VGG-Face weight file is missing"):
        VGGFaceEmbedder(tmp_path / "nope.pth")
    torch.save({"layer.weight": torch.zeros(2)}, tmp_path / "odd.pth")
    with pytest.raises(ValidationError, match=r"odd\.pth: expected a VGG-16 state dict in the vgg_face_dag layout"):
        VGGFaceEmbedder(tmp_path / "odd.pth")
    with pytest.raises(ValidationError, match=r"dag\.pth: conv1_1\.weight has shape \(4, 3, 3, 3\); VGGFace "
                                              r"expects \(64, 3, 3, 3\)"):
        VGGFaceEmbedder(_small(tmp_path, "dag"))  # a reduced-width file into the full-size network


def _facenet_wheel():
    """The facenet-pytorch wheel .ci/run fetches (pip download, no install), or $AVBENCH_FACENET_WHEEL."""
    import os
    from pathlib import Path

    given = os.environ.get("AVBENCH_FACENET_WHEEL")
    found = [Path(given)] if given else sorted((Path(__file__).parent.parent / ".ci" / "wheels").glob(
        "facenet_pytorch-2.6.0-*.whl"))
    if not found or not found[0].is_file():
        pytest.skip("the facenet-pytorch 2.6.0 wheel (real MTCNN weights) is not here: .ci/run fetches it with "
                    "`pip download facenet-pytorch==2.6.0 --no-deps -d .ci/wheels`, which needs PyPI")
    return found[0]


def test_real_mtcnn_weights_from_the_wheel_find_the_face_in_real_photographs():
    """The wheel itself is accepted as --mtcnn-weights; on scikit-image's bundled photographs the real
    weights find the astronaut's face (Eileen Collins, upper middle of the picture) and none in a
    cup of coffee."""
    data = pytest.importorskip("skimage.data")
    model = MTCNN.from_dir(_facenet_wheel())
    astronaut, coffee = data.astronaut(), data.coffee()  # 512x512 and 400x600 RGB
    box = model.detect(astronaut)
    assert box is not None and box[4] > 0.99
    x0, y0, x1, y1 = box[:4]
    # her face (about 87 x 110 px at x 181, y 62), not the flag or the suit
    np.testing.assert_allclose([x0, y0, x1, y1], [181, 62, 268, 172], atol=6)
    assert model.detect(coffee) is None
    assert model.settings()["weights"].endswith(".whl")


def test_mtcnn_wheel_errors_name_the_file(tmp_path):
    import zipfile

    wheel = tmp_path / "facenet_pytorch-0-py3-none-any.whl"
    torch.save(PNet().state_dict(), tmp_path / "pnet.pt")
    with zipfile.ZipFile(wheel, "w") as z:
        z.write(tmp_path / "pnet.pt", "facenet_pytorch/data/pnet.pt")
    with pytest.raises(ValidationError, match=r"\.whl/facenet_pytorch/data/rnet\.pt: MTCNN weight file is missing "
                                              "from the wheel"):
        MTCNN.from_dir(wheel)
    (tmp_path / "x.txt").write_text("")
    with pytest.raises(ValidationError, match=r"x\.txt: expected a folder holding pnet\.pt"):
        MTCNN.from_dir(tmp_path / "x.txt")
