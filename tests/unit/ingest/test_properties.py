"""Properties that must hold for every input, not just the examples."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lambdas.common.contract import CUSTOM_ATTRIBUTES_MAX_CHARS as CUSTOM_ATTRIBUTES_MAX_LENGTH
from lambdas.common.records import INFERENCE_ID_MAX_LENGTH
from lambdas.ingest.attributes import CustomAttributesTooLongError, encode_custom_attributes
from lambdas.ingest.events import ObjectVersion
from tests.unit.ingest.support import decode_custom_attributes

buckets = st.from_regex(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", fullmatch=True)
# S3 keys: any unicode except surrogates, up to 1024 UTF-8 bytes (kept shorter for speed).
keys = st.text(alphabet=st.characters(exclude_categories=["Cs"]), min_size=1, max_size=200)
real_version_ids = st.from_regex(r"[A-Za-z0-9._]{32}", fullmatch=True)
version_ids = st.none() | st.just("null") | real_version_ids
etags = st.from_regex(r"[0-9a-f]{32}(-[0-9]{1,4})?", fullmatch=True)
objects = st.builds(
    ObjectVersion,
    bucket=buckets,
    key=keys,
    version_id=version_ids,
    etag=etags,
    size=st.integers(min_value=0, max_value=2**40),
    sequencer=st.none() | st.just("0066A8D0E77DE42BC5"),
)


def identity(version: ObjectVersion) -> tuple[str, str, str]:
    """What names one object version: the version id, or the ETag when there is none."""
    if version.version_id and version.version_id != "null":
        return (version.bucket, version.key, "v:" + version.version_id)
    return (version.bucket, version.key, "e:" + (version.etag or ""))


@given(objects)
def test_the_inference_id_is_deterministic_and_within_the_api_limits(
    version: ObjectVersion,
) -> None:
    inference_id = version.inference_id
    assert inference_id == ObjectVersion(**vars(version)).inference_id
    assert 1 <= len(inference_id) <= INFERENCE_ID_MAX_LENGTH
    assert len(inference_id) == 64
    assert inference_id.isprintable()
    assert inference_id.isascii()
    assert not inference_id.startswith(" ")


@settings(max_examples=50)
@given(st.lists(objects, min_size=2, max_size=60))
def test_distinct_object_versions_get_distinct_ids(versions: list[ObjectVersion]) -> None:
    by_identity = {identity(version): version.inference_id for version in versions}
    assert len(set(by_identity.values())) == len(by_identity)


@given(buckets, keys, st.lists(real_version_ids, min_size=2, max_size=20, unique=True))
def test_every_version_of_one_key_has_its_own_id(
    bucket: str, key: str, versions: list[str]
) -> None:
    ids = {ObjectVersion(bucket, key, version, "e", 1, None).inference_id for version in versions}
    assert len(ids) == len(versions)


@given(buckets, buckets, keys, keys, etags)
def test_ids_differ_across_buckets_and_keys(
    bucket_a: str, bucket_b: str, key_a: str, key_b: str, etag: str
) -> None:
    a = ObjectVersion(bucket_a, key_a, None, etag, 1, None)
    b = ObjectVersion(bucket_b, key_b, None, etag, 1, None)
    assert (a.inference_id == b.inference_id) == ((bucket_a, key_a) == (bucket_b, key_b))


def _encoded(text: str) -> str:
    """An independent statement of the escaping rule: UTF-8 bytes outside 0x21-0x7E, and the
    separators, become %XX."""
    return "".join(
        chr(byte) if 0x21 <= byte <= 0x7E and chr(byte) not in "%,=" else f"%{byte:02X}"
        for byte in text.encode("utf-8")
    )


attribute_text = st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=300)
pairs = st.lists(st.tuples(attribute_text.filter(bool), attribute_text), max_size=8)


@given(pairs)
def test_encoded_custom_attributes_satisfy_the_api_or_are_rejected(
    attributes: list[tuple[str, str]],
) -> None:
    expected = ",".join(f"{_encoded(name)}={_encoded(value)}" for name, value in attributes)
    if len(expected) > CUSTOM_ATTRIBUTES_MAX_LENGTH:
        with pytest.raises(CustomAttributesTooLongError) as raised:
            encode_custom_attributes(attributes)
        assert raised.value.length == len(expected)
        return
    encoded = encode_custom_attributes(attributes)
    assert encoded == expected
    assert len(encoded) <= CUSTOM_ATTRIBUTES_MAX_LENGTH
    assert all(0x21 <= ord(character) <= 0x7E for character in encoded)
    assert decode_custom_attributes(encoded) == attributes
