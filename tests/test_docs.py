"""The reader-facing docs against the repository: the README stays short, the docs a reviewer reads
carry no lab-notebook codes, MODELS.md's table of documented settings equals config.yaml, the
links into docs/FIDELITY.md point at headings that exist, every wall time README.md and USAGE.md
state is a figure of docs/BENCHMARKS.md's "Headline timings", every link and repository path in the
docs resolves, and every cited doc section exists."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
USAGE = ROOT / "docs" / "USAGE.md"
MODELS = ROOT / "docs" / "MODELS.md"
FIDELITY = ROOT / "docs" / "FIDELITY.md"
FIDELITY_LOG = ROOT / "docs" / "evidence" / "fidelity-log.md"   # the full chronological log
CONFIG = ROOT / "config.yaml"
READER_DOCS = [README, USAGE, MODELS]

README_MAX_LINES = 150
TABLE_HEADING = "### The documented settings, as configured"
ABSENT = "(absent)"
# A lab code: a capital letter, a number, optional lower-case suffixes (E10, X6b, X0s1, S11p).
CODE = re.compile(r"\b([A-Z])(\d+)((?:[a-z]+\d*)*)\b")
HARDWARE = re.compile(r"^[AHLTV]\d{2,4}$")   # GPU names (H100, H200, A100) are not codes
ISSUE = re.compile(r"\bissues?\s+#?\d+", re.IGNORECASE)
ORDINAL_RUN = re.compile(r"\b(second|third|fourth|fifth|sixth|seventh|eighth|ninth)\s+(repro\s+)?run\b",
                         re.IGNORECASE)
_MISSING = object()


def _read(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def _headings(text: str) -> list[str]:
    in_fence = False
    out = []
    for line in text.splitlines():
        if line.startswith("```"):
            in_fence = not in_fence
        elif not in_fence and re.match(r"#{1,6} ", line):
            out.append(line.lstrip("#").strip())
    return out


def fidelity_codes() -> set[str]:
    """Every code that docs/FIDELITY.md and its log (docs/evidence/fidelity-log.md) use, for the
    letters their headings use as codes."""
    text = _read(FIDELITY) + "\n" + _read(FIDELITY_LOG)
    letters = set()
    for heading in _headings(text):
        for match in CODE.finditer(heading):
            if not HARDWARE.match(match.group(0)):
                letters.add(match.group(1))
    codes = set()
    for match in CODE.finditer(text):
        if match.group(1) in letters and not HARDWARE.match(match.group(0)):
            codes.add(match.group(0))
    for first, last in re.findall(r"\b([A-Z]\d+)-([A-Z]\d+)\b", text):   # ranges: E1-E3
        if first[0] == last[0] and first[0] in letters:
            codes.update(f"{first[0]}{n}" for n in range(int(first[1:]), int(last[1:]) + 1))
    return codes


def github_anchor(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, each space a hyphen."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def fidelity_anchors() -> set[str]:
    return heading_anchors(FIDELITY)


def documented_settings() -> list[tuple[str, str]]:
    """The `| key | value |` rows of MODELS.md's table of documented settings."""
    text = _read(MODELS)
    assert TABLE_HEADING in text, f"docs/MODELS.md lost its table heading {TABLE_HEADING!r}"
    section = text.split(TABLE_HEADING, 1)[1]
    section = re.split(r"\n#{1,6} ", section, maxsplit=1)[0]
    rows = []
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")] if line.startswith("|") else []
        if len(cells) != 2 or cells[0] in ("key", "") or set(cells[0]) <= set("-: "):
            continue
        rows.append((cells[0].strip("`"), cells[1].strip("`")))
    return rows


def resolve(config: dict, dotted: str):
    node = config
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return _MISSING
        node = node[part]
    return node


def _config() -> dict:
    return yaml.safe_load(_read(CONFIG))


def test_readme_is_short():
    lines = _read(README).splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines (at most {README_MAX_LINES})"


def test_fidelity_codes_are_found():
    codes = fidelity_codes()
    assert len(codes) >= 10, f"too few codes collected from docs/FIDELITY.md: {sorted(codes)}"
    assert not any(HARDWARE.match(c) for c in codes)


