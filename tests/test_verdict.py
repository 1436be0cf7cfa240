"""mmJSD against mmPoE, cell by cell: the report's verdict section on known numbers."""

from mmjsd.core.vocabulary import REPRESENTATIONS
from mmjsd.reporting import verdict
from mmjsd.reporting.paper import DSPRITES_FACTORS, TABLE1A, TABLE1B


def dsprites_eval(model: str, shift: float = 0.0, swap_shape_text: bool = False) -> dict:
    coherence = {f: {d: TABLE1A[model][f][d] + shift for d in ("img", "text")} for f in DSPRITES_FACTORS}
    if swap_shape_text:   # this run: mmPoE better than mmJSD on shape, text from images
        coherence["shape"]["text"] = TABLE1A["mmpoe" if model == "mmjsd" else "mmjsd"]["shape"]["text"]
    latent = {r: {f: TABLE1B[model][r][f] for f in DSPRITES_FACTORS} for r in REPRESENTATIONS}
    direct = {"text_field_match": {"shape": 0.9, "all_fields": 0.5}, "image_pixel_spearman": {"scale~area": 0.8}}
    return {"coherence": coherence, "latent": latent, "coherence_direct": direct}


def runs_of(evals: dict[str, list[dict]], dataset: str = "dsprites") -> list[dict]:
    return [{"dataset": dataset, "model": m, "seed": s, "eval": e} for m, es in evals.items() for s, e in enumerate(es)]


def two_seeds(model: str, **kwargs) -> list[dict]:
    """The paper's numbers -0.001 and +0.001 (sample std 0.0014 per cell; SE of a difference 0.0014),
    tight enough that the paper's smallest gaps (0.01) count."""
    return [dsprites_eval(model, shift=-0.001, **kwargs), dsprites_eval(model, shift=0.001, **kwargs)]


def test_the_papers_own_numbers_hold_everywhere_the_paper_orders_the_models():
    text = "\n".join(verdict.section(runs_of({"mmjsd": two_seeds("mmjsd"), "mmpoe": two_seeds("mmpoe")})))
    assert "does not hold" not in text and "not judged (1 seed) |" not in text
    assert "| 1a | shape text | 0.970 | 0.969 0.971 | 0.340 | 0.339 0.341 | 2 / 0 of 2 | > | > | holds |" in text
    assert "| 1a | posX img | 0.330 | 0.329 0.331 | 0.330 | 0.329 0.331 | 0 / 0 of 2 | ~ | = | holds |" in text  # the paper's tie
    assert "Of 25 cells: 25 holds." in text
    assert "compares runs, not means" in text and "Here a full separation by chance: 0.333." in text  # the rule is printed
    assert "### dSprites coherence without a classifier" in text


def test_one_seed_is_never_judged():
    text = "\n".join(verdict.section(runs_of({"mmjsd": [dsprites_eval("mmjsd")], "mmpoe": [dsprites_eval("mmpoe")]})))
    assert "| 1a | shape text | 0.970 | 0.970 | 0.340 | 0.340 | - | ? | > | not judged (1 seed) |" in text
    assert "Of 25 cells: 25 not judged (1 seed)." in text


def test_overlapping_runs_are_unresolved_not_held():
    noisy = verdict.compare([0.50, 0.70, 0.60], [0.45, 0.75, 0.50])          # every mmJSD run inside mmPoE's range
    assert (noisy.order, noisy.above, noisy.below) == ("~", 0, 0)
    assert verdict.verdict(noisy, ">") == "unresolved (runs overlap)" and verdict.verdict(noisy, "=") == "holds"
    tight = verdict.compare([0.60, 0.61, 0.62], [0.50, 0.51, 0.52])
    assert tight.order == ">" and abs(tight.chance - 0.1) < 1e-12            # 2 / C(6, 3)
    assert abs(verdict.compare([1, 2, 3, 4, 5], [0] * 5).chance - 2 / 252) < 1e-12


