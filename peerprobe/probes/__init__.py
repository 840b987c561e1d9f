"""Probing: the plan of vantage x target, batched probe scripts, echo parsing and the address role classifier."""
