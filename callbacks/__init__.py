"""Lightning callbacks: visualisation, preemption, W&B helpers, reports, prediction files."""
