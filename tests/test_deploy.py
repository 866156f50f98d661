"""docs/deploy/: the manifests people copy are valid, and say what the code does.

The Kubernetes manifests are checked against the Kubernetes API's schema (strict: an
unknown or misspelt field fails) with kubernetes-validate, which bundles the schemas
(no network). The Prometheus rules are checked structurally (promtool is not
available), and every gdpr_sweep_* metric they use must be one `--metrics-file`
writes. The systemd units go through `systemd-analyze verify` where it exists. Each
check is shown to fail on a broken copy.
"""

from __future__ import annotations

import copy
import datetime as dt
import http.server
import os
import re
import shlex
import shutil
import subprocess
import sys
import threading
from configparser import ConfigParser
from pathlib import Path
from typing import Any, ClassVar

import kubernetes_validate
import pytest
import typer
import yaml

from gdpr_sweep.cli import app
from gdpr_sweep.cli.root import subcommands
from gdpr_sweep.config import load_config
from gdpr_sweep.metrics import render_metrics
from gdpr_sweep.run_result import RunItem, RunResult

DEPLOY = Path(__file__).resolve().parent.parent / "docs" / "deploy"
#: The oldest Kubernetes the manifests are for (backoffLimitPerIndex, FailIndex) and
#: the newest schema kubernetes-validate bundles.
K8S_VERSIONS = ("1.31.0", kubernetes_validate.latest_version())


def manifests(name: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all((DEPLOY / name).read_text()) if d]


