"""The CI gate: deployment files in, verdicts and reports (JUnit, markdown) out."""
