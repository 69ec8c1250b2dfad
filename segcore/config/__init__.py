"""config/: the params.yaml schema as frozen dataclasses (params.py) over a small validating builder that reads
YAML 1.2 numbers as DVC does (schema.py). Imports core only.
"""
