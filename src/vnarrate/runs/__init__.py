"""Runs: many inputs -> outcomes and files.

Input expansion and naming, the batch driver, one job per command (check targets before paying,
run the flow, write atomically, manifest last), records for manifests and `--json`.
"""
