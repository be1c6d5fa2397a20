"""avbench: benchmark audiovisual emotion recognition and its robustness to missing modalities."""

__version__ = "0.1.0"