@pytest.mark.parametrize("path", READER_DOCS, ids=lambda p: p.name)
def test_reader_docs_carry_no_lab_codes(path):
    codes = fidelity_codes()
    text = _read(path)
    found = sorted({m.group(0) for m in CODE.finditer(text)} & codes)
    assert not found, f"{path.relative_to(ROOT)} names experiment codes {found}: say what was done instead"
    issues = [m.group(0) for m in ISSUE.finditer(text)]
    assert not issues, f"{path.relative_to(ROOT)} cites issue numbers: {issues}"
    ordinals = [m.group(0) for m in ORDINAL_RUN.finditer(text)]
    assert not ordinals, f"{path.relative_to(ROOT)} narrates run history: {ordinals}"


def test_lab_code_check_can_fail():
    codes = fidelity_codes()
    sample = f"as measured in {sorted(codes)[0]}, issue 10"
    assert {m.group(0) for m in CODE.finditer(sample)} & codes
    assert ISSUE.search(sample)


def test_documented_settings_table_is_not_empty():
    rows = documented_settings()
    assert len(rows) >= 5, f"docs/MODELS.md's table of documented settings has {len(rows)} rows"
    keys = [key for key, _ in rows]
    assert len(keys) == len(set(keys)), "a key appears twice in docs/MODELS.md's table"


@pytest.mark.parametrize("key,documented", documented_settings())
def test_documented_setting_equals_config(key, documented):
    actual = resolve(_config(), key)
    if documented == ABSENT:
        assert actual is _MISSING, f"docs/MODELS.md says {key} is not set; config.yaml sets {actual!r}"
        return
    assert actual is not _MISSING, f"docs/MODELS.md documents {key}, which config.yaml does not set"
    assert yaml.safe_load(documented) == actual, (
        f"docs/MODELS.md documents {key} = {documented}; config.yaml has {actual!r}")


def test_inline_settings_in_models_equal_config():
    """A `dotted.key: value` written inline in MODELS.md's prose must be config.yaml's value too."""
    config = _config()
    inline = re.findall(r"`((?:model|train|scales|data|eval|classifier|precision|resources)\.[\w.]+):\s*([^`]+)`",
                        _read(MODELS))
    assert inline, "docs/MODELS.md names no setting inline"
    for key, value in inline:
        actual = resolve(config, key)
        assert actual is not _MISSING, f"docs/MODELS.md names {key}, which config.yaml does not set"
        assert yaml.safe_load(value) == actual, f"docs/MODELS.md says {key}: {value}; config.yaml has {actual!r}"


def test_setting_check_can_fail():
    config = {"model": {"celeba": {"logvar_bound": 10.0}}}
    assert resolve(config, "model.celeba.logvar_bound") == yaml.safe_load("10.0")
    assert resolve(config, "model.celeba.logvar_bound") != yaml.safe_load("5.0")
    assert resolve(config, "model.dsprites.logvar_bound") is _MISSING


@pytest.mark.parametrize("path", READER_DOCS + [FIDELITY], ids=lambda p: p.name)
def test_links_into_fidelity_point_at_headings(path):
    anchors = fidelity_anchors()
    text = _read(path)
    own = r"#" if path == FIDELITY else r"(?:docs/)?FIDELITY\.md#"
    links = re.findall(r"\]\(" + own + r"([^)\s]+)\)", text)
    broken = sorted(set(link for link in links if link not in anchors))
    assert not broken, f"{path.relative_to(ROOT)} links to headings docs/FIDELITY.md does not have: {broken}"


def test_github_anchor():
    assert github_anchor("CelebA at paper width: the first steps (issue 11, item 0)") == \
        "celeba-at-paper-width-the-first-steps-issue-11-item-0"
    assert github_anchor("X1: a larger divergence weight for dSprites (beta 1 -> 2), mmJSD") == \
        "x1-a-larger-divergence-weight-for-dsprites-beta-1---2-mmjsd"


@pytest.mark.parametrize("path", READER_DOCS + [ROOT / "results" / "README.md", ROOT / "docs" / "BENCHMARKS.md"],
                         ids=lambda p: p.name)
