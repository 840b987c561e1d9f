"""Thin Prefect tasks over the peerprobe library, one module per step family."""
