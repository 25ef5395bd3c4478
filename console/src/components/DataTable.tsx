// One table for every list: TanStack Table (headless: columns, sorting) drawn with Radix Themes' Table.
// Cursor-paged lists pass hasMore/onMore (the "Load more" button follows next_cursor).
import { Button, Flex, Table, Text } from '@radix-ui/themes';
import { type ColumnDef, flexRender, getCoreRowModel, getSortedRowModel, type SortingState,
         useReactTable } from '@tanstack/react-table';
import { useState } from 'react';

export type DataTableProps<T> = {
  data: T[];
  columns: ColumnDef<T, any>[];
  caption: string;
  empty?: string;
  rowKey?: (row: T) => string;
  hasMore?: boolean;
  loadingMore?: boolean;
  onMore?: () => void;
};

export function DataTable<T>({ data, columns, caption, empty = 'Nothing here yet.', rowKey, hasMore,
                               loadingMore, onMore }: DataTableProps<T>) {
  const [sorting, setSorting] = useState<SortingState>([]);
  const table = useReactTable({
    data, columns, state: { sorting }, onSortingChange: setSorting,
    getCoreRowModel: getCoreRowModel(), getSortedRowModel: getSortedRowModel(),
    getRowId: rowKey ? (row) => rowKey(row) : undefined,
  });
  return (
    <Flex direction="column" gap="2">
      <Table.Root variant="surface" size="1">
        <caption className="ifx-sr-only">{caption}</caption>
        <Table.Header>
          {table.getHeaderGroups().map((group) => (
            <Table.Row key={group.id}>
              {group.headers.map((header) => {
                const sorted = header.column.getIsSorted();
                const label = flexRender(header.column.columnDef.header, header.getContext());
                return (
                  <Table.ColumnHeaderCell key={header.id}
                    aria-sort={sorted === 'asc' ? 'ascending' : sorted === 'desc' ? 'descending' : undefined}>
                    {header.column.getCanSort() ? (
                      <button type="button" className="rt-reset" onClick={header.column.getToggleSortingHandler()}>
                        {label}{sorted === 'asc' ? ' ▲' : sorted === 'desc' ? ' ▼' : ''}
                      </button>
                    ) : label}
                  </Table.ColumnHeaderCell>
                );
              })}
            </Table.Row>
          ))}
        </Table.Header>
        <Table.Body>
          {table.getRowModel().rows.length === 0 ? (
            <Table.Row>
              <Table.Cell colSpan={columns.length}><Text color="gray">{empty}</Text></Table.Cell>
            </Table.Row>
          ) : table.getRowModel().rows.map((row) => (
            <Table.Row key={row.id}>
              {row.getVisibleCells().map((cell) => (
                <Table.Cell key={cell.id}>{flexRender(cell.column.columnDef.cell, cell.getContext())}</Table.Cell>
              ))}
            </Table.Row>
          ))}
        </Table.Body>
      </Table.Root>
      {hasMore ? (
        <Flex><Button variant="soft" onClick={onMore} loading={loadingMore}>Load more</Button></Flex>
      ) : null}
    </Flex>
  );
}
