"""Where persisted step results live when runs move between machines (a work pool): PEERPROBE_RESULT_STORAGE."""

from __future__ import annotations

import functools
import os
from typing import Any

from peerprobe import environ
from peerprobe.errors import ConfigError, InfrastructureError

RESULT_STORAGE_ENV = environ.RESULT_STORAGE_ENV  # s3://bucket/prefix, or a block slug such as s3-bucket/peerprobe


def result_storage(value: str | None = None) -> Any:
    """Where persisted step results live when runs move between machines (a work pool): unset, Prefect's
    local default; `s3://bucket/prefix`, prefect-aws's S3Bucket (the `aws` extra), saved on the Prefect server
    and named by its slug; anything else, the slug of a saved storage block (`s3-bucket/peerprobe-results`).
    Prefect loads the block by slug when it persists or looks up a result. The S3 endpoint is botocore's to
    choose: AWS_ENDPOINT_URL_S3 (or AWS_ENDPOINT_URL) points it elsewhere, e.g. at moto in the tests."""
    value = os.environ.get(RESULT_STORAGE_ENV, "") if value is None else value
    environ.check_result_storage(value)  # the rules the command line checks before anything starts
    if not value:
        return None
    return _saved_s3_bucket(value) if value.startswith("s3://") else value


@functools.cache  # saved once per process: importing the tasks saves it, the baseline steps reuse the slug
def _saved_s3_bucket(url: str) -> str:
    """Prefect 3 refuses an unsaved block as a task's result storage, so save one, named after the URL:
    every process that reads the same setting saves the same document and gets the same slug."""
    import hashlib

    block = _s3_bucket(url)
    name = f"peerprobe-results-{hashlib.sha256(url.encode()).hexdigest()[:16]}"
    try:
        block.save(name, overwrite=True, _sync=True)  # _sync: tasks may be imported inside an event loop
    except Exception as exc:  # the server's or the client's own error: name what we were doing
        raise InfrastructureError(
            f"{RESULT_STORAGE_ENV}={url}: could not save the S3Bucket block {name!r} on the Prefect server: {exc}",
            resource="prefect-block",
            resource_id=name,
        ) from exc
    return f"{block.get_block_type_slug()}/{name}"


def _s3_bucket(url: str) -> Any:
    try:
        from prefect_aws.s3 import S3Bucket
    except ImportError:
        hint = "install the aws extra (pip install 'peerprobe[aws]')"
        raise ConfigError(f"{RESULT_STORAGE_ENV}={url}: {hint}") from None
    bucket, _, prefix = url.removeprefix("s3://").partition("/")  # checked by environ.check_result_storage
    return S3Bucket(bucket_name=bucket, bucket_folder=prefix.strip("/"))
