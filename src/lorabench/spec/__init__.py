"""The RunSpec spine: the type every command takes, and its loaders."""

from lorabench.spec.loaders import (
    detect_kind,
    from_adapter_config,
    from_axolotl,
    from_llamafactory,
    from_lorabench_yaml,
    load_spec,
    load_spec_source,
    read_config_file,
)
from lorabench.spec.model import ALL_LINEAR, DEFAULT_TARGETS, Hardware, RunSpec, parse_spec
from lorabench.spec.source import DatasetHint, IgnoredKey, LoadedSpec

__all__ = [
    "ALL_LINEAR",
    "DEFAULT_TARGETS",
    "DatasetHint",
    "Hardware",
    "IgnoredKey",
    "LoadedSpec",
    "RunSpec",
    "detect_kind",
    "from_adapter_config",
    "from_axolotl",
    "from_llamafactory",
    "from_lorabench_yaml",
    "load_spec",
    "load_spec_source",
    "parse_spec",
    "read_config_file",
]
