"""JUnit XML for `planner check --junit-xml`: one testcase per deployment, one failure per missed check.

The shape CI systems read (GitHub, GitLab, Jenkins): testsuites > testsuite(tests, failures) >
testcase(classname, name) > failure(message, type).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from planner.check.deploy import CheckResult


def to_xml(result: CheckResult, seconds: float = 0.0) -> ET.ElementTree:
    failures = sum(not d.passed for d in result.deployments)
    attrs = {"name": "planner check", "tests": str(len(result.deployments)), "failures": str(failures),
             "errors": "0", "time": f"{seconds:.3f}"}
    suites = ET.Element("testsuites", attrs)
    suite = ET.SubElement(suites, "testsuite", {**attrs, "name": Path(result.file).name})
    classname = f"planner.check.{Path(result.file).stem}"
    for d in result.deployments:
        case = ET.SubElement(suite, "testcase", {"classname": classname, "name": d.name, "time": "0"})
        if not d.passed:
            msgs = [c.message for c in d.failures]
            fail = ET.SubElement(case, "failure", {"message": "; ".join(msgs), "type": "slo"})
            fail.text = "\n".join(msgs)
        out = ET.SubElement(case, "system-out")
        out.text = "\n".join(c.message for c in d.checks)
    ET.indent(suites)
    return ET.ElementTree(suites)


def write(result: CheckResult, path: Path | str, seconds: float = 0.0) -> None:
    to_xml(result, seconds).write(path, encoding="utf-8", xml_declaration=True)
