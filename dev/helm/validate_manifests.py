"""Validates rendered Kubernetes manifests offline and strictly.

    validate_manifests.py --kubernetes-version 1.32.0 --crds DIR MANIFEST.yaml...

Core kinds go through kubernetes-validate (the Kubernetes JSON schemas it ships) in strict mode:
unknown fields are errors. Custom resources (ServiceMonitor, PodMonitor, PrometheusRule) are
checked against the openAPIV3Schema of their CustomResourceDefinition from DIR (the
prometheus-operator release's CRDs), made strict the same way: wherever the CRD lists properties
and does not preserve unknown fields, other fields are errors. A kind found in neither fails.
"""
import argparse
import glob
import os
import sys

import kubernetes_validate
import yaml
from jsonschema import Draft7Validator


# Some CRDs hold a bare "=" (YAML 1.1's value type), which PyYAML's safe loader refuses.
yaml.SafeLoader.add_constructor("tag:yaml.org,2002:value", lambda loader, node: loader.construct_scalar(node))


def strict(schema):
    """A copy of an openAPIV3Schema that refuses fields it does not list."""
    if isinstance(schema, list):
        return [strict(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: strict(v) for k, v in schema.items()}
    if "properties" in out and "additionalProperties" not in out and not out.get("x-kubernetes-preserve-unknown-fields"):
        out["additionalProperties"] = False
    return out


def crd_schemas(folder):
    schemas = {}
    for path in glob.glob(os.path.join(folder, "*.yaml")):
        with open(path, encoding="utf-8") as f:
            crd = yaml.safe_load(f)
        group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
        for version in crd["spec"]["versions"]:
            schemas[(f"{group}/{version['name']}", kind)] = strict(version["schema"]["openAPIV3Schema"])
    return schemas


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--kubernetes-version", required=True)
    parser.add_argument("--crds", required=True)
    parser.add_argument("manifests", nargs="+")
    args = parser.parse_args()
    crds = crd_schemas(args.crds)
    failures, checked = 0, 0
    for path in args.manifests:
        with open(path, encoding="utf-8") as f:
            docs = [d for d in yaml.safe_load_all(f) if d]
        for doc in docs:
            checked += 1
            what = f"{os.path.basename(path)}: {doc.get('kind')} {doc.get('metadata', {}).get('name')}"
            key = (doc.get("apiVersion"), doc.get("kind"))
            try:
                if key in crds:
                    errors = sorted(Draft7Validator(crds[key]).iter_errors(doc), key=lambda e: list(e.path))
                    if errors:
                        raise ValueError("; ".join(f"{'/'.join(map(str, e.path))}: {e.message}" for e in errors))
                    print(f"ok   {what} (CRD schema)")
                else:
                    kubernetes_validate.validate(doc, args.kubernetes_version, strict=True)
                    print(f"ok   {what}")
            except Exception as e:  # every validator's error is reported the same way
                failures += 1
                print(f"FAIL {what}: {e}")
    print(f"{checked} manifests, {failures} failed")
    sys.exit(1 if failures or not checked else 0)


if __name__ == "__main__":
    main()
