#!/usr/bin/python3
"""Parses Prometheus text exposition from stdin with the reference parser (prometheus_client) and
prints {family: {"type", "samples": [{"name", "labels", "value"}]}} as JSON. Fails on malformed input."""
import json, sys
from prometheus_client.parser import text_string_to_metric_families

families = {}
for f in text_string_to_metric_families(sys.stdin.read()):
    families[f.name] = {"type": f.type, "samples": [{"name": s.name, "labels": s.labels, "value": s.value} for s in f.samples]}
print(json.dumps(families))
