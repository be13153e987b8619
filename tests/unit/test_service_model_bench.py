"""The service-model cost figure: the asset delta stays a few kilobytes."""

from __future__ import annotations

from bench.service_model import client_seconds, deflated_size
from lambdas.ingest.service_models import BUNDLED_DATA_PATH


def test_the_bundled_model_adds_a_few_kilobytes_to_the_asset() -> None:
    zipped, raw = deflated_size(BUNDLED_DATA_PATH)
    assert 0 < zipped < 8 * 1024
    assert zipped < raw


def test_a_client_on_the_bundled_model_is_timed() -> None:
    assert 0 < client_seconds("bundled model") < 30
