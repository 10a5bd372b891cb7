"""Head options and forward contracts: the NSP alias, num_labels=1 with each explicit problem type, problem_type persistence, no forward writes into its inputs."""

CHECKS = []
