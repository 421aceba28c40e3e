"""The example CI workflows (examples/): they pass actionlint, and their shell steps work against the simulator.

The GitHub Actions workflows are read as GitHub would run them: each job's
``env``, then each ``run`` step in order with ``bash -eo pipefail`` in the
checkout, ``GITHUB_ENV``/``GITHUB_OUTPUT`` honoured between steps. Steps that
only GitHub can run (``uses:`` actions, the package install, the look-up of
the pull request's run through ``gh``) are stood in for: the test's venv is
the install, and the plan artifact is handed from the plan job to the apply
job as download-artifact would.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from support.paths import ROOT
from support.runs import FLEET, SECRET, mutations

from reconciler.simulator.server import Simulator

WORKFLOWS = ROOT / "examples" / "github"
STOOD_IN = {"install", "find"}  # step ids the test stands in for


def actionlint() -> str | None:
    found = shutil.which("actionlint", path=str(Path(sys.executable).parent)) or shutil.which("actionlint")
    return found


@pytest.mark.skipif(actionlint() is None, reason="actionlint is not installed (the test extra has it on Linux x86-64)")
def test_the_github_workflows_pass_actionlint() -> None:
    workflows = sorted(WORKFLOWS.glob("*.yml"))
    assert len(workflows) == 2
    done = subprocess.run([str(actionlint()), *map(str, workflows)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def job(name: str) -> dict[str, Any]:
    workflow = yaml.safe_load((WORKFLOWS / name).read_text())
    [only] = workflow["jobs"].values()
    return only  # type: ignore[no-any-return]


def run_steps(job: dict[str, Any], workspace: Path, env: dict[str, str]) -> dict[str, dict[str, str]]:
    """Run the job's shell steps as a runner would; each step's outputs by its id."""
    outputs: dict[str, dict[str, str]] = {}
    for number, step in enumerate(job["steps"]):
        if "run" not in step or step.get("id") in STOOD_IN:
            continue
        files = {name: workspace.parent / f"{name.lower()}-{number}" for name in ("GITHUB_ENV", "GITHUB_OUTPUT")}
        for path in files.values():
            path.write_text("")
        step_env = {
            **env,
            **{k: str(v) for k, v in (step.get("env") or {}).items()},
            **{k: str(p) for k, p in files.items()},
        }
        step_env["GITHUB_STEP_SUMMARY"] = str(workspace.parent / "summary.md")
        done = subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]],
            cwd=workspace,
            env=step_env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, f"step {step.get('name')!r} failed:\n{done.stdout}\n{done.stderr}"
        for line in files["GITHUB_ENV"].read_text().splitlines():
            key, _, value = line.partition("=")
            env[key] = value
        if step.get("id"):
            outputs[step["id"]] = dict(
                line.partition("=")[::2] for line in files["GITHUB_OUTPUT"].read_text().splitlines() if "=" in line
            )
    return outputs


def github_env(job: dict[str, Any], secrets: dict[str, str], tmp: Path) -> dict[str, str]:
    """The job's env with its ``${{ secrets.X }}`` and ``${{ github.… }}`` filled in, on this machine's PATH."""
    env = {"PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}", "HOME": str(tmp), "RUNNER_TEMP": str(tmp)}
    for name, value in job["env"].items():
        text = str(value)
        if text.startswith("${{ secrets."):
            env[name] = secrets.get(text.removeprefix("${{ secrets.").removesuffix(" }}").strip(), "")
        else:
            env[name] = "0123456789abcdef0123456789abcdef01234567"  # a github.* value: a SHA, a token
    return env


def test_the_github_workflows_plan_a_pull_request_then_apply_the_reviewed_plan(sim: Simulator, tmp_path: Path) -> None:
    connection = sim.connection
    material = connection.material
    secrets = {
        "RECONCILER_STATE": f"sqlite:///{tmp_path / 'state.db'}",
        "RECONCILER_CLIENT_ID": connection.credentials.client_id,
        "RECONCILER_USERNAME": connection.credentials.username,
        "RECONCILER_PASSWORD": connection.credentials.password,
        "RECONCILER_CLIENT_CERT_PEM": material.client_cert.read_text(),
        "RECONCILER_CLIENT_KEY_PEM": material.client_key.read_text(),
        "WEBHOOK_TOKEN": SECRET,
    }
    # This API is the simulator, with its own CA: what a real fleet's job does not need to set.
    here = {"RECONCILER_API_URL": connection.url, "RECONCILER_CA_BUNDLE": str(material.ca_cert)}
    workspace = tmp_path / "checkout"
    workspace.mkdir()
    (workspace / "fleet.yaml").write_text(FLEET.replace("${HOOK_TOKEN}", "${WEBHOOK_TOKEN}"))
    runner = tmp_path / "runner"
    runner.mkdir()

    plan_job = job("fleet-plan.yml")
    outputs = run_steps(plan_job, workspace, {**github_env(plan_job, secrets, runner), **here})
    assert outputs["plan"]["changes"] == "true"
    assert "`preconditioning` on 3 vehicles" in (workspace / "plan.md").read_text()
    assert mutations(sim) == []  # a plan sends nothing

    # download-artifact puts what the plan job uploaded in the apply job's checkout, at the same path:
    # here they are already, so the apply job's plan.json is the reviewed one, byte for byte.
    assert {"plan.json", "plan.md", "plan.sha"} <= {p.name for p in workspace.iterdir()}
    apply_job = job("fleet-apply.yml")
    run_steps(apply_job, workspace, {**github_env(apply_job, secrets, runner), **here})
    posted = [s for s in mutations(sim) if s.path.endswith("/remotes")]
    assert len(posted) == 10  # what the reviewed plan listed: 3 vehicles x 3 parts and an immobilization
    assert "reconciler plan for fleet" in (tmp_path / "summary.md").read_text()  # the Report step
