"""The drift baseline in the result storage (PEERPROBE_RESULT_STORAGE), served by moto's S3 on loopback: a kept
baseline lands in the bucket, and a drift check on a machine with an empty state directory (a work pool's pod)
finds it there; nothing stored is no baseline, and a storage that cannot be read is a warning, not a failure."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from prefect.filesystems import LocalFileSystem
from prefect_aws import AwsClientParameters, AwsCredentials
from prefect_aws.s3 import S3Bucket
from structlog.testing import capture_logs

from peerprobe import config, drift, statedir
from peerprobe.errors import InfrastructureError
from peerprobe.report.document import Report
from peerprobe.run import predicted_report
from tasks import drift as drift_tasks
from tasks._storage import RESULT_STORAGE_ENV
from tests.flows.test_drift_snapshot import snap
from tests.flows.test_result_storage_s3 import bucket, s3, s3_endpoint

__all__ = ["bucket", "s3", "s3_endpoint"]  # fixtures shared with the step-results test

pytestmark = [
    pytest.mark.lab,  # the session's Prefect server and moto come with the lab's fixtures
    # The storage tasks are called here outside a flow run, which Prefect's API log handler warns of; peerprobe
    # calls them only inside the drift flow (tests/flows/test_drift_*.py run them there and see no warning).
    pytest.mark.filterwarnings("ignore:Logger 'prefect.task_runs' attempted to send logs:UserWarning"),
]
ENV_KEY = "aws:workshop:cn-northwest-1"
FOLDER = "peerprobe"
STORED_KEY = f"{FOLDER}/baselines/aws_workshop_cn-northwest-1.json"
CLOSED_PORT = "http://127.0.0.1:9"  # nothing listens on the discard port
Machine = Callable[[str], Path]


@pytest.fixture
def machine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Machine:
    """machine(name): from now on peerprobe runs as on another machine, with a state directory of its own."""

    def switch(name: str) -> Path:
        monkeypatch.setenv(statedir.ENV_VAR, str(tmp_path / name))
        return statedir.state_dir()

    return switch


@pytest.fixture
def storage(prefect_server: None, bucket: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """PEERPROBE_RESULT_STORAGE set to a folder of a fresh bucket; returns the bucket."""
    monkeypatch.setenv(RESULT_STORAGE_ENV, f"s3://{bucket}/{FOLDER}")
    return bucket


@pytest.fixture
def unreachable_s3(prefect_server: None, bucket: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """PEERPROBE_RESULT_STORAGE names a saved S3Bucket block whose endpoint refuses connections (a closed
    loopback port), after one attempt. Its own client parameters, because prefect-aws caches its clients."""
    refused = AwsClientParameters(endpoint_url=CLOSED_PORT, config={"retries": {"max_attempts": 1}})
    credentials = AwsCredentials(aws_client_parameters=refused)
    block = S3Bucket(bucket_name=bucket, bucket_folder=FOLDER, credentials=credentials)
    name = f"peerprobe-unreachable-{uuid.uuid4().hex[:8]}"
    block.save(name)
    monkeypatch.setenv(RESULT_STORAGE_ENV, f"{block.get_block_type_slug()}/{name}")


@pytest.fixture
def logged() -> Iterator[list[dict[str, Any]]]:
    """The structlog events of the test."""
    with capture_logs() as events:
        yield events


def warnings(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [event for event in events if event["log_level"] == "warning"]


def kept_report() -> Report:
    return predicted_report(config.load(), backend="aws")


def recorded_on(machine: Machine, name: str) -> Report:
    """`run --keep` on machine `name`: the baseline recorded as finish() records it."""
    machine(name)
    report = kept_report()
    drift_tasks.keep_baseline(ENV_KEY, report, snap())
    return report


def with_external_snat() -> Any:
    return snap(
        clusters={
            "vpc1": {"name": "a", "cni_version": "1.20.4"},
            "vpc2": {"name": "b", "cni_version": "1.20.4", "aws_node": {"AWS_VPC_K8S_CNI_EXTERNALSNAT": "true"}},
        }
    )


def test_a_kept_baseline_lands_in_the_bucket_as_the_document_in_the_state_directory(
    storage: str, s3: Any, machine: Machine
) -> None:
    recorded_on(machine, "runner")
    stored = json.loads(s3.get_object(Bucket=storage, Key=STORED_KEY)["Body"].read())
    assert stored == statedir.read_json(drift.baseline_name(ENV_KEY))


def test_a_check_on_a_machine_without_the_state_directory_finds_the_baseline_in_the_bucket(
    storage: str, machine: Machine
) -> None:
    report = recorded_on(machine, "runner")
    machine("pod")
    assert drift.read_baseline(ENV_KEY) is None, "the pod has no baseline of its own"
    judged = drift.against_baseline(report, drift_tasks.find_baseline(ENV_KEY), with_external_snat())
    assert judged.config_diff == [
        {
            "path": "clusters.vpc2.aws_node.AWS_VPC_K8S_CNI_EXTERNALSNAT",
            "baseline": None,
            "live": "true",
            "text": "vpc2 aws-node now has AWS_VPC_K8S_CNI_EXTERNALSNAT=true",
        }
    ]


def test_nothing_in_the_bucket_is_no_baseline_and_no_warning(
    storage: str, machine: Machine, logged: list[dict[str, Any]]
) -> None:
    machine("pod")
    assert drift_tasks.find_baseline(ENV_KEY) is None
    assert warnings(logged) == []


def test_nothing_in_a_local_file_system_block_is_no_baseline_and_no_warning(
    prefect_server: None,
    machine: Machine,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    logged: list[dict[str, Any]],
) -> None:
    name = f"peerprobe-baselines-{uuid.uuid4().hex[:8]}"
    LocalFileSystem(basepath=str(tmp_path / "shared")).save(name)
    monkeypatch.setenv(RESULT_STORAGE_ENV, f"local-file-system/{name}")
    machine("pod")
    assert drift_tasks.find_baseline(ENV_KEY) is None
    assert warnings(logged) == []


def test_an_unreachable_storage_is_a_warning_with_fields_and_no_baseline(
    unreachable_s3: None, machine: Machine, logged: list[dict[str, Any]]
) -> None:
    machine("pod")
    assert drift_tasks.find_baseline(ENV_KEY) is None
    assert [(w["event"], w["environment"], w["path"]) for w in warnings(logged)] == [
        ("baseline.fetch_failed", ENV_KEY, drift.baseline_name(ENV_KEY))
    ]
    assert "testing" not in json.dumps(warnings(logged), default=str), "no credentials in the warning"


def test_a_baseline_in_the_state_directory_is_used_without_reading_the_storage(
    unreachable_s3: None, machine: Machine, monkeypatch: pytest.MonkeyPatch
) -> None:
    machine("runner")
    drift.record_baseline(ENV_KEY, kept_report(), snap())
    monkeypatch.setattr(drift_tasks, "fetch_baseline", lambda env_key: pytest.fail("read the storage"))
    assert drift_tasks.find_baseline(ENV_KEY) is not None


def test_a_baseline_the_storage_refuses_fails_naming_where_it_was_going(unreachable_s3: None, machine: Machine) -> None:
    with pytest.raises(InfrastructureError, match=f"could not write the drift baseline of {ENV_KEY} to baselines/"):
        recorded_on(machine, "runner")


def test_without_the_setting_the_baseline_stays_in_the_state_directory(
    machine: Machine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(RESULT_STORAGE_ENV, raising=False)
    monkeypatch.setattr(drift_tasks, "store_baseline", lambda *args: pytest.fail("wrote to a storage"))
    recorded_on(machine, "runner")
    assert drift.read_baseline(ENV_KEY) is not None


def test_without_the_setting_a_check_without_a_local_baseline_reads_no_storage(
    machine: Machine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(RESULT_STORAGE_ENV, raising=False)
    monkeypatch.setattr(drift_tasks, "fetch_baseline", lambda env_key: pytest.fail("read a storage"))
    machine("pod")
    assert drift_tasks.find_baseline(ENV_KEY) is None
