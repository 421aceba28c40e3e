"""deploy/: the Kubernetes manifests pass kubernetes-validate, and every command line in them and in the
systemd units is one the CLI accepts; the probes point at the health endpoints the daemons serve."""

from __future__ import annotations

import io
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import click
import pytest
import yaml
from support.paths import ROOT

from reconciler.cli import cli
from reconciler.commands.shell import Shell
from reconciler.fleetfile import loader

DEPLOY = ROOT / "deploy"
MANIFESTS = sorted((DEPLOY / "kubernetes").glob("*.yaml"))
UNITS = sorted((DEPLOY / "systemd").glob("*.service"))


def documents() -> list[dict[str, Any]]:
    return [doc for path in MANIFESTS for doc in yaml.safe_load_all(path.read_text()) if doc]


def containers() -> list[dict[str, Any]]:
    found = []
    for doc in documents():
        spec = doc.get("spec", {})
        pod = spec.get("jobTemplate", {}).get("spec", spec).get("template", {}).get("spec")
        if pod:
            found += pod["containers"]
    return found


def accepted(argv: list[str]) -> None:
    """Parse ``argv`` as ``reconciler`` would, without running it: a mistyped flag or value fails here."""
    shell = Shell({}, io.StringIO(), io.StringIO(), io.StringIO())
    with cli.make_context("reconciler", list(argv), obj=shell) as group:
        unparsed = [*getattr(group, "_protected_args", []), *group.args]  # click 8.2 keeps the command apart
        name, command, rest = cli.resolve_command(group, unparsed)
        assert command is not None, name
        command.make_context(name or "", rest, parent=group).close()


def test_the_manifests_pass_kubernetes_validate() -> None:
    validate = shutil.which("kubernetes-validate") or str(Path(sys.executable).parent / "kubernetes-validate")
    if not Path(validate).exists():
        pytest.skip("kubernetes-validate is not installed (pip install -e '.[test]')")
    done = subprocess.run([validate, "--strict", *map(str, MANIFESTS)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert len(re.findall(r"\bpassed\b", done.stdout + done.stderr)) == len(documents())


def test_the_kinds_the_readme_promises_are_there() -> None:
    kinds = {(doc["kind"], doc["metadata"]["name"]) for doc in documents()}
    assert {
        ("Deployment", "reconciler-watch"),
        ("Deployment", "reconciler-webhook"),
        ("Service", "reconciler-webhook"),
        ("CronJob", "reconciler-watch-once"),
        ("ConfigMap", "reconciler-fleet"),
        ("Secret", "reconciler"),
    } <= kinds
    watch = next(d for d in documents() if d["kind"] == "Deployment" and d["metadata"]["name"] == "reconciler-watch")
    assert watch["spec"]["replicas"] == 2


def test_every_container_runs_a_command_line_the_cli_accepts_and_probes_its_health_endpoints() -> None:
    for container in containers():
        accepted(container["args"])
        ports = {p["name"]: p["containerPort"] for p in container.get("ports", [])}
        for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
            if "--once" in container["args"]:
                continue  # a CronJob's run ends by itself: no probe
            get = container[probe]["httpGet"]
            assert get["path"] == path
            assert f"--{'port' if get['port'] == 'http' else 'metrics-port'}={ports[get['port']]}" in container["args"]
        secrets = [s["secretRef"]["name"] for s in container.get("envFrom", [])]
        assert secrets == ["reconciler"]  # credentials and the PostgreSQL URL from a Secret, never in the manifest


def test_every_systemd_unit_runs_a_command_line_the_cli_accepts() -> None:
    assert {u.name for u in UNITS} == {
        "reconciler-watch.service",
        "reconciler-webhook.service",
        "reconciler-watch-once.service",
    }
    assert (DEPLOY / "systemd" / "reconciler-watch-once.timer").exists()
    for unit in UNITS:
        [line] = [line for line in unit.read_text().splitlines() if line.startswith("ExecStart=")]
        argv = shlex.split(line.removeprefix("ExecStart="))
        assert argv[0].endswith("/reconciler")
        accepted(argv[1:])


def test_the_configmap_fleet_file_validates_offline(tmp_path: Path) -> None:
    [config] = [d for d in documents() if d["kind"] == "ConfigMap"]
    path = tmp_path / "fleet.yaml"
    path.write_text(config["data"]["fleet.yaml"])
    desired = loader.read(str(path), {}, offline=True)
    assert desired.variables == ("WEBHOOK_TOKEN",)
    [secret] = [d for d in documents() if d["kind"] == "Secret" and d["metadata"]["name"] == "reconciler"]
    assert set(desired.variables) <= set(secret["stringData"])  # the Secret holds what the file reads


def test_a_mistyped_flag_is_caught_by_the_parse_the_tests_rely_on() -> None:
    with pytest.raises(click.UsageError):
        accepted(["watch", "--intervall=15m"])
