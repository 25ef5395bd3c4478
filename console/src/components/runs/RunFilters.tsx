// The runs list's filters; the page keeps them in its query string (lib/runs.ts).
import { Button, Select, TextField } from '@radix-ui/themes';
import { useEffect, useState } from 'react';

import { NO_FILTERS, RANGES, RUN_STATUSES, type RunFilters, SOURCES } from '@/lib/runs';

const ANY = '_any';   // Radix Select has no empty value

export function RunFilterBar({ value, onChange, teamFixed }: { value: RunFilters; onChange: (f: RunFilters) => void;
                                                                teamFixed?: string | null }) {
  const [team, setTeam] = useState(value.team);
  useEffect(() => setTeam(value.team), [value.team]);
  const set = (patch: Partial<RunFilters>) => onChange({ ...value, ...patch });
  return (
    <form className="ifx-form-row" role="search" aria-label="Filter runs"
      onSubmit={(e) => { e.preventDefault(); set({ team: team.trim() }); }}>
      <label>Team
        <TextField.Root value={teamFixed ?? team} disabled={Boolean(teamFixed)} placeholder="any team"
          onChange={(e) => setTeam(e.target.value)} onBlur={() => set({ team: team.trim() })} aria-label="Team" />
      </label>
      <label>Status
        <Select.Root value={value.status || ANY} onValueChange={(v) => set({ status: v === ANY ? '' : v as RunFilters['status'] })}>
          <Select.Trigger aria-label="Status" />
          <Select.Content>
            <Select.Item value={ANY}>any status</Select.Item>
            {RUN_STATUSES.map((s) => <Select.Item key={s} value={s}>{s}</Select.Item>)}
          </Select.Content>
        </Select.Root>
      </label>
      <label>Source
        <Select.Root value={value.source || ANY} onValueChange={(v) => set({ source: v === ANY ? '' : v })}>
          <Select.Trigger aria-label="Source" />
          <Select.Content>
            <Select.Item value={ANY}>any source</Select.Item>
            {SOURCES.map((s) => <Select.Item key={s} value={s}>{s}</Select.Item>)}
          </Select.Content>
        </Select.Root>
      </label>
      <label>Created
        <Select.Root value={value.range || ANY} onValueChange={(v) => set({ range: v === ANY ? '' : v as RunFilters['range'] })}>
          <Select.Trigger aria-label="Created within" />
          <Select.Content>
            <Select.Item value={ANY}>any time</Select.Item>
            {Object.keys(RANGES).map((r) => <Select.Item key={r} value={r}>last {r}</Select.Item>)}
          </Select.Content>
        </Select.Root>
      </label>
      <Button highContrast type="button" variant="soft" color="gray" onClick={() => onChange(NO_FILTERS)}>Clear</Button>
    </form>
  );
}
