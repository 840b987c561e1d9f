"""The owner record a lab namespace carries (the alias of its `lo`): escaped for `ip -batch`, read back whole,
refused when it would not fit the kernel's alias."""

from __future__ import annotations

from pathlib import Path

import pytest

from peerprobe.backends.lab.net import _owner
from peerprobe.errors import ConfigError


@pytest.mark.parametrize("directory", ["/var/lib/peerprobe", "/tmp/a b/#c@d/[bold]e%20", "/ü/x"])
def test_a_record_reads_back_as_written(directory: str) -> None:
    text = _owner.record("lab:workshop:cn-northwest-1", Path(directory))
    assert " " not in text and "#" not in text.split("=", 1)[1] and text.isascii()
    assert _owner.parse(text) == _owner.Owner("lab:workshop:cn-northwest-1", Path(directory))


@pytest.mark.parametrize("alias", ["", "an operator's note", "peerprobe-owner=", "peerprobe-owner=lab:x:y"])
def test_an_alias_that_is_no_record_names_no_owner(alias: str) -> None:
    assert _owner.parse(alias) is None


def test_a_record_longer_than_the_kernels_alias_is_refused() -> None:
    with pytest.raises(ConfigError, match="too long for the lab's owner record"):
        _owner.record(_owner.LONGEST_KEY, Path("/" + "d" * 200))
    assert len(_owner.record(_owner.LONGEST_KEY, Path("/" + "d" * 150)).encode()) <= _owner.MAX_BYTES
