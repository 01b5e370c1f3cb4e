/**
 * CPU time from /proc, to say where a cloud phase's CPU went on a machine whose two cores the
 * system under test, its client, s3rver and the kernel all share: the machine's busy time, and
 * s3rver's own. What is left (busy minus s3rver) is the system with its client and the kernel work
 * it causes, measured the same way for Stratus and s3backer.
 */
import { readFileSync } from "node:fs";

/** USER_HZ: the unit of /proc's CPU times on Linux. */
const TICKS_PER_SECOND = 100;

/** Seconds the machine's CPUs were busy since boot (all but idle and iowait). */
export function machineBusySeconds(): number {
  const fields = readFileSync("/proc/stat", "utf8").split("\n", 1)[0]!.trim().split(/\s+/).slice(1).map(Number);
  const [user = 0, nice = 0, system = 0, , , irq = 0, softirq = 0, steal = 0] = fields;
  return (user + nice + system + irq + softirq + steal) / TICKS_PER_SECOND;
}

/** User plus system seconds of a live process, all its threads; undefined once it is gone. */
export function processCpuSeconds(pid: number): number | undefined {
  const fields = statFields(pid);
  return fields === undefined ? undefined : (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND;
}

/** User plus system seconds of this process's children that have exited and been waited for (fio, nbdcopy, a stopped s3backer). */
export function exitedChildrenCpuSeconds(): number {
  const fields = statFields("self")!;
  return (Number(fields[13]) + Number(fields[14])) / TICKS_PER_SECOND;
}

/** /proc/PID/stat from its third field (state) on. */
function statFields(pid: number | "self"): string[] | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  } catch {
    return undefined;
  }
  // The command name may hold spaces and parentheses: fields are counted after its closing one.
  return stat.slice(stat.lastIndexOf(")") + 2).split(" ");
}

export interface CpuUse {
  /** Wall-clock seconds of the window. */
  seconds: number;
  /** CPU-seconds the whole machine was busy in it. */
  machine: number;
  /** CPU-seconds s3rver used in it. */
  s3rver: number;
  /**
   * CPU-seconds of the system under test and its client alone: its live processes (`systemPids`) and
   * the bench's children that exited in the window. Unlike machine minus s3rver, it holds none of
   * what others running on a shared machine spent.
   */
  system: number;
}

/** Runs `work` and says how much CPU the machine and s3rver (`s3rverPid`, alive throughout) spent meanwhile. */
export async function measureCpu<T>(s3rverPid: number, work: () => Promise<T>, systemPids: () => number[] = () => []): Promise<{ result: T; cpu: CpuUse }> {
  const s3rverBefore = processCpuSeconds(s3rverPid);
  const pidsBefore = new Map(systemPids().map((pid) => [pid, processCpuSeconds(pid)]));
  const childrenBefore = exitedChildrenCpuSeconds();
  const machineBefore = machineBusySeconds();
  const started = process.hrtime.bigint();
  const result = await work();
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const machine = machineBusySeconds() - machineBefore;
  const s3rverAfter = processCpuSeconds(s3rverPid);
  let system = exitedChildrenCpuSeconds() - childrenBefore;
  for (const pid of systemPids()) {
    const before = pidsBefore.get(pid);
    const after = processCpuSeconds(pid);
    // A process alive at both ends; one that started and exited inside the window is in the children's sum.
    if (before !== undefined && after !== undefined) system += after - before;
  }
  if (s3rverBefore === undefined || s3rverAfter === undefined) throw new Error(`s3rver (pid ${s3rverPid}) is gone`);
  return { result, cpu: { seconds, machine, s3rver: s3rverAfter - s3rverBefore, system } };
}
