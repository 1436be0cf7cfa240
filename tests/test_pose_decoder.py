"""The dSprites pose image decoders: content draws the sprite, the image style only moves (and turns) it."""

import numpy as np
import pytest
import torch

import model_helpers as h
from mmjsd import precision
from mmjsd.data.dsprites import ROW_STRIDES
from mmjsd.data.dsprites_render import render_rows
from mmjsd.networks.dsprites import (
    POSE_SHIFT_BOUND,
    UPRIGHT_ANGLE_SCALE,
    PoseImageDecoder,
    UprightImageDecoder,
    UprightImageEncoder,
    centroid,
    turn,
)


def sprite_canvas(batch: int) -> torch.Tensor:
    """Logits of a 6 x 6 square at rows/columns 20-25 of a 64 x 64 background."""
    logits = torch.full((batch, 1, 64, 64), -20.0)
    logits[:, :, 20:26, 20:26] = 20.0
    return logits


def test_without_a_learnt_shift_the_canvas_is_returned_unmoved():
    decoder = PoseImageDecoder(1, content_dim=4, style_dim=2, width=0.25)
    decoder.canvas.forward = lambda content: sprite_canvas(content.shape[0])
    out = decoder(torch.randn(3, 6))           # the shift head starts at zero
    assert torch.allclose(out, sprite_canvas(3), atol=1e-4)


def test_the_style_moves_the_sprite_and_keeps_its_shape():
    decoder = PoseImageDecoder(1, content_dim=4, style_dim=2, width=0.25)
    decoder.canvas.forward = lambda content: sprite_canvas(content.shape[0])
    pixels = 8 / 32        # normalised coordinates: 2 units span 64 pixels
    decoder.pose.forward = lambda style: torch.tensor([[-pixels, 0.0]]).expand(style.shape[0], 2)
    out = torch.sigmoid(decoder(torch.zeros(2, 6)))
    moved = torch.zeros(2, 1, 64, 64)
    moved[:, :, 20:26, 28:34] = 1.0            # x + 8 pixels: sampling 8 pixels to the left
    assert torch.allclose(out, moved, atol=1e-3)


def test_output_is_float32_under_bf16_and_style_gets_gradients():
    torch.manual_seed(0)
    decoder = PoseImageDecoder(1, content_dim=4, style_dim=2, width=0.25)
    torch.nn.init.normal_(decoder.pose[-1].weight)
    z = torch.randn(3, 6, requires_grad=True)
    with precision.autocast("cpu", "bf16"):
        out = decoder(z)
    assert out.dtype == torch.float32 and out.shape == (3, 1, 64, 64)
    out.sum().backward()
    assert z.grad[:, :2].abs().sum() > 0 and z.grad[:, 2:].abs().sum() > 0


def test_a_quarter_turn_turns_the_sprite_about_the_centre():
    decoder = PoseImageDecoder(1, content_dim=4, style_dim=3, width=0.25, rotate=True)
    bar = torch.full((1, 1, 64, 64), -20.0)
    bar[:, :, 30:34, 8:56] = 20.0              # a horizontal bar through the centre
    decoder.canvas.forward = lambda content: bar
    decoder.pose.forward = lambda style: torch.tensor([[0.0, 0.0, torch.pi / 2]])
    out = torch.sigmoid(decoder(torch.zeros(1, 7)))[0, 0]
    assert out[8:56, 30:34].mean() > 0.95 and out[30:34, 8:28].mean() < 0.05   # now vertical


def heart_upright_and_turned() -> tuple[torch.Tensor, torch.Tensor, float]:
    """A scale-1 heart off the centre (posX 8, posY 20) upright and at orientation 16 of 40, as the
    stand-in renderer draws them (1 x 1 x 64 x 64 in {0, 1}), and that orientation in radians."""
    rows = np.array([[0, 2, 5, o, 8, 20] for o in (0, 16)]) @ np.array(ROW_STRIDES)   # color, shape, scale, ...
    rendered = render_rows(rows)
    images = torch.from_numpy(rendered["imgs"]).float().unsqueeze(1)
    return images[:1], images[1:], float(rendered["latents_values"][1, 3])


