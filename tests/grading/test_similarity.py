"""``eep590 similarity``: the sample class plus two students who share one answer (names changed,
statements reordered) yields exactly that pair; blank, minimal and reference answers are never paired;
broken notebooks are skipped and said so; student text is escaped."""
import copy
import csv
import json
import random
import shutil
from pathlib import Path

import pytest

from eep590_utils.grading import similarity
from eep590_utils.grading.course import Course
from eep590_utils.grading.similarity import Question, compare_question

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "samples" / "hw1"
SHARED_ID = "batchnorm_forward"

# One answer written in a style of its own (not the reference's), and the same answer with every name
# changed and independent statements moved around, as a student hiding a copy would.
TRAIN_A = '''\
        sample_mean = np.sum(x, axis=0) / N
        centered = x - sample_mean
        sample_var = np.sum(centered ** 2, axis=0) / N
        inv_std = 1.0 / np.sqrt(sample_var + eps)
        normalized = centered * inv_std
        out = normalized * gamma + beta
        running_mean = running_mean * momentum + sample_mean * (1.0 - momentum)
        running_var = running_var * momentum + sample_var * (1.0 - momentum)
        cache = {"xn": normalized, "g": gamma, "istd": inv_std, "xc": centered, "n": N}
'''
TEST_A = '''\
        normalized = (x - running_mean) / np.sqrt(running_var + eps)
        out = normalized * gamma + beta
'''
TRAIN_B = '''\
        avg = np.sum(x, axis=0) / N
        diff = x - avg
        variance = np.sum(diff ** 2, axis=0) / N
        running_var = running_var * momentum + variance * (1.0 - momentum)
        running_mean = running_mean * momentum + avg * (1.0 - momentum)
        scale = 1.0 / np.sqrt(variance + eps)
        xnorm = diff * scale
        cache = {"xn": xnorm, "g": gamma, "istd": scale, "xc": diff, "n": N}
        out = xnorm * gamma + beta
'''
TEST_B = '''\
        z = (x - running_mean) / np.sqrt(running_var + eps)
        out = z * gamma + beta
'''


VOCABULARY = ("layer feature gradient depth width kernel stride filter pixel channel signal noise weight bias loss "
              "batch epoch momentum variance mean scale shift norm dropout ensemble network tensor image edge "
              "texture motif object neuron unit output input hidden deep shallow wide narrow small large fast slow "
              "stable unstable simple complex linear nonlinear sparse dense local global early late high low").split()


def _own_words(seed):
    """A written answer of a student's own: words at random, so no two students share a phrase."""
    rng = random.Random(seed)
    return " ".join(rng.choice(VOCABULARY) for _ in range(40)).capitalize() + "."


def _give_own_written_answers(folder, student):
    """The samples all hand in the same canned written answer (which this report would rightly list as
    identical pairs): give each student answers of their own, as in a real class."""
    for path in folder.glob("*.ipynb"):
        try:
            nb = json.loads(path.read_text())
        except ValueError:
            continue                                   # broken's corrupt notebook stays corrupt
        for cell in nb["cells"]:
            meta = cell.get("metadata", {}).get("nbgrader", {})
            text = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
            if cell["cell_type"] == "markdown" and meta.get("solution") and text.strip() != "YOUR ANSWER HERE":
                cell["source"] = _own_words(f"{student}/{meta['grade_id']}")
        path.write_text(json.dumps(nb))


def _cell_by_id(nb, grade_id):
    return next(c for c in nb["cells"] if c.get("metadata", {}).get("nbgrader", {}).get("grade_id") == grade_id)


def _with_answer(nb, train, test):
    """``nb`` with the train and test branches of batchnorm_forward replaced."""
    nb = copy.deepcopy(nb)
    cell = _cell_by_id(nb, SHARED_ID)
    source = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
    start = source.index('    if mode == "train":\n')
    end = source.index("    else:\n", start)
    cell["source"] = (source[:start] + '    if mode == "train":\n' + train + '    elif mode == "test":\n' + test
                      + source[end:])
    return nb


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    """A course with hw1's source and release, the sample class, the two students sharing an answer, and
    one student whose metadata is broken (nbgrader metadata a string, a grade_id a list)."""
    root = tmp_path_factory.mktemp("similarity")
    shutil.copy(REPO / "nbgrader_config.py", root / "nbgrader_config.py")
    for kind in ("source", "release"):
        shutil.copytree(REPO / kind / "hw1", root / kind / "hw1")
    submitted = root / "submitted"
    for student in SAMPLES.iterdir():
        if student.name == "hostile":  # built from partial_dropout's wrong dropout: a true shared answer
            continue
        shutil.copytree(student, submitted / student.name / "hw1")
    perfect = json.loads((SAMPLES / "perfect" / "batchnorm_dropout.ipynb").read_text())
    for name, (train, test) in {"twin_a": (TRAIN_A, TEST_A), "twin_b": (TRAIN_B, TEST_B)}.items():
        shutil.copytree(SAMPLES / "perfect", submitted / name / "hw1")
        (submitted / name / "hw1" / "batchnorm_dropout.ipynb").write_text(json.dumps(_with_answer(perfect, train, test)))
    shutil.copytree(SAMPLES / "perfect", submitted / "mangled" / "hw1")
    mangled = _with_answer(perfect, TRAIN_A, TEST_A)   # the shared answer, but in cells that cannot be read
    _cell_by_id(mangled, SHARED_ID)["metadata"]["nbgrader"]["grade_id"] = [SHARED_ID]
    _cell_by_id(mangled, "dropout_forward")["metadata"]["nbgrader"] = "solution"
    (submitted / "mangled" / "hw1" / "batchnorm_dropout.ipynb").write_text(json.dumps(mangled))
    for folder in submitted.iterdir():
        _give_own_written_answers(folder / "hw1", folder.name)
    return Course(root)


