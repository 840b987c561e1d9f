"""Drift check: probe an existing environment in one phase named `live`, with the SNAT settings read back
from aws-node, and judge every cell against the model. Creates nothing and deletes nothing."""

from __future__ import annotations

from prefect import flow, runtime

from peerprobe.backends.steps import VPC_KEYS, EnvironmentRef
from peerprobe.config import PhaseSnat
from peerprobe.params import RunParameters
from peerprobe.probes.plan import vantages
from peerprobe.report.document import PhaseReport, Report
from tasks.probe import probe_vantage, publish_phase, publish_report, read_topology
from tasks.snat import read_snat

LIVE = "live"


@flow(name="drift-check", persist_result=True, result_serializer="json")
def drift_check(parameters: RunParameters | None = None) -> Report:
    parameters = parameters or RunParameters()
    ref = EnvironmentRef(
        backend=parameters.backend, config=parameters.config, run_id=str(runtime.flow_run.id or "local")
    )
    live = PhaseSnat(**{vpc: read_snat(ref, vpc) for vpc in VPC_KEYS})
    topology = read_topology(ref)
    futures = [probe_vantage.submit(ref, LIVE, live, vantage) for vantage in vantages(topology)]
    phase = PhaseReport(name=LIVE, snat=live, cells=[cell for future in futures for cell in future.result()])
    publish_phase(ref, phase)
    report = Report(
        experiment=ref.config.name, backend=ref.backend, run_id=ref.run_id, topology=topology, phases=[phase]
    ).summarised()
    publish_report(ref, report)
    return report
