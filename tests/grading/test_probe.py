"""The probe's transport: a large request travels in a file the grader writes in the working copy (never
through a link) and the kernel reads and removes; a small one stays in the cell's code."""
import json
import os

import numpy as np

from eep590_utils.grading import probe, wire
from eep590_utils.grading.judge import LARGE_REQUEST, probe_code


def test_a_small_request_stays_in_the_code(tmp_path):
    code, path = probe_code({"op": "get", "target": "x"}, str(tmp_path))
    assert path is None and '"op": "get"' in code and not os.listdir(tmp_path)


def test_a_large_request_travels_in_a_file_the_kernel_reads_once(tmp_path, capsys, monkeypatch):
    big = np.arange(LARGE_REQUEST, dtype=np.float64)
    request = {"op": "call", "target": "total", "args": wire.encode([big]), "kwargs": wire.encode({})}
    code, path = probe_code(request, str(tmp_path))
    assert path and os.path.dirname(path) == str(tmp_path) and os.path.basename(path).startswith(".eep590-probe-")
    assert len(code) < 200 and "serve_file" in code and json.loads(open(path).read()) == json.loads(json.dumps(request))
    answers = []
    monkeypatch.setattr(probe, "_answer", answers.append)
    monkeypatch.setattr(probe, "_namespace", lambda: {"total": lambda a: float(a.sum())})
    probe.serve_file(path)
    assert json.loads(answers[0]) == {"ok": float(big.sum())} and not os.path.exists(path)
    probe.serve_file(path)  # gone: an error answer, never an exception in the kernel
    assert json.loads(answers[1])["error"]["ename"] == "ProbeError"


def test_request_files_have_unguessable_names_and_never_follow_links(tmp_path):
    request = {"op": "eval", "code": "1", "pad": "x" * (LARGE_REQUEST + 1)}
    names = {os.path.basename(probe_code(request, str(tmp_path))[1]) for _ in range(20)}
    assert len(names) == 20
    target = tmp_path / "victim.txt"
    target.write_text("keep")
    for name in names:  # a student who planted links at every name seen cannot redirect the next write
        os.remove(tmp_path / name)
        os.symlink(target, tmp_path / name)
    probe_code(request, str(tmp_path))
    assert target.read_text() == "keep"


def test_many_calls_travel_in_one_probe_and_the_first_error_answers(monkeypatch):
    answers = []
    monkeypatch.setattr(probe, "_answer", answers.append)
    monkeypatch.setattr(probe, "_namespace", lambda: {"f": lambda a, b: (a * b, "cache")})
    calls = [{"args": wire.encode([np.full(3, k), 2.0]), "kwargs": wire.encode({})} for k in range(4)]
    probe.serve(json.dumps({"op": "many", "target": "f", "calls": calls, "pick": 0}))
    got = wire.loads(json.dumps(json.loads(answers[0])["ok"]))
    assert [list(a) for a in got] == [[2.0 * k] * 3 for k in range(4)]
    calls.append({"args": wire.encode(["text", None]), "kwargs": wire.encode({})})
    probe.serve(json.dumps({"op": "many", "target": "f", "calls": calls, "pick": 0}))
    assert json.loads(answers[1])["error"]["ename"] == "TypeError"