def test_no_stale_gpu_results_path(path):
    assert "results/gpu" not in _read(path), f"{path.relative_to(ROOT)} points at results/gpu (now docs/evidence/gpu)"
    assert (ROOT / "docs" / "evidence" / "gpu").is_dir()


# The README's reproducibility table: each dSprites row's repro cell must be the committed
# results/repro/table1.csv, mean (and std where shown) of mmJSD / mmPoE, with its seed count.
REPRO_TABLE = ROOT / "results" / "repro" / "table1.csv"
README_ROW = re.compile(r"^\| (1[ab]) (text from images|images from text|image latent|text latent), (\w+):")
README_CELL = re.compile(r"^\s*([\d.]+)(?: ± ([\d.]+))? / ([\d.]+)(?: ± ([\d.]+))? \((\d+) seeds?\)")
ROW_MODALITY = {"text from images": "text", "images from text": "img", "image latent": "img", "text latent": "text"}


def readme_repro_cells(text: str) -> list[tuple[str, str, str, str]]:
    """(table, modality, factor, repro cell) for each dSprites row of the README's first table."""
    cells = []
    for line in text.splitlines():
        match = README_ROW.match(line)
        if match:
            columns = [c.strip() for c in line.strip().strip("|").split("|")]
            cells.append((match.group(1), ROW_MODALITY[match.group(2)], match.group(3), columns[2]))
    return cells


def repro_cell_errors(cells, table_rows: list[dict]) -> list[str]:
    """What in the README's cells disagrees with table1.csv (empty when every number matches)."""
    index = {(r["table"], r["model"], r["modality"], r["factor"]): r for r in table_rows if r["dataset"] == "dsprites"}
    errors = []
    for table, modality, factor, cell in cells:
        match = README_CELL.match(cell)
        if not match:
            errors.append(f"{table} {modality} {factor}: cannot read '{cell}' as 'mmJSD / mmPoE (n seeds)'")
            continue
        shown = {"mmjsd": (match.group(1), match.group(2)), "mmpoe": (match.group(3), match.group(4))}
        for model, (mean, std) in shown.items():
            row = index.get((table, model, modality, factor))
            if row is None:
                errors.append(f"{table} {modality} {factor}: no {model} row in table1.csv")
                continue
            for name, value in (("mean", mean), ("std", std)):
                if value is None:
                    continue
                decimals = len(value.split(".")[1]) if "." in value else 0
                committed = float(row[name]) if row[name] else None
                if committed is None or abs(float(value) - committed) > 0.5 * 10 ** -decimals + 1e-9:
                    errors.append(f"{table} {modality} {factor}: README {model} {name} {value}, table1.csv {row[name]}")
            if int(match.group(5)) != int(row["n_seeds"]):
                errors.append(f"{table} {modality} {factor}: README says {match.group(5)} seeds, table1.csv {row['n_seeds']}")
    return errors


def readme_verdict_errors(text: str, table_rows: list[dict]) -> list[str]:
    """Where a dSprites row's last column (the verdict) is not what report.md's rule gives from
    table1.csv (each run's value) and the paper's two numbers."""
    from mmjsd.reporting.paper import paper_value
    from mmjsd.reporting.verdict import compare, paper_order, verdict
    index = {(r["table"], r["model"], r["modality"], r["factor"]): r for r in table_rows if r["dataset"] == "dsprites"}
    errors = []
    for line in text.splitlines():
        match = README_ROW.match(line)
        if not match:
            continue
        table, modality, factor = match.group(1), ROW_MODALITY[match.group(2)], match.group(3)
        j, p = index[(table, "mmjsd", modality, factor)], index[(table, "mmpoe", modality, factor)]
        ours = compare(*([float(v) for v in r["values"].split(";")] for r in (j, p)))
        paper = paper_order(paper_value(table, "mmjsd", modality, factor), paper_value(table, "mmpoe", modality, factor))
        expected = verdict(ours, paper).split(" (")[0]
        shown = line.strip().strip("|").split("|")[-1].strip()
        if not shown.startswith(expected + " ") and shown != expected:
            errors.append(f"{table} {modality} {factor}: README says '{shown}', the rule gives '{expected}'")
    return errors


