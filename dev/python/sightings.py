"""Writes national CERTs' sightings with the libraries CERTs use: STIX 2.1 with the OASIS stix2
package, MISP sightings with PyMISP (tests/sightings.rs feeds them to iocflow).

Reads a JSON list of sightings on stdin and prints one record per line, in order:
  {"form": "stix" | "misp", "kind": "sighting" | "false_positive" | "expiration",
   "type": "domain" | "md5" | ..., "value": "...", "label": "GREEN" | ... | null, "count": n,
   "timestamp": epoch seconds,
   "indicator": the STIX indicator the CERT was sent, if it took STIX (optional),
   "without_indicator": true to leave the indicator out of the bundle (optional)}
A STIX sighting goes in a bundle with the indicator it is of: the one the CERT received when given,
else one made here from the type and value. MISP sightings have no label of their own; a label is
written as the optional `tlp` iocflow reads.
"""

import json
import sys

import stix2
from pymisp import MISPSighting

# TLP 2.0 marking definitions by their standard ids.
MARKINGS = {
    "CLEAR": "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487",
    "GREEN": "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb",
    "AMBER": "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421",
    "AMBER+STRICT": "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003",
    "RED": "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1",
}

PATTERNS = {
    "domain": "[domain-name:value = '{}']",
    "md5": "[file:hashes.MD5 = '{}']",
    "ipv4": "[ipv4-addr:value = '{}']",
    "url": "[url:value = '{}']",
}

MISP_TYPES = {"sighting": "0", "false_positive": "1", "expiration": "2"}


def stix_record(s):
    if s.get("indicator"):
        indicator = stix2.parse(s["indicator"], allow_custom=True)
    else:
        indicator = stix2.Indicator(pattern=PATTERNS[s["type"]].format(s["value"]), pattern_type="stix")
    properties = {"sighting_of_ref": indicator.id, "count": s["count"]}
    if s["label"]:
        properties["object_marking_refs"] = [MARKINGS[s["label"]]]
    if s["kind"] == "false_positive":
        properties["x_iocflow_false_positive"] = True
    elif s["kind"] != "sighting":
        raise ValueError(f"STIX has no {s['kind']}")
    sighting = stix2.Sighting(allow_custom=True, **properties)
    objects = [sighting] if s.get("without_indicator") else [indicator, sighting]
    return stix2.Bundle(*objects, allow_custom=True).serialize()


def misp_record(s):
    sighting = MISPSighting()
    fields = {"type": MISP_TYPES[s["kind"]], "timestamp": s["timestamp"], "source": "sensor-1"}
    if s.get("uuid"):
        fields["uuid"] = s["uuid"]
    else:
        fields["value"] = s["value"]
    if s["label"]:
        fields["tlp"] = s["label"].lower()
    sighting.from_dict(**fields)
    return sighting.to_json()


def main():
    for s in json.load(sys.stdin):
        record = stix_record(s) if s["form"] == "stix" else misp_record(s)
        print(json.dumps(json.loads(record), separators=(",", ":")))


if __name__ == "__main__":
    main()
