"""The registry: every check, as one list that tests, bench, mutants and reports read (like PyTorch's `op_db`).
Each subject's checks are declared in its module under `conformance/checks/`."""

from .checks import (adamw, catalogs, checkpoint, checkpoint_port, decoding, encoder, errors, gradients, heads, losses,
                     masking, metamorphic, options, schedules, surface, train)

CHECKS = [
    *encoder.CHECKS,
    *heads.CHECKS,
    *surface.CHECKS,
    *decoding.CHECKS,
    *options.CHECKS,
    *gradients.CHECKS,
    *train.CHECKS,
    *losses.CHECKS,
    *metamorphic.CHECKS,
    *errors.CHECKS,
    *schedules.CHECKS,
    *adamw.CHECKS,
    *masking.CHECKS,
    *checkpoint.CHECKS,
    *checkpoint_port.CHECKS,
    *catalogs.CHECKS,
]
CHECKS_BY_ID = {c.id: c for c in CHECKS}
assert len(CHECKS_BY_ID) == len(CHECKS), "check ids must be unique"
