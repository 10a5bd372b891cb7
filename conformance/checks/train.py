"""Train mode: dropout at 0 equals eval mode, gradient checkpointing, feed-forward chunking, dropout's rate and scaling, and optimizer steps end to end."""

CHECKS = []
