"""`python -m peerprobe.backends.lab.moto_main`: moto's own server, with one answer it recomputes on every call
computed once. Same arguments as `python -m moto.server`."""

from __future__ import annotations

import sys

from moto import server
from moto.eks import utils as eks_utils


class _KnownPartitions:
    """What moto 5.x's EKS asks a fresh boto3 Session for on every CreateCluster and CreateNodegroup (to check
    a role ARN's partition, moto/eks/utils.py): parsing botocore's endpoint data each time costs ~80 ms with
    the GIL held, so every concurrent call to the server waits. The partitions never change while it runs."""

    partitions: list[str] = eks_utils.Session().get_available_partitions()  # type: ignore[attr-defined]

    def get_available_partitions(self) -> list[str]:
        return list(self.partitions)


def main() -> None:
    eks_utils.Session = _KnownPartitions  # type: ignore[attr-defined]
    server.main(sys.argv[1:])


if __name__ == "__main__":
    main()