def test_readme_verdicts_follow_the_rule():
    assert not readme_verdict_errors(_read(README), _table_rows())


def test_readme_verdict_check_can_fail():
    text = _read(README)
    row = next(line for line in text.splitlines() if README_ROW.match(line))
    cells = row.split("|")
    wrong = "does not hold" if not cells[-2].strip().startswith("does not hold") else "holds"
    assert readme_verdict_errors(row.replace(cells[-2], f" {wrong} "), _table_rows())


def _table_rows() -> list[dict]:
    import csv
    with REPRO_TABLE.open(newline="") as handle:
        return list(csv.DictReader(handle))


def test_readme_repro_numbers_are_the_committed_table():
    cells = readme_repro_cells(_read(README))
    assert len(cells) >= 5, f"the README's table has {len(cells)} dSprites rows"
    errors = repro_cell_errors(cells, _table_rows())
    assert not errors, "README.md's repro column disagrees with results/repro/table1.csv: " + "; ".join(errors)


def test_readme_repro_check_can_fail():
    rows = _table_rows()
    cells = readme_repro_cells(_read(README))
    table, modality, factor, cell = cells[0]
    mean = next(float(r["mean"]) for r in rows if (r["dataset"], r["table"], r["model"], r["modality"], r["factor"])
                == ("dsprites", table, "mmjsd", modality, factor))
    shown = README_CELL.match(cell).group(1)
    wrong = cell.replace(shown, f"{mean + 0.1:.{len(shown.split('.')[1])}f}", 1)
    assert not repro_cell_errors([(table, modality, factor, cell)], rows)
    assert repro_cell_errors([(table, modality, factor, wrong)], rows)
    assert repro_cell_errors([(table, modality, factor, "0.5 / 0.5 (7 seeds)")], rows)


# ---------------------------------------------------------------------------------------------
# Timings: docs/BENCHMARKS.md's "Headline timings" table is the one source of every wall time
# that README.md, docs/USAGE.md and results/README.md state. Each timing-looking phrase of those
# docs must be a figure of that table, and each figure of the table must be recorded in
# BENCHMARKS.md's measurements below it.
BENCHMARKS = ROOT / "docs" / "BENCHMARKS.md"
TIMED_DOCS = [README, USAGE, ROOT / "results" / "README.md"]
HEADLINE_HEADING = "## Headline timings"
_NUMBER = r"\d+(?:[.,]\d+)*(?:\s*[-–]\s*\d+(?:[.,]\d+)*)?"          # 5, 2.5, 1,167, 2-3
_UNIT = r"(?:hours?|h|minutes?|min|seconds?|secs?|s|ms|days?|weeks?)"
_WORD_NUMBER = r"(?i:an?|half\s+an?|one|two|three|four|five|six|seven|eight|nine|ten|twelve)"
TIMING = re.compile(
    rf"(?<![\w.])(?:{_NUMBER}\s*{_UNIT}(?:\s+\d+(?:[.,]\d+)?\s*{_UNIT})*"   # 8 min 51 s, 3 h 45 min
    rf"|{_WORD_NUMBER}\s+(?:hours?|minutes?|days?|weeks?))\b")              # an hour, two days
# Phrases that look like timings and are not wall times measured by anyone: each entry is the
# text around such a phrase (whitespace collapsed), and only a phrase inside that text is let
# through, so the entry cannot hide a timing written elsewhere.
NOT_TIMINGS = [
    # USAGE: how often a waiting GPU job repeats its log line, and a training job writes one
    # (the code's behaviour)
    "a reminder every 10 minutes",
    "training logs a line at least once a minute",
    # USAGE: the SLURM runtime requests of scales.*.resources (settings in config.yaml)
    "paper: 32 GB and two days per training job",
    "ci: 10 min and 2 GB per job",
    # USAGE: SLURM's own defaults and thresholds, and the plugin's status-check delay (settings)
    "(`MinJobAge`, 300 s by default); where it is under 120 s",
    "with the first status check after 5 s",
    "the plugin's default of 40 s adds waiting",
]


