"""Which settings a resume may change: one table, read by train/runs.py (what a resume
accepts) and train/guard.py (what it reports after a divergence)."""

from __future__ import annotations

# Which settings a resume may change, in one table (train/runs.py applies it, and
# train/guard.py reports the changes). "always": where the run runs and in what precision
# (a long run that moves to a CPU without native bf16 resumes in fp32 with --precision auto:
# README, "Runs that move between machines"), how often it logs and checkpoints, and its length
# (the schedule is recomputed over it). "after a divergence": the optimisation settings, once a
# run stopped on non-finite values (README: recovering from a divergence). Any other is fixed.
ALWAYS, AFTER_DIVERGENCE = "always", "after a divergence"
RESUME_POLICY: dict[str, str] = {
    **dict.fromkeys(("device", "precision", "log_every", "checkpoint_every", "iterations",
                     "epochs", "precise_bn", "tracker", "tracking_uri", "experiment"), ALWAYS),
    **dict.fromkeys(("lr", "warmup_lr", "momentum", "weight_decay", "norm_weight_decay",
                     "nesterov", "label_smoothing", "gamma", "backbone_lr_factor",
                     "clip_grad_norm"),
                    AFTER_DIVERGENCE),
}


def may_change_on_resume(diverged: bool) -> set[str]:
    """The settings a resume may change: after a divergence, the optimisation ones too."""
    return {k for k, when in RESUME_POLICY.items() if when == ALWAYS or diverged}
