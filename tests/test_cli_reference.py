"""docs/cli.md is the `--help` of every command as the code has it now."""

from __future__ import annotations

import re
from pathlib import Path

from gdpr_sweep.cli.reference import REGENERATE, command_paths, reference
from tests.test_cli_help import command_paths as walked_paths

DOCS = Path(__file__).resolve().parent.parent / "docs" / "cli.md"


def test_docs_cli_md_is_up_to_date():
    written = DOCS.read_text(encoding="utf-8")
    assert written == reference(), (
        f"docs/cli.md is out of date with the commands' --help: regenerate it with "
        f"`make docs` ({REGENERATE}) and commit it"
    )


def test_the_reference_covers_every_command_and_option():
    paths = {" ".join(path) for path in command_paths()}
    assert paths == {"", *walked_paths()}
    text = reference()
    for option in ("--rule", "--wait-lock", "--approved-by", "--verify-only", "--head"):
        assert option in text
    assert "<bool>" not in text and "<list[str]>" not in text


def test_readme_links_work_on_a_package_index_page():
    """PyPI shows the README without the repository: a relative link would be dead."""
    readme = (DOCS.parent.parent / "README.md").read_text(encoding="utf-8")
    targets = re.findall(r"\]\(([^)\s]+)\)", readme)
    assert targets
    relative = [t for t in targets if not t.startswith(("https://", "http://", "#"))]
    assert relative == []
    repository = "https://github.com/gdpr-sweep/gdpr-sweep"
    assert all(t.startswith(repository) or t.startswith("#") for t in targets), targets
