import { describe, expect, it } from "vitest";
import { TurnBudget } from "./turn-budget";

const nextTurn = () => new Promise((resolve) => setImmediate(resolve));

describe("TurnBudget", () => {
  it("is exhausted once a turn's bytes reach the limit, and whole again at the next turn", async () => {
    const budget = new TurnBudget(1000);
    budget.spend(600);
    expect(budget.exhausted).toBe(false);
    budget.spend(400);
    expect(budget.exhausted).toBe(true);
    await nextTurn();
    expect(budget.exhausted).toBe(false);
  });

  it("resumes every waiter at the next turn, once, with the budget whole", async () => {
    const budget = new TurnBudget(10);
    budget.spend(10);
    const seen: boolean[] = [];
    budget.waitForNextTurn(() => seen.push(budget.exhausted));
    budget.waitForNextTurn(() => seen.push(budget.exhausted));
    expect(seen).toEqual([]);
    await nextTurn();
    expect(seen).toEqual([false, false]);
    await nextTurn();
    expect(seen).toHaveLength(2);
  });
});
