"""Does the paper's direction hold in this run? Cell by cell, mmJSD against mmPoE.

Reads the runs' eval.json records (as `report.collect` gathers them) and writes markdown:
- dSprites Table 1a and 1b: per cell the mean over seeds of each model, the paper's direction
  (mmJSD above, below or equal to mmPoE, within TIE of each other) and whether this run agrees;
- dSprites coherence without a classifier (mmjsd.direct_coherence), per model;
- CelebA: the conditioning gaps of the figure strings' attributes on real test texts, on the
  figure strings and in context (mmjsd.evaluate described_conditioning, conditioning_gaps,
  paired_conditioning) and, attribute by attribute, whether mmJSD's coherence average
  precision is above mmPoE's.
A cell "holds" when this run orders the two models as the paper does; a difference within TIE
counts as a tie on both sides.
"""

from __future__ import annotations

from typing import Any, Iterable

from mmjsd.aggregate import summarise
from mmjsd.data.dsprites import SHAPE_WORDS
from mmjsd.paper import DSPRITES_FACTORS, paper_value
from mmjsd.vocabulary import DIRECTIONS, MODELS, REPRESENTATIONS

TIE = 0.02            # differences below this are ties (seed noise at demo scale exceeds it)


def _mean(values: Iterable[float | None]) -> float | None:
    """Mean over seeds, skipping missing values: Table 1's own rule (aggregate.summarise)."""
    return summarise(values)[0]


def order(a: float | None, b: float | None) -> str | None:
    """'>' / '<' / '=' for a against b (within TIE: '='); None when either is missing."""
    if a is None or b is None:
        return None
    return "=" if abs(a - b) < TIE else (">" if a > b else "<")


def verdict(ours: str | None, paper: str | None) -> str:
    if ours is None:
        return "n/a"
    if paper is None:
        return f"mmJSD {ours} mmPoE"
    return "holds" if ours == paper else "does not hold"


def _by_model(runs: list[dict], dataset: str) -> dict[str, list[dict]]:
    return {m: [r["eval"] for r in runs if r["dataset"] == dataset and r["model"] == m] for m in MODELS}


def _fmt(value: float | None, signed: bool = False) -> str:
    if value is None:
        return "-"
    return f"{value:+.3f}" if signed else f"{value:.3f}"


def dsprites_lines(runs: list[dict]) -> list[str]:
    evals = _by_model(runs, "dsprites")
    if not all(evals[m] for m in MODELS):
        return []
    lines = ["### dSprites, Table 1: is mmJSD above mmPoE where the paper has it above?", "",
             f"Means over seeds; '=' means within {TIE} of each other.", "",
             "| table | cell | mmJSD | mmPoE | this run | paper | direction |", "|---|---|---|---|---|---|---|"]
    held = total = 0
    cells = [("1a", f, d) for f in DSPRITES_FACTORS for d in DIRECTIONS] + \
            [("1b", f, r) for r in REPRESENTATIONS for f in DSPRITES_FACTORS]
    for table, factor, part in cells:
        if table == "1a":
            ours = {m: _mean(e["coherence"][factor][part] for e in evals[m]) for m in MODELS}
            name = f"{factor} {part}"
        else:
            ours = {m: _mean(e["latent"][part][factor] for e in evals[m]) for m in MODELS}
            name = f"{part} latent {factor}"
        paper = order(paper_value(table, "mmjsd", part, factor), paper_value(table, "mmpoe", part, factor))
        this = order(ours["mmjsd"], ours["mmpoe"])
        result = verdict(this, paper)
        held += result == "holds"
        total += result in ("holds", "does not hold")
        lines.append(f"| {table} | {name} | {_fmt(ours['mmjsd'])} | {_fmt(ours['mmpoe'])} | {this or '-'} | {paper or '-'} | {result} |")
    lines += ["", f"The paper's direction holds in {held} of {total} cells.", ""]
    lines += direct_lines(evals)
    return lines


