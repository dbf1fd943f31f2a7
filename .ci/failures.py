"""Print the failing tests of a JUnit XML report with their messages: the last lines a failed CI shows."""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET

MESSAGE_LINES = 6


def node_id(classname: str, name: str) -> str:
    """pytest's id of a test from JUnit's dotted classname (``tests.flows.test_x.TestY``) and name."""
    parts = classname.split(".")
    classes = [i for i, part in enumerate(parts) if part[:1].isupper()]
    cut = classes[0] if classes else len(parts)
    return "::".join(["/".join(parts[:cut]) + ".py", *parts[cut:], name])


def main(path: str) -> None:
    failed = []
    for case in ET.parse(path).iter("testcase"):
        for outcome in ("failure", "error"):
            found = case.find(outcome)
            if found is not None:
                name = node_id(case.get("classname", ""), case.get("name", ""))
                message = (found.get("message") or found.text or "").strip().splitlines()
                failed.append((outcome.upper(), name, message[:MESSAGE_LINES]))
    print(f"\n==== {len(failed)} failing test(s) ====")
    for outcome, name, message in failed:
        print(f"{outcome} {name}")
        for line in message:
            print(f"    {line[:300]}")


if __name__ == "__main__":
    main(sys.argv[1])
