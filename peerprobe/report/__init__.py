"""Reports: the JSON document (peerprobe.report/v1), the terminal table, Markdown, JUnit XML and the
payloads of the Prefect artifacts (built here without Prefect; the tasks publish them)."""
