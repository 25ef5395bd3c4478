// The overview's charts (recharts). Loaded with next/dynamic from the overview page only, so the
// library stays out of every other page's first-load JavaScript. Each chart has a table twin on the
// page (the numbers, for screen readers and for copying).
import { Bar, BarChart, CartesianGrid, Legend, Line, LineChart, ResponsiveContainer, Tooltip, XAxis,
         YAxis } from 'recharts';

import { perDay, type Stats } from '@/lib/stats';

// Dark enough for 4.5:1 on white (the legend and tooltip print team names in these colours).
const PALETTE = ['#c62a2f', '#3358d4', '#18794e', '#bd4b00', '#6e56cf', '#0d74ce', '#946800', '#c2298a'];

export default function Charts({ stats }: { stats: Stats }) {
  const teams = stats.teams.map((t) => `${t.org}/${t.team}`);
  const runs = perDay(stats, (c) => c.runs);
  const rate = perDay(stats, (c) => (c.success_rate === null ? null : Math.round(c.success_rate * 100)));
  const timings = stats.teams.map((t) => ({ team: `${t.org}/${t.team}`, first: t.time_to_first_message_s.p50,
                                            rca: t.time_to_rca_s.p50 }));
  return (
    <div className="ifx-charts" data-testid="charts">
      <figure>
        <figcaption>Runs per day</figcaption>
        <div className="ifx-chart" role="img" aria-label="Runs per day per team (stacked bars)">
          <ResponsiveContainer>
            <BarChart data={runs}>
              <CartesianGrid strokeDasharray="3 3" /><XAxis dataKey="day" /><YAxis allowDecimals={false} />
              <Tooltip /><Legend />
              {teams.map((t, i) => <Bar key={t} dataKey={t} stackId="runs" fill={PALETTE[i % PALETTE.length]} isAnimationActive={false} />)}
            </BarChart>
          </ResponsiveContainer>
        </div>
      </figure>
      <figure>
        <figcaption>Success rate per day (%)</figcaption>
        <div className="ifx-chart" role="img" aria-label="Success rate per day per team (lines)">
          <ResponsiveContainer>
            <LineChart data={rate}>
              <CartesianGrid strokeDasharray="3 3" /><XAxis dataKey="day" /><YAxis domain={[0, 100]} />
              <Tooltip /><Legend />
              {teams.map((t, i) => <Line key={t} dataKey={t} stroke={PALETTE[i % PALETTE.length]} connectNulls isAnimationActive={false} />)}
            </LineChart>
          </ResponsiveContainer>
        </div>
      </figure>
      <figure>
        <figcaption>Median time to first message and to RCA (s)</figcaption>
        <div className="ifx-chart" role="img" aria-label="Median time to first message and to RCA per team (bars)">
          <ResponsiveContainer>
            <BarChart data={timings}>
              <CartesianGrid strokeDasharray="3 3" /><XAxis dataKey="team" /><YAxis />
              <Tooltip /><Legend />
              <Bar dataKey="first" name="first message" fill={PALETTE[1]} isAnimationActive={false} />
              <Bar dataKey="rca" name="RCA" fill={PALETTE[0]} isAnimationActive={false} />
            </BarChart>
          </ResponsiveContainer>
        </div>
      </figure>
    </div>
  );
}