def direct_lines(evals: dict[str, list[dict]]) -> list[str]:
    records = {m: [e["coherence_direct"] for e in evals[m] if "coherence_direct" in e] for m in MODELS}
    if not all(records.values()):
        return []
    fields = list(records["mmjsd"][0]["text_field_match"])
    pixels = list(records["mmjsd"][0]["image_pixel_spearman"])
    # runs evaluated before the template measure existed have no such block: leave its columns out
    shapes = all("image_shape_template" in r for m in MODELS for r in records[m])
    lines = ["### dSprites coherence without a classifier", "",
             "Text generated from images: share of strings whose field equals the conditioning image's true text "
             "(`all_fields`: the whole string). Images generated from text: Spearman correlation of the sprite area "
             "and centroid with the text's scale and position classes."
             + (" Shape: the share of images whose best-overlapping rendered sprite (720 templates, centred, "
                "intersection over union) has the text's shape, and the mean margin of that overlap over the best "
                "of another shape, per shape (real renders: 1.0 and about +0.2 each; a disc: about 0)." if shapes else ""),
             "",
             "| model | " + " | ".join(f"text {f}" for f in fields) + " | " + " | ".join(f"img {p}" for p in pixels)
             + (" | img shape, best template | img shape margin: " + " / ".join(SHAPE_WORDS) if shapes else "") + " |",
             "|---|" + "---|" * (len(fields) + len(pixels) + 2 * shapes)]
    for m in MODELS:
        text = [_fmt(_mean(r["text_field_match"][f] for r in records[m])) for f in fields]
        img = [_fmt(_mean(r["image_pixel_spearman"][p] for r in records[m])) for p in pixels]
        if shapes:
            template = [r["image_shape_template"] for r in records[m]]
            # in SHAPE_WORDS order, as the header says (eval.json stores the keys sorted)
            img += [_fmt(_mean(t["match"] for t in template)),
                    " / ".join(_fmt(_mean(t["margin_by_shape"][w] for t in template), True) for w in SHAPE_WORDS)]
        lines.append(f"| {m} | " + " | ".join(text + img) + " |")
    return lines + [""]


def _gap_rows(attributes: list[str], gaps: dict[str, list[dict]]) -> list[str]:
    """One table row per attribute: each model's gap (mean over its seeds' {attribute: {"gap"}}
    records) and whether mmJSD is above mmPoE; then a blank line."""
    lines = []
    for a in attributes:
        ours = {m: _mean(g[a]["gap"] for g in gaps[m] if a in g) for m in MODELS}
        lines.append(f"| {a} | {_fmt(ours['mmjsd'], True)} | {_fmt(ours['mmpoe'], True)} | "
                     f"{verdict(order(ours['mmjsd'], ours['mmpoe']), '>')} |")
    return lines + [""]


