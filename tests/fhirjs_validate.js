// Validates FHIR resources with FHIR.js (npm "fhir", base R4 definitions), for the Python
// tests (tests/fhir_conformance.py). Reads a JSON list of resources on stdin; writes, for
// each, the list of its error and warning messages.
"use strict";
const { Fhir } = require("fhir");

const fhir = new Fhir();
let input = "";
process.stdin.setEncoding("utf8");
process.stdin.on("data", (chunk) => { input += chunk; });
process.stdin.on("end", () => {
  const out = JSON.parse(input).map((resource) => {
    const result = fhir.validate(resource, { errorOnUnexpected: true });
    return result.messages.filter((m) => m.severity === "error" || m.severity === "warning");
  });
  process.stdout.write(JSON.stringify(out));
});
