"""peerprobe: know, not guess, how traffic reaches Kubernetes Services on Amazon EKS."""

__version__ = "0.1.0"
