// GET /api/v1/agent/stats: runs per day, success rate, time to first message and to RCA, per team.
export type Timing = { p50: number | null; mean: number | null; samples: number };
export type Counts = { runs: number; succeeded: number; failed: number; cancelled: number; active: number;
                       success_rate: number | null };
export type TeamStats = Counts & { org: string; team: string; time_to_first_message_s: Timing;
                                   time_to_rca_s: Timing; daily: (Counts & { day: string })[] };
export type Stats = { since: string; until: string; days: string[]; teams: TeamStats[];
                      totals: Counts & { time_to_first_message_s: Timing; time_to_rca_s: Timing } };

/** One row per day with a column per team (`<org>/<team>`): the shape the charts draw. */
export function perDay(stats: Stats, pick: (c: Counts) => number | null): Record<string, string | number | null>[] {
  return stats.days.map((day) => {
    const row: Record<string, string | number | null> = { day: day.slice(5) };
    for (const t of stats.teams) {
      const d = t.daily.find((x) => x.day === day);
      row[`${t.org}/${t.team}`] = d ? pick(d) : null;
    }
    return row;
  });
}

export const pct = (r: number | null | undefined): string => (r === null || r === undefined ? '—' : `${Math.round(r * 100)}%`);
