/**
 * The printed TLS attach commands: their exact text and shell quoting. nbd-client cannot run here (no
 * kernel NBD): its flags are checked against its own --help. The other commands are run as printed by
 * the real clients in e2e/gateway/attach-commands.test.ts.
 */
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { defaultDeviceDir, deviceFolderName } from "./device-files";
import { nbdClientWords, nbdfuseWords, tlsAttachCommands, tlsUri, type DeviceCredentialRef } from "./attach-commands";
import { argv, HOME_DIR, shellCommand, shellWord } from "./shell-words";

const exec = promisify(execFile);
const endpoint = { host: "nbd.example.com", port: 10809 };
const laptop: DeviceCredentialRef = { id: "dev_3kT9x", name: "laptop", dir: defaultDeviceDir("laptop") };

describe("the printed commands", () => {
  const commands = tlsAttachCommands(endpoint, "db1", laptop);
  const byId = Object.fromEntries(commands.map((c) => [c.id, c.command]));

  it("names the credential's files under $HOME for every client", () => {
    expect(byId["nbdinfo-psk"]).toBe('nbdinfo "nbds://dev_3kT9x@nbd.example.com:10809/db1?tls-psk-file=$HOME/.config/stratus/devices/laptop/keys.psk"');
    expect(byId["nbdcopy-x509"]).toBe('nbdcopy disk.img "nbds://nbd.example.com:10809/db1?tls-certificates=$HOME/.config/stratus/devices/laptop"');
    expect(byId["qemu-img-psk"]).toBe(
      'qemu-img info --object "tls-creds-psk,id=stratus-tls0,endpoint=client,dir=$HOME/.config/stratus/devices/laptop,username=dev_3kT9x" --image-opts driver=nbd,host=nbd.example.com,port=10809,export=db1,tls-creds=stratus-tls0',
    );
    expect(byId["qemu-x509"]).toBe(
      'qemu-system-x86_64 -object "tls-creds-x509,id=stratus-tls0,endpoint=client,dir=$HOME/.config/stratus/devices/laptop" -drive driver=nbd,host=nbd.example.com,port=10809,export=db1,tls-creds=stratus-tls0,if=virtio',
    );
    expect(byId["nbd-client-x509"]).toBe(
      'sudo nbd-client nbd.example.com 10809 /dev/nbd0 -N db1 -certfile "$HOME/.config/stratus/devices/laptop/client-cert.pem" -keyfile "$HOME/.config/stratus/devices/laptop/client-key.pem" -cacertfile "$HOME/.config/stratus/devices/laptop/ca-cert.pem"',
    );
    expect(byId["stratus-psk"]).toBe('stratus attach db1 --device laptop --fuse "$HOME/stratus/db1"');
    const ids = commands.map((c) => c.id);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it("quotes what the shell would otherwise read, and escapes URI and qemu syntax", () => {
    const odd: DeviceCredentialRef = { id: "dev_x", name: "o'dd", dir: "/srv/my keys,$1" };
    const [psk] = [tlsUri({ host: "::1", port: 1 }, "a b", odd, "psk")];
    expect(shellWord(psk!)).toBe("'nbds://dev_x@[::1]:1/a%20b?tls-psk-file=/srv/my%20keys%2C%241/keys.psk'");
    const qemu = tlsAttachCommands(endpoint, "v", odd).find((c) => c.id === "qemu-img-x509")!;
    expect(qemu.command).toContain("'tls-creds-x509,id=stratus-tls0,endpoint=client,dir=/srv/my keys,,$1'");
    expect(shellWord(["x", HOME_DIR, '/a"b$c`d\\'])).toBe('"x$HOME/a\\"b\\$c\\`d\\\\"');
    expect(shellWord("it's")).toBe("'it'\\''s'");
    expect(shellCommand(["a b", "c"])).toBe("'a b' c");
    expect(deviceFolderName(" my laptop/../x ")).toBe("my-laptop-..-x");
    expect(deviceFolderName("../..")).toBe("device");
  });

  it("argv fills in the home directory", () => {
    expect(argv(nbdfuseWords(endpoint, "db1", laptop, "/mnt/db1", "/run/p.pid"), "/home/ada")).toEqual([
      "nbdfuse",
      "-P",
      "/run/p.pid",
      "/mnt/db1/disk.img",
      "--command",
      "nbdkit",
      "-s",
      "--exit-with-parent",
      "nbd",
      "hostname=nbd.example.com",
      "port=10809",
      "export=db1",
      "tls=require",
      "tls-psk=/home/ada/.config/stratus/devices/laptop/keys.psk",
      "tls-username=dev_3kT9x",
    ]);
  });

  it("gives nbd-client only flags its --help lists", async () => {
    const { stdout, stderr } = await exec("nbd-client", ["--help"]).catch((error: { stdout: string; stderr: string }) => error);
    const help = `${stdout}${stderr}`;
    expect(help).toMatch(/nbd-client/);
    const flags = argv(nbdClientWords(endpoint, "db1", laptop), "/h").filter((word) => word.startsWith("-"));
    expect(flags).toEqual(["-N", "-certfile", "-keyfile", "-cacertfile"]);
    for (const flag of flags) expect(help, flag).toMatch(new RegExp(`[|\\[ ]${flag}[ |\\]]`));
    // host port device, in the order its usage line gives them
    expect(argv(nbdClientWords(endpoint, "db1", laptop), "/h").slice(0, 4)).toEqual(["nbd-client", "nbd.example.com", "10809", "/dev/nbd0"]);
  });
});
