"""Does the paper's direction hold in this run? Cell by cell, mmJSD against mmPoE.

Reads the runs' eval.json records (as `report.collect` gathers them) and writes markdown:
- dSprites Table 1a and 1b: per cell each model's mean and spread over seeds, the paper's
  direction and whether this run agrees;
- dSprites coherence without a classifier (mmjsd.evaluation.direct_coherence), per model;
- CelebA: the conditioning gaps of the figure strings' attributes on real test texts, on the
  figure strings and in context (mmjsd.evaluation.conditioning: described_conditioning, conditioning_gaps,
  paired_conditioning) and, attribute by attribute, the coherence average precision. The paper
  has no CelebA numbers (only Figure 1's generations), so these say which model is ahead, not
  whether the paper holds.

The rule (RULE, printed in the report) compares runs, not means: mmJSD is ahead ('>') in a cell when
every mmJSD run is above every mmPoE run, behind ('<') when every one is below, and otherwise the
runs are mixed ('~'). A mixed cell says how many of mmJSD's n runs lie above every mmPoE run and how
many below every one: a cell whose runs fall into two groups (mmJSD's dSprites image content, docs/
FIDELITY.md, "Two kinds of solution") reads "holds in k of n runs", which a mean and a standard error
would blur into one number. With no difference between the models every ordering of the runs is
equally likely, so a full separation comes by chance with probability 2 / C(n_J + n_P, n_J): 0.10
with 3 runs each, 0.008 with 5. With fewer than 2 runs of a model the cell is not judged ('?'). A cell
holds when the paper's order (its two printed values: '>', '<' or '=' when equal) is this run's; for
the paper's ties, runs that overlap hold.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterable

from mmjsd.core.vocabulary import DIRECTIONS, MODELS, REPRESENTATIONS
from mmjsd.data.dsprites import SHAPE_WORDS
from mmjsd.reporting.aggregate import present, summarise
from mmjsd.reporting.paper import DSPRITES_FACTORS, paper_value

RULE = ("A cell's order compares runs, not means: '>' when every mmJSD run is above every mmPoE run, '<' when "
        "every one is below; otherwise the runs are mixed ('~') and the cell says in how many of mmJSD's runs it holds "
        "(above every mmPoE run where the paper has mmJSD above) and in how many it is reversed. With no "
        "difference between the models a full separation comes by chance with probability 2 / C(n_mmJSD + n_mmPoE, "
        "n_mmJSD): 0.10 with 3 runs each, 0.008 with 5. '?' = fewer than 2 runs of a model: not judged.")


@dataclass
class Comparison:
    """mmJSD's runs against mmPoE's, and the order the rule gives."""
    mmjsd: float | None    # mean over runs
    mmpoe: float | None
    diff: float | None     # difference of the means
    above: int = 0         # mmJSD runs above every mmPoE run
    below: int = 0         # mmJSD runs below every mmPoE run
    runs: int = 0          # mmJSD runs
    order: str | None = None   # '>', '<', '~' (mixed), '?' (fewer than 2 runs), None (a value missing)
    chance: float | None = None  # probability of a full separation by chance (no difference between the models)


def _mean(values: Iterable[float | None]) -> float | None:
    """Mean over seeds, skipping missing values: Table 1's own rule (aggregate.summarise)."""
    return summarise(values)[0]


def _kept(values: Iterable[float | None]) -> list[float]:
    return [float(v) for v in values if present(v)]


def compare(mmjsd: Iterable[float | None], mmpoe: Iterable[float | None]) -> Comparison:
    """Compare two models' per-run values by RULE (missing and NaN values left out, as in Table 1)."""
    j, p = _kept(mmjsd), _kept(mmpoe)
    if not j or not p:
        return Comparison(_mean(j), _mean(p), None)
    m_j, m_p = _mean(j), _mean(p)
    above = sum(v > max(p) for v in j)
    below = sum(v < min(p) for v in j)
    if len(j) < 2 or len(p) < 2:
        return Comparison(m_j, m_p, m_j - m_p, above, below, len(j), "?")
    order = ">" if above == len(j) else "<" if below == len(j) else "~"
    return Comparison(m_j, m_p, m_j - m_p, above, below, len(j), order, 2 / math.comb(len(j) + len(p), len(j)))


def paper_order(a: float | None, b: float | None) -> str | None:
    """The paper's order of its two printed values ('=' only when they are equal)."""
    if a is None or b is None:
        return None
    return "=" if a == b else (">" if a > b else "<")