@pytest.fixture(scope="module")
def analysed(course):
    return similarity.analyse(course, "hw1", workers=1)


def test_the_shared_answer_is_the_top_pair_and_the_only_one(analysed):
    results, _ = analysed
    by_id = {r.question.grade_id: r for r in results}
    top = by_id[SHARED_ID].pairs
    assert top, f"no pair found for {SHARED_ID}: scores {sorted(by_id[SHARED_ID].scores)}"
    assert {top[0]["student_a"], top[0]["student_b"]} == {"twin_a", "twin_b"}
    assert top[0]["score"] >= 0.6
    others = [(r.question.grade_id, p["student_a"], p["student_b"], p["score"])
              for r in results for p in r.pairs if r is not by_id[SHARED_ID] or p is not top[0]]
    assert not others, f"pairs above the threshold that share nothing: {others}"


def test_blank_and_reference_answers_are_never_paired(analysed):
    results, _ = analysed
    for result in results:
        assert "blank" not in result.compared + result.reference, result.question.grade_id
        paired = {p["student_a"] for p in result.pairs} | {p["student_b"] for p in result.pairs}
        assert not paired & set(result.blank)
        assert not paired & set(result.reference)
    by_id = {r.question.grade_id: r for r in results}
    assert "blank" in by_id["batchnorm_backward"].blank
    assert "perfect" in by_id["batchnorm_backward"].reference
    assert "twin_a" in by_id["batchnorm_backward"].reference   # the twins copied the rest from perfect


def test_identical_blank_and_minimal_answers_are_never_reported():
    question = Question("nb", "q", "code", starter="def f(x):\n    # YOUR CODE HERE\n    raise NotImplementedError()\n",
                        reference="def f(x):\n    ### BEGIN SOLUTION\n    return sorted(set(x), key=abs)[::-1]\n"
                                  "    ### END SOLUTION\n")
    answers = {f"s{i}": "def f(x):\n    # YOUR CODE HERE\n    raise NotImplementedError()\n" for i in range(5)}
    answers |= {f"m{i}": "def f(x):\n    return x  # nothing yet\n" for i in range(5)}
    answers |= {f"e{i}": "" for i in range(3)}
    result = compare_question(question, answers, threshold=0.0)
    assert result.pairs == [] and result.compared == []
    assert sorted(result.blank) == sorted(answers)


def test_written_answers_are_compared_without_case_punctuation_or_whitespace():
    question = Question("nb", "why", "markdown", starter="YOUR ANSWER HERE", reference="Because of the chain rule.")
    shared = "Batch normalisation keeps each layer's inputs centred and scaled, so larger learning rates stay stable"
    answers = {"a": shared, "b": "  " + shared.upper().replace(",", " ;") + "!!\n",
               "c": "Dropout averages an ensemble of thinned networks, which reduces co-adaptation of units.",
               "d": "YOUR ANSWER HERE", "e": "YOUR ANSWER HERE"}
    result = compare_question(question, answers)
    assert [(p["student_a"], p["student_b"]) for p in result.pairs] == [("a", "b")]
    assert sorted(result.blank) == ["d", "e"]
    assert "<mark>" in result.pairs[0]["html_a"]


def test_student_text_is_escaped():
    question = Question("nb", "q", "code", starter="# YOUR CODE HERE\nraise NotImplementedError()\n", reference="y = 1\n")
    code = "s = '<script>alert(1)</script>'\nfor i in range(10):\n    total = total + i * i - len(s)\n"
    result = compare_question(question, {"a": code, "b": code.replace("total", "acc")})
    assert len(result.pairs) == 1
    assert "<script>" not in result.pairs[0]["html_a"] and "&lt;script&gt;" in result.pairs[0]["html_a"]


def test_shared_fingerprints_counts_pairs_from_the_index():
    shared, sizes = similarity.shared_fingerprints([{1, 2, 3}, {2, 3, 4}, {9}, {1, 2, 3, 4}], chunk=2)
    assert sizes.tolist() == [3, 3, 1, 4]
    assert shared[0, 1] == 2 and shared[0, 3] == 3 and shared[1, 3] == 3 and shared[2].sum() == 0
    shared, sizes = similarity.shared_fingerprints([{1, 2}, {1, 2}, {1, 3}], common_limit=2)
    assert sizes.tolist() == [1, 1, 1] and shared[0, 1] == 1 and shared[0, 2] == 0   # 1 is in all three: ignored


@pytest.mark.slow
def test_page_csv_and_histograms(course, analysed):
    results, problems = analysed
    path = similarity.write_report(course, "hw1", results=results, problems=problems)
    assert path == course.reports_dir / "hw1" / "similarity.html"
    page = path.read_text()
    assert "not misconduct" in page
    assert "broken/cross_correlation.ipynb: unreadable" in page
    assert "mangled/batchnorm_dropout.ipynb" in page and "metadata.nbgrader is not a dictionary" in page
    assert "grade_id is list" in page
    assert "<mark>" in page and "twin_a" in page
    rows = list(csv.DictReader((path.parent / "similarity.csv").open()))
    assert [(r["grade_id"], {r["student_a"], r["student_b"]}) for r in rows] == [(SHARED_ID, {"twin_a", "twin_b"})]
    images = sorted((path.parent / "similarity").glob("*.png"))
    assert len(images) == len(results) and all(p.stat().st_size > 1000 for p in images)


@pytest.mark.slow
def test_cli_writes_the_page(course, capsys):
    from eep590_utils.grading.cli import main

    assert main(["--course", str(course.root), "similarity", "hw1", "--workers", "2"]) == 0
    out = capsys.readouterr().out
    assert str(course.reports_dir / "hw1" / "similarity.html") in out
