"""fleet.yaml → ``Desired``: read the file, check it, resolve profiles, secrets and routes.

``read`` does the I/O; ``parse`` is pure (text, name and environment in, a
``Desired`` or a ``ConfigError`` listing every problem out).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..core import parts, spec, urls
from ..core.model import (
    AirProgram,
    Attribute,
    BatchNotify,
    Callback,
    ChargeProgram,
    ChargingPreferences,
    Desired,
    RetryPolicy,
    Secret,
    Value,
    VehicleConfig,
)
from ..core.timeofday import TimeFormatError, parse_days, parse_time
from ..errors import ConfigError, Location, Problem, ReconcilerError, SettingsError
from . import brakes, schema
from .reading import OFFLINE_VALUE
from .vehicles import Resolver
from .yaml_source import MAX_EXPANDED, Source, load
from .yaml_source import Path as DataPath

SANDBOX = "sandbox"
_UNMANAGED = VehicleConfig()

_TOKEN = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)\}")  # a literal $, or a variable of the environment
_API_VARIABLE = re.compile(r"\$([A-Za-z]+)\Z")
_ATTRIBUTE_SECTIONS = (
    ("headers", spec.ATTRIBUTE_HEADER),
    ("query", spec.ATTRIBUTE_QUERY),
    ("body", spec.ATTRIBUTE_BODY),
)

MAX_FILE_BYTES = 32 * 1024 * 1024  # RECONCILER_MAX_FILE_BYTES overrides it


def read(path: str | Path, env: Mapping[str, str], *, offline: bool = False) -> Desired:
    """Load, check and resolve the fleet file at ``path`` (``offline``: see ``parse``)."""
    return parse(read_text(path, env), str(path), env, offline=offline)


def read_text(path: str | Path, env: Mapping[str, str]) -> str:
    """The fleet file's text: at most ``RECONCILER_MAX_FILE_BYTES``, UTF-8, or a located error."""
    limit = _limit(env, "RECONCILER_MAX_FILE_BYTES", MAX_FILE_BYTES)
    try:
        with open(path, "rb") as stream:
            raw = stream.read(limit + 1)  # never more: -f /dev/zero must not fill the memory
    except FileNotFoundError:
        raise ReconcilerError(f"{path}: no such file; name the fleet file with -f FILE") from None
    except OSError as exc:
        raise ReconcilerError(f"cannot read {path}: {exc.strerror or exc}") from exc
    if len(raw) > limit:
        raise ReconcilerError(
            f"{path} is larger than {limit:,} bytes, the most a fleet file may be; "
            "use groups and profiles to shorten it, or raise RECONCILER_MAX_FILE_BYTES"
        )
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        before = raw[: exc.start]
        line_start = before.rfind(b"\n") + 1
        where = Location(str(path), before.count(b"\n") + 1, len(before[line_start:].decode("utf-8")) + 1)
        raise ConfigError(
            [Problem(where, f"byte 0x{raw[exc.start]:02x} is not UTF-8 text", "save the file as UTF-8")]
        ) from None


def _limit(env: Mapping[str, str], name: str, default: int) -> int:
    text = env.get(name)
    if not text:
        return default
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value <= 0:
        raise SettingsError(f"{name}={text!r}: write a positive whole number")
    return value


def parse(text: str, name: str, env: Mapping[str, str], *, offline: bool = False) -> Desired:
    """Check and resolve fleet.yaml ``text``; raise ``ConfigError`` with every problem.

    ``offline``: everything but the environment (``validate --offline``, a
    pre-commit hook, a fork's pull request): ``${VAR}`` is checked by name,
    not value, and no ``RECONCILER_*`` setting stands in for the file's own.
    The secrets of such a ``Desired`` are placeholders: it is for checking,
    never for planning.
    """
    source = load(text, name, max_expanded=_limit(env, "RECONCILER_MAX_YAML_VALUES", MAX_EXPANDED))
    if source.data is None and not source.problems:
        source.problems.append(
            Problem(Location(name, 1, 1), "the file is empty", "start it with apiVersion: reconciler/v1")
        )
    if source.problems and source.data is None:
        raise ConfigError(source.problems)
    if not isinstance(source.data, dict):
        where = source.locate(())
        raise ConfigError([Problem(where, "the file must be a mapping of keys such as apiVersion, fleet, vehicles")])
    _read_names_as_written(source)
    report = schema.validate(source)
    builder = _Builder(source, {} if offline else env, report, offline=offline)
    desired = builder.build()
    problems = source.problems + report.problems + builder.problems
    if problems:
        raise ConfigError(problems)
    warnings = tuple(str(w).replace("\n    ", " — ") for w in sorted(builder.warnings, key=lambda w: w.location))
    return replace(desired, warnings=warnings, variables=tuple(sorted(builder.variables)))


