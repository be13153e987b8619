"""Write units per file and the hottest partition at 1,000 files a second, from item images.

The inputs are the items the pipeline really wrote in the benchmark (the claim as sent, the
record once SUBMITTED, once COMPLETED) and the inference ids it really submitted; the rules
are DynamoDB's documented ones:

* a table write costs one write unit per started KB of the larger of the item's images
  before and after (on-demand pricing, "write request units");
* an index entry is the projected attributes plus the table's and the index's keys, plus
  100 bytes; a write costs, in each index: nothing if the item is in neither image's index or
  no projected attribute changes; a put if it enters the index; a delete if it leaves; a
  delete plus a put if an index key changes ("If an update to the table changes the value of
  an indexed key attribute (from A to B), two writes are required", Developer Guide, GSI.html
  "Provisioned throughput considerations for global secondary indexes"); an update if only
  projected non-key attributes change;
* a partition key value takes at most 1,000 write units a second; DynamoDB's split-for-heat
  does not help when the sort key only grows (DESIGN "Facts"), so the model takes the write
  units per second landing on one partition key value, in the table and in every index,
  and the goal leaves half of the limit as headroom.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bench.cost import INDEX_ENTRY_OVERHEAD_BYTES, KB, attribute_value_size, item_size
from lambdas.common.contract import (
    INPUT_KEYS_INDEX,
    INPUT_LOCATION_INDEX,
    PARTITION_KEY,
    STATUS_INDEX,
    STATUS_SHARD_ATTRIBUTE,
    STATUS_SHARD_INDEX,
    STATUS_SHARDS,
    STATUS_TIME_ATTRIBUTE,
    WRITE_ONCE_PARTITIONS,
    shard_of,
    status_shard,
)

Item = Mapping[str, Mapping[str, Any]]
FILES_PER_SECOND = 1000
PARTITION_LIMIT_WCU = 1000  # DynamoDB: per partition, per second
TABLE = "table"


@dataclass(frozen=True)
class Index:
    name: str
    partition: str
    sort: str
    keys_only: bool


# The two layouts (stacks/storage.py). The naive design gets layout 1's indexes: what its users
# need (a record by input, recent records by status), defined the plain way.
LAYOUT_1 = (
    Index(INPUT_LOCATION_INDEX, "input_location", "created_at", keys_only=False),
    Index(STATUS_INDEX, "status", "updated_at", keys_only=False),
)
LAYOUT_2 = (
    Index(INPUT_KEYS_INDEX, "input_location", "created_at", keys_only=True),
    Index(STATUS_SHARD_INDEX, STATUS_SHARD_ATTRIBUTE, STATUS_TIME_ATTRIBUTE, keys_only=True),
)


def units(size: int) -> int:
    return max(1, math.ceil(size / KB))


def entry(item: Item | None, index: Index) -> dict[str, Any] | None:
    """The index entry of an item image (None when the item is not in the index)."""
    if item is None or index.partition not in item or index.sort not in item:
        return None
    if not index.keys_only:
        return {name: dict(value) for name, value in item.items()}
    names = (PARTITION_KEY, index.partition, index.sort)
    return {name: dict(item[name]) for name in names}


def entry_size(projected: Mapping[str, Mapping[str, Any]]) -> int:
    return item_size(projected) + INDEX_ENTRY_OVERHEAD_BYTES


@dataclass(frozen=True)
class IndexWrite:
    """Write units one table write costs in one index, split by partition key value."""

    units: dict[str, int]  # partition key value -> units

    @property
    def total(self) -> int:
        return sum(self.units.values())


def index_write(before: Item | None, after: Item, index: Index) -> IndexWrite:
    old, new = entry(before, index), entry(after, index)
    charged: Counter[str] = Counter()
    if old is not None and new is not None:
        same_keys = all(old[k] == new[k] for k in (index.partition, index.sort))
        if same_keys:
            if old != new:  # projected non-key attributes changed: an update in place
                charged[_value(new, index)] += units(max(entry_size(old), entry_size(new)))
            return IndexWrite(dict(charged))
    if old is not None:
        charged[_value(old, index)] += units(entry_size(old))
    if new is not None:
        charged[_value(new, index)] += units(entry_size(new))
    return IndexWrite(dict(charged))


def _value(projected: Mapping[str, Mapping[str, Any]], index: Index) -> str:
    value = projected[index.partition]
    return str(value.get("S", value.get("N", "")))


@dataclass(frozen=True)
class Write:
    label: str
    size: int  # the item after the write
    table: int
    indexes: dict[str, IndexWrite]

    @property
    def total(self) -> int:
        return self.table + sum(write.total for write in self.indexes.values())


def sequence(images: Sequence[tuple[str, Item]], layout: Sequence[Index]) -> list[Write]:
    """The writes of one file, each image the item after it (the first is a new item)."""
    writes: list[Write] = []
    before: Item | None = None
    for label, after in images:
        larger = max(item_size(after), item_size(before) if before is not None else 0)
        writes.append(
            Write(
                label,
                item_size(after),
                units(larger),
                {index.name: index_write(before, after, index) for index in layout},
            )
        )
        before = after
    return writes


def units_per_file(writes: Sequence[Write]) -> int:
    return sum(write.total for write in writes)


def shard_spread(inference_ids: Sequence[str]) -> float:
    """The busiest shard's share of the ids, relative to an even share (1.0 = even)."""
    if not inference_ids:
        return 1.0
    counts = Counter(shard_of(i) for i in inference_ids)
    return max(counts.values()) / len(inference_ids) * STATUS_SHARDS


