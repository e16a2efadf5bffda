"""Every `npu.*` builtin has a compile rule whose signature (after `gen`) is the language function's."""

from __future__ import annotations

import inspect

import pytest

from npulang import language as lang
from npulang.frontend import builtin_rules as rules

# Loop builtins are for-statement syntax, compiled by the visitor itself, never called.
LOOPS = {"range", "static_range"}


def _language_builtins() -> dict[str, object]:
    found = {getattr(v, "__npu_builtin__", None): v for v in vars(lang).values()}
    found.pop(None, None)
    return {name: fn for name, fn in found.items() if name not in LOOPS} | {"constexpr": lang.constexpr}


def _shape(fn: object, drop_gen: bool = False) -> list[tuple[str, str, object]]:
    params = list(inspect.signature(fn).parameters.values())[1 if drop_gen else 0:]
    return [(p.name, p.kind.name, p.default) for p in params]


def test_every_language_builtin_has_a_rule_registered_against_it():
    builtins = _language_builtins()
    assert set(builtins) <= set(rules.RULES)
    assert all(rules.LANGUAGE[name] is fn for name, fn in builtins.items())


@pytest.mark.parametrize("name", sorted(_language_builtins()))
def test_the_rule_takes_the_arguments_its_language_function_documents(name):
    assert _shape(rules.RULES[name], drop_gen=True) == _shape(rules.LANGUAGE[name])


def test_methods_without_a_language_function_are_only_tile_and_descriptor_methods():
    assert set(rules.RULES) - set(rules.LANGUAGE) == {"to", "desc_load", "desc_store", "conv_desc_load"}
    assert "to" in rules.METHODS and "desc_load" not in rules.METHODS
