"""Plan output: the JSON contract, the Markdown comment, the terminal text."""

from __future__ import annotations

import io
import json
from dataclasses import replace

from support.planning import OPS, VIN, VIN2, air, desired, recorded

from reconciler.core.changes import Plan
from reconciler.core.model import Attribute, Callback, ChargingPreferences, Secret, VehicleConfig
from reconciler.core.outcomes import Outcome
from reconciler.core.planner import plan
from reconciler.core.vocabulary import Result
from reconciler.render import json_plan, markdown, text
from reconciler.render.report import BarProgress

SECRET = "tok-9f8e7d6c5b4a"


def secret_plan() -> Plan:
    hook = replace(OPS, attributes=(Attribute("Header", "Authorization", Secret("T", SECRET)),))
    return plan(
        desired({VIN: VehicleConfig(preconditioning={1: air(1)}, immobilized=True)}, (hook,)), recorded(callbacks=())
    )


def json_of(p: Plan) -> dict:  # type: ignore[type-arg]
    out = io.StringIO()
    json_plan.write(p, out)
    return json.loads(out.getvalue())  # type: ignore[no-any-return]


def test_json_plan_has_the_documented_shape() -> None:
    doc = json_of(secret_plan())
    assert {"format_version", "fleet", "state", "changes", "drift", "summary"} <= set(doc)
    assert doc["state"] == {"lineage": "L1", "serial": 4}
    assert doc["summary"]["create"] == 1 and doc["summary"]["send"] == 2
    for change in doc["changes"]:
        assert {"address", "action", "before", "after", "request"} <= set(change)
        assert {"method", "path", "body"} <= set(change["request"])
    assert doc["api_calls"] == {"total": 4, "changes": 3, "lookups": 1}


def test_secrets_never_appear_in_any_format() -> None:
    p = secret_plan()
    out = io.StringIO()
    json_plan.write(p, out)
    rendered = [out.getvalue(), text.render(p), markdown.render(p)]
    for output in rendered:
        assert SECRET not in output
    body = json.loads(rendered[0])["changes"][0]["request"]["body"]
    assert body["callback"]["webhook"]["attributes"][0]["value"] == "(sensitive)"
    assert "webhook.headers.Authorization: (sensitive, changed)" in rendered[1]


def test_text_is_coloured_only_when_asked() -> None:
    p = secret_plan()
    assert "\033[" not in text.render(p, color=False)
    assert "\033[32m" in text.render(p, color=True)


def test_text_shows_field_level_changes() -> None:
    d = desired(
        {
            VIN: VehicleConfig(
                preconditioning={1: air(1, 480)}, charging_preferences=ChargingPreferences("Level4", "Full")
            )
        }
    )
    r = recorded(
        {
            VIN: VehicleConfig(
                preconditioning={1: air(1, 450), 2: air(2)}, charging_preferences=ChargingPreferences("Level2", "Full")
            )
        }
    )
    output = text.render(plan(d, r))
    assert "~ slot 1.start: 07:30 → 08:00" in output
    assert "- slot 2: 07:30 weekdays" in output
    assert "~ level: Level2 → Level4" in output
    assert "Plan: 2 to send." in output


def test_no_changes_says_so() -> None:
    d = desired({VIN: VehicleConfig(preconditioning={1: air(1)})})
    r = recorded({VIN: VehicleConfig(preconditioning={1: air(1)})})
    assert "No changes." in text.render(plan(d, r))
    assert "**No changes.**" in markdown.render(plan(d, r))


def test_markdown_has_summary_banner_and_collapsed_vehicles() -> None:
    old = Callback("old", "https://old.example.com", "old", ("Horn",))
    d = desired({VIN: VehicleConfig(immobilized=True), VIN2: VehicleConfig(preconditioning={1: air(1)})})
    output = markdown.render(plan(d, recorded(callbacks=(OPS, old))))
    assert "> [!WARNING]" in output
    assert "This plan **immobilizes 1 vehicle, deletes 1 callback**" in output
    assert "> Deleting: `callback.old`" in output and f"> Immobilizing: `{VIN}`" in output
    assert "| 📡 send | 2 |" in output
    assert f"**📡 `vehicle.{VIN}.immobilization`** — " in output


