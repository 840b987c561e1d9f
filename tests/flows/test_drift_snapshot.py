"""The pure parts of a drift check: snapshot diffs, the model's view of a live configuration, cells compared
with the baseline, the state message, and the baseline document. No lab, no server."""

from __future__ import annotations

import json

from peerprobe import config, drift, snapshot
from peerprobe.report.document import PhaseReport, Report
from peerprobe.run import predicted_report
from peerprobe.vocabulary import Cell, Observed


def snap(**changes: object) -> snapshot.ConfigSnapshot:
    base: dict[str, object] = {
        "clusters": {"vpc1": {"name": "a", "cni_version": "1.20.4"}, "vpc2": {"name": "b", "cni_version": "1.20.4"}},
        "services": {
            "nodeport": {
                "type": "NodePort",
                "port": 80,
                "target_port": 8080,
                "node_port": 30007,
                "external_traffic_policy": "Cluster",
            }
        },
        "security_groups": {
            "vpc1-nodes": [
                "tcp/8080 from 192.168.0.0/16 (peerprobe probes from the peer)",
                "tcp/30007 from 192.168.0.0/16 (peerprobe probes from the peer)",
            ]
        },
        "peering": {"status": "active", "requester_cidr": "172.16.0.0/16", "accepter_cidr": "192.168.0.0/16"},
        "routes": {"vpc1-private": ["192.168.0.0/16 -> peering"], "vpc2-private": ["172.16.0.0/16 -> peering"]},
    }
    base.update(changes)
    return snapshot.ConfigSnapshot.model_validate(base)


def test_an_aws_node_setting_is_one_entry_with_a_sentence() -> None:
    live = snap(
        clusters={
            "vpc1": {"name": "a", "cni_version": "1.20.4"},
            "vpc2": {"name": "b", "cni_version": "1.20.4", "aws_node": {"AWS_VPC_K8S_CNI_EXTERNALSNAT": "true"}},
        }
    )
    assert snapshot.diff(snap(), live) == [
        {
            "path": "clusters.vpc2.aws_node.AWS_VPC_K8S_CNI_EXTERNALSNAT",
            "baseline": None,
            "live": "true",
            "text": "vpc2 aws-node now has AWS_VPC_K8S_CNI_EXTERNALSNAT=true",
        }
    ]
    assert snapshot.diff(live, snap())[0]["text"].startswith("vpc2 aws-node no longer sets")
    assert snapshot.diff(snap(), snap()) == []


def test_a_revoked_rule_and_a_lost_route() -> None:
    live = snap(
        security_groups={"vpc1-nodes": ["tcp/30007 from 192.168.0.0/16 (peerprobe probes from the peer)"]},
        routes={"vpc1-private": [], "vpc2-private": ["172.16.0.0/16 -> peering"]},
    )
    texts = [entry["text"] for entry in snapshot.diff(snap(), live)]
    assert "security group vpc1-nodes lost tcp/8080 from 192.168.0.0/16 (peerprobe probes from the peer)" in texts
    assert "route table vpc1-private lost 192.168.0.0/16 -> peering" in texts


def test_the_model_predicts_for_what_runs() -> None:
    workshop = config.load()
    clusters = {"vpc1": {"name": "a", "cni_version": "1.5.0"}, "vpc2": {"name": "b", "cni_version": "1.20.4"}}
    live = snap(
        clusters=clusters,
        security_groups={"vpc1-nodes": ["tcp/30007 from 192.168.0.0/16 (peerprobe probes from the peer)"]},
        routes={"vpc1-private": [], "vpc2-private": ["172.16.0.0/16 -> peering"]},
    )
    seen = snapshot.live_config(workshop, live)
    assert seen.clusters.vpc1.cni_version == "1.5.0"
    assert seen.security_groups.open_from_peer == ["nodeport"]
    assert seen.peering.enabled is False, "a peering without its routes carries nothing"
    assert snapshot.live_config(workshop, snap()).peering.enabled is True


def test_a_snapshot_keeps_only_the_aws_node_values_the_model_reads() -> None:
    env = {
        "AWS_VPC_K8S_CNI_EXTERNALSNAT": "true",
        "AWS_VPC_K8S_CNI_EXCLUDE_SNAT_CIDRS": "10.0.0.0/8",
        "FOO_API_KEY": "s3cret",
        "HTTP_PROXY": "http://user:pw@host",
    }
    cluster = snapshot.ClusterSnapshot(name="a", cni_version="1.20.4", aws_node=env)
    assert cluster.aws_node == {
        "AWS_VPC_K8S_CNI_EXCLUDE_SNAT_CIDRS": "10.0.0.0/8",
        "AWS_VPC_K8S_CNI_EXTERNALSNAT": "true",
        "FOO_API_KEY": "<redacted>",
        "HTTP_PROXY": "<redacted>",
    }


def test_a_baseline_an_older_peerprobe_kept_unredacted_is_read_back_redacted() -> None:
    env = {"WARM_ENI_TARGET": "1", "FOO_API_KEY": "s3cret"}
    clusters = {"vpc1": {"name": "a", "cni_version": "1.20.4"}, "vpc2": {"name": "b", "cni_version": "1.20.4"}}
    clusters["vpc2"]["aws_node"] = env  # type: ignore[assignment]
    document = drift.baseline_document(predicted_report(config.load()), snap())
    document["config_snapshot"]["clusters"] = clusters  # as an older peerprobe wrote it
    baseline = drift.baseline_from_document(json.loads(json.dumps(document)))
    assert baseline is not None and baseline.snapshot is not None
    assert baseline.snapshot.clusters["vpc2"].aws_node == {"FOO_API_KEY": "<redacted>", "WARM_ENI_TARGET": "<redacted>"}
    assert snapshot.diff(baseline.snapshot, snap(clusters=clusters)) == []  # no false drift after an upgrade


