"""Reports: the JSON document (peerprobe.report/v1) and the terminal table; more formats come with the flow."""
