"""How many examples the fuzz tests run: a short run in `make test`, 10 000 in `make fuzz`
(`CCROUTER_FUZZ_EXAMPLES=10000`, set by `python -m fuzz`)."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

EXAMPLES = int(os.environ.get("CCROUTER_FUZZ_EXAMPLES", "0") or 0)


def fuzz(default: int) -> settings:
    """Hypothesis settings: `default` examples normally, CCROUTER_FUZZ_EXAMPLES under make fuzz."""
    return settings(
        max_examples=EXAMPLES or default,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                               HealthCheck.filter_too_much],
        derandomize=not EXAMPLES,  # make test: the same cases every run; make fuzz: new ones
    )  # fmt: skip
