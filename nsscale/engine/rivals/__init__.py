"""The objects that fight a scale: what sets a workload's replica count besides nsscale (a
GitOps controller, an autoscaler), found from what the cluster holds."""