def celeba_lines(runs: list[dict]) -> list[str]:
    evals = _by_model(runs, "celeba")
    if not all(evals[m] for m in MODELS):
        return []
    lines: list[str] = []
    gaps = {m: [e["conditioning"]["gaps"] for e in evals[m] if "conditioning" in e] for m in MODELS}
    described = {m: [e["conditioning_described"] for e in evals[m] if "conditioning_described" in e] for m in MODELS}
    if all(gaps.values()) or all(described.values()):
        lines += ["### CelebA: do generated faces follow the text? (Figure 1's claim)", ""]
    if all(gaps.values()) and all(described.values()):
        attributes = list(gaps["mmjsd"][0])
        lines += [f"Real texts: the authors' conditional figures generate from real test texts. For each attribute of the "
                  f"figure strings: the image classifier's mean P(attribute) on faces generated from the first "
                  f"{described['mmjsd'][0]['texts']} real texts of `test_eval` that name it, minus the texts that do not "
                  f"({described['mmjsd'][0]['faces_per_text']} seeded paddings per text). A real text lists every attribute "
                  "of its face, so this gap also counts the words that go with the attribute (lipstick with not male); "
                  "the in-context table below isolates the word.", "",
                  "| attribute | mmJSD gap | mmPoE gap | mmJSD above mmPoE? |", "|---|---|---|---|"]
        lines += _gap_rows(attributes, {m: [d["gaps"] for d in described[m]] for m in MODELS})
    if all(gaps.values()):
        attributes = list(gaps["mmjsd"][0])
        per_string = evals["mmjsd"][0]["conditioning"]["faces_per_string"]
        lines += ["Short strings: for each attribute named in the figure strings, the image classifier's mean P(attribute) on "
                  "faces generated from the strings that name it, minus the same on faces from the strings that do not "
                  f"({per_string} faces per string: seeded paddings x styles). 0 = the text does not reach the face. These "
                  "strings are shorter than any training text, and short texts read as male to the models "
                  "(docs/FIDELITY.md).", "",
                  "| attribute | mmJSD gap | mmPoE gap | mmJSD above mmPoE? |", "|---|---|---|---|"]
        lines += _gap_rows(attributes, gaps)
    paired = {m: [e["conditioning_paired"] for e in evals[m] if "conditioning_paired" in e] for m in MODELS}
    if all(paired.values()):
        attributes = list(paired["mmjsd"][0]["gaps"])
        lines += ["In context: the figure strings are short, unlike the training texts (every attribute of a face). "
                  f"So each attribute is also switched on and off in the texts of {paired['mmjsd'][0]['rows']} real "
                  "test rows, everything else equal: the mean change of P(attribute) on the generated faces, and "
                  "the share of rows where it rises.", "",
                  "| attribute | mmJSD paired gap | rows rising | mmPoE paired gap | rows rising | mmJSD above mmPoE? |",
                  "|---|---|---|---|---|---|"]
        for a in attributes:
            ours = {m: _mean(p["gaps"][a]["gap"] for p in paired[m] if a in p["gaps"]) for m in MODELS}
            rising = {m: _mean(p["gaps"][a]["rows_rising"] for p in paired[m] if a in p["gaps"]) for m in MODELS}
            lines.append(f"| {a} | {_fmt(ours['mmjsd'], True)} | {_fmt(rising['mmjsd'])} | {_fmt(ours['mmpoe'], True)} | "
                         f"{_fmt(rising['mmpoe'])} | {verdict(order(ours['mmjsd'], ours['mmpoe']), '>')} |")
        lines.append("")
    ap = {m: [e["coherence_average_precision"] for e in evals[m] if "coherence_average_precision" in e] for m in MODELS}
    if all(ap.values()):
        names = list(ap["mmjsd"][0])
        lines += ["### CelebA coherence (average precision), attribute by attribute", "",
                  "The paper reports mmJSD above mmPoE; '=' within " f"{TIE}.", "",
                  "| attribute | img: mmJSD | img: mmPoE | img | text: mmJSD | text: mmPoE | text |", "|---|---|---|---|---|---|---|"]
        counts = {d: [0, 0] for d in DIRECTIONS}
        for name in names:
            row = [name]
            for d in DIRECTIONS:
                ours = {m: _mean(a[name][d] for a in ap[m]) for m in MODELS}
                result = verdict(order(ours["mmjsd"], ours["mmpoe"]), ">")
                counts[d][0] += result == "holds"
                counts[d][1] += result != "n/a"
                row += [_fmt(ours["mmjsd"]), _fmt(ours["mmpoe"]), result]
            lines.append("| " + " | ".join(row) + " |")
        lines += ["", "mmJSD above mmPoE in " + "; ".join(
            f"{counts[d][0]} of {counts[d][1]} attributes ({'images from text' if d == 'img' else 'text from images'})"
            for d in DIRECTIONS) + ".", ""]
    return lines


def section(runs: list[dict]) -> list[str]:
    body = dsprites_lines(runs) + celeba_lines(runs)
    if not body:
        return []
    return ["## Does the paper's direction hold? (mmJSD against mmPoE)", "", *body]


CAPTION_ATTRIBUTES = ("Male", "Smiling")   # Figure 1's claim; the report lists every attribute


def conditioning_caption(evaluation: dict[str, Any]) -> str:
    """'real texts Male +0.48, Smiling +0.41; short strings +0.05, -0.00' from one eval.json (the
    described measure where recorded, then the figure strings'), or '' without a conditioning block."""
    gaps = evaluation.get("conditioning", {}).get("gaps", {})
    described = evaluation.get("conditioning_described", {}).get("gaps", {})
    shown = [a for a in CAPTION_ATTRIBUTES if a in gaps] or list(gaps)[:2]
    strings = ", ".join(f"{gaps[name]['gap']:+.2f}" for name in shown)
    if not shown or not all(name in described for name in shown):
        return ", ".join(f"{name} {gaps[name]['gap']:+.2f}" for name in shown)
    return "real texts " + ", ".join(f"{name} {described[name]['gap']:+.2f}" for name in shown) + f"; short strings {strings}"