def iou(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a > 0.5, b > 0.5
    return float((a & b).sum() / (a | b).sum())


def test_turning_about_the_centroid_keeps_the_sprite_in_place_and_undoes_itself():
    upright, turned, angle = heart_upright_and_turned()
    assert iou(upright, turned) < 0.8                                  # the turn shows (a heart is round-ish)
    there = turn(upright, torch.tensor([angle]), centroid(upright))
    assert iou(there, turned) > 0.95                                   # the renderer's sense of turning
    assert torch.allclose(centroid(there), centroid(upright), atol=0.01)
    back = turn(there, torch.tensor([-angle]), centroid(there))
    assert iou(back, upright) > 0.93


def test_the_upright_encoder_turns_the_image_back_by_its_style_angle_before_the_content():
    upright, turned, angle = heart_upright_and_turned()
    encoder = UprightImageEncoder(1, content_dim=4, style_dim=3, width=0.25)
    style = torch.tensor([[angle / UPRIGHT_ANGLE_SCALE, 0.0, 0.0]])
    encoder.pose.forward = lambda img: (None, None, style, torch.zeros_like(style))
    seen = []
    encoder.content.forward = lambda img: (seen.append(img), (torch.zeros(1, 4),) * 2 + (torch.zeros(1, 0),) * 2)[1]
    c_mu, _, s_mu, _ = encoder(turned)
    assert iou(seen[0], upright) > 0.93 and torch.equal(s_mu, style)


def test_the_upright_angle_starts_sharp_so_the_decoder_turns_by_the_encoders_angle():
    upright, turned, _ = heart_upright_and_turned()
    torch.manual_seed(0)
    encoder = UprightImageEncoder(1, content_dim=4, style_dim=3, width=0.25)
    _, _, _, s_logvar = encoder(torch.cat([upright, turned]))
    angle_sd_degrees = torch.exp(0.5 * s_logvar[:, 0]) * UPRIGHT_ANGLE_SCALE * 180 / torch.pi
    assert angle_sd_degrees.max() < 5 and torch.exp(0.5 * s_logvar[:, 1:]).min() > 0.1   # only the angle


def test_the_upright_decoder_turns_the_contents_sprite_by_the_style_angle():
    upright, turned, angle = heart_upright_and_turned()
    decoder = UprightImageDecoder(1, content_dim=4, style_dim=3, width=0.25)
    decoder.canvas.forward = lambda content: (upright * 40 - 20).expand(content.shape[0], -1, -1, -1)
    out = torch.sigmoid(decoder(torch.tensor([[angle / UPRIGHT_ANGLE_SCALE, 0.5, -0.5, 0, 0, 0, 0]])))
    assert iou(out, turned) > 0.95      # the shift head starts at zero: turned, not moved


def test_the_upright_pair_needs_an_image_style():
    with pytest.raises(ValueError, match="style_dim.img >= 1"):
        h.make_model("mmjsd", "dsprites", image_decoder="upright", style_dim={"img": 0, "text": 0})


@pytest.mark.parametrize("decoder", ["pose_split", "pose_split_read"])
def test_the_split_encoder_trains_each_stack_by_its_own_latent_only(decoder):
    model = h.make_model("mmjsd", "dsprites", image_decoder=decoder, style_dim={"img": 3, "text": 0})
    encoder = model.encoders["img"]
    image = h.make_batch("dsprites")["img"]
    c_mu, _, s_mu, _ = encoder(image)
    assert s_mu.shape[1] == 3
    c_mu.sum().backward()
    assert all(p.grad is None for p in encoder.pose.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in encoder.content.parameters())
    encoder.zero_grad(set_to_none=True)
    c_mu, _, s_mu, _ = encoder(image)
    s_mu.sum().backward()
    # the style's gradient never reaches the content stack, even where the style reads it
    assert all(p.grad is None for p in encoder.content.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in encoder.pose.parameters())


def test_the_bounded_shift_never_moves_the_sprite_past_half_a_position_third():
    decoder = PoseImageDecoder(1, content_dim=4, style_dim=3, width=0.25, rotate=True, shift_bound=POSE_SHIFT_BOUND)
    decoder.canvas.forward = lambda content: sprite_canvas(content.shape[0])
    asked = 20 / 32        # 20 pixels to the right, four times the bound
    decoder.pose.forward = lambda style: torch.tensor([[-asked, 0.0, 0.0]]).expand(style.shape[0], 3)
    out = torch.sigmoid(decoder(torch.zeros(1, 7)))
    moved_pixels = (centroid(out) - centroid(torch.sigmoid(sprite_canvas(1))))[0, 0] * 32
    assert 4.9 < moved_pixels <= 5.0           # 5 pixels: POSE_SHIFT_BOUND, and no further


def test_the_reading_style_changes_with_the_content_stacks_features():
    model = h.make_model("mmjsd", "dsprites", image_decoder="pose_split_read", style_dim={"img": 3, "text": 0})
    encoder = model.encoders["img"]
    image = h.make_batch("dsprites")["img"]
    _, _, before, _ = encoder(image)
    with torch.no_grad():
        encoder.content.fc[1].bias.add_(1.0)
    _, _, after, _ = encoder(image)
    assert not torch.allclose(before, after)


@pytest.mark.parametrize("decoder", ["shift", "pose", "pose_split", "pose_split_read", "pose_split_read_bounded", "upright"])
@pytest.mark.parametrize("name", ["mmjsd", "mmpoe"])
def test_models_train_and_generate_with_the_pose_decoders(name, decoder):
    model = h.make_model(name, "dsprites", image_decoder=decoder, style_dim={"img": 3, "text": 0})
    batch = h.make_batch("dsprites")
    terms = model.loss(batch)
    assert torch.isfinite(terms["loss"])
    terms["loss"].backward()
    images = model.generate({"text": batch["text"]}, "img", generator=torch.Generator().manual_seed(0))
    assert images.shape == batch["img"].shape and images.min() >= 0 and images.max() <= 1


def test_celeba_refuses_the_shift_decoder():
    with pytest.raises(ValueError, match="dSprites only"):
        h.make_model("mmjsd", "celeba", image_decoder="shift")