def test_a_cell_whose_runs_fall_into_two_groups_counts_them():
    # mmJSD's image content: two runs of one kind (shape readable), three of the other; mmPoE between
    split = verdict.compare([0.44, 0.46, 0.59, 0.63, 0.42], [0.50, 0.52, 0.55, 0.48, 0.57])
    assert (split.order, split.above, split.below, split.runs) == ("~", 2, 3, 5)
    assert verdict.verdict(split, ">") == "holds in 2 of 5 runs, reversed in 3"
    assert verdict.verdict(split, "<") == "holds in 3 of 5 runs, reversed in 2"
    assert verdict.verdict(split, "=") == "holds in 0 of 5 runs"
    assert verdict.ahead(split) == "mmJSD ahead in 2 of 5 runs, behind in 3"
    some = verdict.compare([0.60, 0.62, 0.51], [0.50, 0.52, 0.55])
    assert verdict.verdict(some, ">") == "holds in 2 of 3 runs" and verdict.verdict(some, "<") == "reversed in 2 of 3 runs"
    assert verdict.verdict_kind("holds in 2 of 3 runs") == "mixed (some runs)" and verdict.verdict_kind("holds") == "holds"
    evals = {"mmjsd": two_seeds("mmjsd"), "mmpoe": two_seeds("mmpoe")}
    evals["mmjsd"][1]["latent"]["img"]["shape"] = 0.30                          # one run of the other kind
    text = "\n".join(verdict.section(runs_of(evals)))
    assert "| 1b | img latent shape | 0.650 | 1.000 0.300 | 0.380 | 0.380 0.380 | 1 / 1 of 2 | ~ | > | holds in 1 of 2 runs, reversed in 1 |" in text
    assert "Of 25 cells: 24 holds, 1 mixed (some runs)." in text


def test_the_template_shape_measure_gets_its_columns_only_when_every_run_has_it():
    evals = {"mmjsd": [dsprites_eval("mmjsd")], "mmpoe": [dsprites_eval("mmpoe")]}
    text = "\n".join(verdict.section(runs_of(evals)))
    assert "best template" not in text                  # runs evaluated before the measure existed
    for model, margins in (("mmjsd", (0.004, 0.105, 0.071)), ("mmpoe", (0.08, 0.121, 0.061))):
        # stored as eval.json stores it: keys sorted (ellipse, heart, square), not in the header's order
        evals[model][0]["coherence_direct"]["image_shape_template"] = {
            "match": 0.8, "margin": 0.06, "margin_by_shape": dict(sorted(zip(("square", "ellipse", "heart"), margins)))}
    text = "\n".join(verdict.section(runs_of(evals)))
    assert "| img shape, best template | img shape margin: square / ellipse / heart |" in text
    assert "| mmjsd | 0.900 | 0.500 | 0.800 | 0.800 | +0.004 / +0.105 / +0.071 |" in text


def test_a_reversed_cell_is_named():
    runs = runs_of({"mmjsd": two_seeds("mmjsd", swap_shape_text=True), "mmpoe": two_seeds("mmpoe", swap_shape_text=True)})
    text = "\n".join(verdict.section(runs))
    assert "| 1a | shape text | 0.340 | 0.340 0.340 | 0.970 | 0.970 0.970 | 0 / 2 of 2 | < | > | does not hold |" in text
    assert "Of 25 cells: 24 holds, 1 does not hold." in text


def test_orders_and_verdicts():
    assert verdict.paper_order(0.50, 0.49) == ">" and verdict.paper_order(0.33, 0.33) == "=" and verdict.paper_order(None, 0.5) is None
    assert verdict.compare([None], [0.5]).order is None and verdict.compare([0.6], [0.5]).order == "?"
    assert verdict.compare([0.6, float("nan"), 0.7], [0.5, 0.4]).runs == 2                  # NaN left out, as in Table 1
    below = verdict.compare([0.1, 0.2], [0.5, 0.6])
    assert verdict.verdict(below, ">") == "does not hold" and verdict.verdict(below, "<") == "holds"
    assert verdict.verdict(below, "=") == "does not hold" and verdict.verdict(verdict.compare([None], [0.5]), ">") == "n/a"
    assert verdict.verdict(verdict.compare([0.6], [0.5]), ">") == "not judged (1 seed)"
    assert verdict.ahead(below) == "mmPoE ahead" and verdict.ahead(verdict.compare([0.3, 0.6], [0.5, 0.55])) == \
        "mmJSD ahead in 1 of 2 runs, behind in 1"


