"""The embedded lab: the AWS API served by moto on loopback, the data plane built from network namespaces."""
