"""Validates CERT records, one JSON document per line, as a CERT's tooling would read them.

    validate_records.py json SCHEMA FILE...   each line against the JSON Schema (draft 2020-12,
                                              formats checked)
    validate_records.py stix FILE...          each line with the OASIS STIX 2.1 validator in strict
                                              mode (warnings are errors)

Exits 1 naming the file, line and every problem; prints the number of records checked.
"""
import json
import sys

from jsonschema import Draft202012Validator
from stix2validator import ValidationOptions, validate_instance

# Checks of the STIX validator's strict mode that are disabled, each with its reason:
# - uuid-check (103): it wants UUIDv4 ids. DESIGN.md asks for UUIDv5 ids in an iocflow namespace:
#   deterministic, so every emission of an indicator is a new version of the same STIX object and
#   a restart cannot fork it. STIX 2.1 recommends v4 for SDOs (a SHOULD, not a MUST).
DISABLED = ["uuid-check"]


def lines(paths):
    for path in paths:
        with open(path, encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                if line.strip():
                    yield f"{path}:{n}", json.loads(line)


def main():
    mode, args = sys.argv[1], sys.argv[2:]
    problems, checked = [], 0
    if mode == "json":
        with open(args[0], encoding="utf-8") as f:
            schema = json.load(f)
        validator = Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)
        for where, doc in lines(args[1:]):
            checked += 1
            problems += [f"{where}: {e.json_path}: {e.message}" for e in validator.iter_errors(doc)]
    elif mode == "stix":
        options = ValidationOptions(version="2.1", strict=True, disabled=",".join(DISABLED) or None)
        for where, doc in lines(args):
            checked += 1
            result = validate_instance(doc, options)
            problems += [f"{where}: {e}" for e in result.errors]
            problems += [f"{where}: warning: {w}" for w in result.warnings]
    else:
        sys.exit(f"unknown mode {mode}")
    for p in problems:
        print(p)
    print(f"{checked} records checked, {len(problems)} problems")
    sys.exit(1 if problems or checked == 0 else 0)


if __name__ == "__main__":
    main()
