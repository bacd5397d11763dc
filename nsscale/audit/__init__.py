"""The audit: the trail of runs (JSON Lines, DynamoDB) and the auditor a run is given."""
