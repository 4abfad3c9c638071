"""Prints the Kafka user names a configuration's principals need, one per line.

dev/kafka --secure makes a SCRAM user for each: every feed's producer (`principal`, default
`User:feed-<name>`), every CERT (`principal`, default `User:cert-<cc>`), iocflow's own principal
(`[access] principal`, default `User:iocflow`) and the auditors. The defaults are iocflow's
(pipeline/src/config.rs); principals of another type than `User:` are skipped.
"""

import sys
import tomllib


def principals(config):
    for feed in config.get("feeds", []):
        yield feed.get("principal", f"User:feed-{feed['name']}")
    for cert in config.get("certs", []):
        yield cert.get("principal", f"User:cert-{cert['country'].lower()}")
    access = config.get("access", {})
    yield access.get("principal", "User:iocflow")
    yield from access.get("auditors", [])


def main():
    names = set()
    for path in sys.argv[1:]:
        with open(path, "rb") as f:
            for p in principals(tomllib.load(f)):
                if p.startswith("User:"):
                    names.add(p.removeprefix("User:"))
    for name in sorted(names):
        print(name)


if __name__ == "__main__":
    main()