def _read_names_as_written(source: Source) -> None:
    """Where the format wants text, take a plain scalar as written (``fleet: 1234``)."""
    data = source.data

    def fix(container: Any, key: Any, path: DataPath) -> None:
        if isinstance(container, list) and isinstance(key, int) and isinstance(container[key], (int, float, bool)):
            text = source.text(path)
            if text is not None:
                container[key] = text
            return
        if isinstance(container, dict) and isinstance(container.get(key), (int, float, bool)):
            text = source.text(path)
            if text is not None:
                container[key] = text

    fix(data, "fleet", ("fleet",))
    callbacks = data.get("callbacks")
    for label, body in callbacks.items() if isinstance(callbacks, dict) else ():
        webhook = body.get("webhook") if isinstance(body, dict) else None
        if not isinstance(webhook, dict):
            continue
        base = ("callbacks", label, "webhook")
        fix(webhook, "name", (*base, "name"))
        for section, _ in _ATTRIBUTE_SECTIONS:
            values = webhook.get(section)
            for key in list(values) if isinstance(values, dict) else ():
                fix(values, key, (*base, section, key))
    vehicles = data.get("vehicles")
    for vin, body in vehicles.items() if isinstance(vehicles, dict) else ():
        if isinstance(body, dict) and ("profile" in body or "callback" in body):
            fix(body, "profile", ("vehicles", vin, "profile"))
            fix(body, "callback", ("vehicles", vin, "callback"))
    groups = data.get("groups")
    for index, body in enumerate(groups if isinstance(groups, list) else ()):
        if not isinstance(body, dict):
            continue
        for name in ("name", "profile", "callback"):
            fix(body, name, ("groups", index, name))
        for selector in ("match", "exclude"):
            chosen = body.get(selector)
            if not isinstance(chosen, dict):
                continue
            path = ("groups", index, selector)
            fix(chosen, "vinPrefix", (*path, "vinPrefix"))
            for key in ("vinPrefix", "vins"):
                listed = chosen.get(key)
                for n in range(len(listed) if isinstance(listed, list) else 0):
                    fix(listed, n, (*path, key, n))


