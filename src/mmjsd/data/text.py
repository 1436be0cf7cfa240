"""The character-level text modality: the authors' alphabet, '*' padding, and encoding.

Both datasets describe each image by a short string (dSprites: its factors, CelebA: its
attribute names) that is placed at a random start inside a fixed-length field of '*' padding
and stored as indices into `ALPHABET` (uint8, one row per sample). The network one-hot encodes
the indices on the fly.

`ALPHABET` is the authors' `alphabet.json` (the MMVAE/mmJSD lineage; 71 entries) in its
exact order:

    index  0-25  a-z
    index 26-35  0-9
    index 36-70  - , ; . ! ? : ' " \\ / | _ @ # $ % ^ & * ~ ` + - = < > ( ) [ ] { } space newline

Two quirks are kept on purpose so that indices mean what they meant for the authors:
- '-' occurs twice (index 36 and 59). The authors encode with `alphabet.find(char)`, i.e. the
  first occurrence, so '-' always encodes to 36 and index 59 is never produced by encoding
  (a decoder may still emit it; it decodes to '-').
- The backslash comes before the slash (the reference notes list "/\\"; the json file has "\\/").
The padding symbol '*' is index 55.

Everything here is vectorised: strings are built once per *unique* template (a few hundred
for dSprites, at most one per image for CelebA) and padded/encoded with array indexing, so
the 737,280 dSprites strings take well under a second rather than a Python loop per sample.
"""

from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np
import torch

from mmjsd.errors import DataError

ALPHABET = (
    "abcdefghijklmnopqrstuvwxyz"
    "0123456789"
    "-,;.!?:'\"\\/|_@#$%^&*~`+-=<>()[]{}"
    " \n"
)
PAD = "*"

assert len(ALPHABET) == 71, len(ALPHABET)
PAD_INDEX = ALPHABET.find(PAD)


def _lookup(alphabet: str) -> np.ndarray:
    """Byte value -> alphabet index (first occurrence, like str.find), 255 = not in alphabet."""
    if len(alphabet) > 255:
        raise ValueError("alphabets of more than 255 symbols do not fit uint8 indices")
    if not alphabet.isascii():
        raise ValueError("only ASCII alphabets are supported by the vectorised encoder")
    table = np.full(256, 255, dtype=np.uint8)
    # reversed so that the *first* occurrence of a duplicated symbol wins (authors' find())
    for index in range(len(alphabet) - 1, -1, -1):
        table[ord(alphabet[index])] = index
    return table


def outside_alphabet(text: str, alphabet: str = ALPHABET) -> tuple[int, str] | None:
    """The first character of a user's string (before any padding) that the alphabet lacks, as
    (1-based position, character); None when every character is in it."""
    for position, ch in enumerate(text, start=1):
        if ch not in alphabet:
            return position, ch
    return None


def pad_text(s: str, length: int, start: int) -> str:
    """`s` placed at `start` inside `length` characters of '*' padding."""
    if len(s) > length:
        raise ValueError(f"text of {len(s)} characters does not fit {length}")
    if not 0 <= start <= length - len(s):
        raise ValueError(f"start {start} outside 0..{length - len(s)} for a text of {len(s)} characters")
    return PAD * start + s + PAD * (length - len(s) - start)


def random_pad_starts(lengths: Sequence[int] | np.ndarray | torch.Tensor, length: int,
                      generator: torch.Generator) -> torch.Tensor:
    """One start position per text, uniform over every position where the text fits.

    start_i ~ Uniform{0, ..., length - lengths_i}. One float64 draw per sample from `generator`
    (in sample order), so the result depends only on the seed and the number of samples.
    The authors drew from {0, ..., length - 2 - len} (numpy randint's exclusive bound with an
    extra -1); we use every position that fits, which only widens the range by two.
    """
    lengths = torch.as_tensor(np.asarray(lengths), dtype=torch.int64)
    if lengths.numel() and int(lengths.max()) > length:
        raise ValueError(f"a text of {int(lengths.max())} characters does not fit {length}")
    choices = (length - lengths + 1).to(torch.float64)
    u = torch.rand(lengths.shape, generator=generator, dtype=torch.float64)
    return torch.clamp((u * choices).floor().to(torch.int64), max=length - lengths)


