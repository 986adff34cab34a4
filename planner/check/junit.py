"""JUnit XML for `planner check --junit-xml`: one testcase per deployment, one failure per missed check.

The shape CI systems read (GitHub, GitLab, Jenkins): testsuites > testsuite(tests, failures) >
testcase(classname, name) > failure(message, type); one testsuite per file checked. Names come from files
in pull requests: characters XML 1.0 does not allow (control characters other than tab, LF and CR; lone
surrogates; U+FFFE/U+FFFF) are written as ``\\xNN``, so the report stays well-formed.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

from planner.check.deploy import CheckResult

_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def xml_safe(text: object) -> str:
    return _NOT_XML.sub(lambda m: f"\\x{ord(m.group(0)):02x}", str(text))


def to_xml(result: CheckResult | list[CheckResult], seconds: float = 0.0) -> ET.ElementTree:
    results = result if isinstance(result, list) else [result]
    deployments = [d for r in results for d in r.deployments]
    failures = sum(not d.passed for d in deployments)
    attrs = {"name": "planner check", "tests": str(len(deployments)), "failures": str(failures),
             "errors": "0", "time": f"{seconds:.3f}"}
    suites = ET.Element("testsuites", attrs)
    for r in results:
        failed = sum(not d.passed for d in r.deployments)
        suite = ET.SubElement(suites, "testsuite", {**attrs, "name": xml_safe(Path(r.file).name),
                                                     "tests": str(len(r.deployments)), "failures": str(failed)})
        classname = xml_safe(f"planner.check.{Path(r.file).stem}")
        for d in r.deployments:
            case = ET.SubElement(suite, "testcase", {"classname": classname, "name": xml_safe(d.name), "time": "0"})
            if not d.passed:
                msgs = [xml_safe(c.message) for c in d.failures]
                fail = ET.SubElement(case, "failure", {"message": "; ".join(msgs), "type": "slo"})
                fail.text = "\n".join(msgs)
            out = ET.SubElement(case, "system-out")
            out.text = xml_safe("\n".join(c.message for c in d.checks))
    ET.indent(suites)
    return ET.ElementTree(suites)


def write(result: CheckResult | list[CheckResult], path: Path | str, seconds: float = 0.0) -> None:
    to_xml(result, seconds).write(path, encoding="utf-8", xml_declaration=True)
