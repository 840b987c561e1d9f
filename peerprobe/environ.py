"""The PEERPROBE_* environment variables, checked by the command line before anything starts or is created
(exit 2 naming the variable). Each variable is still read where it is used; the rules live here once."""

from __future__ import annotations

import math
import os
import re
from importlib.util import find_spec
from pathlib import Path

from peerprobe.errors import ConfigError

RESULT_STORAGE_ENV = "PEERPROBE_RESULT_STORAGE"  # s3://bucket/prefix, or a block slug such as s3-bucket/peerprobe
STATE_DIR_ENV = "PEERPROBE_STATE_DIR"
LATENCY_ENV = "PEERPROBE_LAB_LATENCY"
SECONDS_ENVS = ("PEERPROBE_LOCK_TIMEOUT", "PEERPROBE_DRIFT_LOCK_TIMEOUT")
LATENCY_KINDS = ("cluster", "nodegroup", "ec2", "load_balancer")  # the lab's provisioning delays (backends/lab)
MAX_SECONDS = 86400.0  # a day: longer is a typo, and time.sleep(inf) would never return
# S3 bucket names: 3-63 lowercase letters, digits, dots and hyphens, starting and ending with a letter or digit
# (https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html).
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
# A Prefect block slug, block-type/document-name: Prefect allows lowercase letters, digits and dashes in both.
_SLUG = re.compile(r"[a-z0-9][a-z0-9-]*/[a-z0-9][a-z0-9-]*")


def check() -> None:
    """Every PEERPROBE_* setting a command reads; raises ConfigError naming the first bad one."""
    check_state_dir(os.environ.get(STATE_DIR_ENV, ""))
    check_result_storage(os.environ.get(RESULT_STORAGE_ENV, ""))
    check_latency(os.environ.get(LATENCY_ENV, ""))
    for name in SECONDS_ENVS:
        if os.environ.get(name, ""):
            seconds(name, os.environ[name])


def check_result_storage(value: str) -> None:
    """Unset (Prefect's local default), `s3://bucket/prefix` (needs prefect-aws) or a saved block's slug."""
    if not value:
        return
    if not value.startswith("s3://"):
        if _SLUG.fullmatch(value) is None:
            raise ConfigError(
                f"{RESULT_STORAGE_ENV}: {value!r} is neither s3://bucket/prefix nor a block slug "
                "(block-type/name, e.g. s3-bucket/peerprobe-results)"
            )
        return
    bucket = value.removeprefix("s3://").partition("/")[0]
    if not bucket:
        raise ConfigError(f"{RESULT_STORAGE_ENV}: {value!r} names no bucket")
    if _BUCKET.fullmatch(bucket) is None:
        raise ConfigError(
            f"{RESULT_STORAGE_ENV}: {bucket!r} is not an S3 bucket name (3-63 lowercase letters, "
            "digits, dots and hyphens)"
        )
    if find_spec("prefect_aws") is None:  # find_spec of a top-level name imports nothing
        raise ConfigError(f"{RESULT_STORAGE_ENV}={value}: install the aws extra (pip install 'peerprobe[aws]')")


def check_state_dir(value: str) -> None:
    """A directory peerprobe can write, or a path one can be created at; checked without creating anything."""
    if not value:
        return
    path = Path(value).expanduser()
    existing = next((p for p in (path, *path.parents) if p.exists()), None)
    if existing is None or not existing.is_dir():
        what = "is not a directory" if existing == path else f"cannot be created: {existing} is not a directory"
        raise ConfigError(f"{STATE_DIR_ENV}: {value!r} {what}")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ConfigError(f"{STATE_DIR_ENV}: {value!r}: {existing} is not writable")
    from peerprobe.backends.lab.net import _owner  # every lab namespace names it (the owner record)

    _owner.record(_owner.LONGEST_KEY, path.resolve())


def check_latency(value: str) -> None:
    """`kind=seconds,...`, each kind one of the lab's provisioning steps and each delay a bounded number."""
    if not value:
        return
    from peerprobe.backends.lab.cloud import latency_profile  # its own parser: name=seconds, floats

    for kind, delay in latency_profile().items():
        if kind not in LATENCY_KINDS:
            raise ConfigError(f"{LATENCY_ENV}: {kind!r} is not one of {', '.join(LATENCY_KINDS)}")
        seconds(LATENCY_ENV, str(delay), label=kind)


def seconds(name: str, value: str, *, label: str = "") -> float:
    """A number of seconds from 0 to a day."""
    what = f"{label}={value}" if label else repr(value)
    try:
        number = float(value)
    except ValueError:
        raise ConfigError(f"{name}: {what} is not a number of seconds") from None
    if not math.isfinite(number) or not 0 <= number <= MAX_SECONDS:
        raise ConfigError(f"{name}: {what} must be from 0 to {MAX_SECONDS:.0f} seconds")
    return number
