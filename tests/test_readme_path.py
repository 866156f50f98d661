"""The README's "Start here", literally, on a fresh copy, as a newcomer runs it.

Every command of its ```sh blocks (except `make test` and `make databases`, which are
CI's) runs in one shell, in order, with `set -e`: `make demo` builds .venv from nothing
(pip install -e; pip's cache makes it a matter of seconds), then the tour. Each must
exit 0, and the demo must print the very tour the README shows.
"""

from __future__ import annotations

from tests.fresh_copy import SLOW, check_run, copy_repository, newcomer_environment
from tests.test_demo_tour import printed_tour, readme_tour, start_here_blocks

pytestmark = SLOW

NOT_FOR_NEWCOMERS = ("make test", "make databases")


def readme_commands() -> list[str]:
    return [
        line
        for block in start_here_blocks()
        for line in block
        if not line.startswith("#") and not line.startswith(NOT_FOR_NEWCOMERS)
    ]


def test_the_readme_commands_are_the_demo_and_its_tour():
    commands = readme_commands()
    assert commands[0] == "make demo"
    assert commands[1:] == readme_tour()
    assert any(line.startswith(".venv/bin/gdpr-sweep erase ") for line in commands)


def test_the_readme_path_works_on_a_fresh_copy(tmp_path):
    repository = copy_repository(tmp_path / "gdpr-sweep")
    assert not (repository / ".venv").exists()
    script = "set -eu\n" + "".join(
        f"echo '>>> {index}'\n{line}\n" for index, line in enumerate(readme_commands())
    )
    result = check_run(["bash", "-c", script], repository, newcomer_environment(), timeout=900)
    steps = result.stdout.split(">>> ")
    assert len(steps) == len(readme_commands()) + 1, result.stdout[-3000:]
    demo_output = steps[1]
    assert printed_tour(demo_output) == readme_tour()
    assert "audit trail intact" in result.stdout
    assert (repository / "gdpr-sweep-demo" / "export.json").is_file()
    assert "anonymised 1 row(s) in candidate" in result.stdout
