"""The search strategies: nothing proposed twice, every candidate reachable, seeded, warm start first."""

from __future__ import annotations

import pytest

from autotune import Config, ModelGuided, PlainTPE, RandomSearch, expand_space

SPACE = {"BM": [32, 64, 128], "BN": [32, 64, 128], "BK": [16, 32], "num_stages": [1, 2]}
CANDIDATES = expand_space(SPACE)


def landscape(config: Config) -> int:
    """A made-up cycle count with one optimum at BM=BN=128, BK=32, num_stages=2."""
    c = config.as_dict()
    return 1000 + 7 * abs(c["BM"] - 128) + 5 * abs(c["BN"] - 128) + 3 * abs(c["BK"] - 32) + 50 * (2 - c["num_stages"])


def strategies(seed: int):
    estimates = {c.ident(): landscape(c) // 2 for c in CANDIDATES}
    return [RandomSearch(CANDIDATES, seed=seed), PlainTPE(CANDIDATES, seed=seed),
            ModelGuided(CANDIDATES, estimates, seed=seed)]


def drive(strategy, skip_every: int = 0) -> list[str]:
    proposed = []
    while (config := strategy.propose()) is not None:
        proposed.append(config.ident())
        if skip_every and len(proposed) % skip_every == 0:
            strategy.skip(config)  # another process holds it
        else:
            strategy.tell(config, landscape(config) if config.as_dict()["BM"] != 32 else None)
    return proposed


@pytest.mark.parametrize("index", [0, 1, 2], ids=["random", "tpe", "model-guided"])
def test_every_candidate_is_proposed_once_and_only_once(index):
    proposed = drive(strategies(seed=3)[index], skip_every=5)
    assert sorted(proposed) == sorted(c.ident() for c in CANDIDATES)


@pytest.mark.parametrize("index", [0, 1, 2], ids=["random", "tpe", "model-guided"])
def test_a_seed_fixes_the_sequence(index):
    assert drive(strategies(seed=7)[index])[:12] == drive(strategies(seed=7)[index])[:12]


def test_model_guided_follows_the_model_then_explores_from_the_warm_start_then_tpe():
    estimates = {c.ident(): landscape(c) for c in CANDIDATES}
    warm = [Config({"BM": 32, "BN": 32, "BK": 16}, num_stages=1), Config({"BM": 512, "BN": 1, "BK": 1})]
    search = ModelGuided(CANDIDATES, estimates, seed=0, warm=warm, head=4)
    by_model = sorted(CANDIDATES, key=lambda c: estimates[c.ident()])
    first = []
    for _ in range(7):
        first.append(search.propose())
        search.tell(first[-1], landscape(first[-1]))
    assert first[:5] == by_model[:5]  # the estimates are exact, so the local correction keeps the order
    assert first[5] == warm[0]  # the first exploration; a warm config outside the space is ignored
    assert first[6] == by_model[5]
    rest = drive(search)
    assert len(set(rest)) == len(rest) == len(CANDIDATES) - 7


def test_model_guided_corrects_the_model_with_results():
    wrong = {c.ident(): landscape(c) * (3 if c.as_dict()["num_stages"] == 2 else 1) for c in CANDIDATES}
    search = ModelGuided(CANDIDATES, wrong, seed=0, head=10**6, neighbours=1)
    ranked = search.ranking()
    assert ranked[0].as_dict()["num_stages"] == 1
    for config in ranked[:1]:
        search.tell(config, landscape(config))
    twin = Config({**ranked[0].kwargs}, num_stages=2)  # nearest to it, overestimated 3x by the model
    assert search.ranking().index(twin) < ranked.index(twin)
