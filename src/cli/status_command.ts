/**
 * `hamok status`: every member's view, merged into one table (or JSON), and an exit status that
 * serves as a health check: 0 only with a leader and every voter current.
 *
 * @module
 */

import type { HamokStatus } from "../cluster/status.ts";
import { type CliContext, CONNECTION_HELP } from "./context.ts";

/** `hamok status --help`. */
export const STATUS_HELP: string = `usage: hamok status [options]

Asks every member of the cluster for its status (without joining it) and prints one row per
member: role, state, term, commit and applied index, the leader's match index, lag and time since
it last heard from the member. Exit status 0 only if there is a leader and every voter answered,
is within --max-lag entries of the leader and was heard from within --max-silence ms.

options:
  --json            print JSON instead of a table
  --max-lag N       entries a voter may be behind and still count as current (default 100)
  --max-silence MS  ms since the leader last heard from a voter (default 2000)
  --window MS       how long to collect answers (default: --timeout, else 3000)
${CONNECTION_HELP}`;

/** One member's row of the cluster status. */
export interface ClusterStatusMember {
  /** The member's peer id. */
  readonly peerId: string;
  /** Its member id. */
  readonly memberId: string;
  /** Voter or learner. */
  readonly role: "voter" | "learner";
  /** Its own state (`leader`, `follower`, `candidate`, ...), or `unreachable` if it did not answer. */
  readonly state: string;
  /** Its term (own view). */
  readonly term?: number;
  /** Its commit index (own view). */
  readonly commitIndex?: number;
  /** Its applied index (own view). */
  readonly appliedIndex?: number;
  /** Leader's view: highest replicated index. */
  readonly matchIndex?: number;
  /** Leader's view: entries behind. */
  readonly lag?: number;
  /** Leader's view: ms since last contact. */
  readonly lastContactMs?: number;
  /** True when the member counts as current (voters only). */
  readonly current: boolean;
}

/** The merged view `hamok status --json` prints. */
export interface ClusterStatus {
  /** The cluster id. */
  readonly clusterId: string;
  /** Peer id of the leader, if there is one. */
  readonly leader: string | null;
  /** The highest term any member reported. */
  readonly term: number;
  /** The cluster identities the members answered with (more than one: a split under one id). */
  readonly clusterUids: readonly string[];
  /** True with a leader, every voter current and one cluster identity. */
  readonly healthy: boolean;
  /** The members (by the leader's membership, else the union of the answers). */
  readonly members: readonly ClusterStatusMember[];
  /** Why the cluster is not healthy (empty when it is). */
  readonly problems: readonly string[];
}

/** Merges members' answers into one {@linkcode ClusterStatus}. */
export function clusterStatus(
  clusterId: string,
  views: readonly HamokStatus[],
  maxLag: number,
  maxSilenceMs: number,
): ClusterStatus {
  const byPeer = new Map(views.map((v) => [v.peerId, v]));
  const leaderView = views.find((v) => v.role === "leader");
  const term = Math.max(0, ...views.map((v) => v.term));
  const source = leaderView?.members ??
    [...new Map(views.flatMap((v) => v.members).map((m) => [m.memberId, m])).values()];
  const problems: string[] = [];
  if (leaderView === undefined) problems.push("no leader");
  const clusterUids = [...new Set(views.flatMap((v) => (v.clusterUid === undefined ? [] : [v.clusterUid])))];
  if (clusterUids.length > 1) {
    const apart = clusterUids.map((uid) =>
      `${uid.slice(0, 8)}: ${views.filter((v) => v.clusterUid === uid).map((v) => v.peerId).join(" ")}`
    );
    problems.push(`SPLIT: ${clusterUids.length} clusters answer under this id (${apart.join("; ")})`);
  }
  const members: ClusterStatusMember[] = source.map((m) => {
    const own = byPeer.get(m.peerId);
    const problem = own === undefined
      ? "did not answer"
      : m.lag !== undefined && m.lag > maxLag
      ? `is ${m.lag} entries behind`
      : m.lastContactMs !== undefined && m.lastContactMs > maxSilenceMs
      ? `silent for ${m.lastContactMs} ms`
      : leaderView === undefined
      ? "has no leader"
      : undefined;
    if (problem !== undefined && m.role === "voter") problems.push(`${m.peerId} ${problem}`);
    return {
      peerId: m.peerId,
      memberId: m.memberId,
      role: m.role,
      state: own?.role ?? "unreachable",
      ...(own === undefined
        ? {}
        : { term: own.term, commitIndex: own.commitIndex, appliedIndex: own.appliedIndex }),
      ...(m.matchIndex === undefined ? {} : { matchIndex: m.matchIndex }),
      ...(m.lag === undefined ? {} : { lag: m.lag }),
      ...(m.lastContactMs === undefined ? {} : { lastContactMs: m.lastContactMs }),
      current: problem === undefined,
    };
  });
  return {
    clusterId,
    leader: leaderView?.peerId ?? null,
    term,
    clusterUids,
    healthy: problems.length === 0,
    members,
    problems,
  };
}

/** Renders a {@linkcode ClusterStatus} as a table. */
export function renderStatus(status: ClusterStatus): string {
  const header = ["PEER", "ROLE", "STATE", "TERM", "COMMIT", "APPLIED", "MATCH", "LAG", "CONTACT"];
  const rows = status.members.map((m) => [
    m.peerId + (m.peerId === status.leader ? " *" : ""),
    m.role,
    m.state,
    str(m.term),
    str(m.commitIndex),
    str(m.appliedIndex),
    str(m.matchIndex),
    str(m.lag),
    m.lastContactMs === undefined ? "-" : `${m.lastContactMs}ms`,
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join("  ").trimEnd();
  const summary = `cluster ${status.clusterId}: ` +
    (status.leader === null ? "NO LEADER" : `leader ${status.leader}, term ${status.term}`) +
    `, ${status.members.length} member(s), ` +
    (status.healthy ? "healthy" : `UNHEALTHY (${status.problems.join("; ")})`);
  return [summary, line(header), ...rows.map(line)].join("\n") + "\n";
}

function str(value: number | undefined): string {
  return value === undefined ? "-" : String(value);
}

/** Runs `hamok status`. */
export async function statusCommand(ctx: CliContext): Promise<number> {
  const client = await ctx.client();
  const views = await client.statusAll(ctx.integer("window", client.statusWindowMs));
  if (views.length === 0) throw ctx.noAnswer(client);
  const status = clusterStatus(
    ctx.clusterId,
    views,
    ctx.integer("max-lag", 100),
    ctx.integer("max-silence", 2000),
  );
  ctx.io.out(ctx.flag("json") ? JSON.stringify(status, null, 2) + "\n" : renderStatus(status));
  return status.healthy ? 0 : 1;
}
