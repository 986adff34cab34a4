"""Stage 5, the CI gate: deployment files in, verdicts and reports (JUnit, markdown) out."""
