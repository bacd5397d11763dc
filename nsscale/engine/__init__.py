"""One run: the reads, the plan, the mark, the transaction's steps, waiting, the result and the
objects that fight a scale. Below the command line, serve and schedules; above the kube layer."""