def _collapse(text: str) -> str:
    return re.sub(r"\s+", " ", text)


def headline_timings(text: str | None = None) -> dict[str, str]:
    """key -> figure, from the `| key | figure | measured |` rows of BENCHMARKS.md's table."""
    text = _read(BENCHMARKS) if text is None else text
    assert HEADLINE_HEADING in text, f"docs/BENCHMARKS.md lost its section {HEADLINE_HEADING!r}"
    section = re.split(r"\n#{1,6} ", text.split(HEADLINE_HEADING, 1)[1], maxsplit=1)[0]
    rows = {}
    for line in section.splitlines():
        if not line.startswith("|"):
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 3 or cells[0] == "key" or set(cells[0]) <= set("-: "):
            continue
        key = cells[0].strip("`")
        assert key not in rows, f"docs/BENCHMARKS.md's headline timings list {key} twice"
        rows[key] = _collapse(cells[1])
    return rows


def untabled_timings(text: str, figures) -> list[str]:
    """The timing-looking phrases of `text` that are not figures of the headline table."""
    text = _collapse(text)
    allowed = [(m.start(), m.end()) for entry in NOT_TIMINGS for m in re.finditer(re.escape(entry), text)]
    figures = {_collapse(f) for f in figures}
    found = []
    for match in TIMING.finditer(text):
        if any(start <= match.start() and match.end() <= end for start, end in allowed):
            continue
        if _collapse(match.group(0)) not in figures:
            found.append(match.group(0))
    return found


def test_headline_timings_table():
    rows = headline_timings()
    assert len(rows) >= 8, f"docs/BENCHMARKS.md's headline timings have {len(rows)} rows"
    body = _collapse(_read(BENCHMARKS).split(HEADLINE_HEADING, 1)[1].split("\n## ", 1)[1])
    for key, figure in rows.items():
        assert TIMING.fullmatch(figure), f"headline timing {key}: {figure!r} is not one wall time"
        assert figure in body, f"headline timing {key}: {figure} is recorded nowhere else in docs/BENCHMARKS.md"


@pytest.mark.parametrize("path", TIMED_DOCS, ids=lambda p: p.name)
def test_doc_timings_come_from_benchmarks(path):
    stray = untabled_timings(_read(path), headline_timings().values())
    assert not stray, (f"{path.relative_to(ROOT)} states timings that docs/BENCHMARKS.md's "
                       f"'Headline timings' table does not have: {stray}")


def test_timing_check_can_fail():
    figures = headline_timings().values()
    text = _read(README)
    assert not untabled_timings(text, figures)
    doctored = text.replace("23 min 32 s", "26 minutes", 1)
    assert doctored != text and untabled_timings(doctored, figures) == ["26 minutes"]
    for made_up in ("about an hour per seed", "it takes 9 min 30 s", "3.5 h on a GPU", "2-3 minutes"):
        assert untabled_timings(text + "\n" + made_up, figures), made_up
    # an allowed phrase lets through only its own place: the same figure elsewhere is reported
    assert untabled_timings(text + "\nThe demo takes 10 minutes.", figures) == ["10 minutes"]
    # the table itself is read: a figure taken out of it is reported where a doc states it
    assert untabled_timings(text, [f for f in figures if f != "23 min 32 s"]) == ["23 min 32 s"]


def test_timing_pattern():
    found = [m.group(0) for m in TIMING.finditer(
        "3 h 45 min, 8 min 51 s, 2.5 h, 191 s, 2-3 minutes, an hour, two days; "
        "not: 3 seeds, Table 1b, 16 GB, X0s1, 1,000 steps, a second session")]
    assert found == ["3 h 45 min", "8 min 51 s", "2.5 h", "191 s", "2-3 minutes", "an hour", "two days"]


