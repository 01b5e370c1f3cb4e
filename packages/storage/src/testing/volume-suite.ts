/**
 * The one Volume test suite, run over every object store (memory, directory, S3) with an
 * in-memory ChunkIndex and a disk cache in a temp directory. Each test uses its own volume id,
 * so one store and one cache root serve the whole file. Volumes default to durability "cloud"
 * here (FLUSH commits), so tests see the store after a flush; "local" cases say so.
 * Every store runs exactly the same cases, kept by topic in the volume-suite-*.ts files.
 */
import { describe } from "vitest";
import { describeCommitCases } from "./volume-suite-commits";
import { describeFetchCases } from "./volume-suite-fetches";
import { useVolumeSuiteFixture, type VolumeSuiteStore } from "./volume-suite-fixture";
import { describeFlushCases } from "./volume-suite-flush";
import { describeFrozenCases } from "./volume-suite-frozen";
import { describeIoCases } from "./volume-suite-io";
import { describeReadAheadCases } from "./volume-suite-read-ahead";

export type { VolumeSuiteStore } from "./volume-suite-fixture";

export function describeVolumeSuite(name: string, factory: VolumeSuiteStore): void {
  describe(`Volume: ${name}`, () => {
    const fixture = useVolumeSuiteFixture(name, factory);
    describeIoCases(fixture);
    describeFlushCases(fixture);
    describeFetchCases(fixture);
    describeCommitCases(fixture);
    describeFrozenCases(fixture);
    describeReadAheadCases(fixture);
  });
}
