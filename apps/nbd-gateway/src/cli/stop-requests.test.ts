import { describe, expect, it } from "vitest";
import { SAME_REQUEST_MS, StopRequests } from "./stop-requests";

describe("StopRequests", () => {
  it("takes the first signal as a stop, its near copies as the same request, and a later one as stop now", () => {
    let now = 1_000;
    const requests = new StopRequests(() => now);
    expect(requests.receive()).toBe("stop");
    now += 3;
    expect(requests.receive()).toBe("copy");
    now += SAME_REQUEST_MS - 10;
    expect(requests.receive()).toBe("copy");
    now += 20;
    expect(requests.receive()).toBe("now");
    now += 5_000;
    expect(requests.receive()).toBe("now");
  });
});
