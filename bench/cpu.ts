/**
 * How much CPU other processes took while the bench ran (Linux): the machine's
 * busy time from /proc/stat, less this process's and its reaped children's
 * from /proc/self/stat. Other work on a 2-core machine skews every figure.
 */
import { readFileSync } from 'node:fs';

export interface CpuSnapshot {
  /** Busy jiffies of all CPUs (user, nice, system, irq, softirq). */
  readonly busy: number;
  readonly steal: number;
  readonly total: number;
  /** utime + stime + cutime + cstime of this process. */
  readonly own: number;
}

export function cpuSnapshot(): CpuSnapshot | undefined {
  try {
    const cpu = (readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '')
      .trim()
      .split(/\s+/)
      .slice(1)
      .map(Number);
    const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] = cpu;
    const self = readFileSync('/proc/self/stat', 'utf8');
    // Fields after the parenthesised command name; utime is the 12th of them.
    const after = self
      .slice(self.lastIndexOf(')') + 2)
      .split(' ')
      .map(Number);
    const own = after.slice(11, 15).reduce((a, b) => a + b, 0);
    return {
      busy: user + nice + system + irq + softirq,
      steal,
      total: user + nice + system + idle + iowait + irq + softirq + steal,
      own,
    };
  } catch {
    return undefined;
  }
}

export interface CpuShare {
  /** Share of all CPUs' time taken by processes other than the bench's, 0..1. */
  readonly others: number;
  /** Share of all CPUs' time the hypervisor stole, 0..1. */
  readonly steal: number;
}

export function cpuShare(from: CpuSnapshot | undefined, to: CpuSnapshot | undefined): CpuShare | undefined {
  if (!from || !to || to.total <= from.total) return undefined;
  const total = to.total - from.total;
  const others = to.busy - from.busy - (to.own - from.own);
  return { others: Math.max(0, others / total), steal: (to.steal - from.steal) / total };
}
