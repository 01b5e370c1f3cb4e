import { describe, expect, it } from "vitest";
import { CliError } from "../api-client";
import { requireTool, volumeSizeFor } from "./image-tools";
import { displayName } from "./images-cli";
import { copyProgress, formatSeconds } from "./progress";

describe("image tools", () => {
  it("sizes a volume to the image, rounded up to 512-byte sectors", () => {
    expect(volumeSizeFor(1)).toBe(512);
    expect(volumeSizeFor(512)).toBe(512);
    expect(volumeSizeFor(10 * 2 ** 20 + 1)).toBe(10 * 2 ** 20 + 512);
  });

  it("names the Debian package of a missing tool", async () => {
    // nbdcopy lives in /usr/bin, which this search path leaves out (only /usr/sbin and /sbin are added).
    const error: unknown = await requireTool("nbdcopy", ["/nonexistent"]).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(CliError);
    expect((error as Error).message).toBe("nbdcopy is not installed: it comes with the Debian package libnbd-bin (sudo apt-get install libnbd-bin)");
    await expect(requireTool("e2image", [])).resolves.toMatch(/e2image$/);
  });

  it("reports progress as plain lines with rate and time left off a terminal", () => {
    const lines: string[] = [];
    let now = 1_000;
    const stream = { isTTY: false, write: (text: string) => lines.push(text) } as unknown as NodeJS.WriteStream;
    const progress = copyProgress("importing v", 100 * 2 ** 20, stream, () => now);
    progress.update(0);
    now += 2_000;
    progress.update(3); // below the next 5% step: not shown
    progress.update(50);
    progress.stop();
    expect(lines).toEqual(["importing v 0% (0 B of 100 MiB, 0 B/s, ? left)\n", "importing v 50% (50 MiB of 100 MiB, 25 MiB/s, 2s left)\n"]);
    expect(formatSeconds(3_725)).toBe("1h02m");
  });

  it("shows a URL without its query (a presigned URL's signature is a credential)", () => {
    expect(displayName("https://bucket.s3.example/img/disk.qcow2?X-Amz-Signature=abc&X-Amz-Credential=def")).toBe("https://bucket.s3.example/img/disk.qcow2?…");
    expect(displayName("http://h:8080/a b.img")).toBe("http://h:8080/a%20b.img");
    expect(displayName("./disk.img?x")).toBe("./disk.img?x");
  });
});
