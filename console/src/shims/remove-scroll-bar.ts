// CSP shim for 'react-remove-scroll-bar' (next.config.mjs aliases the package's entry here).
//
// Radix's Dialog, AlertDialog and Select lock page scroll with react-remove-scroll, whose scroll-bar
// part injects a <style> element computed at run time (the scroll bar's width in px). No build-time
// hash can allow that, and the console's CSP has no 'unsafe-inline'. This shim keeps the behaviour
// without a <style> element: the same `data-scroll-locked` counter on <body> (console.css hides the
// overflow for it) and the scroll bar's width compensated through the CSSOM (element.style), which
// CSP does not restrict.
import { useEffect } from 'react';
import { fullWidthClassName, noScrollbarsClassName, removedBarSizeVariable,
         zeroRightClassName } from 'react-remove-scroll-bar/constants';

export { fullWidthClassName, noScrollbarsClassName, removedBarSizeVariable, zeroRightClassName };

export const lockAttribute = 'data-scroll-locked';

type GapMode = 'margin' | 'padding';
type Props = { noRelative?: boolean; noImportant?: boolean; gapMode?: GapMode };

export function getGapWidth(_gapMode: GapMode = 'margin') {
  if (typeof window === 'undefined') return { left: 0, top: 0, right: 0, gap: 0 };
  return { left: 0, top: 0, right: 0, gap: Math.max(0, window.innerWidth - document.documentElement.clientWidth) };
}

let saved: { paddingRight: string } | null = null;

function lockCount(): number {
  const n = parseInt(document.body.getAttribute(lockAttribute) || '0', 10);
  return Number.isFinite(n) ? n : 0;
}

export function RemoveScrollBar(_props: Props) {
  useEffect(() => {
    const body = document.body;
    const count = lockCount();
    if (count === 0) {
      const { gap } = getGapWidth();
      saved = { paddingRight: body.style.paddingRight };
      if (gap > 0) body.style.paddingRight = `${gap}px`;
      body.style.setProperty(removedBarSizeVariable, `${gap}px`);
    }
    body.setAttribute(lockAttribute, String(count + 1));
    return () => {
      const next = lockCount() - 1;
      if (next > 0) {
        body.setAttribute(lockAttribute, String(next));
        return;
      }
      body.removeAttribute(lockAttribute);
      body.style.removeProperty(removedBarSizeVariable);
      body.style.paddingRight = saved?.paddingRight ?? '';
      saved = null;
    };
  }, []);
  return null;
}