def encode_unpadded(strings: Sequence[str], alphabet: str = ALPHABET,
                    max_length: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Encode variable-length strings into a K x max_length uint8 table (tail filled with the
    pad index) plus their lengths. Raises DataError for a character outside the alphabet."""
    strings = list(strings)
    lengths = np.fromiter((len(s) for s in strings), dtype=np.int64, count=len(strings))
    width = int(lengths.max()) if len(strings) else 0
    if max_length is not None:
        if width > max_length:
            worst = int(lengths.argmax())
            raise DataError(
                f"text sample {worst} has {width} characters, more than the {max_length} allowed: {strings[worst][:60]!r}",
                "shorten the text or raise the text length",
            )
        width = max_length
    if PAD not in alphabet:
        raise ValueError(f"the alphabet has no pad symbol {PAD!r}")
    padded = [s.ljust(width, PAD) for s in strings]
    table = encode(padded, alphabet=alphabet, length=width).numpy() if strings else np.zeros((0, width), np.uint8)
    return table, lengths


def place(table: np.ndarray, lengths: np.ndarray, codes: np.ndarray | torch.Tensor,
          starts: np.ndarray | torch.Tensor, length: int, pad_index: int = PAD_INDEX,
          chunk: int = 65536) -> torch.Tensor:
    """Padded index rows from templates: row n is template `codes[n]` (its first
    `lengths[codes[n]]` entries) at offset `starts[n]` inside `length` pad indices.

    A gather, chunked to bound the int64 intermediates at chunk x length.
    """
    codes = np.asarray(codes, dtype=np.int64)
    starts = np.asarray(starts, dtype=np.int64)
    n = codes.shape[0]
    out = np.empty((n, length), dtype=np.uint8)
    positions = np.arange(length, dtype=np.int64)[None, :]
    width = table.shape[1]
    for lo in range(0, n, chunk):
        hi = min(lo + chunk, n)
        offset = positions - starts[lo:hi, None]                      # index into the template
        inside = (offset >= 0) & (offset < lengths[codes[lo:hi], None])
        gathered = table[codes[lo:hi, None], np.clip(offset, 0, max(width - 1, 0))] if width else 0
        out[lo:hi] = np.where(inside, gathered, pad_index)
    return torch.from_numpy(out)


def encode_padded(strings: Sequence[str], length: int, generator: torch.Generator,
                  alphabet: str = ALPHABET) -> torch.Tensor:
    """Each string at a random start (one draw per string) inside `length` '*' characters,
    encoded as uint8 indices. Identical strings are encoded once (first-occurrence table)."""
    strings = list(strings)
    first_seen: dict[str, int] = {}
    codes = np.fromiter((first_seen.setdefault(s, len(first_seen)) for s in strings), dtype=np.int64, count=len(strings))
    table, lengths = encode_unpadded(list(first_seen), alphabet, max_length=length)
    starts = random_pad_starts(lengths[codes], length, generator)
    return place(table, lengths, codes, starts.numpy(), length, pad_index=alphabet.find(PAD))


def encode(strings: Iterable[str], alphabet: str = ALPHABET, length: int | None = None) -> torch.Tensor:
    """Strings of exactly `length` characters (default: the first string's length) as an
    N x length uint8 tensor of alphabet indices.

    A character outside the alphabet raises DataError naming the character and the sample;
    so does a string of the wrong length (pad it first: `pad_text`).
    """
    strings = list(strings)
    if length is None:
        length = len(strings[0]) if strings else 0
    if not strings:
        return torch.zeros((0, length), dtype=torch.uint8)
    bad = next((i for i, s in enumerate(strings) if len(s) != length), None)
    if bad is not None:
        raise DataError(f"text sample {bad} has {len(strings[bad])} characters, expected {length}: {strings[bad][:60]!r}",
                        f"pad every text to {length} characters with '{PAD}' (mmjsd.data.text.pad_text)")
    joined = "".join(strings)
    if not joined.isascii():
        _raise_outside(strings, alphabet)
    lut = _lookup(alphabet)
    flat = lut[np.frombuffer(joined.encode("ascii"), dtype=np.uint8)]
    if (flat == 255).any():
        _raise_outside(strings, alphabet)
    return torch.from_numpy(flat.reshape(len(strings), length).copy())


def _raise_outside(strings: Sequence[str], alphabet: str) -> None:
    allowed = set(alphabet)
    for i, s in enumerate(strings):
        for j, ch in enumerate(s):
            if ch not in allowed:
                raise DataError(
                    f"character {ch!r} (U+{ord(ch):04X}) at position {j} of text sample {i} is not in the "
                    f"{len(alphabet)}-symbol alphabet: {s.strip(PAD)[:60]!r}",
                    "use only lower-case a-z, digits, space, newline and the alphabet's punctuation "
                    "(mmjsd.data.text.ALPHABET); lower-case the text first",
                )
    raise AssertionError("no offending character found")  # pragma: no cover


def decode(indices: torch.Tensor | np.ndarray, alphabet: str = ALPHABET) -> list[str]:
    """N x L indices (any integer dtype) back to N strings, padding included."""
    array = np.asarray(indices.cpu() if isinstance(indices, torch.Tensor) else indices)
    if array.ndim == 1:
        array = array[None, :]
    if array.size and (array.min() < 0 or array.max() >= len(alphabet)):
        raise DataError(f"text indices outside 0..{len(alphabet) - 1}", "decode with the alphabet the text was encoded with")
    n, length = array.shape
    if alphabet.isascii():
        symbols = np.frombuffer(alphabet.encode("ascii"), dtype=np.uint8)
        blob = symbols[array.astype(np.int64)].tobytes().decode("ascii")
        return [blob[i * length:(i + 1) * length] for i in range(n)]
    return ["".join(alphabet[k] for k in row) for row in array.tolist()]  # pragma: no cover


def align_left(tokens: torch.Tensor, pad_index: int = PAD_INDEX) -> torch.Tensor:
    """Index tensor B x L -> each row's characters moved to its start, padding after (order kept)."""
    order = torch.argsort((tokens == pad_index).to(torch.int8), dim=1, stable=True)
    return torch.gather(tokens, 1, order)


def strip_padding(texts: str | Sequence[str], pad: str = PAD) -> str | list[str]:
    """Remove the '*' padding on both sides (one string or a list)."""
    if isinstance(texts, str):
        return texts.strip(pad)
    return [t.strip(pad) for t in texts]


def encode_at_seeded_starts(texts: list[str], length: int, alphabet: str, seed: int) -> torch.Tensor:
    """Strings written by a user (config `eval.figure.texts`), each '*'-padded to `length` at a
    seeded random start -> uint8 N x length. Too long, or a character outside the alphabet ->
    DataError naming the string and the position in it."""
    too_long = [t for t in texts if len(t) > length]
    if too_long:
        raise DataError(f"figure text {too_long[0]!r} has {len(too_long[0])} characters, more than the text length {length}",
                        "shorten it in config.yaml eval.figure.texts")
    for text in texts:   # positions in the user's string, not in the padded one
        bad = outside_alphabet(text, alphabet)
        if bad is not None:
            raise DataError(f"figure text {text!r}: character {bad[1]!r} at position {bad[0]} is not in the text alphabet",
                            "change it in config.yaml eval.figure.texts (lower-case letters, digits, space, punctuation)")
    starts = random_pad_starts([len(t) for t in texts], length, torch.Generator().manual_seed(seed))
    return encode([pad_text(t, length, int(s)) for t, s in zip(texts, starts)], alphabet=alphabet, length=length)
