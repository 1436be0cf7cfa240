"""CelebA conditioning, Figure 1's claim in numbers: do faces generated from text follow the
attributes the text names? Three measures, each a gap in the image classifier's P(attribute).

- Figure strings (`conditioning_gaps`): for each attribute named in the strings of
  `eval.figure.texts`, the mean P(attribute) on faces generated from the strings that name it,
  minus the same on faces from the strings that do not. Each string is padded at
  CONDITIONING_PADDINGS seeded starts and decoded with CONDITIONING_STYLES seeded image styles.
- Described (`described_conditioning`), the authors' protocol: their conditional figures
  generate from real test texts (testing/test_functions_celeba.py, generate_conditional_fig).
  The same gap on the first DESCRIBED_ROWS real texts of the eval half, each re-padded at
  DESCRIBED_PADDINGS seeded starts, for every attribute some but not all of them name. A real
  text names every attribute of its face, so this gap counts the words that go with an
  attribute too (lipstick with not-male); the paired measure isolates the word.
- Paired, in context (`paired_conditioning`): the first PAIRED_ROWS rows of the eval half, each
  written as its attribute text twice, with the attribute switched on and off (everything else
  equal, the same seeded padding starts); the gap is the mean difference of P(attribute) on the
  two faces, and `rows_rising` the share of rows where it rises.
"""

from __future__ import annotations

from typing import Any

import torch

from mmjsd.data import celeba
from mmjsd.data.processed import model_input
from mmjsd.data.text import decode, encode_at_seeded_starts, strip_padding
from mmjsd.training import runtime

CONDITIONING_PADDINGS = 8      # random text starts per figure string
CONDITIONING_STYLES = 8        # image styles ~ N(0, I) per padded string
PAIRED_ROWS = 128              # real test rows per attribute in the paired measure
DESCRIBED_ROWS = 512           # real test texts in the described measure
DESCRIBED_PADDINGS = 2         # seeded starts per real text


def named_attributes(texts: list[str], label_names: list[str]) -> dict[str, list[bool]]:
    """{attribute: [string names it?]} for every attribute that some but not all strings name."""
    words = {name.replace("_", " ").lower(): name for name in label_names}
    named = [{words[w] for w in text.split(", ") if w in words} for text in texts]
    return {name: [name in n for n in named] for name in label_names
            if 0 < sum(name in n for n in named) < len(texts)}


def gaps_by_naming(table: torch.Tensor, names: list[str], attributes: dict[str, list[bool]], unit: str) -> dict[str, dict]:
    """Per attribute: mean P(attribute) over the rows of `table` (texts x F probabilities) whose
    text names it, the same over the others, their difference, and how many `unit` are in each."""
    gaps = {}
    for name, has in attributes.items():
        column, mask = names.index(name), torch.tensor(has)
        with_it, without = table[mask, column].mean().item(), table[~mask, column].mean().item()
        gaps[name] = {"with": with_it, "without": without, "gap": with_it - without,
                      f"{unit}_with": int(mask.sum()), f"{unit}_without": int((~mask).sum())}
    return gaps


@torch.no_grad()
def conditioning_gaps(model, image_classifier, texts: list[str], test: dict, seed: int) -> dict[str, Any]:
    """P(attribute | faces from strings naming it) - P(attribute | faces from the other strings)."""
    names = list(test["label_names"])
    attributes = named_attributes(texts, names)
    if not attributes:
        return {}
    device = runtime.module_device(model)
    length, alphabet = int(test["text"].shape[1]), test["alphabet"]
    generator = torch.Generator().manual_seed(seed)
    mean_probability = []   # per string: mean P(attribute) over its faces, F values
    for index, text in enumerate(texts):
        padded = torch.cat([encode_at_seeded_starts([text], length, alphabet, seed * 1000 + index * CONDITIONING_PADDINGS + k)
                            for k in range(CONDITIONING_PADDINGS)])
        cond = model_input("text", padded.repeat_interleave(CONDITIONING_STYLES, dim=0).to(device))
        faces = model.generate({"text": cond}, "img", generator=generator)
        _, scores = image_classifier.predict_and_score(faces)
        mean_probability.append(scores.float().mean(dim=0).cpu())
    gaps = gaps_by_naming(torch.stack(mean_probability), names, attributes, "strings")
    return {"gaps": gaps, "faces_per_string": CONDITIONING_PADDINGS * CONDITIONING_STYLES, "texts": list(texts)}


@torch.no_grad()
def described_conditioning(model, image_classifier, test_eval: dict, batch_size: int, seed: int) -> dict[str, Any]:
    """P(attribute | faces from real test texts naming it) - P(attribute | the other texts), for
    every attribute some but not all of the texts name (module docstring, (c))."""
    names = list(test_eval["label_names"])
    length, alphabet = int(test_eval["text"].shape[1]), test_eval["alphabet"]
    texts = strip_padding(decode(test_eval["text"][:DESCRIBED_ROWS], alphabet))
    attributes = named_attributes(texts, names)
    if not attributes:
        return {}
    device = runtime.module_device(model)
    generator = torch.Generator().manual_seed(seed)
    probability = []    # per padding: texts x F
    for padding in range(DESCRIBED_PADDINGS):
        padded = encode_at_seeded_starts(texts, length, alphabet, seed * 1000 + padding)
        scores = []
        for index in runtime.batches(torch.arange(len(texts)), batch_size):
            faces = model.generate({"text": model_input("text", padded[index].to(device))}, "img", generator=generator)
            scores.append(image_classifier.predict_and_score(faces)[1].float().cpu())
        probability.append(torch.cat(scores))
    table = torch.stack(probability).mean(dim=0)     # texts x F, mean over paddings
    return {"gaps": gaps_by_naming(table, names, attributes, "texts"), "texts": len(texts), "faces_per_text": DESCRIBED_PADDINGS}


@torch.no_grad()
def paired_conditioning(model, image_classifier, texts: list[str], test_eval: dict, seed: int) -> dict[str, Any]:
    """For each attribute the figure strings name: P(attribute) on faces generated from real test
    rows' texts with the attribute on, minus the same rows with it off (module docstring, (c))."""
    names = list(test_eval["label_names"])
    attributes = list(named_attributes(texts, names))
    rows = test_eval["labels"][:PAIRED_ROWS].numpy() > 0
    if not attributes or len(rows) == 0:
        return {}
    device = runtime.module_device(model)
    length, alphabet = int(test_eval["text"].shape[1]), test_eval["alphabet"]
    generator = torch.Generator().manual_seed(seed)
    paired = {}
    for name in attributes:
        column = names.index(name)
        probability = []
        for state in (True, False):
            switched = rows.copy()
            switched[:, column] = state
            strings = [celeba.attribute_string(row, length) for row in switched]
            cond = model_input("text", encode_at_seeded_starts(strings, length, alphabet, seed).to(device))  # same seeded draw of starts
            _, scores = image_classifier.predict_and_score(model.generate({"text": cond}, "img", generator=generator))
            probability.append(scores[:, column].float().cpu())
        difference = probability[0] - probability[1]
        paired[name] = {"with": probability[0].mean().item(), "without": probability[1].mean().item(),
                        "gap": difference.mean().item(), "rows_rising": (difference > 0).float().mean().item()}
    return {"gaps": paired, "rows": int(len(rows))}