def hot_partitions(
    writes: Sequence[Write], spread: float, files_per_second: int = FILES_PER_SECOND
) -> dict[str, float]:
    """Write units per second on the busiest partition key value of the table and each index.

    Per file, the units each write lands on each partition key value are added up; values that
    every file shares (a status) take all files, a sharded value its busiest shard's share
    (``spread`` / shards), and a value unique to the file (its id, its input location) one
    file's units. At the rate in the issue every partition value class is a steady stream.
    """
    per_value: dict[str, Counter[str]] = {TABLE: Counter()}
    for write in writes:
        per_value[TABLE]["<inference_id>"] += write.table
        for name, index_write_ in write.indexes.items():
            bucket = per_value.setdefault(name, Counter())
            for value, charged in index_write_.units.items():
                bucket[_class_of(value)] += charged
    hottest: dict[str, float] = {}
    for name, counter in per_value.items():
        rates = [
            charged * _files_per_second_on(value_class, spread, files_per_second)
            for value_class, charged in counter.items()
        ]
        hottest[name] = max(rates, default=0.0)
    return hottest


def _class_of(value: str) -> str:
    if value in WRITE_ONCE_PARTITIONS:  # the previous release's status_shard: a bare shard
        return "#<shard>"
    if "#" in value:  # a status_shard value: the status class, the shard aside
        return value.split("#", 1)[0] + "#<shard>"
    if value.startswith("s3://"):
        return "<input_location>"
    return value  # a status of layout 1: one value for every file


def _files_per_second_on(value_class: str, spread: float, files_per_second: int) -> float:
    if value_class.startswith("<"):
        return 1.0  # one file's own key: its writes come once
    if value_class.endswith("#<shard>"):
        return files_per_second * spread / STATUS_SHARDS
    return float(files_per_second)


def naive_images(completed: Item, naive_item: Item) -> list[tuple[str, Item]]:
    """The naive design's writes: its put, then the results function's outcome (our COMPLETED
    item without the status index keys only layout 2 uses)."""
    ours_only = (STATUS_SHARD_ATTRIBUTE, STATUS_TIME_ATTRIBUTE)
    outcome = {name: value for name, value in completed.items() if name not in ours_only}
    return [("put (SUBMITTED)", naive_item), ("outcome (COMPLETED)", outcome)]


IDENTITY = ("inference_id", "input_location", "input_bucket", "input_key", "input_version")


def same_record(completed: Item, submitted: Item) -> dict[str, Any]:
    """The COMPLETED image of the SUBMITTED record: the results benchmark completes a record of
    its own, so its identity (id, input, creation time, shard) is set to the SUBMITTED one's;
    sizes are unchanged, and the key comparisons then see one file's writes. The status index's
    keys stay the outcome's (its class, its time: the outcome moves the entry), with the
    SUBMITTED record's shard."""
    image = {name: dict(value) for name, value in completed.items()}
    for name in (*IDENTITY, "created_at"):
        if name in submitted:
            image[name] = dict(submitted[name])
    if STATUS_SHARD_ATTRIBUTE in image:
        shard = status_shard(submitted["inference_id"]["S"], completed["status"]["S"])
        image[STATUS_SHARD_ATTRIBUTE] = {"S": shard}
    return image


def status_entry_bytes(item: Item) -> int:
    """The size of a record's entry in the status index (its keys, plus DynamoDB's 100 B)."""
    index = LAYOUT_2[1]
    entry_ = entry(item, index)
    return entry_size(entry_) if entry_ else 0


def value_size(item: Item, name: str) -> int:
    """One attribute's bytes (name and value) in an item, 0 when absent."""
    return len(name) + attribute_value_size(item[name]) if name in item else 0
