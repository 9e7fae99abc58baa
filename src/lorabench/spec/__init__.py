"""The RunSpec spine: the type every command takes, and its loaders."""

from lorabench.spec.loaders import (
    detect_kind,
    from_adapter_config,
    from_axolotl,
    from_lorabench_yaml,
    load_spec,
    read_config_file,
)
from lorabench.spec.model import ALL_LINEAR, DEFAULT_TARGETS, Hardware, RunSpec, parse_spec

__all__ = [
    "ALL_LINEAR",
    "DEFAULT_TARGETS",
    "Hardware",
    "RunSpec",
    "detect_kind",
    "from_adapter_config",
    "from_axolotl",
    "from_lorabench_yaml",
    "load_spec",
    "parse_spec",
    "read_config_file",
]
