// Prints the plain closing line of a test run ("tests: N passed, N failed, N skipped") from
// vitest's JSON report, so anyone reading the end of a CI log sees the totals of every project.
import { readFileSync } from "node:fs";

const file = process.argv[2];
let report;
try {
  report = JSON.parse(readFileSync(file, "utf8"));
} catch (error) {
  console.log(`tests: 0 passed, 1 failed (no test report: ${error.message})`);
  process.exit(1);
}
const passed = report.numPassedTests ?? 0;
// A file that fails to load fails no single test: count such files so the line never says 0 failed.
const failed = report.numFailedTests || report.numFailedTestSuites || 0;
const skipped = (report.numPendingTests ?? 0) + (report.numTodoTests ?? 0);
console.log(`tests: ${passed} passed, ${failed} failed, ${skipped} skipped`);
process.exit(failed > 0 || passed === 0 ? 1 : 0);
