import { describe, expect, it } from 'vitest';
import { Slots } from './slots.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A job's ledger as the database would answer lowestDue: rows pending until they are done. */
function ledger(seqs: number[]) {
  const pending = new Set(seqs);
  const asked: number[] = [];
  return {
    pending,
    asked,
    lowestDue: async (holding: number[], above: number) => {
      asked.push(above);
      const due = [...pending].filter((s) => !holding.includes(s) && s > above);
      return due.length ? Math.min(...due) : null;
    },
  };
}

/** Ask for a slot as a row would, record when it got one, hold it `holdMs`, then finish the row. */
async function row(slots: Slots, l: ReturnType<typeof ledger>, seq: number, order: number[], holdMs = 20, running?: { now: number; max: number }) {
  const release = await slots.acquire(seq);
  order.push(seq);
  if (running) running.max = Math.max(running.max, ++running.now);
  await sleep(holdMs);
  if (running) running.now--;
  l.pending.delete(seq);
  release();
}

describe('Slots (migration associations per job)', () => {
  it('hands slots out lowest seq first, whatever order the rows ask in', async () => {
    const l = ledger([1, 2, 3, 4]);
    const slots = new Slots(() => 1, l.lowestDue);
    const order: number[] = [];
    await Promise.all([3, 1, 4, 2].map((s) => row(slots, l, s, order)));
    expect(order).toEqual([1, 2, 3, 4]);
  });

  it('holds the slot for a lower due row that asks late (a slow queue), not for one that never asks', async () => {
    const l = ledger([1, 2]);
    const slots = new Slots(() => 1, l.lowestDue);
    const order: number[] = [];
    const second = row(slots, l, 2, order);
    await sleep(300);
    expect(order).toEqual([]);
    await Promise.all([row(slots, l, 1, order), second]);
    expect(order).toEqual([1, 2]);

    // Row 5 is due but never asks: row 6 gets the slot after SLOT_ORDER_WAIT_MS.
    const m = ledger([5, 6]);
    const other = new Slots(() => 1, m.lowestDue);
    const late: number[] = [];
    await row(other, m, 6, late);
    expect(late).toEqual([6]);
    // It is not waited for again: row 7 goes at once (no second wait), and row 5 still goes when it asks.
    m.pending.add(7);
    m.asked.length = 0;
    await row(other, m, 7, late);
    expect(m.asked).toEqual([5]); // asked only for rows above 5: row 5 is not waited for again
    await row(other, m, 5, late);
    expect(late).toEqual([6, 7, 5]);
  });

  it('never holds more slots than the limit, and does not wait on the database when it fails', async () => {
    const l = ledger([1, 2, 3, 4, 5]);
    const slots = new Slots(() => 2, l.lowestDue);
    const order: number[] = [];
    const running = { now: 0, max: 0 };
    await Promise.all([5, 4, 3, 2, 1].map((s) => row(slots, l, s, order, 30, running)));
    expect(running.max).toBe(2);
    expect(order.slice(0, 2).sort()).toEqual([1, 2]);
    expect(order.sort()).toEqual([1, 2, 3, 4, 5]);

    const broken = new Slots(() => 1, () => Promise.reject(new Error('database down')));
    const got: number[] = [];
    await Promise.all([2, 1].map((s) => row(broken, ledger([]), s, got)));
    expect(got).toEqual([1, 2]);
  });
});
