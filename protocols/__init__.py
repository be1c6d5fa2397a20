"""Built-in protocol definitions: one YAML file per protocol, registered by name on import."""

from pathlib import Path

from avbench.protocol import register_directory

register_directory(Path(__file__).parent)
