"""The trigger book: armed price levels per symbol, fired when a tick crosses them."""

from __future__ import annotations

import random
from decimal import Decimal

import pytest

from tradewire.domain.trigger_book import TriggerBook

D = Decimal


def book(*armed: tuple[str, str, str | None, str | None]) -> TriggerBook:
    trigger_book = TriggerBook()
    for key, symbol, below, above in armed:
        trigger_book.arm(key, symbol, D(below) if below else None, D(above) if above else None)
    return trigger_book


THREE = (("a", "BTC", "90", "110"), ("b", "BTC", "95", None), ("c", "BTC", None, "105"))


@pytest.mark.parametrize(("price", "fired"), [
    pytest.param("100", set(), id="between-every-level-fires-nothing"),
    pytest.param("95.01", set(), id="just-above-a-below-level-fires-nothing"),
    pytest.param("95", {"b"}, id="a-below-level-fires-at-equality"),
    pytest.param("92", {"b"}, id="falling-past-one-below-level"),
    pytest.param("90", {"a", "b"}, id="falling-past-two-below-levels"),
    pytest.param("105", {"c"}, id="an-above-level-fires-at-equality"),
    pytest.param("200", {"a", "c"}, id="rising-past-two-above-levels"),
])
def test_a_tick_fires_only_the_keys_it_crosses(price: str, fired: set[str]) -> None:
    trigger_book = book(*THREE)
    assert set(trigger_book.on_tick("BTC", D(price))) == fired
    assert len(trigger_book) == 3 - len(fired)


def test_fired_keys_are_disarmed_on_both_sides() -> None:
    trigger_book = book(*THREE)
    assert set(trigger_book.on_tick("BTC", D(80))) == {"a", "b"}
    assert trigger_book.on_tick("BTC", D(200)) == ["c"]  # a's 110 went with its 90
    assert len(trigger_book) == 0


def test_arming_again_replaces_the_earlier_levels() -> None:
    trigger_book = book(("a", "BTC", "90", "110"))
    trigger_book.arm("a", "BTC", D(80), D(120))
    assert trigger_book.on_tick("BTC", D(90)) == []
    assert trigger_book.on_tick("BTC", D(110)) == []
    assert trigger_book.on_tick("BTC", D(120)) == ["a"]
    assert len(trigger_book) == 0


def test_arming_again_can_move_a_key_to_another_symbol() -> None:
    trigger_book = book(("a", "BTC", "90", None))
    trigger_book.arm("a", "ETH", D(90), None)
    assert trigger_book.on_tick("BTC", D(1)) == []
    assert trigger_book.on_tick("ETH", D(1)) == ["a"]


def test_disarm_forgets_a_key_and_ignores_an_unknown_one() -> None:
    trigger_book = book(*THREE)
    trigger_book.disarm("a")
    trigger_book.disarm("nobody")
    assert len(trigger_book) == 2
    assert set(trigger_book.on_tick("BTC", D(0))) == {"b"}


def test_arming_without_levels_leaves_the_key_disarmed() -> None:
    trigger_book = book(("a", "BTC", "90", None))
    trigger_book.arm("a", "BTC", None, None)
    assert len(trigger_book) == 0
    assert trigger_book.on_tick("BTC", D(0)) == []


def test_a_key_crossed_on_both_sides_by_one_price_fires_once() -> None:
    trigger_book = book(("a", "BTC", "100", "100"))
    assert trigger_book.on_tick("BTC", D(100)) == ["a"]
    assert len(trigger_book) == 0


def test_keys_on_the_same_level_fire_together() -> None:
    trigger_book = book(("a", "BTC", "90", None), ("b", "BTC", "90", None))
    trigger_book.disarm("a")
    assert trigger_book.on_tick("BTC", D(90)) == ["b"]


def test_a_tick_fires_only_its_own_symbol() -> None:
    trigger_book = book(*[(f"{s}-{i}", s, "90", "110") for s in ("BTC", "ETH", "SOL") for i in range(3)])
    assert sorted(trigger_book.on_tick("ETH", D(50))) == ["ETH-0", "ETH-1", "ETH-2"]
    assert trigger_book.on_tick("DOGE", D(50)) == []
    assert len(trigger_book) == 6


def test_levels_compare_as_numbers_whatever_their_exponent() -> None:
    trigger_book = book(("a", "BTC", "90.00", None), ("b", "BTC", None, "110.10"))
    assert trigger_book.on_tick("BTC", D("90.0")) == ["a"]
    assert trigger_book.on_tick("BTC", D("110.1")) == ["b"]


def test_the_book_agrees_with_a_brute_force_reference() -> None:
    rng = random.Random(20260207)
    trigger_book = TriggerBook()
    reference: dict[str, tuple[str, Decimal | None, Decimal | None]] = {}
    symbols, keys = ("BTC", "ETH", "SOL"), [f"k{i}" for i in range(60)]

    def level() -> Decimal | None:
        return None if rng.random() < 0.2 else D(rng.randint(80, 120)) / 2  # ties on purpose

    for _ in range(20_000):
        roll = rng.random()
        if roll < 0.45:
            key, symbol, below, above = rng.choice(keys), rng.choice(symbols), level(), level()
            trigger_book.arm(key, symbol, below, above)
            reference.pop(key, None)
            if below is not None or above is not None:
                reference[key] = (symbol, below, above)
        elif roll < 0.55:
            key = rng.choice(keys)
            trigger_book.disarm(key)
            reference.pop(key, None)
        else:
            symbol, price = rng.choice(symbols), D(rng.randint(80, 120)) / 2
            expected = {key for key, (s, below, above) in reference.items() if s == symbol and (
                (below is not None and below >= price) or (above is not None and above <= price))}
            fired = trigger_book.on_tick(symbol, price)
            assert len(fired) == len(set(fired))
            assert set(fired) == expected
            for key in expected:
                del reference[key]
        assert len(trigger_book) == len(reference)


class _CountedPrice(Decimal):
    """A price that counts the comparisons made with it (Python asks a subclass's reflected
    comparison first, so `level < price` lands here too)."""

    compared = 0

    def __lt__(self, other: object) -> bool:
        type(self).compared += 1
        return Decimal(self) < other  # type: ignore[operator]

    def __gt__(self, other: object) -> bool:
        type(self).compared += 1
        return Decimal(self) > other  # type: ignore[operator]


@pytest.mark.parametrize("armed", [10, 1_000, 100_000])
def test_a_tick_that_crosses_nothing_compares_with_one_level_however_many_are_armed(
        armed: int) -> None:
    trigger_book = TriggerBook()
    for i in range(armed):
        trigger_book.arm(f"k{i}", "BTC", D(i), None)  # below levels 0 .. armed-1
    _CountedPrice.compared = 0
    assert trigger_book.on_tick("BTC", _CountedPrice(armed + 1)) == []
    assert _CountedPrice.compared == 1  # a bisection made log2(armed) of them
    assert trigger_book.on_tick("BTC", _CountedPrice(armed - 1)) == [f"k{armed - 1}"]
