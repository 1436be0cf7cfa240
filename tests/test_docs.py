"""The reader-facing docs against the repository: the README stays short, the docs a reviewer reads
carry no lab-notebook codes, MODELS.md's table of documented settings equals config.yaml, and the
links into docs/FIDELITY.md point at headings that exist."""

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
    """Every code that docs/FIDELITY.md uses, for the letters its headings use as codes."""
    text = _read(FIDELITY)
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
    seen: dict[str, int] = {}
    anchors = set()
    for heading in _headings(_read(FIDELITY)):
        anchor = github_anchor(heading)
        n = seen.get(anchor, 0)
        anchors.add(anchor if n == 0 else f"{anchor}-{n}")
        seen[anchor] = n + 1
    return anchors


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