def observed(cell: Cell, role: str, outcome: str = "ok") -> Cell:
    seen = Observed(outcome=outcome, client_address="192.0.2.1", client_address_role=role)  # type: ignore[arg-type]
    return cell.model_copy(update={"observed": seen, "verdict": "match"})


def test_a_cell_that_changed_since_the_baseline_drifts_even_when_the_model_agrees() -> None:
    predicted = predicted_report(config.load())
    cells = predicted.phases[0].cells
    pod_ip = next(c for c in cells if (c.vantage, c.target) == ("vpc2-pod", "pod-ip"))
    base = Report(
        experiment="w",
        backend="lab",
        topology=predicted.topology,
        phases=[PhaseReport(name="baseline", snat=predicted.phases[0].snat, cells=[observed(pod_ip, "client-node")])],
    )
    live = base.model_copy(
        update={
            "phases": [PhaseReport(name="live", snat=predicted.phases[0].snat, cells=[observed(pod_ip, "client-pod")])]
        }
    )
    changed = snap(
        clusters={
            "vpc1": {"name": "a", "cni_version": "1.20.4"},
            "vpc2": {"name": "b", "cni_version": "1.20.4", "aws_node": {"AWS_VPC_K8S_CNI_EXTERNALSNAT": "true"}},
        }
    )
    report = drift.against_baseline(live, drift.Baseline(report=base, snapshot=snap()), changed)
    assert report.summary.drift == 1 and drift.drifted(report)
    assert drift.changed_cells(report) == ["vpc2-pod -> pod-ip now shows the client pod instead of its node"]
    message = drift.message("lab:w:r", report)
    assert message == (
        "drift in lab:w:r: vpc2 aws-node now has AWS_VPC_K8S_CNI_EXTERNALSNAT=true; "
        "vpc2-pod -> pod-ip now shows the client pod instead of its node"
    )
    same = drift.against_baseline(base, drift.Baseline(report=base, snapshot=snap()), snap())
    assert same.summary.drift == 0 and same.config_diff == [] and not drift.drifted(same)
    assert drift.against_baseline(live, None, snap()).config_diff is None, "no baseline: the model only"


def test_the_baseline_document_keeps_the_first_phase_only() -> None:
    document = drift.baseline_document(predicted_report(config.load()), snap())
    assert [phase["name"] for phase in document["phases"]] == ["baseline"]


def test_a_baseline_document_reads_back_as_the_baseline_it_records() -> None:
    report = predicted_report(config.load())
    baseline = drift.baseline_from_document(drift.baseline_document(report, snap()))
    assert baseline is not None
    assert baseline.report.phases == report.phases[:1] and baseline.snapshot == snap()


def test_a_baseline_document_without_a_snapshot_reads_back_without_one() -> None:
    baseline = drift.baseline_from_document(drift.baseline_document(predicted_report(config.load()), None))
    assert baseline is not None and baseline.snapshot is None


def test_a_document_of_another_schema_is_no_baseline() -> None:
    assert drift.baseline_from_document({"schema": "peerprobe.report/v0", "phases": "baseline"}) is None
    assert drift.baseline_from_document(["not", "a", "mapping"]) is None


def test_reading_a_baseline_document_leaves_the_document_as_it_was() -> None:
    document = drift.baseline_document(predicted_report(config.load()), snap())
    kept = json.loads(json.dumps(document))
    drift.baseline_from_document(document)
    assert document == kept


def baseline_of(report: Report, environment_id: str) -> drift.Baseline:
    document = drift.baseline_document(
        report.model_copy(update={"run_id": "run-7"}), snap(environment_id=environment_id)
    )
    found = drift.baseline_from_document(json.loads(json.dumps(document)))
    assert found is not None
    return found


def test_a_drift_report_names_the_baseline_it_compared_with() -> None:
    predicted = predicted_report(config.load())
    report = drift.against_baseline(
        predicted, baseline_of(predicted, "vpc-1,vpc-2"), snap(environment_id="vpc-1,vpc-2")
    )
    assert report.baseline is not None and report.baseline.run_id == "run-7"
    assert report.baseline.recorded_at and report.baseline.recorded_at.endswith("Z")
    assert json.loads(report.model_dump_json(by_alias=True))["baseline"]["run_id"] == "run-7"


def test_the_baseline_of_another_generation_of_the_environment_is_not_compared_with() -> None:
    predicted = predicted_report(config.load())
    rebuilt = snap(environment_id="vpc-3,vpc-4")  # removed and built again: new VPCs
    report = drift.against_baseline(predicted, baseline_of(predicted, "vpc-1,vpc-2"), rebuilt)
    assert report.baseline is None and report.config_diff is None


def test_the_environment_identity_is_no_configuration_change() -> None:
    assert snapshot.diff(snap(environment_id="vpc-1,vpc-2"), snap(environment_id="vpc-3,vpc-4")) == []
