import { describe, expect, it } from "vitest";
import { snapshotCopyCommand } from "./snapshot-commands";

describe("snapshotCopyCommand", () => {
  it("reads the snapshot export out of a plaintext URI", () => {
    expect(snapshotCopyCommand("nbdcopy disk.img nbd://127.0.0.1:10809/db1", "db1", "db1@monday", "monday.img")).toBe(
      "nbdcopy nbd://127.0.0.1:10809/db1%40monday monday.img",
    );
  });

  it("keeps the TLS query and its quoting, and touches only the path (not a host or user named like the volume)", () => {
    const command = `nbdcopy disk.img "nbds://db1@db1:10809/db1?tls-psk-file=$HOME/.config/stratus/devices/db1/key.psk"`;
    expect(snapshotCopyCommand(command, "db1", "db1@v.2", "v.2.img")).toBe(
      `nbdcopy "nbds://db1@db1:10809/db1%40v.2?tls-psk-file=$HOME/.config/stratus/devices/db1/key.psk" v.2.img`,
    );
  });

  it("gives up on a command of another shape", () => {
    expect(snapshotCopyCommand("nbdinfo nbd://h:1/db1", "db1", "db1@s", "s.img")).toBeNull();
    expect(snapshotCopyCommand("nbdcopy disk.img nbd://h:1/other", "db1", "db1@s", "s.img")).toBeNull();
  });
});