class _Builder:
    """Builds the model from schema-valid parts, adding the semantic problems (a ``reading.Reading``)."""

    def __init__(
        self, source: Source, env: Mapping[str, str], report: schema.SchemaReport, *, offline: bool = False
    ) -> None:
        self.source = source
        self.data: dict[str, Any] = source.data
        self.env = env
        self.offline = offline
        self.variables: set[str] = set()  # the ${VAR} names the file reads
        self.report = report
        self.problems: list[Problem] = []
        self.warnings: list[Problem] = []
        self.api_url = ""
        self._program_cache: dict[str, Any] = {}

    def problem(self, path: DataPath, message: str, hint: str = "", *, key: bool = False) -> None:
        where = schema.describe_path(path)
        self.problems.append(Problem(self.source.locate(path, key=key), f"{where}: {message}", hint))

    def warning(self, path: DataPath, message: str, hint: str = "", *, key: bool = False) -> None:
        where = schema.describe_path(path)
        self.warnings.append(Problem(self.source.locate(path, key=key), f"{where}: {message}", hint))

    def build(self) -> Desired:
        fleet = self.env.get("RECONCILER_FLEET") or self.data.get("fleet")
        if not fleet and not self.offline:  # offline, RECONCILER_FLEET may give it
            self.problem(("fleet",), "no fleet id", 'add fleet: "<your fleet id>" or set RECONCILER_FLEET')
        api_url = self.api_url = self._api_url()
        callbacks = self._callbacks()
        resolver = Resolver(self, self._profiles(), callbacks)
        groups = resolver.groups()
        vehicles = resolver.vehicles(groups)
        return Desired(
            fleet=str(fleet or ""),
            api_url=str(api_url),
            sandbox_vehicles=self._sandbox_vehicles(str(api_url)),
            callbacks=callbacks,
            vehicles=vehicles,
            prune=self.data.get("prune") is True,
            source=self.source.name,
            groups=groups,
            rollout=brakes.rollout(self),
            windows=brakes.windows(self),
            wakeups=brakes.wakeups(self),
            notify=brakes.notify(self),
            # What a rollout is recorded with: hashed only when one is declared (it costs a serialization of the file).
            config_hash=brakes.config_hash(self.data) if "rollout" in self.data else "",
        )

    def _sandbox_vehicles(self, api_url: str) -> int:
        """``api.vehicles``: only the sandbox makes up vehicles."""
        api = self.data.get("api")
        count = api.get("vehicles") if isinstance(api, dict) else None
        if count is None or self.report.is_bad("api", "vehicles"):
            return 0
        if api_url != SANDBOX:
            self.problem(
                ("api", "vehicles"),
                "a made-up fleet is the sandbox's: the API lists the fleet's own vehicles",
                "remove vehicles:, or write url: sandbox to try the file on a simulated fleet",
            )
            return 0
        return int(count)

    def _api_url(self) -> str:
        """api.url (or RECONCILER_API_URL): never plain http:// off this machine, which would bare the password."""
        api = self.data.get("api")
        url = api.get("url") if isinstance(api, dict) else None
        overridden = self.env.get("RECONCILER_API_URL")
        chosen = str(overridden or url or spec.DEFAULT_BASE_URL)
        if chosen == SANDBOX or self.report.is_bad("api", "url"):
            return chosen
        problem = urls.api_url_problem(chosen)
        if problem and overridden:
            raise ReconcilerError(f"RECONCILER_API_URL: {problem}")
        if problem:
            self.problem(("api", "url"), problem, "write https://… (plain http:// is accepted on loopback only)")
        return chosen

    # callbacks

    def _callbacks(self) -> dict[str, Callback]:
        raw = self.data.get("callbacks")
        if not isinstance(raw, dict) or self.report.broken("callbacks"):
            return {}
        built = {label: self._callback(label, body) for label, body in raw.items()}
        return {label: cb for label, cb in built.items() if cb is not None}

    def _callback(self, label: str, body: Any) -> Callback | None:
        """The callback, or None when it is malformed (its problems are already recorded)."""
        path = ("callbacks", label)
        if not isinstance(body, dict) or self.report.broken(*path):
            return None
        webhook = body.get("webhook")
        attributes = self._attributes(webhook, (*path, "webhook")) if isinstance(webhook, dict) else ()
        target = None
        if isinstance(webhook, dict) and not self.report.is_bad(*path, "webhook", "target"):
            target = self._value(webhook["target"], (*path, "webhook", "target"))
            self._check_target(target, webhook["target"], (*path, "webhook", "target"))
        retry = None
        if not self.report.is_bad(*path, "retryPolicy"):
            retry = self._retry_policy(body.get("retryPolicy"), (*path, "retryPolicy"))
        batch = body.get("batchNotify")
        batch_notify = None
        if isinstance(batch, dict) and not self.report.is_bad(*path, "batchNotify"):
            window = batch.get("timeWindow", spec.DEFAULT_BATCH_TIME_WINDOW)
            batch_notify = BatchNotify(batch["size"], window)
            per_vin = [a for a in attributes if a.kind == spec.ATTRIBUTE_QUERY and a.value == "$vin"]
            if per_vin:
                # The API's own example does this; it is valid, only batching stops.
                self.warning(
                    (*path, "webhook", "query", per_vin[0].key),
                    "with $vin as a query attribute the API posts each event alone: batchNotify will not batch",
                    "pass $vin as a header or body attribute to keep batches",
                )
        if self.report.is_bad(*path) or target is None or not isinstance(webhook, dict):
            return None
        order = {t: i for i, t in enumerate(spec.REMOTE_TYPES)}
        return Callback(
            label=label,
            target=target,
            name=webhook.get("name", label),
            remote_types=tuple(sorted(body["remoteTypes"], key=order.__getitem__)),
            attributes=attributes,
            retry_policy=retry,
            batch_notify=batch_notify,
            status=body.get("status", spec.CALLBACK_RUNNING),
        )

    def _check_target(self, target: Value, written: str, path: DataPath) -> None:
        """The API takes only https:// webhook targets (plain http:// to loopback with a local API)."""
        value = target.value if isinstance(target, Secret) else str(target)
        if self.offline and value.startswith(OFFLINE_VALUE):
            return  # the whole URL, or its scheme and host, comes from the environment: not known offline
        problem = urls.target_problem(value, local_api=self.api_url == SANDBOX or urls.is_loopback(self.api_url))
        if problem is None:
            return
        if isinstance(target, Secret):  # the value is secret: say where it came from, not what it is
            problem = f"the target {written} reads from the environment is not an https:// URL"
        self.problem(path, problem, "write https://host/path; the API refuses anything else")

    def _attributes(self, webhook: dict[str, Any], path: DataPath) -> tuple[Attribute, ...]:
        attributes = []
        for section, kind in _ATTRIBUTE_SECTIONS:
            seen: dict[str, str] = {}
            values = webhook.get(section)
            for key, value in values.items() if isinstance(values, dict) else ():
                where = (*path, section, key)
                if not isinstance(value, str):
                    continue
                folded = key.lower() if kind == spec.ATTRIBUTE_HEADER else key
                if folded in seen:
                    self.problem(
                        where,
                        f"header {key!r} repeats {seen[folded]!r}",
                        "header names ignore case; keep one of them",
                        key=True,
                    )
                seen[folded] = key
                attributes.append(Attribute(kind, key, self._value(value, where)))
        return tuple(sorted(attributes, key=lambda a: (a.kind, a.key)))

    def read_value(self, text: str, path: DataPath) -> str | Secret:
        """A literal, or a secret from ``${VAR}`` (set and not empty), with no API variables."""
        value = self._value(text, path, api_variables=False)
        return value if isinstance(value, Secret) else str(value)

    def _value(self, text: str, path: DataPath, *, api_variables: bool = True) -> Value:
        """A literal, an API variable ($vin …) checked by name, or a secret from ${VAR}; ``$$`` is a literal ``$``."""
        variable = _API_VARIABLE.match(text) if api_variables else None
        if variable and variable.group(1) not in spec.ATTRIBUTE_VARIABLES:
            known = ", ".join("$" + v for v in spec.ATTRIBUTE_VARIABLES)
            guess = schema.suggest(variable.group(1), list(spec.ATTRIBUTE_VARIABLES))
            hint = f"did you mean '${guess}'?" if guess else f"the API fills in {known}"
            self.problem(path, f"unknown API variable {text!r}", f"{hint} (write ${text} for the text {text})")
            return text
        if api_variables and text[2:] in spec.ATTRIBUTE_VARIABLES and text.startswith("$$"):
            self.problem(
                path,
                f"{text!r} is sent as {text[1:]!r}, which the API fills in with the {text[2:]} of each event",
                f"write {text[1:]} for that; the API has no way to carry the text {text[1:]} itself",
            )
            return text
        pieces = _pieces(text)
        names = [piece for kind, piece in pieces if kind == "env"]
        if not names:
            return "".join(piece for _, piece in pieces)
        self.variables.update(names)
        if self.offline:  # checked by name: the literal text around it still is checked, with a stand-in
            stand_in = "".join(piece if kind == "text" else OFFLINE_VALUE for kind, piece in pieces)
            return Secret(",".join(names), stand_in)
        missing = [n for n in names if n not in self.env]
        if missing:
            self.problem(
                path,
                f"environment variable {missing[0]} is not set",
                f"export {missing[0]}=… before running reconciler",
            )
            return text
        empty = [n for n in names if not self.env[n].strip()]
        if empty:
            # An unset CI secret arrives as "": an empty secret would authenticate anyone.
            self.problem(
                path,
                f"environment variable {empty[0]} is empty",
                f"set {empty[0]} to the secret's value; an empty secret is no secret",
            )
            return text
        value = "".join(self.env[piece] if kind == "env" else piece for kind, piece in pieces)
        return Secret(",".join(names), value)

    def _retry_policy(self, raw: dict[str, Any] | None, path: DataPath) -> RetryPolicy | None:
        if raw is None:
            return None
        policy = raw["policy"]
        number, delay = raw.get("retryNumber"), raw.get("retryDelay")
        if policy != "Bounded" and number is not None:
            self.problem(
                (*path, "retryNumber"),
                f"retryNumber applies only to policy Bounded, not {policy}",
                "remove retryNumber or write policy: Bounded",
                key=True,
            )
        if policy == "None" and delay is not None:
            self.problem(
                (*path, "retryDelay"),
                "retryDelay does not apply to policy None",
                "remove retryDelay or choose policy Bounded or Always",
                key=True,
            )
        if policy == "None":
            return RetryPolicy(policy)
        return RetryPolicy(
            policy,
            number or spec.DEFAULT_RETRY_NUMBER if policy == "Bounded" else None,
            delay or spec.DEFAULT_RETRY_DELAY,
        )

    # profiles and vehicles

    def _profiles(self) -> dict[str, VehicleConfig | None]:
        """Each declared profile; None for one that is malformed."""
        raw = self.data.get("profiles")
        if not isinstance(raw, dict) or self.report.broken("profiles"):
            return {}
        profiles: dict[str, VehicleConfig | None] = {}
        for name, body in raw.items():
            config = self.sections(body or {}, ("profiles", name), VehicleConfig())
            profiles[name] = None if self.report.is_bad("profiles", name) else config
        return profiles

    def sections(self, body: Any, path: DataPath, base: VehicleConfig) -> VehicleConfig:
        """``base`` with the sections ``body`` gives replacing its own (each part where ``written`` says)."""
        if not isinstance(body, dict):
            return base
        config = base
        for part in parts.PARTS:
            raw: Any = body
            for step in part.written:
                raw = raw.get(step) if isinstance(raw, dict) else None
            value = self._part(part, raw, (*path, *part.written)) if raw is not None else None
            if value is not None:
                config = part.into(config, value)
        return config

    def _part(self, part: parts.Part, raw: Any, path: DataPath) -> Any:
        """A part's value as the file writes it, by its kind; None when it is not of that shape."""
        if part.kind == parts.Kind.AIR_PROGRAMS and isinstance(raw, list):
            return self._programs(raw, path, _air_program)
        if part.kind == parts.Kind.CHARGE_PROGRAMS and isinstance(raw, list):
            return self._programs(raw, path, _charge_program)
        if part.kind == parts.Kind.PREFERENCES and isinstance(raw, dict):
            return ChargingPreferences(raw.get("level"), raw.get("type"))
        if part.kind == parts.Kind.FLAG and isinstance(raw, bool):
            return raw
        return None

    def _programs(self, raw: list[Any], path: DataPath, make: Any) -> Any:
        key = repr(raw)
        cached = self._program_cache.get(key)
        if cached is not None:
            return cached
        programs: dict[int, Any] = {}
        first_at: dict[int, int] = {}
        ok = not self.report.is_bad(*path)
        for index, entry in enumerate(raw):
            slot = entry.get("slot") if isinstance(entry, dict) else None
            if not isinstance(slot, int) or isinstance(slot, bool):
                continue
            if slot in first_at:
                first = self.source.locate((*path, first_at[slot]))
                self.problem(
                    (*path, index, "slot"),
                    f"slot {slot} is used twice (first at line {first.line})",
                    "each slot 1–4 may hold one program; pick a free slot",
                )
                ok = False
                continue
            first_at[slot] = index
            if self.report.is_bad(*path, index):
                continue
            try:
                programs[slot] = make(entry)
            except TimeFormatError as exc:
                self.problem((*path, index), str(exc), 'write "HH:MM" or PT7H30M, before 24:00')
                ok = False
            except _ProgramError as exc:
                self.problem((*path, index), str(exc), exc.hint)
                ok = False
        if ok:
            self._program_cache[key] = programs
        return programs


