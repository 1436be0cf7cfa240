"""Where a model puts the text contents of men among the image contents (docs/evidence/fidelity-log.md,
C15).

    python benchmarks/diagnostics/celeba_content_alignment.py \
        --classifier results/repro/classifiers/celeba/img.pt \
        --split data/repro/processed/celeba/val.pt RUN [RUN ...]
    RUN: a run folder (results/repro/runs/celeba/mmjsd/seed0), its model.pt or its checkpoint.pt

For the first 2,000 rows of SPLIT: each text's content mean, its 10 nearest image content means
(Euclidean), and the share of men among the faces those belong to, for men's texts and for
women's. Beside it the same share among the 10 nearest *text* contents (how well the text
content separates the sexes on its own), and the image classifier's mean P(Male) on faces
generated from the first 512 texts, with the content at the text posterior's mean (the
pipeline's generation) and at one sample of it (the authors' conditional figures).
A selection tool: it reads val, never test (mmjsd.lab.holdout).
"""

import argparse

import torch

from mmjsd.data.processed import load_split, model_input
from mmjsd.evaluation.classifiers import load_classifier
from mmjsd.lab import holdout
from mmjsd.training.runs import load_run

holdout.enter_selection()   # diagnostics are selection tools: they read val, never test

ROWS, GENERATED, NEIGHBOURS = 2000, 512, 10


def share_of_men(distances: torch.Tensor, male: torch.Tensor) -> torch.Tensor:
    nearest = distances.topk(NEIGHBOURS, largest=False).indices
    return male[nearest].float().mean(dim=1)


@torch.no_grad()
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", metavar="RUN", help="run folders, model.pt or checkpoint.pt files")
    parser.add_argument("--classifier", required=True, help="the CelebA image classifier, e.g. results/repro/classifiers/celeba/img.pt")
    parser.add_argument("--split", required=True, help="a processed CelebA split, e.g. data/repro/processed/celeba/val.pt")
    args = parser.parse_args()
    classifier = load_classifier(args.classifier)
    split = load_split(args.split)
    male_column = list(split["label_names"]).index("Male")
    male = split["labels"][:ROWS, male_column].bool()
    images = model_input("img", split["images"][:ROWS])
    texts = model_input("text", split["text"][:ROWS])

    for path in args.runs:
        model = load_run(path).model
        posterior = model.encode_unimodal({"img": images, "text": texts})
        image_content = posterior["img"].content_mu.float()
        text_content = posterior["text"].content_mu.float()
        text_sd = (0.5 * posterior["text"].content_logvar.float()).exp()
        among_images = share_of_men(torch.cdist(text_content, image_content), male)
        text_distances = torch.cdist(text_content, text_content).fill_diagonal_(float("inf"))
        among_texts = share_of_men(text_distances, male)

        generator = torch.Generator().manual_seed(0)
        mean = text_content[:GENERATED]
        sample = mean + text_sd[:GENERATED] * torch.randn(mean.shape, generator=generator)
        no_style = {"img": torch.zeros(GENERATED, model.style_dims["img"])}
        shown = male[:GENERATED]
        levels = []
        for name, content in (("mean", mean), ("sample", sample)):
            faces = model.to_data("img", model.decode(content, no_style)["img"])
            p_male = classifier.predict_and_score(faces)[1].float()[:, male_column]
            levels.append(f"{name} {p_male[shown].mean():.2f} / {p_male[~shown].mean():.2f}")
        print(f"{path}\n"
              f"  men among the {NEIGHBOURS} nearest image contents: men's texts {among_images[male].mean():.2f}, "
              f"women's {among_images[~male].mean():.2f}\n"
              f"  men among the {NEIGHBOURS} nearest text contents:  men's texts {among_texts[male].mean():.2f}, "
              f"women's {among_texts[~male].mean():.2f}\n"
              f"  P(Male) of faces from text (men's / women's texts): {', '.join(levels)}")


if __name__ == "__main__":
    main()
