"""The dSprites pose image decoder (an experiment outside the product, experiments/dsprites_pose.py):
content draws the sprite, the image style only turns and moves it. And the way code outside
the package joins a run (mmjsd.core.extensions): only when a config lists it under `extensions:`,
allowed by the config schema only then, and recorded in the code digest and the rules' code inputs
only then."""

import subprocess
import sys
from pathlib import Path

import pytest
import torch

import model_helpers as h
from mmjsd.artifacts import steps
from mmjsd.config import load_config
from mmjsd.core import extensions
from mmjsd.errors import ConfigError
from mmjsd.training import precision

REPO = Path(__file__).resolve().parents[1]
POSE_FILE = REPO / "experiments" / "dsprites_pose.py"


@pytest.fixture(autouse=True)
def pose_registered():
    extensions.load([POSE_FILE])
    yield
    extensions.unload()


def PoseImageDecoder(*args, **kwargs):
    from mmjsd.networks.dsprites import IMAGE_DECODERS
    return IMAGE_DECODERS["pose"](*args, **kwargs)


def sprite_canvas(batch: int) -> torch.Tensor:
    """Logits of a 6 x 6 square at rows/columns 20-25 of a 64 x 64 background."""
    logits = torch.full((batch, 1, 64, 64), -20.0)
    logits[:, :, 20:26, 20:26] = 20.0
    return logits


def test_without_a_learnt_shift_the_canvas_is_returned_unmoved():
    decoder = PoseImageDecoder(1, content_dim=4, style_dim=3, width=0.25)
    decoder.canvas.forward = lambda content: sprite_canvas(content.shape[0])
    out = decoder(torch.randn(3, 7))           # the shift head starts at zero
    assert torch.allclose(out, sprite_canvas(3), atol=1e-4)


def test_the_style_moves_the_sprite_and_keeps_its_shape():
    decoder = PoseImageDecoder(1, content_dim=4, style_dim=3, width=0.25)
    decoder.canvas.forward = lambda content: sprite_canvas(content.shape[0])
    pixels = 8 / 32        # normalised coordinates: 2 units span 64 pixels
    decoder.pose.forward = lambda style: torch.tensor([[-pixels, 0.0, 0.0]]).expand(style.shape[0], 3)
    out = torch.sigmoid(decoder(torch.zeros(2, 7)))
    moved = torch.zeros(2, 1, 64, 64)
    moved[:, :, 20:26, 28:34] = 1.0            # x + 8 pixels: sampling 8 pixels to the left
    assert torch.allclose(out, moved, atol=1e-3)


def test_output_is_float32_under_bf16_and_style_gets_gradients():
    torch.manual_seed(0)
    decoder = PoseImageDecoder(1, content_dim=4, style_dim=3, width=0.25)
    torch.nn.init.normal_(decoder.pose[-1].weight)
    z = torch.randn(3, 7, requires_grad=True)
    with precision.autocast("cpu", "bf16"):
        out = decoder(z)
    assert out.dtype == torch.float32 and out.shape == (3, 1, 64, 64)
    out.sum().backward()
    assert z.grad[:, :3].abs().sum() > 0 and z.grad[:, 3:].abs().sum() > 0


def test_a_quarter_turn_turns_the_sprite_about_the_centre():
    decoder = PoseImageDecoder(1, content_dim=4, style_dim=3, width=0.25)
    bar = torch.full((1, 1, 64, 64), -20.0)
    bar[:, :, 30:34, 8:56] = 20.0              # a horizontal bar through the centre
    decoder.canvas.forward = lambda content: bar
    decoder.pose.forward = lambda style: torch.tensor([[0.0, 0.0, torch.pi / 2]])
    out = torch.sigmoid(decoder(torch.zeros(1, 7)))[0, 0]
    assert out[8:56, 30:34].mean() > 0.95 and out[30:34, 8:28].mean() < 0.05   # now vertical


@pytest.mark.parametrize("decoder", ["conv", "pose"])
@pytest.mark.parametrize("name", ["mmjsd", "mmpoe"])
def test_models_train_and_generate_with_the_pose_decoders(name, decoder):
    model = h.make_model(name, "dsprites", image_decoder=decoder, style_dim={"img": 3, "text": 0})
    batch = h.make_batch("dsprites")
    terms = model.loss(batch)
    assert torch.isfinite(terms["loss"])
    terms["loss"].backward()
    images = model.generate({"text": batch["text"]}, "img", generator=torch.Generator().manual_seed(0))
    assert images.shape == batch["img"].shape and images.min() >= 0 and images.max() <= 1


def test_celeba_refuses_the_pose_decoder():
    with pytest.raises(ValueError, match="dSprites only"):
        h.make_model("mmjsd", "celeba", image_decoder="pose")


@pytest.mark.parametrize("bad", [float("inf"), float("-inf"), float("nan"), 1e30])
def test_non_finite_or_huge_poses_give_a_finite_backward_not_a_crash(bad):
    """A diverging run's pose reaches grid_sample bounded and finite (it segfaulted in backward)."""
    decoder = PoseImageDecoder(1, content_dim=4, style_dim=3, width=0.25)
    decoder.pose.forward = lambda style: torch.full((style.shape[0], 3), bad) + 0 * style.sum()
    z = torch.randn(2, 7, requires_grad=True)
    decoder(z).sum().backward()
    assert z.grad is not None


def test_without_the_extension_the_product_knows_no_pose_decoder(tmp_path):
    extensions.unload()
    from mmjsd.networks.dsprites import IMAGE_DECODERS
    assert list(IMAGE_DECODERS) == ["conv"]
    config = tmp_path / "config.yaml"
    text = (REPO / "config.yaml").read_text().replace("    image_decoder: conv\n", "    image_decoder: pose\n", 1)
    config.write_text(text)
    with pytest.raises(ConfigError, match="image_decoder"):
        load_config(config, "ci")
    config.write_text(f"extensions: [{POSE_FILE}]\n" + text)       # the config asks for it
    assert load_config(config, "ci")["model"]["dsprites"]["image_decoder"] == "pose"
    assert "pose" in IMAGE_DECODERS


def test_an_extension_enters_the_code_digest_and_code_inputs_only_when_listed():
    with_pose = steps.code_digest("train")
    extensions.unload()
    product = steps.code_digest("train")
    assert with_pose != product
    assert not [p for p in steps.code_paths("train") if p.startswith("experiments/")]   # no Snakemake or DVC input
    assert steps.code_paths("train", {"extensions": ["experiments/dsprites_pose.py"]})[-1] == "experiments/dsprites_pose.py"


def test_the_cli_names_a_missing_extension_file_in_one_line(tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text("extensions: [absent.py]\n" + (REPO / "config.yaml").read_text())
    done = subprocess.run([sys.executable, "-m", "mmjsd.cli", "--config", str(config), "--scale", "ci", "status"],
                          capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.startswith("mmjsd: error: extension file absent.py does not exist") and "-- fix:" in done.stderr
