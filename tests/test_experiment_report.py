"""The experiment's statistics over seeds: paired differences and the verdicts that state only what holds.
(The rendered ``results.md`` is checked end to end in ``test_experiment.py``.)"""

from __future__ import annotations

import numpy as np
import pytest

from multistill.tools.experiment_report import describe, paired_difference, verdict


def test_paired_differences_and_verdicts():
    kd, ce = {1: 0.60, 2: 0.50, 3: 0.55}, {1: 0.50, 2: 0.52, 3: 0.50}
    d = paired_difference(kd, ce)
    assert d["values"] == pytest.approx([0.10, -0.02, 0.05])
    assert d["mean"] == pytest.approx(np.mean([0.10, -0.02, 0.05]))
    assert d["std"] == pytest.approx(np.std([0.10, -0.02, 0.05], ddof=1))
    assert (d["ahead"], d["behind"], d["covers_zero"]) == (2, 1, True)
    line = verdict("(c) multimodal student", "KD", "no KD", d)
    assert "KD − no KD macro-F1 +4.3 ± 6.0 points over 3 seeds (KD ahead in 2, behind in 1)" in line
    assert line.endswith("the spread covers zero: no difference shown.")
    steady = paired_difference({1: 0.6, 2: 0.62, 3: 0.61}, {1: 0.5, 2: 0.5, 3: 0.52})
    assert steady["covers_zero"] is False and "spread excludes zero: KD ahead" in verdict("x", "KD", "no KD", steady)
    single = paired_difference({1: 0.6}, {1: 0.5})
    assert single["std"] is None and single["covers_zero"] is None
    assert "one seed: no spread, so no conclusion" in verdict("x", "KD", "no KD", single)
    assert describe([0.5])["std"] is None
    with pytest.raises(ValueError, match="no seed in common"):
        paired_difference({1: 0.5}, {2: 0.5})
