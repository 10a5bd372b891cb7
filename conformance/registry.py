"""The registry: every check, as one list that tests, bench, mutants and reports read (like PyTorch's `op_db`).
Each subject's checks are declared in its module under `conformance/checks/`."""

from .checks import adamw, checkpoint, encoder, errors, heads, losses, masking, metamorphic, schedules

CHECKS = [
    *encoder.CHECKS,
    *heads.CHECKS,
    *losses.CHECKS,
    *metamorphic.CHECKS,
    *errors.CHECKS,
    *schedules.CHECKS,
    *adamw.CHECKS,
    *masking.CHECKS,
    *checkpoint.CHECKS,
]
CHECKS_BY_ID = {c.id: c for c in CHECKS}
assert len(CHECKS_BY_ID) == len(CHECKS), "check ids must be unique"