def k8s_errors(resource: dict[str, Any]) -> list[str]:
    """Why `resource` does not fit the Kubernetes API schema of each version (none: it does)."""
    errors = []
    for version in K8S_VERSIONS:
        try:
            kubernetes_validate.validate(resource, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            errors.append(f"{version}: {exc.message} at {list(exc.path)}")
    return errors


def kustomization() -> dict[str, Any]:
    return yaml.safe_load((DEPLOY / "kustomization.yaml").read_text())


def generated_configmaps() -> list[dict[str, Any]]:
    """The ConfigMaps `kubectl apply -k` makes from the configMapGenerator (less the hash)."""
    result = []
    for generator in kustomization()["configMapGenerator"]:
        data = {}
        for entry in generator["files"]:
            key, _, path = entry.partition("=")
            data[key] = (DEPLOY / (path or key)).read_text(encoding="utf-8")
        result.append({"apiVersion": "v1", "kind": "ConfigMap",
                       "metadata": {"name": generator["name"]}, "data": data})  # fmt: skip
    return result


def all_resources() -> list[dict[str, Any]]:
    resources = [r for name in kustomization()["resources"] for r in manifests(name)]
    return resources + generated_configmaps() + manifests("secret.example.yaml")


def sweep_job() -> dict[str, Any]:
    (cronjob,) = manifests("cronjob.yaml")
    return cronjob


def job_spec(cronjob: dict[str, Any]) -> dict[str, Any]:
    return cronjob["spec"]["jobTemplate"]["spec"]


def pod_spec(cronjob: dict[str, Any]) -> dict[str, Any]:
    return job_spec(cronjob)["template"]["spec"]


def sweep_script() -> str:
    (container,) = pod_spec(sweep_job())["containers"]
    assert container["command"] == ["/bin/sh", "-c"]
    return container["args"][0]


def test_every_manifest_fits_the_kubernetes_api_schema():
    resources = all_resources()
    assert {r["kind"] for r in resources} == {"CronJob", "ConfigMap", "Secret"}
    for resource in resources:
        assert k8s_errors(resource) == [], resource["metadata"]["name"]


@pytest.mark.parametrize(
    ("where", "change"),
    [
        ("misspelt field", lambda j: job_spec(j).update(completionsMode="Indexed")),
        ("wrong type", lambda j: job_spec(j).update(parallelism="4")),
        ("a list, not a map", lambda j: pod_spec(j).update(securityContext=[{"runAsUser": 1}])),
        ("in the wrong place", lambda j: pod_spec(j).update(concurrencyPolicy="Forbid")),
        ("missing required", lambda j: pod_spec(j)["containers"][0].pop("name")),
        ("value not a string", lambda j: pod_spec(j)["containers"][0]["env"][0].update(value=4)),
    ],
)  # fmt: skip
def test_a_broken_copy_of_the_cronjob_fails_validation(where, change):
    broken = copy.deepcopy(sweep_job())
    change(broken)
    assert k8s_errors(broken), where


def test_the_cronjob_is_an_indexed_job_of_n_shards():
    cronjob = sweep_job()
    spec = cronjob["spec"]
    job = spec["jobTemplate"]["spec"]
    assert spec["concurrencyPolicy"] == "Forbid"
    assert job["completionMode"] == "Indexed"
    shards = re.search(r"--shard auto/(\d+)\b", sweep_script())
    assert shards, "the sweep runs --shard auto/N"
    assert job["completions"] == job["parallelism"] == int(shards.group(1))
    # What the pod is given: the config and tenants.csv from the generated ConfigMap,
    # mounted where GDPR_SWEEP_CONFIG points; the secrets as environment variables.
    pod = pod_spec(cronjob)
    (container,) = pod["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    config_path = Path(env["GDPR_SWEEP_CONFIG"])
    volumes = {v["name"]: v for v in pod["volumes"]}
    mount = next(m for m in container["volumeMounts"] if Path(m["mountPath"]) == config_path.parent)
    configmap = generated_configmaps()[0]
    assert volumes[mount["name"]]["configMap"]["name"] == configmap["metadata"]["name"]
    assert config_path.name in configmap["data"] and "tenants.csv" in configmap["data"]
    (secret,) = manifests("secret.example.yaml")
    assert container["envFrom"] == [{"secretRef": {"name": secret["metadata"]["name"]}}]
    assert {"GDPR_SWEEP_KEY", "GDPR_SWEEP_STATE_URL"} <= set(secret["stringData"])
    # A failing exit code the podFailurePolicy names is the sweep's container's.
    for rule in spec["jobTemplate"]["spec"]["podFailurePolicy"]["rules"]:
        assert rule["onExitCodes"]["containerName"] == container["name"]


def test_the_configmap_holds_a_config_gdpr_sweep_loads(tmp_path, monkeypatch):
    configmap = generated_configmaps()[0]
    for name, text in configmap["data"].items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    config = load_config(tmp_path / "gdpr-sweep.toml")
    assert len(config.databases) == 98
    assert config.sweep.state_url_env == "GDPR_SWEEP_STATE_URL"
    (secret,) = manifests("secret.example.yaml")
    urls = {k for k in secret["stringData"] if k.startswith("KOMMUNE_")}
    assert urls <= {db.url_env for db in config.databases}
    # A ConfigMap holds at most 1 MiB.
    assert sum(len(text.encode()) for text in configmap["data"].values()) < 1024 * 1024


def _options(tokens: list[str]) -> tuple[list[str], str, list[str]]:
    """The global options, the command and its options of a `gdpr-sweep …` command line."""
    start = tokens.index(next(t for t in tokens if t.endswith("gdpr-sweep")))
    tokens = tokens[start + 1 :]
    command_at = next(i for i, t in enumerate(tokens) if not t.startswith("-") and
                      (i == 0 or not tokens[i - 1].startswith("--log")))  # fmt: skip
    options = [t for t in tokens[command_at:] if t.startswith("-")]
    return [t for t in tokens[:command_at] if t.startswith("-")], tokens[command_at], options


def _known(command: str) -> tuple[set[str], set[str]]:
    group = typer.main.get_command(app)
    cli = subcommands(group)[command]
    return {o for p in group.params for o in p.opts}, {o for p in cli.params for o in p.opts}


#: Options the manifests use that another change adds (issue 26: run --shard).
NOT_YET = {"--shard"}


def assert_options_exist(line: str) -> None:
    global_options, command, options = _options(shlex.split(line))
    known_global, known = _known(command)
    assert set(global_options) <= known_global
    assert set(options) - NOT_YET <= known, line
    for option in NOT_YET & set(options):
        if option not in known:
            print(f"note: {option} is not (yet) an option of {command}")


def test_the_commands_use_options_gdpr_sweep_has():
    script = sweep_script().replace("\\\n", " ")
    assert_options_exist(next(line for line in script.splitlines() if "gdpr-sweep" in line))
    (verify,) = manifests("audit-verify-cronjob.yaml")
    command = pod_spec(verify)["containers"][0]["command"]
    assert command[-2:] == ["audit", "verify"]
    for unit in ("gdpr-sweep@.service", "gdpr-sweep-verify.service"):
        exec_start = unit_file(DEPLOY / "systemd" / unit)["Service"]["ExecStart"]
        if "audit" not in exec_start:
            assert_options_exist(exec_start.replace("%i", "0"))
    with pytest.raises(AssertionError):
        assert_options_exist("gdpr-sweep run --quiet --metric-file x.prom")


class _Pushgateway(http.server.BaseHTTPRequestHandler):
    received: ClassVar[list[tuple[str, str, bytes]]] = []

    def do_PUT(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append(("PUT", self.path, body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


STUB = """\
#!{python}
import signal, sys, time
args = sys.argv[1:]
path = args[args.index("--metrics-file") + 1]
def stop(*_):
    open(path, "w").write("gdpr_sweep_stopped 1\\n")
    sys.exit(3)
signal.signal(signal.SIGTERM, stop)
open("{calls}", "a").write(" ".join(args) + "\\n")
if "{mode}" == "wait":
    open("{calls}.started", "w").write("")
    time.sleep(30)
open(path, "w").write("gdpr_sweep_last_run_success 0\\n")
sys.exit({code})
"""


@pytest.mark.skipif(shutil.which("sh") is None, reason="no /bin/sh")
@pytest.mark.parametrize(
    ("mode", "code"), [("exit", 0), ("exit", 3), ("exit", 5), ("wait", 3), ("late", 3)]
)
def test_the_pod_script_keeps_the_exit_code_pushes_metrics_and_passes_sigterm(tmp_path, mode, code):
    """The CronJob's shell: the sweep's exit code is the pod's, its metrics file is
    pushed per shard whatever the outcome, and SIGTERM reaches the sweep.

    "late": the shell is scheduled again only after the stopped sweep has exited (seen
    in CI on a loaded machine: the pod exited 143 instead of the sweep's 3)."""
    late = mode == "late"
    mode = "wait" if late else mode
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    stub = bin_dir / "gdpr-sweep"
    calls = tmp_path / "calls"
    stub.write_text(STUB.format(python=sys.executable, calls=calls, mode=mode, code=code))
    stub.chmod(0o755)
    (tmp_path / "metrics").mkdir()
    script = sweep_script().replace("/metrics/gdpr_sweep", f"{tmp_path}/metrics/gdpr_sweep")
    if late:
        first_wait = 'wait "$sweep"; code=$?\n'
        assert first_wait in script
        script = script.replace(first_wait, first_wait + "sleep 0.5\n", 1)
    _Pushgateway.received = []
    server = http.server.HTTPServer(("127.0.0.1", 0), _Pushgateway)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "JOB_COMPLETION_INDEX": "2",
           "PUSHGATEWAY_URL": f"http://127.0.0.1:{server.server_port}"}  # fmt: skip
    try:
        process = subprocess.Popen(["/bin/sh", "-c", script], env=env, stderr=subprocess.PIPE)
        if mode == "wait":
            for _ in range(200):
                if Path(f"{calls}.started").exists():
                    break
                threading.Event().wait(0.05)
            process.terminate()  # what Kubernetes sends at activeDeadlineSeconds
        _, stderr = process.communicate(timeout=60)
    finally:
        server.shutdown()
    assert process.returncode == code, stderr
    assert "--shard auto/4" in calls.read_text()
    (received,) = _Pushgateway.received
    assert received[:2] == ("PUT", "/metrics/job/gdpr-sweep/shard/2")
    expected = b"gdpr_sweep_stopped 1\n" if mode == "wait" else b"gdpr_sweep_last_run_success 0\n"
    assert received[2] == expected


# --- Prometheus rules ---------------------------------------------------------------

_DURATION = re.compile(r"^(\d+(ms|s|m|h|d|w|y))+$")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_RULE_KEYS = {"alert", "record", "expr", "for", "keep_firing_for", "labels", "annotations"}
#: Series the rules use that other exporters provide.
EXTERNAL = {"kube_job_status_failed", "node_systemd_unit_state"}


def rule_problems(document: Any) -> list[str]:
    """What is wrong with a Prometheus rules file (the checks of `promtool check rules`
    that need no PromQL parser, and balanced brackets and templates)."""
    problems: list[str] = []
    if not isinstance(document, dict) or set(document) != {"groups"}:
        return ["the file is one mapping with the key 'groups'"]
    groups = document["groups"]
    if not isinstance(groups, list) or not groups:
        return ["groups is a non-empty list"]
    names = [g.get("name") for g in groups if isinstance(g, dict)]
    if len(names) != len(groups) or len(set(names)) != len(names) or not all(names):
        problems.append("every group has a name of its own")
    for group in groups:
        if not isinstance(group, dict):
            continue
        if set(group) - {"name", "interval", "limit", "rules", "labels", "query_offset"}:
            problems.append(f"{group.get('name')}: unknown key")
        rules = group.get("rules")
        if not isinstance(rules, list) or not rules:
            problems.append(f"{group.get('name')}: rules is a non-empty list")
            continue
        for i, rule in enumerate(rules):
            where = f"{group.get('name')}.rules[{i}]"
            if not isinstance(rule, dict):
                problems.append(f"{where}: not a mapping")
                continue
            if set(rule) - _RULE_KEYS:
                problems.append(f"{where}: unknown key {sorted(set(rule) - _RULE_KEYS)}")
            if ("alert" in rule) == ("record" in rule):
                problems.append(f"{where}: needs exactly one of alert and record")
            name = rule.get("alert", rule.get("record"))
            if not isinstance(name, str) or not _NAME.match(name):
                problems.append(f"{where}: bad name {name!r}")
            expr = rule.get("expr")
            if not isinstance(expr, str) or not expr.strip():
                problems.append(f"{where}: expr is a non-empty string")
            elif not _balanced(expr):
                problems.append(f"{where}: unbalanced brackets or quotes in expr")
            for key in ("for", "keep_firing_for"):
                if key in rule and not (isinstance(rule[key], str) and _DURATION.match(rule[key])):
                    problems.append(f"{where}: {key} is not a duration")
            for key in ("labels", "annotations"):
                value = rule.get(key, {})
                if not isinstance(value, dict) or not all(
                    isinstance(k, str) and _NAME.match(k) and isinstance(v, str)
                    for k, v in value.items()
                ):
                    problems.append(f"{where}: {key} maps names to strings")
                elif any(v.count("{{") != v.count("}}") for v in value.values()):
                    problems.append(f"{where}: unbalanced template in {key}")
            if "alert" in rule and "severity" not in rule.get("labels", {}):
                problems.append(f"{where}: no severity label")
    alerts = [r.get("alert") for g in groups for r in g.get("rules", []) if "alert" in r]
    if len(set(alerts)) != len(alerts):
        problems.append("alert names are unique")
    return problems


def _balanced(expr: str) -> bool:
    expr = re.sub(r'"(\\.|[^"\\])*"', "S", expr)  # strings may hold anything
    if '"' in expr:
        return False
    depth = {"(": 0, "{": 0, "[": 0}
    closing = {")": "(", "}": "{", "]": "["}
    for ch in expr:
        if ch in depth:
            depth[ch] += 1
        elif ch in closing:
            depth[closing[ch]] -= 1
            if depth[closing[ch]] < 0:
                return False
    return not any(depth.values())


def alert_rules() -> dict[str, Any]:
    return yaml.safe_load((DEPLOY / "prometheus" / "gdpr-sweep-alerts.yml").read_text())


def emitted_metrics() -> set[str]:
    item = RunItem("aarhus", "r", "t", "delete", "2026-01-01", due=2, held=0, done=1, left=1)
    result = RunResult(1, dt.datetime(2026, 6, 1), "sha256:x", "partial", [item])
    text = render_metrics(result, "partial", 1.0, 1.0, ["aarhus"], now=2.0)
    return set(re.findall(r"^# TYPE (\w+) ", text, re.MULTILINE))


def used_metrics(rules: dict[str, Any]) -> set[str]:
    exprs = " ".join(r["expr"] for g in rules["groups"] for r in g["rules"])
    names = set(re.findall(r"\b([a-z_][a-z0-9_]*)\s*(?=[{\s)=<>!]|$)", exprs))
    return {n for n in names if n.startswith(("gdpr_sweep_", "kube_", "node_"))}


def test_the_alert_rules_are_well_formed_and_use_metrics_gdpr_sweep_writes():
    rules = alert_rules()
    assert rule_problems(rules) == []
    used = used_metrics(rules)
    assert used - EXTERNAL <= emitted_metrics(), sorted(used - EXTERNAL - emitted_metrics())
    alerts = {r["alert"]: r for g in rules["groups"] for r in g["rules"]}
    assert {"GdprSweepRunFailed", "GdprSweepNoRecentSuccess", "GdprSweepVerificationFailed",
            "GdprSweepTenantLocked", "GdprSweepAuditVerifyFailed"} <= set(alerts)  # fmt: skip
    assert "26 * 3600" in alerts["GdprSweepNoRecentSuccess"]["expr"]
    assert alerts["GdprSweepFailingFor26h"]["for"] == "26h"


@pytest.mark.parametrize(
    "change",
    [
        lambda r: r["groups"][0]["rules"][0].pop("expr"),
        lambda r: r["groups"][0]["rules"][0].update(record="x"),
        lambda r: r["groups"][0]["rules"][3].update({"for": "26 hours"}),
        lambda r: r["groups"][0]["rules"][0].update(expr="sum(gdpr_sweep_failures"),
        lambda r: r["groups"][0]["rules"][0]["annotations"].update(summary="{{ $labels.x }"),
        lambda r: r["groups"][0]["rules"][1]["labels"].update(severity=3),
        lambda r: r["groups"][0]["rules"].append(dict(r["groups"][0]["rules"][0])),
        lambda r: r["groups"][0]["rules"][0].update(fro="1h"),
        lambda r: r["groups"].append({"name": "gdpr-sweep", "rules": []}),
    ],
)
def test_a_broken_copy_of_the_alert_rules_fails(change):
    broken = copy.deepcopy(alert_rules())
    change(broken)
    assert rule_problems(broken)


def test_an_alert_on_a_metric_gdpr_sweep_does_not_write_fails():
    broken = copy.deepcopy(alert_rules())
    broken["groups"][0]["rules"][0]["expr"] = "gdpr_sweep_last_run_succes == 0"
    assert used_metrics(broken) - EXTERNAL - emitted_metrics() == {"gdpr_sweep_last_run_succes"}


def test_locked_databases_are_in_the_metrics():
    text = render_metrics(None, "locked", 0.5, None, ["aarhus", "odense"], now=1.0)
    assert 'gdpr_sweep_database_locked{database="aarhus"} 1\n' in text
    assert 'gdpr_sweep_database_locked{database="odense"} 1\n' in text
    text = render_metrics(None, "partial", 0.5, None, ["aarhus", "odense"], locked=["odense"])
    assert 'gdpr_sweep_database_locked{database="aarhus"} 0\n' in text
    assert 'gdpr_sweep_database_locked{database="odense"} 1\n' in text
    text = render_metrics(None, "completed", 0.5, None, ["aarhus"])
    assert 'gdpr_sweep_database_locked{database="aarhus"} 0\n' in text


# --- systemd ------------------------------------------------------------------------

_SERVICE_KEYS = {"Type", "User", "Group", "EnvironmentFile", "ExecStart", "SuccessExitStatus",
                 "TimeoutStopSec", "NoNewPrivileges", "PrivateTmp", "ProtectSystem",
                 "ProtectHome", "ReadWritePaths"}  # fmt: skip
_SECTIONS = {
    "Unit": {"Description", "Wants", "After", "Documentation"},
    "Service": _SERVICE_KEYS,
    "Timer": {"OnCalendar", "RandomizedDelaySec", "Persistent", "Unit"},
    "Install": {"WantedBy"},
}
UNITS = ["gdpr-sweep@.service", "gdpr-sweep@.timer", "gdpr-sweep-verify.service",
         "gdpr-sweep-verify.timer"]  # fmt: skip


def unit_file(path: Path) -> dict[str, dict[str, str]]:
    parser = ConfigParser(strict=True, interpolation=None, comment_prefixes=("#", ";"))
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # keys keep case
    # systemd continues a line ending in a backslash
    parser.read_string(path.read_text().replace("\\\n", " "))
    return {section: dict(parser[section]) for section in parser.sections()}


def unit_problems(directory: Path) -> list[str]:
    """`systemd-analyze verify` on the units (an instance of each template), with the
    executable swapped for one that exists here; without systemd, a parse."""
    problems = []
    analyze = shutil.which("systemd-analyze")
    for name in sorted(p.name for p in directory.iterdir()):
        sections = unit_file(directory / name)
        for section, keys in sections.items():
            if section not in _SECTIONS or set(keys) - _SECTIONS[section]:
                problems.append(
                    f"{name}: [{section}] {sorted(set(keys) - _SECTIONS.get(section, set()))}"
                )
        if name.endswith(".service") and "ExecStart" not in sections.get("Service", {}):
            problems.append(f"{name}: no ExecStart")
    if analyze is None:
        return problems
    work = directory.parent / f"{directory.name}-verify"
    work.mkdir()
    stub = work / "gdpr-sweep-stub"
    stub.write_text("#!/bin/sh\nexit 0\n")
    stub.chmod(0o755)
    units = []
    for path in directory.iterdir():
        target = work / path.name.replace("@.", "@0.")
        target.write_text(path.read_text().replace("/usr/local/bin/gdpr-sweep", str(stub)))
        units.append(str(target))
    done = subprocess.run([analyze, "verify", *units], capture_output=True, text=True,
                          timeout=120, env={**os.environ, "SYSTEMD_LOG_COLOR": "0"})  # fmt: skip
    # verify exits 0 after some warnings (an unknown key, a bad value): none is allowed.
    if done.returncode or done.stderr.strip() or done.stdout.strip():
        problems.append(f"systemd-analyze verify: {done.returncode} {done.stderr}{done.stdout}")
    return problems


def _copy_units(tmp_path: Path) -> Path:
    directory = tmp_path / "units"
    directory.mkdir()
    for name in UNITS:
        shutil.copy(DEPLOY / "systemd" / name, directory / name)
    return directory


def test_the_systemd_units_verify(tmp_path):
    assert sorted(p.name for p in (DEPLOY / "systemd").iterdir()) == sorted(UNITS)
    assert unit_problems(_copy_units(tmp_path)) == []
    service = unit_file(DEPLOY / "systemd" / "gdpr-sweep@.service")["Service"]
    # The instance is the shard index.
    assert re.search(r"run --shard %i/(\d+) ", service["ExecStart"])
    assert service["Type"] == "oneshot"


@pytest.mark.parametrize(
    ("unit", "old", "new"),
    [
        ("gdpr-sweep@.service", "Type=oneshot", "Type=one-shot"),
        ("gdpr-sweep@.service", "ExecStart=", "ExecStrat="),
        ("gdpr-sweep@.timer", "OnCalendar=*-*-* 02:30:00", "OnCalendar=nightly at 2"),
        ("gdpr-sweep-verify.service", "[Service]", "[Servcie]"),
    ],
)
def test_a_broken_copy_of_a_systemd_unit_fails(tmp_path, unit, old, new):
    directory = _copy_units(tmp_path)
    path = directory / unit
    assert old in path.read_text()
    path.write_text(path.read_text().replace(old, new))
    assert unit_problems(directory)


def test_the_readme_names_every_file_here():
    readme = (DEPLOY / "README.md").read_text()
    files = [p.relative_to(DEPLOY) for p in DEPLOY.rglob("*") if p.is_file()]
    for path in files:
        if path.name != "README.md":
            assert str(path) in readme, path