def test_markdown_shows_each_distinct_change_once_with_its_vehicles_collapsed() -> None:
    # 10,000 vehicles in 20 groups: 20 distinct changes, every one shown, the VIN lists cut to fit.
    vins = [f"VF3ABCDE0FG{n:06d}" for n in range(10_000)]
    d = desired({vin: VehicleConfig(preconditioning={1: air(1, 420 + n % 20)}) for n, vin in enumerate(vins)})
    output = markdown.render(plan(d, recorded()))
    assert len(output) <= 65_000
    assert "more sections not shown" not in output
    for n in range(20):
        minutes = 420 + n
        assert f"+ slot 1: {minutes // 60:02d}:{minutes % 60:02d} weekdays" in output
    assert output.count("`preconditioning` on 500 vehicles") == 20
    assert output.count("<summary>The 500 vehicles</summary>") == 20
    assert " more (`reconciler plan --format json` lists every change)" in output


def test_markdown_is_cut_to_fit_a_comment_with_a_note() -> None:
    vins = [f"VF3ABCDE0FG{n:06d}" for n in range(3000)]  # 3,000 distinct changes: they cannot all fit
    d = desired({vin: VehicleConfig(preconditioning={1: air(1, n % 1440)}) for n, vin in enumerate(vins)})
    output = markdown.render(plan(d, recorded()))
    assert len(output) <= 65_000
    assert "more sections not shown" in output


def test_markdown_footer_names_the_commit_and_the_ci_run() -> None:
    p = plan(desired({VIN: VehicleConfig(preconditioning={1: air(1)})}), recorded())
    github = {
        "GITHUB_SHA": "0123456789abcdef0123456789abcdef01234567",
        "GITHUB_SERVER_URL": "https://github.com",
        "GITHUB_REPOSITORY": "acme/fleet",
        "GITHUB_RUN_ID": "4242",
    }
    output = markdown.render(p, ci=github)
    assert "[`0123456789ab`](https://github.com/acme/fleet/commit/0123456789abcdef0123456789abcdef01234567)" in output
    assert "[CI run 4242](https://github.com/acme/fleet/actions/runs/4242)" in output
    gitlab = {"CI_COMMIT_SHA": "89abcdef0123", "CI_PIPELINE_URL": "https://gitlab.example.com/acme/fleet/-/pipelines/7"}
    assert "[CI pipeline](https://gitlab.example.com/acme/fleet/-/pipelines/7)" in markdown.render(p, ci=gitlab)
    hostile = {"GITHUB_SHA": "x) [click](https://evil", "CI_PIPELINE_URL": "javascript:alert(1)"}
    assert "<sub>" not in markdown.render(p, ci=hostile) and "<sub>" not in markdown.render(p)


def test_markdown_shows_field_changes_as_minus_and_plus_lines() -> None:
    d = desired({VIN: VehicleConfig(preconditioning={1: air(1, 480)})})
    r = recorded({VIN: VehicleConfig(preconditioning={1: air(1, 450)})})
    output = markdown.render(plan(d, r))
    assert "```diff\n- slot 1.start: 07:30\n+ slot 1.start: 08:00\n" in output


def test_markdown_banner_counts_the_immobilized_vehicles_it_does_not_name() -> None:
    vins = [f"VF3ABCDE0FG{n:06d}" for n in range(25)]
    output = markdown.render(plan(desired({vin: VehicleConfig(immobilized=True) for vin in vins}), recorded()))
    assert "**immobilizes 25 vehicles**" in output and " and 5 more" in output


def test_a_target_that_becomes_secret_shows_once_and_never_in_clear() -> None:
    plain = replace(OPS, target="https://hooks.example.com/x")
    hidden = replace(OPS, target=Secret("HOOK_URL", "https://hooks.example.com/s3cr3t-path"))
    output = text.render(plan(desired({}, (hidden,)), recorded(callbacks=(plain,))))
    assert [line.strip() for line in output.splitlines() if "webhook.target" in line] == [
        "~ webhook.target: (sensitive, changed)"
    ]
    assert "s3cr3t" not in output


