"""The ports peerprobe talks through (Cloud, Cluster, Vantage) and their adapters: aws/ and lab/."""
