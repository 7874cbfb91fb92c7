"""Row ids: UUIDs, time-ordered (so rows made one after another go in at the end of their
indexes), unique; short labels from their random end."""

from __future__ import annotations

import uuid

from tradewire.domain.values import new_id, short_id


def test_ids_are_version_7_uuids_in_the_order_they_were_made() -> None:
    ids = [new_id() for _ in range(2_000)]
    assert len(set(ids)) == len(ids)
    assert ids == sorted(ids)  # text order is the order of making, across milliseconds too
    parsed = [uuid.UUID(i) for i in ids]
    assert {u.version for u in parsed} == {7} and all(str(u) == i for u, i in zip(parsed, ids,
                                                                                     strict=True))


def test_short_labels_of_ids_made_together_differ() -> None:
    ids = [new_id() for _ in range(200)]
    assert len({i[:8] for i in ids}) < 5  # the time part: shared within about a minute
    assert len({short_id(i) for i in ids}) == len(ids)
    assert short_id(ids[0]) == ids[0][-8:]
