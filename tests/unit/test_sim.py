"""The simulators' shared name lookup: the bounded edit distance and the closest-entry hint agree with their plain
definitions (a full optimal-string-alignment table; the minimum over every entry)."""

import random

import pytest

from components.domains import finance, sim, travel


def osa(a: str, b: str) -> int:
    """Optimal string alignment distance, the whole table: the definition `sim.edits` must match."""
    d = [[i + j if not i * j else 0 for j in range(len(b) + 1)] for i in range(len(a) + 1)]
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] != b[j - 1]))
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                d[i][j] = min(d[i][j], d[i - 2][j - 2] + 1)
    return d[len(a)][len(b)]


def nearest(typed: str, choices: tuple[str, ...]) -> str | None:
    """The hint by its definition: the entry with the fewest edits (ties: the first by name), within a third."""
    d, best = min((osa(typed.lower(), c.lower()), c) for c in choices)
    return best if d <= max(1, len(best) // 3) else None


def test_edits_is_the_distance_up_to_its_bound():
    rng = random.Random(7)
    for _ in range(3000):
        a, b = ("".join(rng.choice("abc") for _ in range(rng.randrange(7))) for _ in range(2))
        exact = osa(a, b)
        assert sim.edits(a, b) == exact, (a, b)
        for bound in range(4):
            assert sim.edits(a, b, bound) == min(exact, bound + 1), (a, b, bound)


@pytest.mark.parametrize("choices", [travel.CITIES, finance.SYMBOLS], ids=["cities", "symbols"])
def test_closest_is_the_nearest_entry_within_a_third(choices):
    rng = random.Random(11)
    typed = []
    for word in rng.sample(choices, 25):
        i = rng.randrange(len(word))
        typed += [word[:i] + word[i + 1:], word[:i] + word[i] + word[i:], word.upper(),
                  word[:i] + word[i + 1:i + 2] + word[i] + word[i + 2:], "".join(rng.sample(word, len(word))), "zzqx"]
    hints = [sim.closest(t, choices) for t in typed]
    assert hints == [nearest(t, tuple(choices)) for t in typed]
    assert None in hints and sum(h is not None for h in hints) > len(typed) // 2  # both outcomes exercised


def test_lookup_names_the_hint_or_matches_case_insensitively():
    assert sim.lookup(" lisbon ", travel.CITIES, "city") == "Lisbon"
    with pytest.raises(sim.ToolError, match="unknown city 'Lisbn'; did you mean 'Lisbon'"):
        sim.lookup("Lisbn", travel.CITIES, "city")
    with pytest.raises(sim.ToolError, match=r"unknown city 'Qqqqqq'$"):
        sim.lookup("Qqqqqq", travel.CITIES, "city")
