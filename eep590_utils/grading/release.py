"""``eep590 release``: regenerate ``release/<hw>`` from ``source/<hw>`` with nbgrader, then prove
that nothing the students must not see reached it."""
import nbformat

from . import cells
from .course import CourseError

MIN_LEAK_LINE = 16  # shorter lines ("return out", "pass") are too common to prove a leak


class LeakError(CourseError):
    """A release notebook contains solution code, hidden tests or a mark scheme."""


def markers(config=None):
    """Text that only instructor notebooks contain: every region delimiter nbgrader clears by."""
    return tuple(text for region in cells.regions(config) for text in (region.begin, region.end))


def secret_lines(source_nb, config=None):
    """``{kind: {line, ...}}``: the stripped lines inside solution, hidden-test and mark-scheme regions
    that appear nowhere else in the notebook (``import torch`` in a hidden test is no secret)."""
    found = {region.kind: set() for region in cells.regions(config)}
    found["model answer"] = set()
    public = set()
    for cell in source_nb.cells:
        if cell.cell_type == "markdown" and cells.is_solution(cell):  # a written answer's model answer: all secret
            found["model answer"].update(line.strip() for line in cell.source.splitlines()
                                         if len(line.strip()) >= MIN_LEAK_LINE)
            continue
        lines = cells.region_lines(cell.source, config)
        public.update(lines.pop("public"))
        for kind, inside in lines.items():
            found[kind].update(line for line in inside if len(line) >= MIN_LEAK_LINE and not line.startswith("#"))
    return {kind: lines - public for kind, lines in found.items()}


def _all_text(cell):
    """A cell's source and every text it shows (outputs included)."""
    texts = [cell.source]
    for output in cell.get("outputs", []):
        texts.append(output.get("text", ""))
        texts += [str(v) for v in output.get("data", {}).values()]
        texts += output.get("traceback", [])
    return "\n".join(texts)


def find_leaks(release_nb, source_nb, config=None):
    """Descriptions of everything secret in ``release_nb`` (empty when it is clean)."""
    secrets = secret_lines(source_nb, config)
    leaks = []
    for index, cell in enumerate(release_nb.cells):
        text = _all_text(cell)
        if cell.get("outputs"):
            leaks.append(f"cell {index} has stored outputs")
        for marker in markers(config):
            if marker in text:
                leaks.append(f"cell {index} contains the marker {marker!r}")
        if cell.cell_type == "markdown" and not cells.is_solution(cell):
            continue  # instructions may state a formula the solution also uses; markers are checked above
        lines = {line.strip() for line in text.splitlines()}
        for kind, secret in secrets.items():
            for line in sorted(secret & lines):
                leaks.append(f"cell {index} contains a {kind} line: {line[:60]!r}")
    return leaks


def check_release(course, assignment):
    """Raise :class:`LeakError` naming every leak in ``release/<assignment>``; return the notebooks checked."""
    release_dir = course.path("release", assignment=assignment)
    problems, checked = [], []
    for name in course.notebooks(assignment):
        path = release_dir / f"{name}.ipynb"
        if not path.is_file():
            problems.append(f"{path} is missing")
            continue
        source_nb = nbformat.read(course.path("source", assignment=assignment) / f"{name}.ipynb", as_version=4)
        problems += [f"{path.name}: {leak}" for leak in find_leaks(nbformat.read(path, as_version=4), source_nb,
                                                                course.config)]
        checked.append(path)
    problems += judge_leaks(course, assignment)
    if problems:
        raise LeakError(f"release/{assignment} is not safe to hand out:\n  " + "\n  ".join(problems))
    return checked


def judge_leaks(course, assignment):
    """The judges (``source/<hw>/judges/``) must not reach the release: no folder, no copy of a file."""
    from .judge import JUDGES_FOLDER

    release_dir = course.path("release", assignment=assignment)
    judges_dir = course.path("source", assignment=assignment) / JUDGES_FOLDER
    problems = [f"{p.relative_to(release_dir)} is in the release" for p in release_dir.rglob(JUDGES_FOLDER)]
    texts = {p.read_bytes() for p in judges_dir.glob("*.py")} if judges_dir.is_dir() else set()
    for path in release_dir.rglob("*"):
        if path.is_file() and not path.is_symlink() and path.stat().st_size < 10**7 and path.read_bytes() in texts:
            problems.append(f"{path.relative_to(release_dir)} is a copy of a judges file")
    return problems


def release(course, assignment):
    """Generate ``release/<assignment>`` (nbgrader ``generate_assignment``, forced) and check it for leaks."""
    if assignment not in course.assignments():
        raise CourseError(f"no assignment {assignment!r} in {course.path('source')} "
                          f"(assignments: {', '.join(course.assignments()) or 'none'})")
    result = course.api.generate_assignment(assignment, force=True, create=True)
    if not result["success"]:
        raise CourseError(f"nbgrader generate_assignment {assignment} failed:\n{result.get('error') or result.get('log')}")
    return check_release(course, assignment)