def verdict(ours: Comparison | None, paper: str | None) -> str:
    """Whether this run's order (by RULE) agrees with the paper's; a mixed cell counts its runs."""
    if ours is None or ours.order is None:
        return "n/a"
    if ours.order == "?":
        return "not judged (1 seed)"
    if paper is None:
        return ahead(ours)
    if paper == "=":     # the paper's tie holds where the runs overlap
        if ours.above == ours.below == 0:
            return "holds"
        if ours.order in ("<", ">"):
            return "does not hold"
        return f"holds in {ours.runs - ours.above - ours.below} of {ours.runs} runs"
    if ours.order == paper:
        return "holds"
    if ours.order in ("<", ">"):
        return "does not hold"
    agree, against = (ours.above, ours.below) if paper == ">" else (ours.below, ours.above)
    if agree and against:
        return f"holds in {agree} of {ours.runs} runs, reversed in {against}"
    if agree:
        return f"holds in {agree} of {ours.runs} runs"
    if against:
        return f"reversed in {against} of {ours.runs} runs"
    return "unresolved (runs overlap)"


def verdict_kind(result: str) -> str:
    """The summary's bucket of a verdict: 'holds in 2 of 5 runs' and the like count as 'mixed'."""
    return "mixed (some runs)" if " of " in result else result


def ahead(ours: Comparison | None) -> str:
    """For CelebA, where the paper has no numbers: which model the rule puts ahead, and in how many runs."""
    if ours is None or ours.order is None:
        return "n/a"
    if ours.order == "?":
        return "not judged (1 seed)"
    if ours.order == ">":
        return "mmJSD ahead"
    if ours.order == "<":
        return "mmPoE ahead"
    if ours.above and ours.below:
        return f"mmJSD ahead in {ours.above} of {ours.runs} runs, behind in {ours.below}"
    if ours.above:
        return f"mmJSD ahead in {ours.above} of {ours.runs} runs"
    if ours.below:
        return f"mmJSD behind in {ours.below} of {ours.runs} runs"
    return "within noise (runs overlap)"


def _runs(values: Iterable[float | None]) -> str:
    """Each run's value in seed order, as the per-run column shows them: "0.421 0.459 0.589"."""
    return " ".join(f"{v:.3f}" for v in _kept(values)) or "-"


def _fmt_diff(comparison: Comparison) -> str:
    return "-" if comparison.diff is None else f"{comparison.diff:+.3f}"


def _fmt_counts(comparison: Comparison) -> str:
    """'3 / 0 of 5': mmJSD runs above / below every mmPoE run."""
    return "-" if comparison.order in (None, "?") else f"{comparison.above} / {comparison.below} of {comparison.runs}"


VERDICT_KINDS = ("holds", "mixed (some runs)", "does not hold", "unresolved (runs overlap)", "not judged (1 seed)", "n/a")


def _by_model(runs: list[dict], dataset: str) -> dict[str, list[dict]]:
    """Each model's evaluations of a dataset, in seed order (the per-run columns follow it)."""
    chosen = [r for r in runs if r["dataset"] == dataset]
    return {m: [r["eval"] for r in sorted((r for r in chosen if r["model"] == m), key=lambda r: int(r["seed"]))]
            for m in MODELS}


def _seed_list(runs: list[dict], dataset: str, model: str) -> str:
    return ", ".join(str(s) for s in sorted(int(r["seed"]) for r in runs if r["dataset"] == dataset and r["model"] == model))


def _fmt(value: float | None, signed: bool = False) -> str:
    if value is None:
        return "-"
    return f"{value:+.3f}" if signed else f"{value:.3f}"


