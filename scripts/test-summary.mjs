// Prints the plain closing line of a test run ("tests: N passed, N failed, N skipped") from
// vitest's JSON report and, when given, Playwright's, so anyone reading the end of a CI log sees the
// totals of every project.
import { readFileSync } from "node:fs";

const [vitestFile, playwrightFile] = process.argv.slice(2);
const totals = { passed: 0, failed: 0, skipped: 0 };
const problems = [];

function readJson(file, what) {
  try {
    return JSON.parse(readFileSync(file, "utf8"));
  } catch (error) {
    problems.push(`no ${what} report: ${error.message}`);
    totals.failed += 1;
    return undefined;
  }
}

const vitest = readJson(vitestFile, "vitest");
if (vitest) {
  totals.passed += vitest.numPassedTests ?? 0;
  // A file that fails to load fails no single test: count such files so the line never says 0 failed.
  totals.failed += vitest.numFailedTests || vitest.numFailedTestSuites || 0;
  totals.skipped += (vitest.numPendingTests ?? 0) + (vitest.numTodoTests ?? 0);
}

if (playwrightFile) {
  const playwright = readJson(playwrightFile, "Playwright");
  if (playwright) {
    const stats = playwright.stats ?? {};
    totals.passed += stats.expected ?? 0;
    // A failed global setup runs no test but leaves `errors`: count it as a failure.
    totals.failed += (stats.unexpected ?? 0) + (stats.flaky ?? 0) + (stats.expected || stats.unexpected ? 0 : (playwright.errors?.length ?? 0));
    totals.skipped += stats.skipped ?? 0;
  }
}

const note = problems.length > 0 ? ` (${problems.join("; ")})` : "";
console.log(`tests: ${totals.passed} passed, ${totals.failed} failed, ${totals.skipped} skipped${note}`);
process.exit(totals.failed > 0 || totals.passed === 0 ? 1 : 0);