def test_celeba_conditioning_and_average_precision():
    def celeba_eval(male_gap, smiling_gap, ap_male):
        return {"conditioning": {"gaps": {"Male": {"gap": male_gap}, "Smiling": {"gap": smiling_gap}}, "faces_per_string": 64},
                "coherence_average_precision": {"Male": {"img": ap_male, "text": 0.9}, "Smiling": {"img": 0.7, "text": None}}}
    runs = runs_of({"mmjsd": [celeba_eval(0.5, 0.1, 0.9), celeba_eval(0.3, 0.1, 0.8)],
                    "mmpoe": [celeba_eval(0.0, 0.2, 0.6), celeba_eval(0.0, 0.2, 0.6)]}, dataset="celeba")
    text = "\n".join(verdict.section(runs))
    assert "| Male | +0.400 ± 0.141 | +0.000 ± 0.000 | mmJSD ahead |" in text     # both runs above both
    assert "| Smiling | +0.100 ± 0.000 | +0.200 ± 0.000 | mmPoE ahead |" in text
    assert "The paper reports no CelebA numbers" in text and "The paper reports mmJSD above" not in text
    assert "mmJSD ahead in every run in 1 of 2 attributes (images from text); 0 of 1 attributes (text from images)" in text
    assert "mmPoE ahead in every run in 0 (images from text); 0 (text from images)." in text
    # per-seed means over attributes: mmJSD img 0.80, 0.75; mmPoE 0.65, 0.65; text 0.9 everywhere
    assert "| images from text | 0.775 ± 0.035 | 0.800 0.750 | 0.650 ± 0.000 | 0.650 0.650 | +0.125 | mmJSD ahead |" in text
    assert "| text from images | 0.900 ± 0.000 | 0.900 0.900 | 0.900 ± 0.000 | 0.900 0.900 | +0.000 | within noise (runs overlap) |" in text
    assert verdict.conditioning_caption(runs[0]["eval"]) == "Male +0.50, Smiling +0.10"


def test_paired_conditioning_in_the_report_and_caption():
    def celeba_eval(paired_male):
        return {"conditioning": {"gaps": {"Male": {"gap": 0.1}}, "faces_per_string": 64},
                "conditioning_paired": {"rows": 128, "gaps": {"Male": {"gap": paired_male, "rows_rising": 0.9}}}}
    runs = runs_of({"mmjsd": [celeba_eval(0.3)], "mmpoe": [celeba_eval(-0.1)]}, dataset="celeba")
    text = "\n".join(verdict.section(runs))
    assert "texts of 128 real test rows" in text
    assert "| Male | +0.300 | 0.900 | -0.100 | 0.900 | not judged (1 seed) |" in text
    assert verdict.conditioning_caption(runs[0]["eval"]) == "Male +0.10"   # in context: the report only


def test_described_conditioning_in_the_report_and_caption():
    def celeba_eval(described_male, string_male):
        return {"conditioning": {"gaps": {"Male": {"gap": string_male}, "Smiling": {"gap": 0.0}}, "faces_per_string": 64},
                "conditioning_described": {"texts": 512, "faces_per_text": 2,
                                           "gaps": {"Male": {"gap": described_male}, "Smiling": {"gap": 0.4}}}}
    runs = runs_of({"mmjsd": [celeba_eval(0.5, 0.05)], "mmpoe": [celeba_eval(0.2, 0.3)]}, dataset="celeba")
    text = "\n".join(verdict.section(runs))
    described_table, strings_table = text.split("Short strings:")
    assert "first 512 real texts" in described_table and "| Male | +0.500 | +0.200 | not judged (1 seed) |" in described_table
    assert "| Male | +0.050 | +0.300 | not judged (1 seed) |" in strings_table
    assert verdict.conditioning_caption(runs[0]["eval"]) == "real texts Male +0.50, Smiling +0.40; short strings +0.05, +0.00"
