"""Request counters and a latency histogram, rendered in the Prometheus text format."""

from __future__ import annotations

import bisect
import threading
from collections import defaultdict

BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    """Counts requests by endpoint and status code, and their latencies by endpoint."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: dict[tuple[str, int], int] = defaultdict(int)
        self.buckets: dict[str, list[int]] = {}
        self.sums: dict[str, float] = defaultdict(float)
        self.in_flight = 0
        self.engine_calls = 0
        self.batched_samples = 0

    def observe(self, endpoint: str, status: int, seconds: float) -> None:
        with self._lock:
            self.requests[(endpoint, status)] += 1
            counts = self.buckets.setdefault(endpoint, [0] * (len(BUCKETS) + 1))
            counts[bisect.bisect_left(BUCKETS, seconds)] += 1
            self.sums[endpoint] += seconds

    def engine_call(self, samples: int) -> None:
        with self._lock:
            self.engine_calls += 1
            self.batched_samples += samples

    def render(self) -> str:
        """The Prometheus exposition text (version 0.0.4)."""
        with self._lock:
            lines = ["# HELP dk_requests_total HTTP requests by endpoint and status code.",
                     "# TYPE dk_requests_total counter"]
            for (endpoint, code), n in sorted(self.requests.items()):
                lines.append(f'dk_requests_total{{endpoint="{endpoint}",code="{code}"}} {n}')
            errors: dict[int, int] = defaultdict(int)
            for (_, code), n in self.requests.items():
                if code >= 400:
                    errors[code] += n
            lines += ["# HELP dk_request_errors_total HTTP requests answered with an error, by status code.",
                      "# TYPE dk_request_errors_total counter"]
            lines += [f'dk_request_errors_total{{code="{code}"}} {n}' for code, n in sorted(errors.items())]
            lines += ["# HELP dk_request_duration_seconds Time from request start to response end.",
                      "# TYPE dk_request_duration_seconds histogram"]
            for endpoint, counts in sorted(self.buckets.items()):
                total = 0
                for bound, n in zip((*BUCKETS, "+Inf"), counts):
                    total += n
                    lines.append(f'dk_request_duration_seconds_bucket{{endpoint="{endpoint}",le="{bound}"}} {total}')
                lines.append(f'dk_request_duration_seconds_sum{{endpoint="{endpoint}"}} {self.sums[endpoint]:.6f}')
                lines.append(f'dk_request_duration_seconds_count{{endpoint="{endpoint}"}} {total}')
            lines += ["# HELP dk_requests_in_flight Requests being handled now.", "# TYPE dk_requests_in_flight gauge",
                      f"dk_requests_in_flight {self.in_flight}",
                      "# HELP dk_engine_calls_total Engine.infer calls (one per batch).",
                      "# TYPE dk_engine_calls_total counter", f"dk_engine_calls_total {self.engine_calls}",
                      "# HELP dk_engine_samples_total Samples run through the engine.",
                      "# TYPE dk_engine_samples_total counter", f"dk_engine_samples_total {self.batched_samples}"]
        return "\n".join(lines) + "\n"
