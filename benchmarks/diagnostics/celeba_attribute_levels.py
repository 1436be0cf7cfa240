"""Where the image classifier puts faces of men and women: real test images, the model's images
from their own image content, and its images from their texts (docs/FIDELITY.md, C14).

    python benchmarks/diagnostics/celeba_attribute_levels.py SCALE MODEL.pt [MODEL.pt ...]

For the first 512 rows of the scale's `test_eval` split: the mean P(Male) and P(Smiling) from
the scale's image classifier, for the rows whose true label has the attribute and for the others,
on each of the three kinds of face. A gap of means that is small on faces generated from
*images* as well as from texts says the classifier reads the model's faces flatly; one that is
small only from texts says the text does not carry the attribute through.
"""

import sys

import torch

from mmjsd.classifiers import load_classifier
from mmjsd.data.processed import model_input
from mmjsd.models import load_model

ROWS, SHOWN = 512, ("Male", "Smiling")


@torch.no_grad()
def main(scale: str, models: list[str]) -> None:
    classifier = load_classifier(f"results/{scale}/classifiers/celeba/img.pt")
    test = torch.load(f"data/{scale}/processed/celeba/test_eval.pt", weights_only=False)
    names = list(test["label_names"])
    labels = test["labels"][:ROWS].bool()
    images = model_input("img", test["images"][:ROWS])
    texts = model_input("text", test["text"][:ROWS])

    def levels(faces: torch.Tensor) -> str:
        probability = classifier.predict_and_score(faces)[1].float()
        parts = []
        for attribute in SHOWN:
            column = names.index(attribute)
            has = labels[:, column]
            parts.append(f"{attribute} {probability[has, column].mean():.2f} / {probability[~has, column].mean():.2f}")
        return ", ".join(parts)

    print(f"real test images: {levels(images)}  (with / without the attribute)")
    for path in models:
        model = load_model(path).eval()
        generator = torch.Generator().manual_seed(0)
        from_images = model.generate({"img": images}, "img", generator=generator)
        from_texts = model.generate({"text": texts}, "img", generator=generator)
        print(f"{path}\n  from their images: {levels(from_images)}\n  from their texts:  {levels(from_texts)}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
