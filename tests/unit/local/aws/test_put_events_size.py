"""PutEvents' entry size, computed as the EventBridge user guide documents it."""

from __future__ import annotations

from asyncinfer.local.aws.eventbridge import (
    PUT_EVENTS_MAX_BYTES,
    entry_size,
    put_events_refusal,
)


def test_an_entrys_size_counts_time_source_detail_type_detail_and_resources() -> None:
    entry = {
        "Time": "2026-12-04T12:00:00Z",
        "Source": "asyncinfer",  # 10 bytes
        "DetailType": "Inference Failed",  # 16
        "Detail": '{"r": "é"}',  # 11 bytes in UTF-8: é is two
        "Resources": ["arn:aws:s3:::b"],  # 14
        "EventBusName": "default",  # not counted
    }
    assert entry_size(entry) == 14 + 10 + 16 + 11 + 14
    assert entry_size({"Source": "s", "DetailType": "d", "Detail": "{}"}) == 4


def test_a_call_is_refused_beyond_ten_entries_or_256_kb() -> None:
    small = {"Source": "s", "DetailType": "d", "Detail": "{}"}
    assert put_events_refusal([small] * 10) is None
    assert put_events_refusal([small] * 11) is not None
    detail = "x" * (PUT_EVENTS_MAX_BYTES // 10)
    assert put_events_refusal([{"Source": "s", "DetailType": "d", "Detail": detail}] * 10)
    exact = "x" * (PUT_EVENTS_MAX_BYTES - 2)
    assert put_events_refusal([{"Source": "s", "DetailType": "d", "Detail": exact}]) is None
    assert put_events_refusal([{"Source": "s", "DetailType": "dd", "Detail": exact}]) is not None
