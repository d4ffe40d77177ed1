"""Benchmark: ``eep590 similarity`` on synthetic classes of 100, 250 and 500 students x 30 answer cells.

Each synthetic course has 3 notebooks of 10 solution cells (9 code, 1 written answer), a starter in the
release and a reference in the source. Every student writes each answer from random statements of a few shapes
(so answers overlap in idioms, as real ones do); 15% hand in the reference, 5% leave it blank,
and 2% copy another student's answer with names changed and two statements swapped. It prints, per class
size, the seconds to read, fingerprint and score every pair (``analyse``) and to write the page with its
30 histograms (``write_report``), and how many pairs were scored and listed.

    python benchmarks/similarity.py [--students 100 250 500] [--workers 2]
"""
import argparse
import json
import random
import shutil
import tempfile
import time
from pathlib import Path

from eep590_utils.grading import similarity
from eep590_utils.grading.course import Course

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS, CELLS = 3, 10
STUB = "    # YOUR CODE HERE\n    raise NotImplementedError()\n"
FUNCS = ["np.sum", "np.mean", "np.max", "np.abs", "np.sqrt", "np.exp", "np.log1p", "np.tanh", "torch.relu", "len"]
OPS = ["+", "-", "*", "/", "@", "**", "//", "%"]
SHAPES = [  # statement shapes; the random functions, operators and constants make every student's code differ
    "{a} = {f}({x} {o} {w}[{n}], axis={m})", "{a} = {x}.reshape({n}, -1) {o} {w}.T",
    "for {i} in range({x}.shape[{m}]):\n        {a}[{i}] = {f}({w}[{i}] {o} {n})",
    "if {a}.ndim > {n}:\n        {a} = {f}({a} {o} {x})", "{a} = [{f}({x}[{i}]) {o} {n} for {i} in range(len({w}))]",
    "{a}, {b} = {x}.shape[:{n}], {f}({w})", "{a} = {b} if {x} is None else {x} {o} {n}",
    "while {i} < {n}:\n        {a} += {f}({w}[{i}])\n        {i} += {m}", "{a} = dict(zip({x}, {f}({w}) {o} {n}))",
    "assert {a}.shape == {x}.shape, '{b} mismatch {n}'",
]
WORDS = ("the gradient of the loss flows back through each layer and the chain rule multiplies the local "
         "derivatives so a small weight makes the signal vanish while a large one makes it explode unless "
         "normalisation or residual connections keep the scale steady across depth").split()
NAMES = ["out", "res", "acc", "tmp", "val", "y", "z", "h", "buf", "tot", "p", "q", "mat", "vec", "s", "t"]


def statement(rng):
    """One random statement, with names, a function, an operator and constants of the student's own."""
    a, b, x, w, i = rng.sample(NAMES, 5)
    return rng.choice(SHAPES).format(a=a, b=b, x=x, w=w, i=i, f=rng.choice(FUNCS), o=rng.choice(OPS),
                                     n=rng.randint(0, 9), m=rng.randint(0, 3))


def code_answer(rng):
    """A function body of 4-9 random statements."""
    return "".join(f"    {statement(rng)}\n" for _ in range(rng.randint(4, 9))) + "    return out\n"


def text_answer(rng):
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(15, 40))).capitalize() + "."


def copy_answer(rng, text):
    """A copy with names changed and two statement lines swapped."""
    renamed = {n: f"{n}_{rng.randint(0, 9)}" for n in NAMES}
    lines = [" ".join(renamed.get(t, t) for t in line.split(" ")) for line in text.splitlines()]
    body = [k for k, line in enumerate(lines) if line.startswith("    ") and "\n" not in line and k < len(lines) - 1]
    if len(body) >= 2:
        j, k = rng.sample(body, 2)
        lines[j], lines[k] = lines[k], lines[j]
    return "\n".join(lines) + "\n"


def cell(kind, text, grade_id):
    meta = {"nbgrader": {"schema_version": 3, "grade_id": grade_id, "solution": True, "grade": kind == "markdown",
                         "locked": False, **({"points": 1} if kind == "markdown" else {})}}
    return {"cell_type": kind, "metadata": meta, "source": text,
            **({"execution_count": None, "outputs": []} if kind == "code" else {})}


def notebook(cells):
    return {"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}


def make_course(root, students, seed=0):
    """A course at ``root`` with ``students`` synthetic submissions of hw1 (3 notebooks x 10 cells)."""
    rng = random.Random(seed)
    shutil.copy(REPO / "nbgrader_config.py", root / "nbgrader_config.py")
    names = [f"s{k:03d}" for k in range(students)]
    for nb in range(NOTEBOOKS):
        heads = [f"def q{nb}_{c}(x, w, n=1):\n    \"\"\"Question {c} of notebook {nb}.\"\"\"\n" for c in range(CELLS)]
        kinds = ["code"] * (CELLS - 1) + ["markdown"]
        reference = [heads[c] + code_answer(rng) if kinds[c] == "code" else text_answer(rng) for c in range(CELLS)]
        starter = [heads[c] + STUB if kinds[c] == "code" else "YOUR ANSWER HERE" for c in range(CELLS)]
        for kind_dir, texts in (("source", reference), ("release", starter)):
            folder = root / kind_dir / "hw1"
            folder.mkdir(parents=True, exist_ok=True)
            cells = [cell(kinds[c], texts[c], f"q{nb}_{c}") for c in range(CELLS)]
            (folder / f"nb{nb}.ipynb").write_text(json.dumps(notebook(cells)))
        answers = {}
        for student in names:
            texts = []
            for c in range(CELLS):
                roll = rng.random()
                if roll < 0.15:
                    texts.append(reference[c])
                elif roll < 0.20:
                    texts.append(starter[c])
                elif roll < 0.22 and answers:
                    texts.append(copy_answer(rng, rng.choice(list(answers.values()))[c]))
                else:
                    texts.append(heads[c] + code_answer(rng) if kinds[c] == "code" else text_answer(rng))
            answers[student] = texts
            folder = root / "submitted" / student / "hw1"
            folder.mkdir(parents=True, exist_ok=True)
            cells = [cell(kinds[c], texts[c], f"q{nb}_{c}") for c in range(CELLS)]
            (folder / f"nb{nb}.ipynb").write_text(json.dumps(notebook(cells)))
    return Course(root)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--students", type=int, nargs="+", default=[100, 250, 500])
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    print("| students | cells | pairs scored | pairs listed | analyse (s) | page + 30 PNGs (s) | total (s) |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for students in args.students:
        with tempfile.TemporaryDirectory() as tmp:
            course = make_course(Path(tmp), students)
            start = time.perf_counter()
            results, problems = similarity.analyse(course, "hw1", workers=args.workers)
            analysed = time.perf_counter()
            similarity.write_report(course, "hw1", results=results, problems=problems)
            written = time.perf_counter()
            scored = sum(len(r.scores) for r in results)
            listed = sum(len(r.pairs) for r in results)
            print(f"| {students} | {NOTEBOOKS * CELLS} | {scored:,} | {listed:,} | {analysed - start:.1f} | "
                  f"{written - analysed:.1f} | {written - start:.1f} |", flush=True)


if __name__ == "__main__":
    main()
