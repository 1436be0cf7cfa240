"""The dSprites text likelihoods: `aligned` ignores the random padding start, `conv` does not."""

import torch

import model_helpers as h
from mmjsd.data import text

L, A = 64, len(text.ALPHABET)


def test_aligned_text_likelihood_ignores_the_start_offset():
    """text_decoder 'aligned': the same words at two offsets have the same text likelihood."""
    model = h.make_model("mmjsd", "dsprites", text_decoder="aligned", style_dim={"img": 0, "text": 0})
    words = "square, zero point five, upright, upper right"
    early, late = (text.encode([("*" * s + words).ljust(L, "*")], length=L).long() for s in (0, 12))
    output = torch.randn(1, L, A)
    assert torch.equal(model.log_likelihood("text", output, early), model.log_likelihood("text", output, late))
    plain = h.make_model("mmjsd", "dsprites", text_decoder="conv", style_dim={"img": 0, "text": 0})
    assert not torch.equal(plain.log_likelihood("text", output, early), plain.log_likelihood("text", output, late))
