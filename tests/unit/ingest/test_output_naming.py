"""Output naming: S3OutputPathExtension and Filename from an S3 key and an inference id."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lambdas.common.contract import OutputNaming
from lambdas.common.output_naming import (
    EXTENSION_PATTERN,
    FILENAME_PATTERN,
    MAX_EXTENSION_LENGTH,
    MAX_FILENAME_LENGTH,
    TRUNCATION_MARKER,
    OutputName,
    TruncatedExtensionError,
    decode_extension,
    encode_folder,
    extension_for_folder,
    filename_for,
    key_folder,
    output_name,
)

# S3 keys are UTF-8, up to 1024 bytes: any character but surrogates.
key_chars = st.characters(exclude_categories=["Cs"])
keys = st.text(alphabet=key_chars, min_size=1, max_size=300)
# Folders made mostly of the characters that need care: "/", ".", "!", space, "+", "%", unicode.
tricky_folders = st.text(
    alphabet=st.sampled_from(list("ab/.!%+ ~:é€😀")) | key_chars, min_size=1, max_size=120
)
sha256_ids = st.binary(min_size=1, max_size=64).map(lambda data: hashlib.sha256(data).hexdigest())
any_ids = sha256_ids | st.text(
    alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=64
)
INFERENCE_ID = hashlib.sha256(b"s3://in/a/b/c.json?versionId=1").hexdigest()


def conforms(extension: str) -> bool:
    return (
        1 <= len(extension) <= MAX_EXTENSION_LENGTH
        and EXTENSION_PATTERN.fullmatch(extension) is not None
    )


@pytest.mark.parametrize(
    ("key", "extension"),
    [
        ("a/b/photo.json", "a/b"),
        ("photo.json", None),
        ("a/b/", "a/b"),
        ("folder with spaces/x.csv", "folder!20with!20spaces"),
        ("plus+sign/x", "plus!2Bsign"),
        ("per%cent/x", "per!25cent"),
        ("bang!/x", "bang!21"),
        ("röt/ü/x", "r!C3!B6t/!C3!BC"),
        ("emoji😀/x", "emoji!F0!9F!98!80"),
        ("s3:/bucket/x", "s3!3A/bucket"),
        ("https:/host/x", "https!3A/host"),
        ("/leading/x", "!2Fleading"),
        ("double//slash/x", "double!2F!2Fslash"),
        ("./../x", "!2E/!2E."),
        ("...dots/x", "...dots"),
        ("keep_.*'()-/x", "keep_.*'()-"),
        ("tilde~eq=amp&at@comma,/x", "tilde!7Eeq!3Damp!26at!40comma!2C"),
    ],
)
def test_documented_examples(key: str, extension: str | None) -> None:
    name = output_name(key, INFERENCE_ID)
    assert name == OutputName(extension=extension, filename=INFERENCE_ID[:28] + ".out")
    if extension is not None:
        assert conforms(extension)
        assert decode_extension(extension) == key_folder(key)


def test_filename_is_the_first_112_bits_of_the_id() -> None:
    assert filename_for(INFERENCE_ID) == f"{INFERENCE_ID[:28]}.out"
    assert len(filename_for(INFERENCE_ID)) == MAX_FILENAME_LENGTH
    assert filename_for(INFERENCE_ID.upper()) == filename_for(INFERENCE_ID)


def test_a_caller_chosen_id_is_hashed_into_the_pattern() -> None:
    name = filename_for("my id/with.two.dots")
    assert name == hashlib.sha256(b"my id/with.two.dots").hexdigest()[:28] + ".out"
    assert FILENAME_PATTERN.fullmatch(name)


def test_the_naming_setting_values() -> None:
    assert [mode.value for mode in OutputNaming] == ["input", "service"]


@given(keys, any_ids)
@settings(max_examples=300)
def test_every_key_gets_members_the_api_accepts(key: str, inference_id: str) -> None:
    name = output_name(key, inference_id)
    assert len(name.filename) <= MAX_FILENAME_LENGTH
    assert FILENAME_PATTERN.fullmatch(name.filename)
    assert name.filename.count(".") == 1
    if name.extension is None:
        assert key_folder(key) == ""  # nothing before the key's last "/"
    else:
        assert conforms(name.extension)
        assert not name.extension.startswith(("s3:", "https:", "/"))
        assert not name.extension.endswith("/")
        assert "//" not in name.extension


@given(tricky_folders | keys)
@settings(max_examples=400)
def test_encoding_is_reversible_within_the_limit(folder: str) -> None:
    encoded = encode_folder(folder)
    assert re.fullmatch(r"[a-zA-Z0-9!_.*'()/-]*", encoded)
    assert decode_extension(encoded) == folder
    extension = extension_for_folder(folder)
    if len(encoded) <= MAX_EXTENSION_LENGTH:
        assert extension == encoded
    else:
        assert extension is not None
        assert TRUNCATION_MARKER in extension


@given(tricky_folders, tricky_folders)
def test_different_folders_get_different_extensions(first: str, second: str) -> None:
    if first != second:
        assert encode_folder(first) != encode_folder(second)


@given(st.text(alphabet=key_chars, min_size=129, max_size=600))
@settings(max_examples=100)
def test_beyond_512_characters_the_extension_is_cut_with_a_hash(folder: str) -> None:
    encoded = encode_folder(folder)
    extension = extension_for_folder(folder)
    assert extension is not None
    assert conforms(extension)
    if len(encoded) <= MAX_EXTENSION_LENGTH:
        assert decode_extension(extension) == folder
        return
    prefix, marker, digest = extension.rpartition(TRUNCATION_MARKER)
    assert marker
    assert digest == hashlib.sha256(folder.encode()).hexdigest()[:16]
    assert encoded.startswith(prefix)
    assert len(prefix) >= MAX_EXTENSION_LENGTH - 18 - 2
    with pytest.raises(TruncatedExtensionError):
        decode_extension(extension)


def test_two_long_folders_with_one_prefix_stay_apart() -> None:
    first = extension_for_folder("x" * 600 + "/one")
    second = extension_for_folder("x" * 600 + "/two")
    assert first != second
    assert first is not None
    assert len(first) == MAX_EXTENSION_LENGTH


@pytest.mark.parametrize("bad", ["a!2", "a!zz", "a b", "!!", "é"])
def test_decoding_refuses_what_the_encoder_never_makes(bad: str) -> None:
    with pytest.raises(ValueError, match="extension"):
        decode_extension(bad)


def test_the_documented_examples_follow_the_rule() -> None:
    page = Path(__file__).resolve().parents[3] / "docs" / "records.md"
    text = page.read_text(encoding="utf-8")
    rows = re.findall(r"^\| `([^`]+)` \| `s3://out/async-out/([^`]+)` \|$", text, re.MULTILINE)
    assert len(rows) == 4
    inference_id = "5f3a9c2e41d07b88a16f0e3d9b2c" + "0" * 36
    for key, path in rows:
        name = output_name(key, inference_id)
        expected = f"{name.extension}/{name.filename}" if name.extension else name.filename
        assert path == expected