def test_streamed_json_is_the_plan_document_exactly() -> None:
    """Changes are assembled from the JSON of shared parts: the result must be what encoding them whole gives."""
    d = desired(
        {
            VIN: VehicleConfig(preconditioning={1: air(1, 480)}, immobilized=True),
            VIN2: VehicleConfig(preconditioning={1: air(1, 480)}, charging_preferences=ChargingPreferences("Level4")),
        }
    )
    p = replace(plan(d, recorded({VIN: VehicleConfig(preconditioning={2: air(2)})})), refresh_error="x")
    streamed = json_of(p)
    whole = json.loads(json_plan.dumps(json_plan.plan_document(p)))
    assert streamed == whole
    keyed = [c for c in streamed["changes"] if c.get("key")]
    assert keyed and all(c["request"]["body"]["label"] == c["key"] for c in keyed)


def test_the_progress_bar_starts_over_for_each_wave_and_says_rate_and_eta() -> None:
    clock = [0.0]
    out = io.StringIO()
    bar = BarProgress(out, width=10, columns=lambda: 200, clock=lambda: clock[0])
    for wave in (1, 4):
        bar.start(wave)
        for n in range(wave):
            clock[0] += 2.0
            bar.done(Outcome(f"vehicle.V{n}", Result.CONFIRMED, ""))
            if wave == 4 and n == 1:
                assert "[#####-----] 2/4 (50%), 4s, 0.5/s, ETA 4s" in out.getvalue().rsplit("\r", 1)[-1]
        bar.finish()
    assert "[##########] 4/4 (100%), 8s, 0.5/s" in out.getvalue().splitlines()[-1]
    assert "20/18" not in out.getvalue()


def test_the_progress_bar_never_wraps() -> None:
    out = io.StringIO()
    bar = BarProgress(out, columns=lambda: 40)
    bar.start(100_000)
    bar.done(Outcome("vehicle.V1", Result.FAILED, "VehicleError"))
    drawn = out.getvalue().split("\r")[-1].removesuffix("\033[K")
    assert len(drawn) <= 39


def test_the_report_lists_what_needs_a_look_and_counts_the_rest() -> None:
    from reconciler.render.report import report

    outcomes = [Outcome(f"vehicle.V{n:05d}.preconditioning", Result.CONFIRMED, "Success (r)") for n in range(200)]
    outcomes += [
        Outcome("vehicle.VF1.preconditioning", Result.FAILED, "VehicleError (0123456789abcdef0123456789abcdef)")
    ]
    outcomes += [
        Outcome(f"vehicle.S{n}.stolen", Result.SKIPPED, "not sent: the run was interrupted") for n in range(8000)
    ]
    out = io.StringIO()
    report(outcomes, out)
    lines = out.getvalue().splitlines()
    assert "  - 8,000 not sent: not sent: the run was interrupted" not in lines
    assert any(line.strip() == "- 8,000 not sent: the run was interrupted" for line in lines), lines
    assert any("✓ 200 confirmed" in line for line in lines)
    assert sum("vehicle.VF1.preconditioning" in line for line in lines) == 2  # its line, and the recap
    assert len(lines) < 12
    assert lines[-1].startswith("Next: ")
    verbose = io.StringIO()
    report(outcomes, verbose, verbose=True)
    assert len(verbose.getvalue().splitlines()) > 8000


def test_text_shows_the_same_change_to_many_vehicles_once() -> None:
    vins = [f"VF3ABCDE0FG{n:06d}" for n in range(2000)]
    d = desired({vin: VehicleConfig(preconditioning={1: air(1, 420 + n % 2)}) for n, vin in enumerate(vins)})
    output = text.render(plan(d, recorded(vehicles={vin: VehicleConfig() for vin in vins})))
    lines = output.splitlines()
    assert len(lines) < 20, lines
    assert sum("preconditioning on 1,000 vehicles" in line for line in lines) == 2
    assert any(line.strip().startswith("vehicles: VF3ABCDE0FG000000") and "and 990 more" in line for line in lines)
