"""The daemons' log lines: JSON (or text) events, library records and a run's human lines included."""

from __future__ import annotations

import io
import json
import logging

from reconciler.service.logs import EventLog, Lines, capturing


def test_a_json_line_has_ts_level_event_and_the_context_keys_even_when_unknown() -> None:
    out = io.StringIO()
    log = EventLog(out, fleet=None, run="r1")
    log.warning("backoff", vehicle="VF3", until="2026-12-02T10:00:00+00:00")
    log.bind(fleet="F1")
    log.info("run", code=0)
    first, second = (json.loads(line) for line in out.getvalue().splitlines())
    assert first["ts"].endswith("Z") and first["level"] == "warning" and first["event"] == "backoff"
    assert first["fleet"] is None and first["run"] == "r1" and first["vehicle"] == "VF3"
    assert second["fleet"] == "F1" and second["code"] == 0


def test_a_text_line_is_for_people_and_quotes_what_has_spaces() -> None:
    out = io.StringIO()
    EventLog(out, "text", fleet="F1").error("run", error='the state "x" is down', code=1, empty="")
    line = out.getvalue().rstrip("\n")
    assert " ERROR   run fleet=F1 " in line
    assert 'error="the state \\"x\\" is down"' in line and "code=1" in line and 'empty=""' in line


def test_lines_become_note_events_however_the_text_is_cut() -> None:
    out = io.StringIO()
    stream = Lines(EventLog(out, fleet="F1"))
    stream.write("Outcomes come ")
    stream.write("from the receiver.\nAPI: 3 calls\n\n")
    stream.write("the rest")
    stream.flush()
    notes = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [n["message"] for n in notes] == ["Outcomes come from the receiver.", "API: 3 calls", "the rest"]
    assert {n["event"] for n in notes} == {"note"} and not stream.isatty()


def test_library_records_are_events_and_httpx_info_never_is() -> None:
    out = io.StringIO()
    log = EventLog(out, fleet="F1")
    with capturing(log):
        logging.getLogger("uvicorn.error").warning("Invalid HTTP request received.")
        logging.getLogger("reconciler.webhook").error("x", extra={"event": "store_failed", "fields": {"events": 3}})
        logging.getLogger("httpx").info("HTTP Request: GET https://api/x?client_id=secret")
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [(x["event"], x["level"]) for x in lines] == [("uvicorn.error", "warning"), ("store_failed", "error")]
    assert lines[1]["events"] == 3 and "secret" not in out.getvalue()
    assert logging.getLogger("uvicorn.error").handlers == []  # put back as it was


def test_the_http_trace_is_an_event_only_when_it_was_turned_on() -> None:
    from reconciler.commands.shell import trace_http

    out, err = io.StringIO(), io.StringIO()
    log = EventLog(out, fleet="F1")
    with capturing(log):
        logging.getLogger("reconciler.http").debug("GET https://api/x?client_id=***: 200 in 3 ms")
    assert out.getvalue() == ""  # off: nothing
    undo = trace_http(err)
    try:
        with capturing(log):
            logging.getLogger("reconciler.http").debug("GET https://api/x?client_id=***: 200 in 3 ms")
    finally:
        undo()
    [line] = [json.loads(x) for x in out.getvalue().splitlines()]
    assert line["event"] == "http" and line["level"] == "debug" and err.getvalue() == ""