# ---------------------------------------------------------------------------------------------
# Links: every relative markdown link, every backticked repository path and every bare docs/*.md
# path of the docs a reader opens must name something in the repository, and a link's #anchor a
# heading of its target. docs/evidence/ is a historical log, written as things stood then, and is
# not checked (docs/FIDELITY.md, which links into it, is).
LINKED_DOCS = [README, *sorted((ROOT / "docs").glob("*.md")), ROOT / "results" / "README.md"]
MD_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
CODE_SPAN = re.compile(r"`([^`\s]+)`")
REPO_DIRS = ("docs", "results", "benchmarks", "src", "workflow", "tests", "experiments", "profiles", "pipelines")
REPO_PATH = re.compile(rf"^(?:\./)?(?:{'|'.join(REPO_DIRS)})/\S*$")
BARE_DOC_PATH = re.compile(r"(?<![\w/.`\[(-])(docs/[\w./-]*\.md)\b")


def skipped_path(path: str) -> str | None:
    """Why a path-looking string is not checked against the repository (None: it is checked)."""
    if any(c in path for c in "*?"):
        return "a glob, not one file"
    if any(c in path for c in "<>$"):
        return "a pattern with a placeholder (<scale>, $VAR)"
    if path.startswith(("data/", "logs/", ".venv/")):
        return "written by a run or an install, never committed"
    if path.startswith("results/") and path != "results/README.md" and not path.startswith("results/repro/"):
        # results/<scale>/ (demo, ci, ...) and the paper scale's results/ top level are written by
        # a run; only results/README.md and results/repro/ are committed
        return "written by a run"
    if path.startswith("results/repro/") and path.endswith(".pt"):
        return "model weights, not committed (results/README.md)"
    return None


def _expand_braces(path: str) -> list[str]:
    """src/mmjsd/networks/{dsprites,celeba}.py -> both paths (one brace group at a time)."""
    match = re.search(r"\{([^{}]*)\}", path)
    if not match:
        return [path]
    return [p for option in match.group(1).split(",")
            for p in _expand_braces(path[:match.start()] + option + path[match.end():])]


def _unfenced(text: str) -> str:
    out, in_fence = [], False
    for line in text.splitlines():
        if line.startswith("```"):
            in_fence = not in_fence
            out.append("")
        else:
            out.append("" if in_fence else line)
    return "\n".join(out)


def heading_anchors(path: Path) -> set[str]:
    seen: dict[str, int] = {}
    anchors = set()
    for heading in _headings(_read(path)):
        anchor = github_anchor(heading)
        n = seen.get(anchor, 0)
        anchors.add(anchor if n == 0 else f"{anchor}-{n}")
        seen[anchor] = n + 1
    return anchors


def _repo_path_error(path: str) -> str | None:
    """Why a repository path (relative to the root) is broken, or None."""
    path = path.removeprefix("./")
    if skipped_path(path):
        return None
    file, _, test = path.partition("::")          # tests/test_x.py::test_name
    for candidate in _expand_braces(file):
        if not (ROOT / candidate).exists():
            return f"{path}: {candidate} does not exist"
        if test and not re.search(rf"^def {re.escape(test)}\b", _read(ROOT / candidate), re.MULTILINE):
            return f"{path}: {candidate} has no test {test}"
    return None


def doc_link_errors(text: str, source: Path) -> list[str]:
    """The broken links and paths of `text`, a doc at `source`: markdown links resolve from the
    doc's folder, backticked and bare paths from the repository root."""
    text = _unfenced(text)
    errors = []
    for target in MD_LINK.findall(text):
        if re.match(r"^[a-z][a-z+.-]*:", target):            # http:, https:, mailto:
            continue
        file, _, anchor = target.partition("#")
        resolved = (source.parent / file).resolve() if file else source
        if not resolved.exists():
            errors.append(f"link {target}: {file} does not exist")
        elif anchor and resolved.suffix == ".md" and anchor not in heading_anchors(resolved):
            errors.append(f"link {target}: {resolved.relative_to(ROOT)} has no heading #{anchor}")
    paths = [p for p in CODE_SPAN.findall(text) if REPO_PATH.match(p)] + BARE_DOC_PATH.findall(text)
    errors += [error for error in map(_repo_path_error, paths) if error]
    return sorted(set(errors))


