"""Same seed, same torch threads per unit: bitwise-identical weights and predictions, whether
units run one at a time (--jobs 1) or side by side in worker processes (--jobs 2)."""

import json

import torch

from avbench.protocol import Protocol
from avbench.runner import run

PROTOCOL = Protocol.from_dict({"name": "determinism", "models": ["mult"], "regimes": ["optimized"],
                               "conditions": [{"kind": "full"},
                                              {"kind": "mask", "modality": "audio", "levels": [0.5]}]})


def units(out):
    return sorted(p.parent for p in out.rglob("record.json"))


def test_jobs_one_and_two_give_bitwise_identical_units(tiny_store, tmp_path):
    threads = torch.get_num_threads()
    try:
        for jobs in (1, 2):
            run(PROTOCOL, corpus=tiny_store.path, profile="smoke", seeds=2, out=tmp_path / f"jobs{jobs}",
                progress=False, echo=lambda s: None, jobs=jobs, threads=1)
    finally:
        torch.set_num_threads(threads)
    one, two = units(tmp_path / "jobs1"), units(tmp_path / "jobs2")
    assert len(one) == len(two) == 2
    for a, b in zip(one, two):
        wa = torch.load(a / "model.pt", weights_only=True)
        wb = torch.load(b / "model.pt", weights_only=True)
        assert all(torch.equal(wa[k], wb[k]) for k in wa)
        ra, rb = (json.loads((d / "record.json").read_text()) for d in (a, b))
        assert ra["provenance"]["machine"]["cpu_threads"] == rb["provenance"]["machine"]["cpu_threads"] == 1
        assert [e["predictions"] for e in ra["evaluations"]] == [e["predictions"] for e in rb["evaluations"]]
        assert ra["history"][-1]["dev_loss"] == rb["history"][-1]["dev_loss"]
