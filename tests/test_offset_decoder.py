"""The dSprites offset text decoder: content writes the string, style places it."""

import pytest
import torch
import torch.nn.functional as F

import model_helpers as h
from mmjsd import precision
from mmjsd.data import text
from mmjsd.networks.dsprites import OffsetTextDecoder

L, A = 64, len(text.ALPHABET)


class FixedOffset(torch.nn.Module):
    def __init__(self, start: int):
        super().__init__()
        self.start = start

    def forward(self, style):
        logits = torch.full((style.shape[0], L), -60.0)
        logits[:, self.start] = 60.0
        return logits


@pytest.mark.parametrize("start", [0, 7, 30])
def test_a_sure_offset_places_the_string_exactly(start):
    decoder = OffsetTextDecoder(L, A, content_dim=4, style_dim=1, width=0.25)
    words = text.encode(["heart, zero point six".ljust(L, "*")], length=L).long()
    decoder.string.forward = lambda content: F.one_hot(words, A).float() * 60.0
    decoder.offset = FixedOffset(start)
    out = decoder(torch.zeros(1, 5))
    assert text.decode(out.argmax(-1))[0] == ("*" * start + "heart, zero point six").ljust(L, "*")
    assert torch.allclose(out.exp().sum(-1), torch.ones(1, L), atol=1e-5)   # normalised per character


def test_output_is_float32_log_probabilities_under_bf16():
    decoder = OffsetTextDecoder(L, A, content_dim=4, style_dim=2, width=0.25)
    with precision.autocast("cpu", "bf16"):
        out = decoder(torch.randn(3, 6))
    assert out.dtype == torch.float32 and out.shape == (3, L, A)
    assert torch.allclose(out.exp().sum(-1), torch.ones(3, L), atol=1e-4)


def test_the_style_cannot_change_what_the_string_says():
    """Two styles give the same string, only shifted: content alone decides the words."""
    torch.manual_seed(0)
    decoder = OffsetTextDecoder(L, A, content_dim=4, style_dim=1, width=0.25)
    content = torch.randn(1, 4)
    string = decoder.string(content).argmax(-1)
    decoder.offset = FixedOffset(5)
    shifted = decoder(torch.cat([torch.zeros(1, 1), content], 1)).argmax(-1)
    assert torch.equal(shifted[0, 5:], string[0, :L - 5])


@pytest.mark.parametrize("name", ["mmjsd", "mmpoe"])
def test_models_train_and_generate_with_the_offset_decoder(name):
    model = h.make_model(name, "dsprites", text_decoder="offset", style_dim={"img": 0, "text": 1})
    batch = h.make_batch("dsprites")
    terms = model.loss(batch)
    terms["loss"].backward()
    assert torch.isfinite(terms["loss"])
    assert model.decoders["text"].offset[0].weight.grad is not None
    generated = model.generate({"img": batch["img"]}, "text", generator=torch.Generator().manual_seed(0))
    assert generated.shape == batch["text"].shape and generated.dtype == torch.int64


def test_aligned_text_likelihood_ignores_the_start_offset():
    """text_decoder 'aligned': the same words at two offsets have the same text likelihood."""
    model = h.make_model("mmjsd", "dsprites", text_decoder="aligned", style_dim={"img": 0, "text": 0})
    words = "square, zero point five, upright, upper right"
    early, late = (text.encode([("*" * s + words).ljust(L, "*")], length=L).long() for s in (0, 12))
    output = torch.randn(1, L, A)
    assert torch.equal(model.log_likelihood("text", output, early), model.log_likelihood("text", output, late))
    plain = h.make_model("mmjsd", "dsprites", text_decoder="conv", style_dim={"img": 0, "text": 0})
    assert not torch.equal(plain.log_likelihood("text", output, early), plain.log_likelihood("text", output, late))
