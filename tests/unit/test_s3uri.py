"""The one S3 URI parser, in its two forms."""

from __future__ import annotations

import pytest

from lambdas.common.s3uri import split_s3_location, split_s3_uri


def test_splits_s3_uris() -> None:
    assert split_s3_uri("s3://bucket/a/b c.csv") == ("bucket", "a/b c.csv")
    assert split_s3_uri("s3://bucket", key_optional=True) == ("bucket", "")
    assert split_s3_uri("s3://bucket/out", key_optional=True) == ("bucket", "out")
    with pytest.raises(ValueError, match="not an s3:// URI"):
        split_s3_uri("https://bucket/key")
    with pytest.raises(ValueError, match="needs a bucket and a key"):
        split_s3_uri("s3://bucket/")
    with pytest.raises(ValueError, match="needs a bucket and a key"):
        split_s3_uri("s3:///key", key_optional=True)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("s3://bucket/key", ("bucket", "key")),
        ("s3://bucket/dir/red flower.jpg", ("bucket", "dir/red flower.jpg")),
        ("s3://bucket/", None),
        ("s3://bucket", None),
        ("https://bucket/key", None),
    ],
)
def test_split_s3_location(text: str, expected: tuple[str, str] | None) -> None:
    assert split_s3_location(text) == expected
