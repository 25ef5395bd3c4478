import { Theme } from '@radix-ui/themes';
import { act, fireEvent, render, screen } from '@testing-library/react';
import { describe, expect, it, vi } from 'vitest';

import { SecretOnce } from '@/components/SecretOnce';

describe('SecretOnce', () => {
  it('shows the secret with a copy button that writes it to the clipboard', async () => {
    const writeText = vi.fn(async () => undefined);
    Object.assign(navigator, { clipboard: { writeText } });
    render(<Theme><SecretOnce title="New token" secret="acme.payments.xyz" onClose={() => undefined} /></Theme>);
    expect(screen.getByTestId('secret-value').textContent).toBe('acme.payments.xyz');
    await act(async () => { fireEvent.click(screen.getByRole('button', { name: 'Copy' })); });
    expect(writeText).toHaveBeenCalledWith('acme.payments.xyz');
    expect(screen.getByRole('button', { name: 'Copied' })).toBeTruthy();
  });

  it('renders nothing when there is no secret', () => {
    render(<Theme><SecretOnce title="New token" secret={null} onClose={() => undefined} /></Theme>);
    expect(screen.queryByTestId('secret-value')).toBeNull();
  });
});
