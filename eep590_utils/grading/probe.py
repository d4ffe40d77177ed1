"""The kernel side of a probe: runs one request of a judge inside the student's kernel, answers as data.

A judge (grader side, :mod:`.judge`) asks the kernel to call a student's function on inputs it chose,
read a variable, keep an object, or evaluate an expression; each request is one execution of
``serve(<json>)`` in the kernel. The answer goes back as a ``display_data`` output of MIME type
:data:`.wire.MIME`: plain data only, or a handle to an object that stays in the kernel. Nothing in here
decides anything: a student who patches this module can only change what their own code answers.
"""
import json

from .wire import MIME, WireError, decode, dumps

_OBJECTS = []  # objects the judge holds handles to (results it could not receive as data)


def _namespace():
    import __main__

    return vars(__main__)


def _resolve(index, _type):
    if not 0 <= index < len(_OBJECTS):
        raise WireError(f"no object {index} in the kernel")
    return _OBJECTS[index]


def _target(spec):
    if isinstance(spec, dict) and "__remote__" in spec:
        return _resolve(spec["__remote__"], None)
    names = str(spec).split(".")
    namespace = _namespace()
    if names[0] not in namespace:
        raise NameError(f"name '{names[0]}' is not defined (run the cell that defines it)")
    value = namespace[names[0]]
    for name in names[1:]:
        value = getattr(value, name)
    return value


def _answer(payload):
    from IPython.display import display

    display({MIME: payload}, raw=True)


def serve_file(path):
    """``serve`` a request the grader left in a file (a large one: megabytes of code in a cell cost IPython
    seconds to transform and compile); the file is removed first."""
    import os

    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        with os.fdopen(fd, encoding="utf-8") as handle:
            request = handle.read()
        os.remove(path)
    except OSError as error:
        _answer(json.dumps({"error": {"ename": "ProbeError", "evalue": f"the request could not be read ({error})"}}))
        return
    serve(request)


def _call(function, call):
    """``function`` called with a request's wire-encoded ``args`` and ``kwargs``."""
    return function(*decode(call.get("args", []), _resolve), **decode(call.get("kwargs", {"__dict__": {}}), _resolve))


def serve(request):
    """Run one judge request (JSON text) and display its answer; never raises."""
    try:
        req = json.loads(request)
        op = req["op"]
        if op == "call":
            value = _call(_target(req["target"]), req)
        elif op == "many":  # one call per argument list, in one probe (a numerical gradient's evaluations)
            function, pick = _target(req["target"]), req.get("pick")
            results = (_call(function, call) for call in req["calls"])
            value = [result if pick is None else result[int(pick)] for result in results]
        elif op == "get":
            value = _target(req["target"])
        elif op == "put":
            value = decode(req["value"], _resolve)
            _OBJECTS.append(value)
            value = _OBJECTS[-1]
            _answer(json.dumps({"ok": {"__remote__": len(_OBJECTS) - 1, "type": type(value).__name__}}))
            return
        elif op == "eval":
            value = eval(req["code"], _namespace())  # the judge's code (instructor's), never a student's
        else:
            raise ValueError(f"unknown request {op!r}")
        _answer('{"ok": ' + dumps(value, _OBJECTS) + "}")  # what is not plain data stays here, as a handle
    except BaseException as error:  # the student's error is an answer too (KeyboardInterrupt included)
        if isinstance(error, SystemExit):
            error = RuntimeError(f"the code called exit({error.code})")
        _answer(json.dumps({"error": {"ename": type(error).__name__, "evalue": str(error)[:2000]}}))