def _pieces(text: str) -> list[tuple[str, str]]:
    """``text`` as ("text", literal) and ("env", VARIABLE) pieces; ``$$`` is a literal ``$`` (DESIGN §10.2)."""
    pieces: list[tuple[str, str]] = []
    at = 0
    for match in _TOKEN.finditer(text):
        pieces.append(("text", text[at : match.start()]))
        pieces.append(("env", match.group(1)) if match.group(1) else ("text", "$"))
        at = match.end()
    pieces.append(("text", text[at:]))
    return [(kind, piece) for kind, piece in pieces if piece]


class _ProgramError(ValueError):
    def __init__(self, message: str, hint: str) -> None:
        super().__init__(message)
        self.hint = hint


def _air_program(entry: dict[str, Any]) -> AirProgram:
    return AirProgram(
        slot=entry["slot"],
        start=parse_time(entry["start"]),
        days=parse_days(entry["days"]),
        enabled=entry.get("enabled", True),
        recurrence=entry.get("recurrence", "Daily"),
    )


def _charge_program(entry: dict[str, Any]) -> ChargeProgram:
    start, end = parse_time(entry["start"]), parse_time(entry["end"])
    if start == end:
        raise _ProgramError(
            f"slot {entry['slot']}: the program ends when it starts",
            "give an end time different from the start (it may be past midnight)",
        )
    return ChargeProgram(entry["slot"], start, end, parse_days(entry["days"]), entry.get("enabled", True))
