"""Read the config file into a validated `Config`; its digest; the URLs it names.

Nothing here connects to a database: `database_url` and `state_url` only read the
environment variables the config names.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sqlalchemy.engine import URL

from ..errors import ConfigError
from .model import CONFIG_ENV, DEFAULT_CONFIG_NAME, Config, DatabaseConfig
from .nodes import Node, resolve_url
from .sections import parse_databases, parse_rules, parse_subject, parse_sweep
from .tenants import parse_tenants
from .todos import refuse_todos


def find_config_path(explicit: str | os.PathLike[str] | None) -> Path:
    """Return the config path: `--config`, else $GDPR_SWEEP_CONFIG, else ./gdpr-sweep.toml."""
    if explicit:
        return Path(explicit)
    env = os.environ.get(CONFIG_ENV)
    if env:
        return Path(env)
    return Path.cwd() / DEFAULT_CONFIG_NAME


def load_config(path: str | os.PathLike[str] | None = None) -> Config:
    """Read and validate the config file; raise ConfigError naming the key on any fault."""
    config_path = find_config_path(path)
    try:
        raw_bytes = config_path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(
            f"config file {str(config_path)!r} not found "
            f"(use --config, ${CONFIG_ENV} or ./{DEFAULT_CONFIG_NAME})"
        ) from None
    except OSError as exc:
        raise ConfigError(f"config file {str(config_path)!r}: {exc.strerror}") from None
    try:
        # utf-8-sig: a byte-order mark (Windows editors write one) is not part of the TOML.
        data = tomllib.loads(raw_bytes.decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise ConfigError(f"config file {str(config_path)!r} is not UTF-8") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {str(config_path)!r} is not valid TOML: {exc}") from None
    return parse_config(data, config_path.resolve())


def parse_config(data: Mapping[str, Any], path: Path) -> Config:
    """Validate an already-parsed TOML document (a value still "TODO" is refused first)."""
    refuse_todos(data)
    root = Node(data, "")
    root.only_keys({"sweep", "databases", "tenants", "rules", "subject"})
    sweep = parse_sweep(root.table("sweep", required=False))
    written_out = root.table("databases", required=False)
    databases = parse_databases(written_out)
    tenants = root.table("tenants", required=False)
    if tenants.present:
        databases += parse_tenants(tenants, path.parent, {db.name for db in databases})
    if not databases:
        raise ConfigError(
            "databases: at least one [databases.NAME] entry (or a [tenants] file) is required"
        )
    names = {db.name for db in databases}
    rules = parse_rules(root.array_of_tables("rules"), names)
    subject_node = root.table("subject", required=False)
    subject = parse_subject(subject_node, {r.id for r in rules}) if subject_node.present else None
    config = Config(path=path, sweep=sweep, databases=databases, rules=rules, subject=subject)
    return dataclasses.replace(config, digest=config_digest(config))


def config_digest(config: Config) -> str:
    """Return a SHA-256 over the validated config (not its comments or key order)."""
    body = dataclasses.asdict(config)
    body.pop("path")
    body.pop("digest")
    # Tables of TOML are unordered: their order in the file must not change the digest.
    # A `[tenants]` row is an entry like a written-out one: where it came from is not
    # part of the digest (moving a tenant into the file, or out, keeps the digest).
    for db in body["databases"]:
        del db["origin"]
    body["databases"] = sorted(body["databases"], key=lambda db: db["name"])
    for db in body["databases"]:
        if not db["analyze"]:  # configs without it keep their digest
            del db["analyze"]
    for rule in body["rules"]:
        for added in ("since_format", "categories"):  # configs without them keep their digest
            if rule[added] in (None, ()):
                del rule[added]
        if rule["partitions"] == "drop":  # the default: configs without it keep their digest
            del rule["partitions"]
    if body["subject"]:
        body["subject"]["identifiers"] = sorted(body["subject"]["identifiers"])
        body["subject"]["erase"] = sorted(body["subject"]["erase"], key=lambda e: e["table"])
        body["subject"]["parents"] = sorted(body["subject"]["parents"])
        for added in ("references", "parents"):  # configs without them keep their digest
            if not body["subject"][added]:
                del body["subject"][added]
    canonical = json.dumps(body, sort_keys=True, default=str, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


def database_url(config: Config, db: DatabaseConfig) -> URL:
    """Return the URL of a configured database, reading `url_env` from the environment."""
    # A tenants-file row is named by its file and line: "…/tenants.csv line 7: url_env".
    prefix = f"{db.origin}: " if db.origin else f"databases.{db.name}."
    if db.url_env:
        key_path = f"{prefix}url_env"
        raw = os.environ.get(db.url_env)
        if not raw:
            raise ConfigError(f"{key_path}: environment variable {db.url_env} is not set")
    else:
        key_path = f"{prefix}url"
        raw = db.url or ""
    return resolve_url(raw, key_path, config.directory)


def state_url(config: Config) -> URL:
    """Return the URL of the tool's own state database."""
    variable = config.sweep.state_url_env
    if variable:
        raw = os.environ.get(variable)
        if not raw:
            raise ConfigError(f"sweep.state_url_env: environment variable {variable} is not set")
        return resolve_url(raw, "sweep.state_url_env", config.directory)
    return resolve_url(config.sweep.state_url, "sweep.state_url", config.directory)