def dsprites_lines(runs: list[dict]) -> list[str]:
    evals = _by_model(runs, "dsprites")
    if not all(evals[m] for m in MODELS):
        return []
    n_seeds = {m: len(evals[m]) for m in MODELS}
    chance = 2 / math.comb(n_seeds["mmjsd"] + n_seeds["mmpoe"], n_seeds["mmjsd"])
    lines = ["### dSprites, Table 1: is mmJSD above mmPoE where the paper has it above?", "",
             f"Runs: {n_seeds['mmjsd']} of mmJSD, {n_seeds['mmpoe']} of mmPoE (seeds {_seed_list(runs, 'dsprites', 'mmjsd')} and "
             f"{_seed_list(runs, 'dsprites', 'mmpoe')}; each run's value in seed order). {RULE} Here a full separation by chance: "
             f"{chance:.3f}.", "",
             "| table | cell | mmJSD mean | mmJSD runs | mmPoE mean | mmPoE runs | mmJSD runs above / below every mmPoE run "
             "| this run | paper | direction |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    counts: dict[str, int] = {}
    cells = [("1a", f, d) for f in DSPRITES_FACTORS for d in DIRECTIONS] + \
            [("1b", f, r) for r in REPRESENTATIONS for f in DSPRITES_FACTORS]
    for table, factor, part in cells:
        if table == "1a":
            values = {m: [e["coherence"][factor][part] for e in evals[m]] for m in MODELS}
            name = f"{factor} {part}"
        else:
            values = {m: [e["latent"][part][factor] for e in evals[m]] for m in MODELS}
            name = f"{part} latent {factor}"
        paper = paper_order(paper_value(table, "mmjsd", part, factor), paper_value(table, "mmpoe", part, factor))
        ours = compare(values["mmjsd"], values["mmpoe"])
        result = verdict(ours, paper)
        counts[verdict_kind(result)] = counts.get(verdict_kind(result), 0) + 1
        lines.append(f"| {table} | {name} | {_fmt(ours.mmjsd)} | {_runs(values['mmjsd'])} | {_fmt(ours.mmpoe)} | "
                     f"{_runs(values['mmpoe'])} | {_fmt_counts(ours)} | {ours.order or '-'} | {paper or '-'} | {result} |")
    total = sum(counts.values())
    lines += ["", f"Of {total} cells: " + ", ".join(f"{counts[k]} {k}" for k in VERDICT_KINDS if counts.get(k)) + ".", ""]
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


def _spread_cell(values: list[float | None], signed: bool = False) -> str:
    """'0.421 ± 0.004' (mean ± sample std over seeds) or '0.421' for one seed; signed: '+0.421 ...'."""
    mean, std, _ = summarise(values)
    return _fmt(mean, signed) + (f" ± {std:.3f}" if std is not None else "")


def _gap_cell(values: list[float | None]) -> str:
    """'+0.480 ± 0.090' (mean ± sample std over seeds) or '+0.480' for one seed."""
    return _spread_cell(values, signed=True)


def _gap_rows(attributes: list[str], gaps: dict[str, list[dict]]) -> list[str]:
    """One table row per attribute: each model's gap (mean ± std over its seeds' {attribute:
    {"gap"}} records) and which model RULE puts ahead; then a blank line."""
    lines = []
    for a in attributes:
        values = {m: [g[a]["gap"] for g in gaps[m] if a in g] for m in MODELS}
        lines.append(f"| {a} | {_gap_cell(values['mmjsd'])} | {_gap_cell(values['mmpoe'])} | "
                     f"{ahead(compare(values['mmjsd'], values['mmpoe']))} |")
    return lines + [""]


def celeba_lines(runs: list[dict]) -> list[str]:
    evals = _by_model(runs, "celeba")
    if not all(evals[m] for m in MODELS):
        return []
    lines: list[str] = []
    gaps = {m: [e["conditioning"]["gaps"] for e in evals[m] if "conditioning" in e] for m in MODELS}
    described = {m: [e["conditioning_described"] for e in evals[m] if "conditioning_described" in e] for m in MODELS}
    if all(gaps.values()) or all(described.values()):
        lines += ["### CelebA: do generated faces follow the text? (Figure 1's claim)", "",
                  "The paper reports no CelebA numbers, only Figure 1's generations. The gaps below (mean ± std "
                  f"over seeds) say whether each model's faces follow the text; the last column says which model "
                  f"is ahead. {RULE}", ""]
    if all(gaps.values()) and all(described.values()):
        attributes = list(gaps["mmjsd"][0])
        lines += [f"Real texts: the authors' conditional figures generate from real test texts. For each attribute of the "
                  f"figure strings: the image classifier's mean P(attribute) on faces generated from the first "
                  f"{described['mmjsd'][0]['texts']} real texts of `test_eval` that name it, minus the texts that do not "
                  f"({described['mmjsd'][0]['faces_per_text']} seeded paddings per text). A real text lists every attribute "
                  "of its face, so this gap also counts the words that go with the attribute (lipstick with not male); "
                  "the in-context table below isolates the word.", "",
                  "| attribute | mmJSD gap | mmPoE gap | ahead |", "|---|---|---|---|"]
        lines += _gap_rows(attributes, {m: [d["gaps"] for d in described[m]] for m in MODELS})
    if all(gaps.values()):
        attributes = list(gaps["mmjsd"][0])
        per_string = evals["mmjsd"][0]["conditioning"]["faces_per_string"]
        lines += ["Short strings: for each attribute named in the figure strings, the image classifier's mean P(attribute) on "
                  "faces generated from the strings that name it, minus the same on faces from the strings that do not "
                  f"({per_string} faces per string: seeded paddings x styles). 0 = the text does not reach the face. These "
                  "strings are shorter than any training text, and short texts read as male to the models "
                  "(docs/FIDELITY.md).", "",
                  "| attribute | mmJSD gap | mmPoE gap | ahead |", "|---|---|---|---|"]
        lines += _gap_rows(attributes, gaps)
    paired = {m: [e["conditioning_paired"] for e in evals[m] if "conditioning_paired" in e] for m in MODELS}
    if all(paired.values()):
        attributes = list(paired["mmjsd"][0]["gaps"])
        lines += ["In context: the figure strings are short, unlike the training texts (every attribute of a face). "
                  f"So each attribute is also switched on and off in the texts of {paired['mmjsd'][0]['rows']} real "
                  "test rows, everything else equal: the mean change of P(attribute) on the generated faces, and "
                  "the share of rows where it rises.", "",
                  "| attribute | mmJSD paired gap | rows rising | mmPoE paired gap | rows rising | ahead |",
                  "|---|---|---|---|---|---|"]
        for a in attributes:
            values = {m: [p["gaps"][a]["gap"] for p in paired[m] if a in p["gaps"]] for m in MODELS}
            rising = {m: _mean(p["gaps"][a]["rows_rising"] for p in paired[m] if a in p["gaps"]) for m in MODELS}
            lines.append(f"| {a} | {_gap_cell(values['mmjsd'])} | {_fmt(rising['mmjsd'])} | {_gap_cell(values['mmpoe'])} | "
                         f"{_fmt(rising['mmpoe'])} | {ahead(compare(values['mmjsd'], values['mmpoe']))} |")
        lines.append("")
    ap = {m: [e["coherence_average_precision"] for e in evals[m] if "coherence_average_precision" in e] for m in MODELS}
    if all(ap.values()):
        names = list(ap["mmjsd"][0])
        lines += ["### CelebA coherence (average precision), attribute by attribute", "",
                  "Average precision of the attribute classifier on generations: images generated from the real "
                  "texts of the test rows (img) and texts generated from their real images (text). The paper reports "
                  "no CelebA numbers; the columns say which model is ahead by the rule above.", "",
                  "| attribute | img: mmJSD | img: mmPoE | img | text: mmJSD | text: mmPoE | text |", "|---|---|---|---|---|---|---|"]
        counts = {d: [0, 0, 0] for d in DIRECTIONS}     # mmJSD ahead, judged, mmPoE ahead
        for name in names:
            row = [name]
            for d in DIRECTIONS:
                ours = compare([a[name][d] for a in ap["mmjsd"]], [a[name][d] for a in ap["mmpoe"]])
                result = ahead(ours)
                counts[d][0] += ours.order == ">"
                counts[d][1] += result != "n/a"
                counts[d][2] += ours.order == "<"
                row += [_fmt(ours.mmjsd), _fmt(ours.mmpoe), result]
            lines.append("| " + " | ".join(row) + " |")
        label = {"img": "images from text", "text": "text from images"}
        lines += ["", "mmJSD ahead in every run in " + "; ".join(
            f"{counts[d][0]} of {counts[d][1]} attributes ({label[d]})" for d in DIRECTIONS) + ". mmPoE ahead in every run in "
            + "; ".join(f"{counts[d][2]} ({label[d]})" for d in DIRECTIONS) + ".", ""]
        # The headline number: each seed's mean AP over its attributes, then compared over seeds by RULE.
        lines += ["Mean average precision over attributes (each seed's mean, then mean ± std over seeds):", "",
                  "| direction | mmJSD | mmJSD runs | mmPoE | mmPoE runs | difference | ahead |", "|---|---|---|---|---|---|---|"]
        for d in DIRECTIONS:
            per_seed = {m: [_mean(a[name][d] for name in a) for a in ap[m]] for m in MODELS}
            ours = compare(per_seed["mmjsd"], per_seed["mmpoe"])
            lines.append(f"| {label[d]} | {_spread_cell(per_seed['mmjsd'])} | {_runs(per_seed['mmjsd'])} | "
                         f"{_spread_cell(per_seed['mmpoe'])} | {_runs(per_seed['mmpoe'])} | {_fmt_diff(ours)} | {ahead(ours)} |")
        lines.append("")
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