@pytest.mark.parametrize("path", LINKED_DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_doc_links_resolve(path):
    errors = doc_link_errors(_read(path), path)
    assert not errors, f"{path.relative_to(ROOT)} has broken links: " + "; ".join(errors)


def test_link_check_can_fail():
    text = _read(README)
    assert not doc_link_errors(text, README)
    doctored = text + "\n".join([
        "", "See [the log](docs/NO_SUCH.md), [a section](docs/FIDELITY.md#no-such-heading),",
        "`results/repro/README.md`, `benchmarks/diagnostics/no_such.py`, docs/GONE.md and",
        "`tests/test_docs.py::test_no_such_test`.",
    ])
    errors = doc_link_errors(doctored, README)
    for broken in ("docs/NO_SUCH.md", "#no-such-heading", "results/repro/README.md", "no_such.py",
                   "docs/GONE.md", "test_no_such_test"):
        assert any(broken in error for error in errors), (broken, errors)
    # what a run writes, globs and placeholders are not checked
    assert not doc_link_errors("`results/demo/table1.csv`, `data/demo/`, `docs/figures/x_*.png`, "
                               "`logs/<scale>/`", README)


# Section citations: wherever the repository cites a section of a doc by name
# (docs/FIDELITY.md, "Decisions on the validation split") or by its code (docs/FIDELITY.md, V3),
# that doc has a heading that starts with it.
CITING_FILES = [README, *sorted((ROOT / "docs").glob("*.md")), ROOT / "results" / "README.md", CONFIG,
                *sorted((ROOT / "src").rglob("*.py")), *sorted((ROOT / "benchmarks").rglob("*.py")),
                *sorted((ROOT / "experiments").glob("*.py")),
                *sorted(p for p in (ROOT / "tests").glob("*.py") if p.name != "test_docs.py")]
CITATION = re.compile(r"((?:docs/)?(?:evidence/)?[\w-]+\.md),?\s+(?:section\s+)?"
                      r"(?:\"(.+?)\"(?=[),;:.]|\s|$)|(?:decision\s+)?([A-Z]\d+[a-z0-9]*)\b)")


def section_citation_errors(text: str, source: Path) -> list[str]:
    if source.suffix in (".py", ".yaml"):
        text = re.sub(r"\n\s*#\s?", " ", text)        # comments wrapped over several lines
    text = _collapse(text)
    errors = []
    for match in CITATION.finditer(text):
        name = match.group(2) or match.group(3)
        doc = match.group(1)
        target = ROOT / doc if doc.startswith("docs/") else (source.parent / doc)
        if not target.exists() and (ROOT / "docs" / doc).exists():
            target = ROOT / "docs" / doc
        if not target.exists() or target.suffix != ".md" or target == source:
            continue
        headings = [_collapse(h) for h in _headings(_read(target))]
        if match.group(2):
            ok = any(h.startswith(name) for h in headings)
        else:
            ok = any(re.match(rf"{re.escape(name)}\b", h) for h in headings)
        if not ok:
            errors.append(f"{doc}, {name!r}: no such heading in {target.relative_to(ROOT)}")
    return errors


def test_cited_sections_exist():
    errors = [f"{path.relative_to(ROOT)}: {e}" for path in CITING_FILES for e in section_citation_errors(_read(path), path)]
    assert not errors, "citations of sections that do not exist: " + "; ".join(errors)


def test_section_citation_check_can_fail():
    good = '(docs/FIDELITY.md, "Decisions on the validation split"; docs/FIDELITY.md, V3)'
    assert not section_citation_errors(good, CONFIG)
    bad = '(docs/FIDELITY.md, "The paper run, resumed across sessions"); docs/FIDELITY.md, G3.'
    assert len(section_citation_errors(bad, CONFIG)) == 2
    wrapped = '# (docs/evidence/fidelity-log.md, "CelebA at paper width: the first\n    # steps")'
    assert not section_citation_errors(wrapped, CONFIG)


def test_fidelity_is_an_account_one_can_finish():
    """The account stays at most 3,000 words; the full log lives in docs/evidence/fidelity-log.md."""
    words = len((ROOT / "docs" / "FIDELITY.md").read_text().split())
    assert words <= 3000, f"docs/FIDELITY.md has {words} words: move detail to docs/evidence/fidelity-log.md"
