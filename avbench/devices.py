"""The devices a run can ask for; the CLI offers exactly these (``training.resolve_device`` picks one)."""

#: ``auto`` picks CUDA when torch sees a GPU, else the CPU.
DEVICES = ("auto", "cpu", "cuda")
