"""Shared fixtures: the default machine and a fresh device per test."""

from __future__ import annotations

import pytest

from isa import MachineSpec
from simulator import Device


@pytest.fixture(scope="session")
def spec() -> MachineSpec:
    return MachineSpec.load("davinci")


@pytest.fixture
def device(spec: MachineSpec) -> Device:
    return Device(spec)
