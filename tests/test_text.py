"""The text modality: the authors' alphabet, padding, encoding and decoding."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mmjsd.data import text
from mmjsd.errors import DataError


def one_line(exc: pytest.ExceptionInfo) -> str:
    message = str(exc.value)
    assert "\n" not in message and " -- fix: " in message
    return message


def test_alphabet_is_the_authors_71_symbols_in_order():
    a = text.ALPHABET
    assert len(a) == 71
    assert a[:26] == "abcdefghijklmnopqrstuvwxyz"
    assert a[26:36] == "0123456789"
    assert a[36:] == "-,;.!?:'\"\\/|_@#$%^&*~`+-=<>()[]{} \n"
    assert text.PAD == "*" and text.PAD_INDEX == a.index("*") == 55
    assert a.index(" ") == 69 and a.index("\n") == 70
    # '-' twice, as in alphabet.json; encoding uses the first (the authors' str.find)
    assert [i for i, ch in enumerate(a) if ch == "-"] == [36, 59]


def test_pad_text_places_the_string_exactly():
    assert text.pad_text("abc", 8, 0) == "abc*****"
    assert text.pad_text("abc", 8, 5) == "*****abc"
    assert text.pad_text("abc", 8, 2) == "**abc***"
    with pytest.raises(ValueError):
        text.pad_text("abc", 8, 6)
    with pytest.raises(ValueError):
        text.pad_text("abcdefghi", 8, 0)


def test_random_pad_starts_cover_every_fitting_position_and_are_seeded():
    lengths = np.full(4000, 60)
    starts = text.random_pad_starts(lengths, 64, torch.Generator().manual_seed(0))
    assert starts.dtype == torch.int64 and starts.shape == (4000,)
    assert set(starts.tolist()) == {0, 1, 2, 3, 4}
    again = text.random_pad_starts(lengths, 64, torch.Generator().manual_seed(0))
    other = text.random_pad_starts(lengths, 64, torch.Generator().manual_seed(1))
    assert torch.equal(starts, again) and not torch.equal(starts, other)
    mixed = text.random_pad_starts([0, 64, 10], 64, torch.Generator().manual_seed(3))
    assert mixed[1] == 0 and 0 <= mixed[0] <= 64 and 0 <= mixed[2] <= 54


def test_encode_decode_roundtrip_and_indices():
    strings = ["abc-*", "z9 \n}"]
    encoded = text.encode(strings, length=5)
    assert encoded.dtype == torch.uint8 and encoded.shape == (2, 5)
    assert encoded[0].tolist() == [0, 1, 2, 36, 55]
    assert encoded[1].tolist() == [25, 35, 69, 70, 68]
    assert text.decode(encoded) == strings
    assert text.decode(torch.tensor([[59, 36]])) == ["--"]


def test_encode_padded_is_deterministic_per_seed():
    strings = ["hello, world", "ab", "hello, world", ""]
    a = text.encode_padded(strings, 16, torch.Generator().manual_seed(0))
    b = text.encode_padded(strings, 16, torch.Generator().manual_seed(0))
    assert torch.equal(a, b) and a.shape == (4, 16)
    decoded = text.decode(a)
    assert text.strip_padding(decoded) == strings
    assert all(len(s) == 16 and set(s.replace(orig, "")) <= {"*"} for s, orig in zip(decoded, strings))


def test_character_outside_the_alphabet_names_character_and_sample():
    with pytest.raises(DataError) as exc:
        text.encode(["abc", "aBc"], length=3)
    message = one_line(exc)
    assert "'B'" in message and "sample 1" in message
    with pytest.raises(DataError) as exc:
        text.encode(["ab\u00e9"], length=3)
    assert "U+00E9" in one_line(exc)


def test_wrong_length_and_bad_indices_are_data_errors():
    with pytest.raises(DataError) as exc:
        text.encode(["abc", "ab"], length=3)
    assert "sample 1" in one_line(exc)
    with pytest.raises(DataError):
        text.decode(torch.tensor([[71]]))


def test_strip_padding():
    assert text.strip_padding("***a b***") == "a b"
    assert text.strip_padding(["*x*", "y"]) == ["x", "y"]
