"""The demo's config (`config.toml`, shipped in the package): the retention rules of
two Danish privacy policies applied to demo.db."""

from __future__ import annotations

import tomllib
from importlib import resources
from pathlib import Path

from ..config import Config, parse_config

CONFIG_NAME = "gdpr-sweep.toml"


def demo_config_text() -> str:
    """Return the TOML config that sweeps the demo database."""
    return resources.files(__package__).joinpath("config.toml").read_text(encoding="utf-8")


def demo_config(directory: Path) -> Config:
    """Return the demo's config as it will be read from DIR (without writing anything)."""
    return parse_config(tomllib.loads(demo_config_text()), Path(directory) / CONFIG_NAME)
