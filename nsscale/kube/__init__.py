"""The cluster as nsscale sees it: the objects and their kinds, the reads and writes through
kubectl, the review of rights, the in-cluster login, retries. The only layer, with
`nsscale/kubectl.py`, that builds kubectl's arguments."""
