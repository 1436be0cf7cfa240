"""The training split in memory: binary images bit-packed, batches built by indexing on the
training device, and the reproducible batch order of every epoch (mmjsd.training.train reads them)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from mmjsd.data.processed import model_input, sorted_subset


def pack_binary_images(images: torch.Tensor, chunk: int = 65536) -> torch.Tensor:
    """uint8 N x C x H x W with values {0, 255} -> uint8 N x (C*H*W/8), 8 pixels per byte.

    Full-scale dSprites training data is 663,552 x 4096 bytes = 2.7 GB as uint8 and 340 MB
    packed, which fits on any GPU beside the model. Packing goes in chunks to bound memory.
    """
    n = images.shape[0]
    flat_size = images[0].numel()
    if flat_size % 8:
        raise ValueError("image size must be a multiple of 8 to bit-pack")
    weights = (2 ** torch.arange(7, -1, -1, dtype=torch.int32))
    packed = torch.empty((n, flat_size // 8), dtype=torch.uint8)
    for start in range(0, n, chunk):
        bits = (images[start:start + chunk].reshape(-1, flat_size // 8, 8) > 127).to(torch.int32)
        packed[start:start + chunk] = (bits * weights).sum(-1).to(torch.uint8)
    return packed


def unpack_binary_images(packed: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    """Inverse of pack_binary_images for one batch -> float32 B x C x H x W in {0, 1}."""
    shifts = torch.arange(7, -1, -1, device=packed.device, dtype=torch.uint8)
    bits = (packed.unsqueeze(-1) >> shifts) & 1
    return bits.reshape(packed.shape[0], *shape).float()


@dataclass
class InMemoryData:
    """The training split as device tensors; `batch(idx)` builds one model batch by indexing."""

    images: torch.Tensor        # packed bits (binary) or uint8 images
    text: torch.Tensor          # uint8 N x L
    image_shape: tuple[int, ...]
    binary: bool

    @classmethod
    def from_split(cls, split: dict, device: str, max_samples: int | None, seed: int) -> "InMemoryData":
        """The split's rows, or (`max_samples`) a subset of them drawn with `seed`, kept in split order."""
        images, text = split["images"], split["text"]
        keep = sorted_subset(text.shape[0], max_samples, torch.Generator().manual_seed(seed))
        if keep.numel() < text.shape[0]:
            images, text = images[keep], text[keep]
        image_shape = tuple(images.shape[1:])
        # dSprites pixels are exactly 0 or 255: pack them; anything else stays uint8.
        binary = split.get("dataset") == "dsprites"
        stored = pack_binary_images(images) if binary else images.contiguous()
        return cls(stored.to(device), text.to(device), image_shape, binary)

    def __len__(self) -> int:
        return self.text.shape[0]

    def batch(self, idx: torch.Tensor) -> dict[str, torch.Tensor]:
        if self.binary:
            img = unpack_binary_images(self.images[idx], self.image_shape)
        else:
            img = model_input("img", self.images[idx])
        return {"img": img, "text": model_input("text", self.text[idx])}


def epoch_order(n: int, seed: int, epoch: int) -> torch.Tensor:
    """The batch order of one epoch, reproducible from (seed, epoch) alone (CPU generator)."""
    generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(n, generator=generator)
